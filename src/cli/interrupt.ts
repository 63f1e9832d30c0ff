/**
 * What the interruption line says (see run.ts). By default that whatever completed stays; a command that can
 * say more (load: what landed, where to go on from) registers its own description while it runs, and may
 * register a way to stop at a clean point first (load: stop reading, let the batches being written commit),
 * so that what the line says is exactly what the warehouse holds.
 */
interface Registered {
  /** `uncertain`: the command did not reach its clean point (a second signal, or it took too long). */
  describe: (uncertain: boolean) => string;
  settle?: () => Promise<void>;
}
let current: Registered | undefined;

/** Replaces the interruption's description (and way to settle) until `clear` is called or the process ends. */
export function describeInterruption(
  describe: (uncertain: boolean) => string,
  settle?: () => Promise<void>,
): { clear(): void } {
  const mine: Registered = { describe, settle };
  current = mine;
  return {
    clear: () => {
      if (current === mine) current = undefined;
    },
  };
}

/** How the running command stops at a clean point, if it registered one. */
export function interruptionSettle(): (() => Promise<void>) | undefined {
  return current?.settle;
}

export function interruptionDescription(uncertain = false): string {
  return (
    current?.describe(uncertain) ??
    'what it completed stays and what was in flight is rolled back; run it again to finish.'
  );
}

/**
 * Last words of an interrupted command, said synchronously just before it exits (build, test: the
 * run_results.json of what finished, as dbt writes it on Ctrl-C). Until `clear` is called.
 */
const lastWords = new Set<(signal: NodeJS.Signals) => void>();
export function onInterruptExit(fn: (signal: NodeJS.Signals) => void): { clear(): void } {
  lastWords.add(fn);
  return { clear: () => lastWords.delete(fn) };
}

export function sayLastWords(signal: NodeJS.Signals): void {
  for (const fn of lastWords) {
    try {
      fn(signal);
    } catch {
      // the process is going anyway; the interruption line must still be printed
    }
  }
}
