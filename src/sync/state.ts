import { createHash } from 'node:crypto';
import { UserError, errorMessage } from '../errors';
import type { ColumnSpec, Dialect, InsertValue, Row, SqlRunner, SqlValue, Warehouse } from '../warehouse';
import { ensureSchema, listRelations, qualify, quoteIdent } from '../warehouse';
import type { TraitMapping } from './traits';

export const SOURCE_TABLE = 'user_lifecycle';

/** sync_state.status: what the destination holds for the user. */
export type StateStatus = 'delivered' | 'failed';
/** sync_log.status: what happened to one changed user in one run. */
export type LogStatus = 'sent' | 'failed' | 'invalid' | 'dry_run';
/** sync_runs.status. `interrupted`: a run found still `running` when a later run started (killed or crashed). */
export type RunStatus = 'running' | 'success' | 'failed' | 'error' | 'interrupted';

function jsonType(d: Dialect): string {
  return d === 'postgres' ? 'jsonb' : 'json';
}

/**
 * Creates the three sync tables if missing. `sync_state` has a primary key on PostgreSQL (its upserts probe
 * it); on DuckDB the same statements run as columnar hash joins, and an ART index over millions of keys would
 * cost memory for no gain, so uniqueness is kept by the update-then-insert-missing write below.
 */
export async function ensureSyncTables(wh: Warehouse, schema: string): Promise<void> {
  const s = quoteIdent(schema);
  const json = jsonType(wh.dialect);
  const pk = wh.dialect === 'postgres' ? ', primary key (destination, user_id)' : '';
  await ensureSchema(wh, schema);
  await wh.exec(
    `create table if not exists ${s}.sync_state (
      destination text not null,
      user_id text not null,
      traits_hash text,
      traits ${json},
      delivered_at timestamptz,
      status text not null,
      attempts integer not null,
      last_error text,
      message_id text,
      updated_at timestamptz,
      run_id text${pk}
    )`,
  );
  await wh.exec(
    `create table if not exists ${s}.sync_runs (
      run_id text not null,
      destination text not null,
      target text,
      started_at timestamptz not null,
      finished_at timestamptz,
      status text not null,
      dry_run boolean not null,
      full_resync boolean,
      considered bigint,
      changed bigint,
      sent bigint,
      failed bigint,
      invalid bigint,
      transitions ${json},
      error text
    )`,
  );
  await wh.exec(
    `create table if not exists ${s}.sync_log (
      run_id text not null,
      batch_no integer not null,
      user_id text,
      status text not null,
      error text,
      from_status text,
      to_status text,
      message_id text,
      traits_hash text,
      traits ${json},
      logged_at timestamptz not null
    )`,
  );
  if (wh.dialect === 'postgres') {
    // The per-batch state write reads back one batch of this run; without it that is a scan of every run ever.
    // Looked up first: even `if not exists` needs to own the table, and a DBA may have created the tables for
    // a role that was only granted their use.
    const [found] = await wh.query<{ n: number }>(
      `select count(*) as n from pg_catalog.pg_indexes where schemaname = $1 and indexname = 'sync_log_run_batch'`,
      [schema],
    );
    if (Number(found?.n ?? 0) === 0) {
      await wh.exec(`create index if not exists sync_log_run_batch on ${s}.sync_log (run_id, batch_no)`);
    }
  }
}

export interface SourceColumn {
  name: string;
  type: string;
}

export async function sourceColumns(wh: Warehouse, schema: string): Promise<SourceColumn[]> {
  const rows = await wh.query<{ column_name: string; data_type: string }>(
    `select column_name, data_type from information_schema.columns
      where table_schema = $1 and table_name = $2 order by ordinal_position`,
    [schema, SOURCE_TABLE],
  );
  if (rows.length === 0) {
    // information_schema lists only what the role may read
    if (await wh.tableExists(schema, SOURCE_TABLE)) {
      throw new UserError(
        `The role cannot read ${schema}.${SOURCE_TABLE} in ${wh.displayUrl}: grant it select on the model schema's tables (or sync as the role that builds them).`,
      );
    }
    throw new UserError(
      `The model ${schema}.${SOURCE_TABLE} does not exist in ${wh.displayUrl}: run \`cdp-lifecycle build\` first (or pass the --schema the models were built in).`,
    );
  }
  return rows.map((r) => ({ name: r.column_name, type: r.data_type.toLowerCase() }));
}

