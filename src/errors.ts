/**
 * An error the user can fix: the CLI prints its message as one sentence (no stack trace) and exits with
 * `exitCode` (1 for a failed run, 2 for a usage error, per SPEC §8).
 */
export class UserError extends Error {
  readonly exitCode: 1 | 2;
  constructor(message: string, options: { exitCode?: 1 | 2; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'UserError';
    this.exitCode = options.exitCode ?? 1;
  }
}

/** A usage error (bad flag, bad --vars, unknown command): exit code 2. */
export class UsageError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 2 });
    this.name = 'UsageError';
  }
}

/**
 * The warehouse could not be reached or refused a write for a reason unrelated to the data (connection
 * refused, lock held by another process). The collector answers 503 on it so that SDKs retry.
 */
export class WarehouseUnavailableError extends UserError {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super(message, { ...options, exitCode: 1 });
    this.name = 'WarehouseUnavailableError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
