/**
 * When a build must recompute every user anyway, it is rebuilt in full instead.
 *
 * The package's incremental models compare the config fingerprint and the as-of date of the build that wrote
 * their rows (int_lifecycle__builds) with this build's, and count the raw rows against their watermark. When a
 * var that changes the rules differs, the package version changed, D moved back, raw rows were deleted or old
 * ones landed late, every incremental model recomputes everyone through its incremental SQL:
 * the same rows as a full refresh, but at 1M users about 1.4x its time and twice its memory (docs/models.md).
 * So the CLI rebuilds in full then, and says why. dbt cannot make that choice for a package; with dbt, pass
 * --full-refresh after such a change.
 */
import { WarehouseUnavailableError } from '../errors';
import type { FullRefreshProbe } from '../runner';
import { quoteIdent, type SqlValue, type Warehouse } from '../warehouse/types';
import { runnerPart } from './parts';

/** The model that records each build's D and config fingerprint (models/intermediate). */
export const BUILDS_MODEL = 'int_lifecycle__builds';

/**
 * True when schema.model exists with these columns. A missing relation has no columns, and a table from a
 * version before them leaves the decision to the models.
 */
async function hasColumns(
  wh: Warehouse,
  rel: { schema: string; identifier: string },
  wanted: string[],
): Promise<boolean> {
  const { columnsOf } = await runnerPart();
  const columns = new Set((await columnsOf(wh, rel.schema, rel.identifier)).map((c) => c.toLowerCase()));
  return wanted.every((c) => columns.has(c));
}

type BuildStamp = {
  next_fingerprint: string | null;
  next_as_of: string | null;
  last_fingerprint: string | null;
  last_as_of: string | null;
};

/**
 * Why this build would recompute every user, or null when it would not (or cannot tell: no stored build yet,
 * or a builds table from before the fingerprint, which the models then handle themselves).
 */
export async function recomputeReason(probe: FullRefreshProbe): Promise<RecomputeReason | null> {
  const clock = await clockBehind(probe);
  if (clock !== null) {
    return {
      detail: `this machine's clock (${clock.next}) is not after the last build's start (${clock.last}), and incremental models find the rows a build changed by its start time, so every model is rebuilt in full`,
      summary: "the clock is not after the last build's start",
      clock: true,
    };
  }
  const { warehouse: wh } = probe;
  // where the build writes it: a project may give the model an alias or a custom schema
  const rel = probe.relation(BUILDS_MODEL);
  if (!(await hasColumns(wh, rel, ['config_fingerprint', 'as_of_date']))) return null;
  const stored = `${quoteIdent(rel.schema)}.${quoteIdent(rel.identifier)}`;
  // Evaluated by the warehouse from the model's own SQL, so the fingerprint is exactly the one the build
  // stores, and the dates compare as dates.
  const rows = await wh.query<BuildStamp>(
    `select
    cast(n.config_fingerprint as varchar) as next_fingerprint,
    cast(n.as_of_date as varchar) as next_as_of,
    cast(l.config_fingerprint as varchar) as last_fingerprint,
    cast(l.as_of_date as varchar) as last_as_of
from (
${probe.compile(BUILDS_MODEL)}
) as n
cross join (
    select b.config_fingerprint, b.as_of_date
    from ${stored} as b
    order by b.built_at desc
    limit 1
) as l`,
  );
  const r = rows[0];
  if (!r || r.last_fingerprint === null) return null;
  if (r.next_fingerprint !== r.last_fingerprint) {
    return {
      detail: `${describeChange(r.last_fingerprint, r.next_fingerprint ?? '')} since the last build, so every user is recomputed`,
      summary: `${changeSummary(r.last_fingerprint, r.next_fingerprint ?? '')} since the last build`,
    };
  }
  if (r.next_as_of !== null && r.last_as_of !== null && r.next_as_of < r.last_as_of) {
    return {
      detail: `the as-of date ${r.next_as_of} is before the last build's (${r.last_as_of}), so every user is recomputed`,
      summary: 'the as-of date moved back',
    };
  }
  return rawRowsReason(probe);
}

