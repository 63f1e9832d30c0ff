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
 * The grant a PostgreSQL permission error (42501) calls for, as the warehouse worked it out from the statement
 * refused and the catalog (see src/warehouse/privileges.ts): `grant create on schema cdp to loader`.
 */
export interface MissingPrivilege {
  /** The role refused (current_user), quoted as SQL needs it. */
  role: string;
  kind: 'schema' | 'table' | 'database';
  /** The schema, table (schema.table) or database as the catalog names it, unquoted. */
  object: string;
  /** The same, as SQL names it (quoted where it must be). */
  name: string;
  /** The statement that gives it, without a final period. */
  grant: string;
}

const missingPrivileges = new WeakMap<object, MissingPrivilege>();

/** Records on the driver's error what it calls for (the warehouse does, when it can tell). */
export function noteMissingPrivilege(err: object, privilege: MissingPrivilege): void {
  missingPrivileges.set(err, privilege);
}

function findMissingPrivilege(err: unknown): { on: object; privilege: MissingPrivilege } | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const privilege = missingPrivileges.get(e);
    if (privilege) return { on: e, privilege };
  }
  return undefined;
}

/** The grant a permission error calls for, if known; looks through causes, as callers wrap. */
export function missingPrivilege(err: unknown): MissingPrivilege | undefined {
  return findMissingPrivilege(err)?.privilege;
}

/**
 * Names another grant for a permission error whose grant is known, when the work that met it knows it needs more
 * than the statement refused did (a sync needs USAGE and CREATE on its schema, whichever statement was refused).
 */
export function replaceGrant(err: unknown, grant: (p: MissingPrivilege) => string | undefined): void {
  const found = findMissingPrivilege(err);
  const next = found && grant(found.privilege);
  if (found && next !== undefined) missingPrivileges.set(found.on, { ...found.privilege, grant: next });
}

/** What a PostgreSQL refusal caused by the database's or role's set-up asks to change (see warehouseRefusal). */
interface Refusal {
  /** The warehouse's message, first line. */
  why: string;
  code: string;
  /** What to change, as a clause. */
  fix: string;
  /** The sentence on its own, for an error with nothing around it. */
  sentence: string;
}

function findRefusal(err: unknown): Refusal | undefined {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const raw = (e as { code?: unknown }).code;
    const code = typeof raw === 'string' ? raw : '';
    const why = e.message.split('\n')[0];
    if (code === '25006') {
      const fix =
        'the database or role is read-only (default_transaction_read_only, or a standby), so point --warehouse at the primary with a role that may write';
      return { why, code, fix, sentence: `The warehouse refused to write (${why}): ${fix}.` };
    }
    if (code === '57014' && /statement timeout/i.test(why)) {
      const fix = 'raise it for this role (alter role … set statement_timeout = 0)';
      return {
        why,
        code,
        fix: `the role's statement_timeout cut it short: ${fix}`,
        sentence: `The warehouse cancelled a statement after its statement_timeout (${why}): ${fix}.`,
      };
    }
    if (code === '55P03' && /lock timeout/i.test(why)) {
      // another session held what the statement needed (an analyst's long transaction on a mart, a DBA's
      // maintenance) for longer than the role lets a statement wait
      const fix =
        'run it again once the sessions holding the lock are done, or raise lock_timeout for this role (alter role … set lock_timeout = 0)';
      return {
        why,
        code,
        fix: `the role's lock_timeout gave up waiting for a lock another session held: ${fix}`,
        sentence: `The warehouse gave up waiting for a lock after its lock_timeout (${why}): ${fix}.`,
      };
    }
    const owner = code === '42501' ? /must be owner of (\w+(?: \w+)*?) (\S+)$/.exec(why) : null;
    if (owner) {
      // no grant helps here: altering, indexing or dropping an object is its owner's alone
      const fix = `run it as the role that owns it, or make this role the owner (alter ${owner[1]} … owner to …)`;
      return {
        why,
        code,
        fix: `the role does not own ${owner[1]} ${owner[2]}: ${fix}`,
        sentence: `The warehouse role does not own ${owner[1]} ${owner[2]}, which cdp-lifecycle must alter: ${fix}.`,
      };
    }
    if (code === '42501') {
      // the grant, when the warehouse could tell which; else the ways round it
      const fix =
        missingPrivileges.get(e)?.grant ??
        "let it own the raw and model schemas, or grant what the message names (see the README's PostgreSQL role)";
      return {
        why,
        code,
        fix: `the role lacks a privilege: ${fix}`,
        sentence: `The warehouse role lacks a privilege (${why}): ${fix}.`,
      };
    }
  }
  return undefined;
}

/**
 * A PostgreSQL refusal that comes from how the database or role is set up, not from a defect: the sentence that
 * says what to change (SPEC 8), or undefined for any other error. Looks through causes, as callers wrap.
 */
export function warehouseRefusal(err: unknown): string | undefined {
  return findRefusal(err)?.sentence;
}

/**
 * The same refusal as a clause to follow a message that already quotes the warehouse (a model that failed),
 * and whether every later statement would meet it too (a read-only database or role).
 */
export function refusalFix(err: unknown): { fix: string; stopsEverything: boolean } | undefined {
  const r = findRefusal(err);
  return r && { fix: r.fix, stopsEverything: r.code === '25006' };
}
