import { ensureRawTables, RAW_TABLES, type InsertValue, type Warehouse } from '../../src/warehouse';
import { buildModels } from '../../src/runner';
import { computeOracle, type OracleResult, type RawData } from './oracle';

export type Raw = Required<RawData>;
export const emptyRaw = (): Raw => ({ tracks: [], pages: [], screens: [], identifies: [], aliases: [] });

let trackSeq = 0;
/**
 * A 'Viewed Item' track with a fresh id on `day` (10:00 UTC), received at `received` (default: the same time;
 * null: without a received_at).
 */
export function viewedItem(
  user: string | null,
  anonymous: string | null,
  day: string,
  received?: string | null,
) {
  const timestamp = `${day}T10:00:00.000Z`;
  return {
    id: `t${++trackSeq}`,
    user_id: user,
    anonymous_id: anonymous,
    event_text: 'Viewed Item',
    timestamp,
    received_at: (received === undefined ? timestamp : received) as string,
    properties: {},
  };
}

/** Lands raw rows with the foundation's bulk path, filling the columns the models do not read. */
export async function landRaw(wh: Warehouse, raw: Partial<RawData>, rawSchema = 'cdp'): Promise<void> {
  await ensureRawTables(wh, rawSchema);
  const put = async (table: keyof typeof RAW_TABLES, rows: Array<Record<string, unknown>>) => {
    if (!rows.length) return;
    const cols = RAW_TABLES[table].columns;
    const values = rows.map((r) =>
      cols.map((c) => {
        if (c.name in r) return r[c.name] as InsertValue;
        if (c.name === 'event')
          return typeof r.event_text === 'string' ? r.event_text.toLowerCase().replace(/\W+/g, '_') : null;
        if (c.name === 'original_timestamp' || c.name === 'sent_at') return r.timestamp as InsertValue;
        if (c.name === 'context') return {};
        return null;
      }),
    );
    await wh.insertRows(rawSchema, table, cols, values);
  };
  await put('tracks', (raw.tracks ?? []) as unknown as Array<Record<string, unknown>>);
  await put('pages', (raw.pages ?? []) as unknown as Array<Record<string, unknown>>);
  await put('screens', (raw.screens ?? []) as unknown as Array<Record<string, unknown>>);
  await put('identifies', (raw.identifies ?? []) as unknown as Array<Record<string, unknown>>);
  await put('aliases', (raw.aliases ?? []) as unknown as Array<Record<string, unknown>>);
}

export async function build(
  wh: Warehouse,
  opts: {
    schema?: string;
    rawSchema?: string;
    vars?: Record<string, unknown>;
    fullRefresh?: boolean;
    select?: string[];
    exclude?: string[];
  } = {},
) {
  return buildModels({
    warehouse: wh,
    schema: opts.schema ?? 'lifecycle',
    rawSchema: opts.rawSchema ?? 'cdp',
    vars: opts.vars,
    fullRefresh: opts.fullRefresh,
    select: opts.select,
    exclude: opts.exclude,
  });
}

const LIFECYCLE_COLUMNS = [
  'user_id',
  'as_of_date',
  'lifecycle_status',
  'status_since',
  'previous_status',
  'first_seen_date',
  'last_active_date',
  'days_inactive',
  'active_days_7',
  'active_days_28',
  'subscription_status',
  'core_feature_adopted',
  'purchase_count',
  'monetary',
  'rfm_recency_score',
  'rfm_frequency_score',
  'rfm_monetary_score',
  'rfm_segment',
];

/** Reads the five marts in a stable order, with exactly the SPEC 5 columns the oracle produces. */
export async function readMarts(wh: Warehouse, schema = 'lifecycle'): Promise<OracleResult> {
  const q = <T>(sql: string) => wh.query(sql) as Promise<T[]>;
  const s = `"${schema}"`;
  return {
    user_lifecycle: await q(
      `select ${LIFECYCLE_COLUMNS.join(', ')} from ${s}.user_lifecycle order by user_id`,
    ),
    user_status_history: await q(
      `select user_id, lifecycle_status, valid_from, valid_to from ${s}.user_status_history order by user_id, valid_from`,
    ),
    status_transitions: await q(
      `select user_id, transition_date, from_status, to_status from ${s}.status_transitions order by user_id, transition_date`,
    ),
    status_daily: await q(
      `select date, lifecycle_status, users from ${s}.status_daily order by date, lifecycle_status`,
    ),
    growth_accounting_daily: await q(`select * from ${s}.growth_accounting_daily order by date`),
  };
}

const RATE_COLUMNS = ['nurr', 'curr', 'rurr', 'surr', 'iwaurr', 'reactivation_rate', 'resurrection_rate'];

/** Sorts the oracle's rows like readMarts and rounds the rates so both sides compare exactly. */
export function normalise(r: OracleResult): OracleResult {
  const by =
    (...keys: string[]) =>
    (a: object, b: object) => {
      for (const k of keys) {
        const x = String((a as Record<string, unknown>)[k]);
        const y = String((b as Record<string, unknown>)[k]);
        if (x !== y) return x < y ? -1 : 1;
      }
      return 0;
    };
  const roundRates = (rows: object[]) =>
    rows.map((row) => {
      const o = { ...(row as Record<string, unknown>) };
      for (const c of RATE_COLUMNS)
        if (typeof o[c] === 'number') o[c] = Math.round((o[c] as number) * 1e9) / 1e9;
      return o;
    });
  return {
    user_lifecycle: [...r.user_lifecycle].sort(by('user_id')),
    user_status_history: [...r.user_status_history].sort(by('user_id', 'valid_from')),
    status_transitions: [...r.status_transitions].sort(by('user_id', 'transition_date')),
    status_daily: [...r.status_daily].sort(by('date', 'lifecycle_status')),
    growth_accounting_daily: roundRates(
      [...r.growth_accounting_daily].sort(by('date')),
    ) as unknown as OracleResult['growth_accounting_daily'],
  };
}

/** Per-user diff of user_lifecycle, for readable failures. */
export function diffUsers(actual: OracleResult, expected: OracleResult): string[] {
  const exp = new Map(expected.user_lifecycle.map((u) => [u.user_id, u]));
  const out: string[] = [];
  for (const a of actual.user_lifecycle) {
    const e = exp.get(a.user_id);
    if (!e) {
      out.push(`unexpected user ${a.user_id}`);
      continue;
    }
    for (const k of Object.keys(e) as Array<keyof typeof e>) {
      if (a[k] !== e[k]) out.push(`${a.user_id}.${k}: got ${String(a[k])}, expected ${String(e[k])}`);
    }
    exp.delete(a.user_id);
  }
  for (const id of exp.keys()) out.push(`missing user ${id}`);
  return out;
}

/** Every mart of the build in `wh` equals what the oracle computes from `landed` at `asOf` (per-user diff first). */
export async function expectOracle(
  wh: Warehouse,
  landed: RawData,
  asOf: string,
  schema = 'lifecycle',
): Promise<void> {
  const actual = normalise(await readMarts(wh, schema));
  const expected = normalise(computeOracle(landed, asOf));
  expect(diffUsers(actual, expected)).toEqual([]);
  expect(actual).toEqual(expected);
}