/**
 * This build's start and the last stored build's, when this one is not after it (a build host whose clock
 * lags the last one's, NTP stepping back, or the build after one from a clock running ahead); else null.
 * Every row a build writes carries its start as _built_at, and the incremental models take the rows changed
 * upstream as those stamped after the last build's start: rows stamped at or before it are never seen
 * downstream, so such a build must rebuild every model in full (a partial build cannot).
 */
export async function clockBehind(probe: FullRefreshProbe): Promise<{ next: string; last: string } | null> {
  const { warehouse: wh } = probe;
  const rel = probe.relation(BUILDS_MODEL);
  if (!(await hasColumns(wh, rel, ['built_at']))) return null;
  const stored = `${quoteIdent(rel.schema)}.${quoteIdent(rel.identifier)}`;
  // Compared by the warehouse, with the stamp the model's own SQL stores (to the microsecond).
  const [r] = await wh.query<{ next_at: string | null; last_at: string | null; behind: SqlValue }>(
    `select
    cast(n.built_at as varchar) as next_at,
    cast(l.built_at as varchar) as last_at,
    case when n.built_at <= l.built_at then 1 else 0 end as behind
from (
${probe.compile(BUILDS_MODEL)}
) as n
cross join (
    select max(b.built_at) as built_at
    from ${stored} as b
) as l`,
  );
  if (!r || r.next_at === null || r.last_at === null || Number(r.behind) !== 1) return null;
  return { next: r.next_at, last: r.last_at };
}

/** The model that reads every raw event table and keeps the raw watermark (lifecycle_watermark). */
export const SOURCE_DAYS_MODEL = 'int_lifecycle__source_days';
/** The staging models over the raw tables it reads (each on the sources the vars point at). */
const RAW_MODELS = [
  'stg_lifecycle__tracks',
  'stg_lifecycle__pages',
  'stg_lifecycle__screens',
  'stg_lifecycle__identifies',
];
const WATERMARK_COLUMNS = ['watermark_cutoff', 'watermark_rows', 'watermark_seen_at', 'watermark_seen_rows'];

// The times are read as text (with their offset) and bound again as such.
type StoredWatermark = {
  cutoff: string | null;
  stored_cut: SqlValue;
  seen_at: string | null;
  stored_seen: SqlValue;
};

type RawCounts = { now_cut: SqlValue; now_seen: SqlValue; now_all: SqlValue };

/**
 * Below this many raw rows a full build is quick anyway: the re-read check below only matters after a large
 * backfill, where every row was received within the lookback window of the newest one.
 */
export const REREAD_MIN_ROWS = 100_000;

/**
 * Why the next build would read every raw row again (lifecycle_watermark): raw rows deleted since the last
 * build, or rows landed with a received_at before its cutoff. Both make int_lifecycle__source_days rewrite every
 * (source, day) pair, so every user downstream is recomputed. The same counts as the macro, over the raw tables
 * this build reads (the staging models' SQL, not the views the last build left, which may point elsewhere).
 * Only a speed decision: the models decide what they read, so a count that fails leaves the build as it is.
 */
async function rawRowsReason(probe: FullRefreshProbe): Promise<RecomputeReason | null> {
  try {
    return await rawRowsCheck(probe);
  } catch (err) {
    if (err instanceof WarehouseUnavailableError) throw err;
    return null;
  }
}