/**
 * Why the marts cannot be synced because the last build stopped part-way, or undefined. A build swaps model by
 * model, and `user_lifecycle` is a view that prints the D it was created with: after a build for a new D stops
 * before the view is recreated, the tables under it hold the new build's rows beside the old D (negative
 * days_inactive, statuses dated after as_of_date). int_lifecycle__builds, the first model, records the new D
 * at once, so a D that differs between the two says so. (A stopped rebuild for the same D is not seen here;
 * its tables mix two builds of one day, which the next build repairs.)
 */
export async function unfinishedBuild(wh: Warehouse, schema: string): Promise<string | undefined> {
  if (!(await wh.tableExists(schema, 'int_lifecycle__builds'))) return undefined;
  const [mart] = await wh.query<{ d: string | null }>(
    `select cast(as_of_date as varchar) as d from ${qualify(schema, SOURCE_TABLE)} limit 1`,
  );
  // a sync role granted only the marts it reads: the check is a safeguard, not a reason to refuse
  const [build] = await wh
    .query<{ d: string | null }>(
      `select cast(as_of_date as varchar) as d from ${qualify(schema, 'int_lifecycle__builds')}
        order by built_at desc limit 1`,
    )
    .catch(() => [] as Array<{ d: string | null }>);
  if (!mart?.d || !build?.d || mart.d === build.d) return undefined;
  return `${schema}.${SOURCE_TABLE} says as of ${mart.d} while the last build started as of ${build.d}, so that build stopped part-way (or built only some models) and the marts may mix the two: run \`cdp-lifecycle build\` again before syncing.`;
}

/**
 * One column as hash input text, identical on DuckDB and PostgreSQL for the same value: dates and integers
 * cast the same way on both; decimals print as plain digits without trailing zeros (`100.00` and `100` are one
 * value; a NUMERIC's scale varies); doubles print an integral value below 10^18 as an integer (DuckDB writes
 * `100.0` and `1000000000000000.0`, PostgreSQL `100` and `1e+15`) and any other in the shortest form (alike on
 * both but for a fraction at 10^15 or more, which only doubles between 10^15 and 2^53 can carry); timestamps
 * become epoch microseconds so time zone and precision settings don't matter. NULL gets its own marker so
 * `null` and `''` hash differently.
 */
function hashInput(dialect: Dialect, ref: string, type: string): string {
  let text: string;
  if (/timestamp/.test(type)) {
    text =
      dialect === 'duckdb'
        ? `cast(epoch_us(${ref}) as varchar)`
        : `cast(cast(extract(epoch from ${ref}) * 1000000 as bigint) as varchar)`;
  } else if (/^(decimal|numeric)/.test(type)) {
    text = `regexp_replace(cast(${ref} as varchar), '(\\.[0-9]*[1-9])0+$|\\.0+$', '\\1')`;
  } else if (/^(double|real|float)/.test(type)) {
    const v = `cast(${ref} as double precision)`;
    text = `case when abs(${v}) < 1e18 and ${v} = trunc(${v}) then cast(cast(${v} as bigint) as varchar) else cast(${v} as varchar) end`;
  } else if (/json/.test(type)) {
    text = `cast(${ref} as varchar)`;
  } else {
    text = `cast(${ref} as varchar)`;
  }
  return `coalesce(${text}, chr(30))`;
}

/**
 * The traits hash in SQL: md5 over the mapping signature and each mapped column's text, separated by the
 * ASCII unit separator. The signature (trait names and columns) is part of it so that changing `--traits`
 * resends everyone with the new shape.
 */
