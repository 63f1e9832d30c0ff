/**
 * Whether the warehouse refused the data itself (a constraint, a value it cannot convert) rather than failed
 * for a reason of its own: PostgreSQL's SQLSTATE classes 22 (data exception) and 23 (integrity constraint
 * violation), DuckDB's constraint, conversion and range errors.
 */
export function isDataError(err: unknown): boolean {
  // not `instanceof Error`: the DuckDB addon's errors may come from another realm (a test sandbox)
  let e = err as { code?: unknown; message?: unknown; cause?: unknown } | null | undefined;
  for (let depth = 0; e && typeof e === 'object' && depth < 5; depth++) {
    if (typeof e.code === 'string' && /^2[23][0-9A-Z]{3}$/.test(e.code)) return true;
    if (
      typeof e.message === 'string' &&
      /^(Constraint|Conversion|Invalid Input|Out of Range) Error|constraint failed|Could not convert/i.test(
        e.message,
      )
    )
      return true;
    e = e.cause as typeof e;
  }
  return false;
}
