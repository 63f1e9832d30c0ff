import { runSuite } from './run-suite';

runSuite('postgres');