export function traitsHashSql(
  dialect: Dialect,
  alias: string,
  mapping: TraitMapping,
  types: ReadonlyMap<string, string>,
  signatureParam: string,
): string {
  const parts = Object.values(mapping).map((col) =>
    hashInput(dialect, `${alias}.${quoteIdent(col)}`, types.get(col) ?? 'text'),
  );
  return `md5(cast(${signatureParam} as varchar) || chr(31) || ${parts.join(' || chr(31) || ')})`;
}

export function mappingSignature(mapping: TraitMapping): string {
  return Object.entries(mapping)
    .map(([t, c]) => `${t}=${c}`)
    .join(',');
}

export interface DiffRow extends Row {
  user_id: string | null;
  traits_hash: string;
  to_status: string | null;
  prev_traits: Record<string, unknown> | null;
  prev_status: string | null;
  /** The messageId of the change last delivered to this destination (null before the first). */
  prev_message_id: string | null;
}

export interface DiffQuery {
  /** Name of the table holding this run's changed rows (one per destination, replaced by each run). */
  pendingTable: string;
  /** Creates the (empty) pending table with the shape of the diff; no parameters. */
  createSql: string;
  /** Fills it with the changed rows. */
  fillSql: string;
  params: string[];
  /** Streams it back. */
  readSql: string;
  /** Column alias -> mapped column, for reading trait values off a diff row. */
  columnAliases: Array<{ trait: string; alias: string }>;
}

/** The last part of the destination a dry run without a write key compares with when none was synced. */
export const NO_WRITE_KEY = 'no-write-key';

/** The pending table of a real run of `destination`: one name per destination, as one run holds its lock. */
function pendingTableOf(destination: string): string {
  return `sync_pending_${createHash('sha256').update(destination).digest('hex').slice(0, 16)}`;
}

/** Dry-run pending tables: `sync_pending_dry_<start, epoch seconds>_<hash>`. */
const DRY_RUN_TABLE_PREFIX = 'sync_pending_dry_';

/** A dry run's table left this long is an orphan (its process was killed): no dry run takes a day. */
export const STALE_DRY_RUN_MS = 24 * 3600 * 1000;

/**
 * Drops the pending tables of dry runs that started more than STALE_DRY_RUN_MS ago. A dry run drops its own
 * table when it ends, but a killed one cannot, and its name is unique to it: nothing else would ever reuse or
 * replace it. Also drops the tables dry runs left under the older name, `sync_pending_<hash>` with a hash that
 * is no destination's (a real run's table is named after its destination, recorded in sync_runs before the
 * table is made). Returns the names dropped.
 */
export async function dropStaleDryRunTables(
  wh: SqlRunner,
  schema: string,
  nowMs = Date.now(),
): Promise<string[]> {
  const names = (await listRelations(wh, schema)).filter((r) => !r.view).map((r) => r.name);
  const destinations = await wh.query<{ d: string }>(
    `select distinct destination as d from ${qualify(schema, 'sync_runs')}`,
  );
  const ownHashes = new Set(
    destinations.map((r) => createHash('sha256').update(r.d).digest('hex').slice(0, 16)),
  );
  const dropped: string[] = [];
  for (const name of names) {
    const m = new RegExp(`^${DRY_RUN_TABLE_PREFIX}(\\d+)_[0-9a-f]{16}$`).exec(name);
    const legacy = /^sync_pending_([0-9a-f]{16})$/.exec(name);
    const stale = m
      ? Number(m[1]) * 1000 <= nowMs - STALE_DRY_RUN_MS
      : legacy !== null && !ownHashes.has(legacy[1]);
    if (!stale) continue;
    await wh.exec(`drop table if exists ${qualify(schema, name)}`);
    dropped.push(name);
  }
  return dropped;
}

