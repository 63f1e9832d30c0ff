import { quoteIdent, type SqlRunner, type Warehouse } from './types';

/** Rows in a full DuckDB row group. */
const ROW_GROUP_SIZE = 122_880;

/**
 * Whether a DuckDB table holds far more row groups than its rows need. The warehouse turns off the
 * checkpoint's vacuum (see configure in duckdb.ts), which is also what merges small row groups: every
 * process that appends a few rows and checkpoints (a scheduled `run` adding its build and sync rows) leaves a
 * row group of its own, at least one 256 KB block each, which nothing merges. A table past this point is
 * worth rewriting: its blocks go back to the file's free list, so the file stops growing.
 */
export async function isFragmented(
  wh: SqlRunner,
  schema: string,
  name: string,
  /** The table's live rows, when the caller has counted them already. */
  rows?: number,
): Promise<boolean> {
  if (wh.dialect !== 'duckdb') return false;
  const [r] = await wh.query<{ groups: number | bigint | null }>(
    `select count(distinct row_group_id) as groups from pragma_storage_info($1)`,
    [`${quoteIdent(schema)}.${quoteIdent(name)}`],
  );
  const groups = Number(r?.groups ?? 0);
  if (groups <= 8) return false;
  const live =
    rows ??
    Number(
      (
        await wh.query<{ n: number | bigint }>(
          `select count(*) as n from ${quoteIdent(schema)}.${quoteIdent(name)}`,
        )
      )[0]?.n ?? 0,
    );
  return groups > 2 * Math.ceil(live / ROW_GROUP_SIZE) + 4;
}

/**
 * Rewrites a fragmented DuckDB table in place (its definition, constraints and comments stay): the rows are
 * copied aside, deleted and inserted again in one transaction, and the emptied row groups are dropped at a
 * checkpoint. For the small bookkeeping tables; the models' big tables are swapped (compactIfBloated).
 */
export async function defragment(wh: Warehouse, schema: string, name: string): Promise<boolean> {
  if (!(await isFragmented(wh, schema, name))) return false;
  const table = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  await wh.transaction(async (tx) => {
    await tx.exec(`create temp table cdp_lifecycle_defragment as select * from ${table}`);
    await tx.exec(`delete from ${table}`);
    await tx.exec(`insert into ${table} select * from cdp_lifecycle_defragment`);
    await tx.exec('drop table cdp_lifecycle_defragment');
  });
  // The emptied row groups go at a checkpoint; until then they still count, and a long-lived process (serve
  // --schedule) would rewrite the table again at its next run. Best effort: another transaction can hold it off.
  await wh.exec('checkpoint').catch(() => undefined);
  return true;
}
