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

/**
 * A PostgreSQL refusal that comes from how the database or role is set up, not from a defect: the sentence that
 * says what to change (SPEC 8), or undefined for any other error. Looks through causes, as callers wrap.
 */
export function warehouseRefusal(err: unknown): string | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const code = (e as { code?: unknown }).code;
    const why = e.message.split('\n')[0];
    if (code === '25006') {
      return `The warehouse refused to write (${why}): the database or role is read-only (default_transaction_read_only, or a standby), so point --warehouse at the primary with a role that may write.`;
    }
    if (code === '57014' && /statement timeout/i.test(why)) {
      return `The warehouse cancelled a statement after its statement_timeout (${why}): raise it for this role (alter role … set statement_timeout = 0).`;
    }
    const owner = code === '42501' ? /must be owner of (\w+(?: \w+)*?) (\S+)$/.exec(why) : null;
    if (owner) {
      // no grant helps here: altering, indexing or dropping an object is its owner's alone
      return `The warehouse role does not own ${owner[1]} ${owner[2]}, which cdp-lifecycle must alter: run it as the role that owns it, or make this role the owner (alter ${owner[1]} … owner to …).`;
    }
    if (code === '42501') {
      return `The warehouse role lacks a privilege (${why}): let it own the raw and model schemas, or grant what the message names (see the README's PostgreSQL role).`;
    }
  }
  return undefined;
}