/**
 * Change detection in SQL: the current `user_lifecycle` left-joined to this destination's `sync_state`; a
 * user is sent when it was never delivered, last failed, or its traits hash differs (or always with
 * `fullResync`). The changed rows are first written to a pending table, then streamed from it: the join over
 * every user runs once and frees its memory (spilling if it must) instead of staying pinned while the slow
 * part, sending, streams through it. Only changed rows leave the warehouse.
 */
export function buildDiffQuery(opts: {
  dialect: Dialect;
  schema: string;
  mapping: TraitMapping;
  columns: readonly SourceColumn[];
  destination: string;
  fullResync: boolean;
  /** The run id of a dry run (which gets a pending table of its own). */
  dryRunId?: string;
  /** When the dry run started (ms since the epoch), in its table's name so that an orphan can be told. */
  startedAtMs?: number;
}): DiffQuery {
  const types = new Map(opts.columns.map((c) => [c.name, c.type]));
  const hash = traitsHashSql(opts.dialect, 'u', opts.mapping, types, '$2');
  const hasStatus = types.has('lifecycle_status');
  const columnAliases = Object.keys(opts.mapping).map((trait, i) => ({ trait, alias: `t${i}` }));
  const traitCols = Object.entries(opts.mapping)
    .map(([, col], i) => `u.${quoteIdent(col)} as t${i}`)
    .join(', ');
  // A dry run takes no lock, so it may run beside a real run of the same destination: its own table then.
  const tableKey = opts.dryRunId ? `${opts.destination}\ndry-run:${opts.dryRunId}` : opts.destination;
  const digest = createHash('sha256').update(tableKey).digest('hex').slice(0, 16);
  const pendingTable = opts.dryRunId
    ? `${DRY_RUN_TABLE_PREFIX}${Math.floor((opts.startedAtMs ?? Date.now()) / 1000)}_${digest}`
    : pendingTableOf(opts.destination);
  const pending = qualify(opts.schema, pendingTable);
  const select = (hashExpr: string): string => `select u.user_id as user_id, ${traitCols},
      ${hashExpr} as traits_hash,
      ${hasStatus ? 'cast(u.lifecycle_status as varchar)' : 'cast(null as varchar)'} as to_status,
      s.traits as prev_traits, s.status as prev_status, s.message_id as prev_message_id`;
  const createSql = `create table ${pending} as ${select('cast(null as varchar)')}
    from ${qualify(opts.schema, SOURCE_TABLE)} as u
    left join ${qualify(opts.schema, 'sync_state')} as s on false
    where false`;
  const changed = opts.fullResync
    ? `($1 is not null)`
    : `(s.user_id is null or s.status <> 'delivered' or s.traits_hash is distinct from ${hash})`;
  const fillSql = `insert into ${pending} ${select(hash)}
    from ${qualify(opts.schema, SOURCE_TABLE)} as u
    left join ${qualify(opts.schema, 'sync_state')} as s on s.destination = $1 and s.user_id = u.user_id
    where ${changed}`;
  // No ORDER BY: a streamed sort keeps its result pinned in memory for the whole run, which at a million
  // changed users starves the state writes of DuckDB's capped memory. Nothing depends on the order.
  const readSql = `select * from ${pending}`;
  return {
    pendingTable,
    createSql,
    fillSql,
    params: [opts.destination, mappingSignature(opts.mapping)],
    readSql,
    columnAliases,
  };
}

export const SYNC_LOG_COLUMNS: readonly ColumnSpec[] = [
  { name: 'run_id', type: 'text' },
  { name: 'batch_no', type: 'integer' },
  { name: 'user_id', type: 'text' },
  { name: 'status', type: 'text' },
  { name: 'error', type: 'text' },
  { name: 'from_status', type: 'text' },
  { name: 'to_status', type: 'text' },
  { name: 'message_id', type: 'text' },
  { name: 'traits_hash', type: 'text' },
  { name: 'traits', type: 'json' },
  { name: 'logged_at', type: 'timestamptz' },
];

