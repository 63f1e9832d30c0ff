/**
 * What the interruption line says (see run.ts). By default that whatever completed stays; a command that can
 * say more (load: what landed, where to go on from) registers its own description while it runs.
 */
let describe: (() => string) | undefined;

/** Replaces the interruption's description until `clear` is called (or the process ends). */
export function describeInterruption(fn: () => string): { clear(): void } {
  describe = fn;
  return {
    clear: () => {
      if (describe === fn) describe = undefined;
    },
  };
}

export function interruptionDescription(): string {
  return (
    describe?.() ?? 'what it completed stays and what was in flight is rolled back; run it again to finish.'
  );
}
