// Entry point used by bin/cdp-lifecycle.js (compiled) and by tests (from source).
import { interruptionDescription, interruptionSettle, sayLastWords } from './interrupt';
import { main } from './main';

/**
 * Ctrl-C or a scheduler's SIGTERM in the middle of a command: one line saying what state it leaves, and exit 1
 * (SPEC §8 has no other code for "did not finish"). Every unit of work commits whole (a model's swap or
 * delete+insert, a batch of events, a sync batch and its state), so nothing half-written stays behind; the
 * warehouse rolls back what was in flight when the process goes. `serve` handles its signals itself (it
 * drains requests first), so this one steps aside when another listener is registered.
 */
let stopping = false;
function onSignal(signal: NodeJS.Signals): void {
  if (process.listenerCount(signal) > 1) return;
  const settle = interruptionSettle();
  if (settle && !stopping) {
    // A command that can stop at a clean point (load: the batches being written commit) does, so that the
    // line below is exact; a second signal, or 30 s, stops at once.
    stopping = true;
    process.stderr.write(
      `\n${signal}: stopping once the work in flight is written (send it again to stop at once) …\n`,
    );
    const timeout = new Promise<boolean>((resolve) => setTimeout(() => resolve(false), 30_000).unref());
    void Promise.race([
      settle().then(
        () => true,
        () => true,
      ),
      timeout,
    ]).then((settled) => {
      sayLastWords(signal);
      process.stderr.write(
        `error: interrupted (${signal}) before the command finished: ${interruptionDescription(!settled)}\n`,
      );
      process.exit(1);
    });
    return;
  }
  sayLastWords(signal);
  process.stderr.write(
    `\nerror: interrupted (${signal}) before the command finished: ${interruptionDescription(stopping)}\n`,
  );
  process.exit(1);
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

/**
 * `cdp-lifecycle build | head` or `| grep -m1`: the reader closes the pipe, and Node reports EPIPE as an
 * unhandled 'error' event that kills the process mid-build with a stack trace. Output nobody reads is dropped
 * instead, and the work (a build, a sync) finishes as it would with its output shown.
 */
function dropOutputToClosedPipe(stream: NodeJS.WriteStream): void {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE' || err.code === 'ERR_STREAM_DESTROYED') return;
    throw err;
  });
}
dropOutputToClosedPipe(process.stdout);
dropOutputToClosedPipe(process.stderr);

void main(process.argv).then((code) => {
  process.exitCode = code;
  // Every command closes what it opened; should a library still hold a timer or socket, leave anyway rather
  // than hang a cron job. unref() keeps this timer from holding the process itself.
  setTimeout(() => process.exit(code), 3000).unref();
});