export interface LogEntry {
  userId: string | null;
  status: LogStatus;
  error: string | null;
  fromStatus: string | null;
  toStatus: string | null;
  messageId: string | null;
  traitsHash: string | null;
  traits: Record<string, unknown> | null;
}

function logRows(runId: string, batchNo: number, entries: readonly LogEntry[], at: Date): InsertValue[][] {
  return entries.map((e) => [
    runId,
    batchNo,
    e.userId,
    e.status,
    e.error,
    e.fromStatus,
    e.toStatus,
    e.messageId,
    e.traitsHash,
    e.traits,
    at,
  ]);
}

/** Appends log rows that change no state (invalid rows, dry-run rows). */
export async function appendLog(
  wh: Warehouse,
  schema: string,
  runId: string,
  batchNo: number,
  entries: readonly LogEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  await wh.insertRows(schema, 'sync_log', SYNC_LOG_COLUMNS, logRows(runId, batchNo, entries, new Date()));
}

/**
 * Records one acknowledged batch: its log rows and, in the same transaction, `sync_state` for every user in
 * it (delivered rows take the new hash and traits; failed rows keep what was last delivered and only record
 * the error). Called only once the CDP has answered for every row of the batch, so a crash before this
 * commits leaves those users "changed" and the next run resends them under the same messageId.
 */
export async function recordBatch(
  wh: Warehouse,
  schema: string,
  runId: string,
  batchNo: number,
  destination: string,
  entries: readonly LogEntry[],
): Promise<void> {
  if (entries.length === 0) return;
  const now = new Date();
  const st = qualify(schema, 'sync_state');
  const lg = qualify(schema, 'sync_log');
  const iso = now.toISOString();
  await wh.transaction(async (tx: SqlRunner) => {
    await tx.insertRows(schema, 'sync_log', SYNC_LOG_COLUMNS, logRows(runId, batchNo, entries, now));
    if (wh.dialect === 'duckdb') await writeStateDuckDb(tx, st, lg, [runId, batchNo, destination, iso]);
    else await writeStatePostgres(tx, st, lg, [runId, batchNo, destination, iso]);
  });
}

/**
 * PostgreSQL: update in place through the primary key, then insert the users seen for the first time.
 * Delivered rows take the new hash and traits; failed rows keep what was last delivered and record the error.
 */
async function writeStatePostgres(tx: SqlRunner, st: string, lg: string, params: SqlValue[]): Promise<void> {
  await tx.query(
    `update ${st} as s set
       traits_hash = l.traits_hash, traits = l.traits, delivered_at = cast($4 as timestamptz),
       status = 'delivered',
       attempts = case when s.status = 'delivered' then 1 else s.attempts + 1 end,
       last_error = null, message_id = l.message_id, updated_at = cast($4 as timestamptz), run_id = $1
     from ${lg} as l
     where l.run_id = $1 and l.batch_no = $2 and l.status = 'sent'
       and s.destination = $3 and s.user_id = l.user_id`,
    params,
  );
  await tx.query(
    `update ${st} as s set
       status = 'failed',
       attempts = case when s.status = 'delivered' then 1 else s.attempts + 1 end,
       last_error = l.error, updated_at = cast($4 as timestamptz), run_id = $1
     from ${lg} as l
     where l.run_id = $1 and l.batch_no = $2 and l.status = 'failed'
       and s.destination = $3 and s.user_id = l.user_id`,
    params,
  );
  await tx.query(
    `insert into ${st} (destination, user_id, traits_hash, traits, delivered_at, status, attempts, last_error,
                        message_id, updated_at, run_id)
     select $3, l.user_id,
            case when l.status = 'sent' then l.traits_hash end,
            case when l.status = 'sent' then l.traits end,
            case when l.status = 'sent' then cast($4 as timestamptz) end,
            case when l.status = 'sent' then 'delivered' else 'failed' end,
            1,
            case when l.status = 'failed' then l.error end,
            case when l.status = 'sent' then l.message_id end,
            cast($4 as timestamptz), $1
     from ${lg} as l
     where l.run_id = $1 and l.batch_no = $2 and l.status in ('sent', 'failed') and l.user_id is not null
       and not exists (select 1 from ${st} as s where s.destination = $3 and s.user_id = l.user_id)`,
    params,
  );
}

