import { runSuite } from './run-suite';

runSuite('duckdb');
