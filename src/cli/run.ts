// Entry point used by bin/cdp-lifecycle.js (compiled) and by tests (from source).
import { main } from './main';

void main(process.argv).then((code) => {
  process.exitCode = code;
});
