// Entry point used by bin/cdp-lifecycle.js (compiled) and by tests (from source).
import { main } from './main';

/**
 * Ctrl-C or a scheduler's SIGTERM in the middle of a command: one line saying what state it leaves, and exit 1
 * (SPEC §8 has no other code for "did not finish"). Every unit of work commits whole (a model's swap or
 * delete+insert, a batch of events, a sync batch and its state), so nothing half-written stays behind; the
 * warehouse rolls back what was in flight when the process goes. `serve` handles its signals itself (it
 * drains requests first), so this one steps aside when another listener is registered.
 */
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  process.stderr.write(
    `\nerror: interrupted (${signal}) before the command finished: what it completed stays and what was in flight is rolled back; run it again to finish.\n`,
  );
  process.exit(1);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

void main(process.argv).then((code) => {
  process.exitCode = code;
  // Every command closes what it opened; should a library still hold a timer or socket, leave anyway rather
  // than hang a cron job. unref() keeps this timer from holding the process itself.
  setTimeout(() => process.exit(code), 3000).unref();
});