async function rawRowsCheck(probe: FullRefreshProbe): Promise<RecomputeReason | null> {
  const { warehouse: wh } = probe;
  const rel = probe.relation(SOURCE_DAYS_MODEL);
  if (!(await hasColumns(wh, rel, WATERMARK_COLUMNS))) return null;
  const stored = `${quoteIdent(rel.schema)}.${quoteIdent(rel.identifier)}`;
  // In steps, with the values bound: a constant filter lets DuckDB skip every block but the newest on its
  // min/max (one query with the lookups as subqueries took about 70 ms at 10M raw rows). The times travel as
  // text, which keeps their microseconds (a Date would round them, and shift the counts).
  const [last] = await wh.query<{ b: SqlValue }>(`select max(t._built_at) as b from ${stored} as t`);
  if (!last || last.b === null) return null;
  const [w] = await wh.query<StoredWatermark>(
    `select
    cast(max(t.watermark_cutoff) as varchar) as cutoff,
    cast(max(t.watermark_rows) as bigint) as stored_cut,
    cast(max(t.watermark_seen_at) as varchar) as seen_at,
    cast(max(t.watermark_seen_rows) as bigint) as stored_seen
from ${stored} as t
where t._built_at = $1`,
    [last.b],
  );
  if (!w || w.cutoff === null || w.stored_cut === null) return null;
  const staging = (v: string) => `(\n${probe.compile(v)}\n)`;
  // Rows received up to a time, those without a received_at included (as count_received_up_to counts them),
  // and all rows. On DuckDB all rows minus the later ones, which its block statistics answer without a scan;
  // on PostgreSQL (no index on the raw tables) one scan of each table counts all three.
  const params = w.seen_at === null ? [w.cutoff] : [w.cutoff, w.seen_at];
  const upToSql = (param: string) =>
    `r.received_at <= cast(${param} as timestamptz) or r.received_at is null`;
  const perTable = RAW_MODELS.map((v) =>
    wh.dialect === 'duckdb'
      ? `select
        (select count(*) from ${staging(v)} as r) - (select count(*) from ${staging(v)} as r where r.received_at > cast($1 as timestamptz)) as cut,
        ${w.seen_at === null ? 'cast(null as bigint)' : `(select count(*) from ${staging(v)} as r) - (select count(*) from ${staging(v)} as r where r.received_at > cast($2 as timestamptz))`} as seen,
        (select count(*) from ${staging(v)} as r) as total`
      : `select
        count(*) filter (where ${upToSql('$1')}) as cut,
        ${w.seen_at === null ? 'cast(null as bigint)' : `count(*) filter (where ${upToSql('$2')})`} as seen,
        count(*) as total
    from ${staging(v)} as r`,
  );
  const [r] = await wh.query<RawCounts>(
    `select
    cast(sum(t.cut) as bigint) as now_cut,
    cast(sum(t.seen) as bigint) as now_seen,
    cast(sum(t.total) as bigint) as now_all
from (
${perTable.join('\n    union all\n')}
) as t`,
    params,
  );
  if (!r) return null;
  const n = (v: SqlValue) => (v === null ? null : Number(v));
  const [storedCut, nowCut, storedSeen, nowSeen, nowAll] = [
    n(w.stored_cut),
    n(r.now_cut),
    n(w.stored_seen),
    n(r.now_seen),
    n(r.now_all),
  ];
  if (storedSeen !== null && nowSeen !== null && nowSeen < storedSeen) {
    const fewer = storedSeen - nowSeen;
    return {
      detail: `${fewer.toLocaleString('en-US')} raw row${fewer === 1 ? ' was' : 's were'} deleted since the last build, so every raw row is read and every user recomputed`,
      summary: 'raw rows were deleted since the last build',
    };
  }
  if (storedCut !== null && nowCut !== null && nowCut !== storedCut) {
    const late = nowCut - storedCut;
    return {
      detail:
        late > 0
          ? `${late.toLocaleString('en-US')} raw row${late === 1 ? '' : 's'} landed with a received_at before the last build's cutoff (a backfill, or a loader catching up), so every raw row is read and every user recomputed`
          : `raw rows received before the last build's cutoff changed, so every raw row is read and every user recomputed`,
      summary: "raw rows landed before the last build's cutoff",
    };
  }
  // The day after a large backfill every row was received within lifecycle__lookback_hours of the newest one,
  // so each incremental build reads, merges and deletes nearly all of them again, more work than a full build
  // that only writes them.
  if (nowAll !== null && nowCut !== null && nowAll >= REREAD_MIN_ROWS && nowAll - nowCut > nowAll / 2) {
    const after = nowAll - nowCut;
    return {
      detail: `${after.toLocaleString('en-US')} of the ${nowAll.toLocaleString('en-US')} raw rows were received after the last build's cutoff (the newest received_at it saw minus lifecycle__lookback_hours), so an incremental build would read nearly every row again`,
      summary: "most raw rows are newer than the last build's cutoff",
    };
  }
  return null;
}

/** What the CLI prints before the build (detail), and what each incremental model's line repeats (summary). */
export interface RecomputeReason {
  detail: string;
  summary: string;
  /** The build's clock is not after the last build's: a problem of the build host, said as a warning. */
  clock?: true;
}