/**
 * DuckDB: write each user's new row (computed from its old one), then delete the old rows. DuckDB keeps
 * UPDATEd values in memory until a checkpoint, which over millions of users outgrows the sync's memory cap;
 * appends and deletion marks do not. The new rows carry this run's id, which is how the delete tells them
 * apart (a user appears once per run).
 */
async function writeStateDuckDb(tx: SqlRunner, st: string, lg: string, params: SqlValue[]): Promise<void> {
  const chunkUsers = `select user_id from ${lg}
    where run_id = $1 and batch_no = $2 and status in ('sent', 'failed') and user_id is not null`;
  await tx.query(
    `insert into ${st} (destination, user_id, traits_hash, traits, delivered_at, status, attempts, last_error,
                        message_id, updated_at, run_id)
     select $3, l.user_id,
            case when l.status = 'sent' then l.traits_hash else s.traits_hash end,
            case when l.status = 'sent' then l.traits else s.traits end,
            case when l.status = 'sent' then cast($4 as timestamptz) else s.delivered_at end,
            case when l.status = 'sent' then 'delivered' else 'failed' end,
            case when s.user_id is null or s.status = 'delivered' then 1 else s.attempts + 1 end,
            case when l.status = 'failed' then l.error end,
            case when l.status = 'sent' then l.message_id else s.message_id end,
            cast($4 as timestamptz), $1
     from ${lg} as l
     left join (
       -- Only this chunk's users: the IN builds its hash table on the chunk, not on every user's state.
       select user_id, traits_hash, traits, delivered_at, status, attempts, message_id from ${st}
       where destination = $3 and user_id in (${chunkUsers})
     ) as s on s.user_id = l.user_id
     where l.run_id = $1 and l.batch_no = $2 and l.status in ('sent', 'failed') and l.user_id is not null`,
    params,
  );
  await tx.query(
    `delete from ${st}
     where destination = $3 and run_id is distinct from $1
       and user_id in (${chunkUsers})`,
    params.slice(0, 3),
  );
}

export interface RunCounts {
  considered: number;
  changed: number;
  sent: number;
  failed: number;
  invalid: number;
}

export async function startRun(
  wh: Warehouse,
  schema: string,
  run: {
    runId: string;
    destination: string;
    target: string;
    startedAt: Date;
    dryRun: boolean;
    fullResync: boolean;
  },
): Promise<void> {
  const runs = qualify(schema, 'sync_runs');
  // A run of this destination still `running` was killed or crashed: its acknowledged batches are in
  // sync_state already, the rest is simply changed again. Saying so beats a run that looks alive forever.
  // Only a real run can tell: it holds the destination's lock, which a dry run does not take.
  // Its counts were to be written at its end: they are taken from what its sync_log recorded, batch by batch.
  if (!run.dryRun) {
    await markInDoubt(wh, schema, run.destination, run.startedAt);
    const log = qualify(schema, 'sync_log');
    const logged = (status: LogStatus) =>
      `(select count(*) from ${log} as l where l.run_id = ${runs}.run_id and l.status = '${status}')`;
    await wh.query(
      `update ${runs} set status = 'interrupted',
          error = 'the process stopped before the run finished; sent, failed and invalid count what sync_log recorded',
          sent = ${logged('sent')}, failed = ${logged('failed')}, invalid = ${logged('invalid')}
        where destination = $1 and status = 'running'`,
      [run.destination],
    );
  }
  await wh.query(
    `insert into ${runs} (run_id, destination, target, started_at, status, dry_run, full_resync,
                          considered, changed, sent, failed, invalid)
     values ($1, $2, $3, cast($4 as timestamptz), 'running', $5, $6, 0, 0, 0, 0, 0)`,
    [run.runId, run.destination, run.target, run.startedAt.toISOString(), run.dryRun, run.fullResync],
  );
}

