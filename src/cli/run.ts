// Entry point used by bin/cdp-lifecycle.js (compiled) and by tests (from source).
import { main } from './main';

void main(process.argv).then((code) => {
  process.exitCode = code;
  // Every command closes what it opened; should a library still hold a timer or socket, leave anyway rather
  // than hang a cron job. unref() keeps this timer from holding the process itself.
  setTimeout(() => process.exit(code), 3000).unref();
});