/** The kind of change between two fingerprints, short enough for every model's line. */
export function changeSummary(last: string, next: string): string {
  const a = parts(last);
  const b = parts(next);
  if (!a || !b) return 'the lifecycle vars or the package version changed';
  if (a.get('version') !== b.get('version')) return "the package's model version changed";
  const keys = new Set([...a.keys(), ...b.keys()]);
  const changed = [...keys].filter((k) => a.get(k) !== b.get(k));
  const raw = changed.includes('raw');
  const vars = changed.some((k) => k !== 'raw');
  return raw && vars
    ? 'lifecycle vars and the raw tables changed'
    : raw
      ? 'the raw tables changed'
      : 'lifecycle vars changed';
}

/** Fingerprint part names (lifecycle_config_fingerprint) as the vars a data engineer sets. */
const PART_NAMES: Record<string, string> = {
  tz: 'lifecycle__timezone',
  new: 'lifecycle__new_days',
  risk: 'lifecycle__at_risk_days',
  dormant: 'lifecycle__dormant_days',
  churn: 'lifecycle__churn_days',
  resurrected: 'lifecycle__resurrected_days',
  power: 'lifecycle__power_days',
  decline_min: 'lifecycle__decline_min_baseline_days',
  decline_pct: 'lifecycle__decline_ratio_pct',
  churn_events: 'lifecycle__churn_events',
  non_activity: 'lifecycle__non_activity_events',
  core: 'lifecycle__core_events',
  purchase: 'lifecycle__purchase_events',
  plan: 'lifecycle__plan_trait',
  wau: 'lifecycle__wau_days',
  mau: 'lifecycle__mau_days',
  raw: 'the raw tables (lifecycle__raw_schema, lifecycle__<call>_table)',
};

/**
 * Splits `text` at each `sep` not escaped by a backslash (lifecycle_fingerprint_text escapes `\`, `"` and `|`
 * in values, so that the separators are the unescaped ones); the pieces keep their escapes.
 */
function splitUnescaped(text: string, sep: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (let i = 0; i < text.length; i++) {
    if (text[i] === '\\' && i + 1 < text.length) {
      cur += text[i] + text[i + 1];
      i++;
    } else if (text.startsWith(sep, i)) {
      out.push(cur);
      cur = '';
      i += sep.length - 1;
    } else cur += text[i];
  }
  out.push(cur);
  return out;
}

const unescape = (v: string): string => v.replace(/\\(.)/g, '$1');

function parts(fingerprint: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const p of splitUnescaped(fingerprint, '|')) {
    const eq = p.indexOf('=');
    if (eq <= 0) return null;
    out.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return out;
}

/** "lifecycle__new_days changed (7 → 8)", or the package version; a generic phrase when the parts do not parse. */
export function describeChange(last: string, next: string): string {
  const a = parts(last);
  const b = parts(next);
  // A value holding the separator (an event name with "|") makes the split ambiguous: say less, not wrong.
  const known = (m: Map<string, string>) => [...m.keys()].every((k) => k === 'version' || k in PART_NAMES);
  if (!a || !b || !known(a) || !known(b)) return 'the lifecycle vars or the package version changed';
  const changed: string[] = [];
  // A new version may add parts: only those both fingerprints have are compared then.
  const versionChanged = a.get('version') !== b.get('version');
  if (versionChanged) {
    changed.push(
      `the package's model version changed (${a.get('version') ?? '?'} → ${b.get('version') ?? '?'})`,
    );
  }
  // lifecycle_list_text writes a list as [a","b], each item escaped: shown as [a, b]
  const show = (v: string | undefined) =>
    v === undefined
      ? 'unset'
      : /^\[.*\]$/s.test(v)
        ? `[${splitUnescaped(v.slice(1, -1), '","').map(unescape).join(', ')}]`
        : unescape(v);
  for (const [key, name] of Object.entries(PART_NAMES)) {
    const before = a.get(key);
    const after = b.get(key);
    if (versionChanged && (before === undefined || after === undefined)) continue;
    if (before === after) continue;
    // a value with a quote, a backslash or a bar, as a build before they were escaped wrote it
    if (before !== undefined && after !== undefined && unescape(after) === before)
      changed.push(`${name} is now written escaped (its value did not change)`);
    else changed.push(`${name} changed (${show(before)} → ${show(after)})`);
  }
  return changed.length ? changed.join(', ') : 'the lifecycle vars or the package version changed';
}