/**
 * A run killed or crashed while it sent (still `running`, its pending table left behind) may have had changes
 * acknowledged by the CDP that it never recorded: its acknowledgements are written in chunks, and a request in
 * flight may have been received. Such a user's state still shows the value delivered before, so if the
 * warehouse went back to that value (a bad build fixed) the diff would call the user unchanged while the CDP
 * holds the other one, for good. Every user of that run's diff that its sync_log does not record is marked
 * failed, which the diff resends: a user whose change was never sent is resent the same, one sent twice is
 * deduplicated on its unchanged messageId, and one sent and since reverted gets the warehouse's value again.
 * A run that ended `error` because the warehouse failed to record what the CDP had answered is in the same
 * place, and leaves its pending table for this: a run that failed otherwise dropped it, each run replaces it,
 * and the run that marks its users drops it, so a table still there belongs to the last run.
 */
async function markInDoubt(wh: Warehouse, schema: string, destination: string, at: Date): Promise<void> {
  const runs = qualify(schema, 'sync_runs');
  const leftRuns = `select r.run_id from ${runs} as r
    where r.destination = $1 and not r.dry_run
      and (r.status = 'running'
        or (r.status = 'error'
          and r.started_at = (select max(x.started_at) from ${runs} as x where x.destination = $1 and not x.dry_run)))`;
  const [left] = await wh.query<{ n: number }>(`select count(*) as n from (${leftRuns}) as left_runs`, [
    destination,
  ]);
  const table = pendingTableOf(destination);
  if (Number(left?.n ?? 0) === 0 || !(await wh.tableExists(schema, table))) return;
  const log = qualify(schema, 'sync_log');
  await wh.query(
    `update ${qualify(schema, 'sync_state')} set
       status = 'failed', attempts = 1, updated_at = cast($3 as timestamptz),
       last_error = $2
     where destination = $1 and status = 'delivered'
       and user_id in (
         select p.user_id from ${qualify(schema, table)} as p
         where p.user_id is not null
           and not exists (
             select 1 from ${log} as l
             where l.user_id = p.user_id and l.run_id in (${leftRuns})
           )
       )`,
    [
      destination,
      'a sync stopped (killed, crashed, or its warehouse failed to write) before recording whether the CDP received this change: resent to be sure',
      at.toISOString(),
    ],
  );
  // Its users are marked now. Left in place, the table would be read again against the next run's log if that
  // run stopped before replacing it (too many duplicated ids), marking users this run records as delivered.
  await wh.exec(`drop table if exists ${qualify(schema, table)}`);
}

export async function finishRun(
  wh: Warehouse,
  schema: string,
  runId: string,
  status: RunStatus,
  counts: RunCounts,
  transitions: Record<string, number>,
  error: string | null,
): Promise<void> {
  await wh.query(
    `update ${qualify(schema, 'sync_runs')} set finished_at = cast($2 as timestamptz), status = $3,
        considered = $4, changed = $5, sent = $6, failed = $7, invalid = $8,
        transitions = cast($9 as ${jsonType(wh.dialect)}), error = $10
      where run_id = $1`,
    [
      runId,
      new Date().toISOString(),
      status,
      counts.considered,
      counts.changed,
      counts.sent,
      counts.failed,
      counts.invalid,
      JSON.stringify(transitions),
      error,
    ],
  );
}

/** Destinations already synced for a target and host, for a dry run that has no write key to name its own. */
export async function knownDestinations(wh: Warehouse, schema: string, prefix: string): Promise<string[]> {
  if (!(await wh.tableExists(schema, 'sync_state'))) return [];
  const rows = await wh.query<{ destination: string }>(
    `select distinct destination from ${qualify(schema, 'sync_state')} where substr(destination, 1, $2) = $1`,
    [prefix, prefix.length],
  );
  return rows.map((r) => r.destination);
}

