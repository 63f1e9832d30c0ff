/**
 * `err` and the causes it wraps, a few levels deep, as callers wrap. Not `instanceof Error`: the DuckDB addon's
 * errors may come from another realm (a test sandbox).
 */
function* errorChain(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    yield e;
    e = e.cause as typeof e;
  }
}

/** Whether `err` or one of its causes has a message matching `pattern`. */
function messageMatches(err: unknown, pattern: RegExp): boolean {
  for (const e of errorChain(err)) if (typeof e.message === 'string' && pattern.test(e.message)) return true;
  return false;
}

/**
 * Whether the warehouse refused the data itself (a constraint, a value it cannot convert) rather than failed
 * for a reason of its own: PostgreSQL's SQLSTATE classes 22 (data exception) and 23 (integrity constraint
 * violation), DuckDB's constraint, conversion and range errors (its appender words a duplicate key as
 * `Failed to append: PRIMARY KEY or UNIQUE constraint violation: …` within what it appends, and as
 * `Failed to append: Duplicate key "id: …" violates primary key constraint.` against a stored row).
 */
export function isDataError(err: unknown): boolean {
  for (const e of errorChain(err))
    if (typeof e.code === 'string' && /^2[23][0-9A-Z]{3}$/.test(e.code)) return true;
  return messageMatches(
    err,
    /^(Constraint|Conversion|Invalid Input|Out of Range) Error|^(Failed to append: )?Duplicate key "|constraint failed|constraint violation|Could not convert/i,
  );
}

/**
 * Whether a statement failed because a table or schema it names does not exist: PostgreSQL's undefined_table
 * (42P01) and invalid_schema_name (3F000), DuckDB's catalog errors for a missing table or schema and its
 * appender's (`Table "<catalog>.<schema>.<table>" could not be found`, for either).
 */
export function isMissingRelationError(err: unknown): boolean {
  for (const e of errorChain(err)) if (e.code === '42P01' || e.code === '3F000') return true;
  return messageMatches(
    err,
    /Catalog Error: (Table|Schema) with name .* does not exist|^Table ".*" could not be found/i,
  );
}

/**
 * Whether DuckDB failed to write its file or its write-ahead log (a full disk, a folder or file that can no
 * longer be written, a read-only file system): its I/O errors, which a commit words as `Failed to commit:
 * Cannot open file "….wal": …` or `… Could not write file …`, and the database DuckDB invalidates after such
 * a failure in a checkpoint. The warehouse cannot take writes then, whatever they hold, as a PostgreSQL server
 * that cannot be reached cannot.
 */
export function isStorageWriteError(err: unknown): boolean {
  // A refusal of the data quotes the data (a duplicate key may read `Cannot open file "…`): never unavailable.
  if (isDataError(err)) return false;
  // anchored after DuckDB's own prefixes (`TransactionContext Error: Failed to commit: `), so that the words
  // can only come from DuckDB, not from a value quoted later in the message
  return messageMatches(
    err,
    /^(?:\w+ Error: )?(?:Failed(?: to \w+)?: )?(?:IO Error\b|Cannot open file "|Could not (?:write|write to|fsync|truncate) file "|No space left on device|database has been invalidated)/i,
  );
}