export interface MemoryCap {
  /** Puts DuckDB's memory limit and threads back as they were. */
  restore(): Promise<void>;
  /**
   * Runs one all-or-nothing step (a statement, a transaction). If DuckDB runs out of the capped memory, the cap
   * is doubled (never above the limit it replaced) and the step runs again: the cap is an economy, never a
   * reason for a sync to fail.
   */
  run<T>(step: () => Promise<T>): Promise<T>;
}

const SIZE = /^(\d+(?:\.\d+)?)\s?(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)$/i;
const UNITS: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

function sizeBytes(text: string): number | undefined {
  const m = SIZE.exec(text.trim());
  return m ? Number(m[1]) * UNITS[m[2].toLowerCase()] : undefined;
}

/**
 * On a file-backed DuckDB, caps DuckDB's working memory and uses one thread while the sync runs, so the diff's
 * hash join over millions of users spills to the database's temp directory instead of growing the process
 * (measured at 1M users, 10% changed: ~370 MB peak RSS uncapped, ~300 MB with a 32 MB cap, no slower), and
 * the other core is left to the sending, which is single-threaded JavaScript. In-memory databases (no temp
 * directory to spill to) and PostgreSQL are left alone.
 */
export async function capDuckDbMemory(wh: Warehouse, limit: string | null): Promise<MemoryCap> {
  const none: MemoryCap = { restore: async () => undefined, run: (step) => step() };
  if (wh.dialect !== 'duckdb' || limit === null) return none;
  const [db] = await wh.query<{ path: string | null }>(
    `select path from duckdb_databases() where database_name = current_database()`,
  );
  if (!db || !db.path) return none;
  const [cur] = await wh.query<{ m: string }>(`select current_setting('memory_limit') as m`);
  const original = cur ? sizeBytes(cur.m) : undefined;
  let capped = sizeBytes(limit);
  if (original === undefined || capped === undefined || capped >= original) return none;
  const [th] = await wh.query<{ t: number }>(`select cast(current_setting('threads') as integer) as t`);
  // SET takes no parameters: the values written are numbers computed here, or DuckDB's own setting text
  // checked against SIZE above.
  const setLimit = (bytes: number): Promise<void> =>
    wh.exec(`set memory_limit = '${Math.max(1, Math.floor(bytes / 2 ** 20))}MiB'`);
  await setLimit(capped);
  await wh.exec(`set threads = 1`);
  return {
    restore: async () => {
      await wh.exec(`set memory_limit = '${cur.m}'`);
      if (th && Number.isInteger(th.t) && th.t > 0) await wh.exec(`set threads = ${Math.floor(th.t)}`);
    },
    run: async (step) => {
      for (;;) {
        try {
          return await step();
        } catch (err) {
          if (!/Out of Memory/i.test(errorMessage(err)) || (capped as number) >= original) throw err;
          capped = Math.min(original, (capped as number) * 2);
          await setLimit(capped);
        }
      }
    },
  };
}

/**
 * user_ids that appear more than once in user_lifecycle (its `unique` test fails): none of their rows can be
 * trusted, so all are logged invalid. A grouped count spills to disk when it must; the answer is small unless
 * the model is badly broken, in which case the sync refuses to run.
 */
export async function duplicateUserIds(wh: Warehouse, schema: string, max = 10_000): Promise<Set<string>> {
  const rows = await wh.query<{ user_id: string }>(
    `select user_id from ${qualify(schema, SOURCE_TABLE)} where user_id is not null
      group by user_id having count(*) > 1 limit ${max + 1}`,
  );
  if (rows.length > max) {
    throw new UserError(
      `${schema}.${SOURCE_TABLE} has more than ${max} duplicated user_ids: rebuild it (\`cdp-lifecycle build --full-refresh\`) and check \`cdp-lifecycle test\` before syncing.`,
    );
  }
  return new Set(rows.map((r) => String(r.user_id)));
}
