import { UserError } from '../errors';
import { quoteIdent, type SqlValue, type Warehouse } from '../warehouse';

/** Display order: from most to least engaged, then the lost ones. */
export const LIFECYCLE_STATUSES = [
  'new',
  'active',
  'power',
  'resurrected',
  'at_risk',
  'dormant',
  'churned',
] as const;
export type LifecycleStatus = (typeof LIFECYCLE_STATUSES)[number];

/** The status rules' thresholds a build used (SPEC §4.1 vars); the report words its status meanings with them. */
export interface StatusThresholds {
  newDays: number;
  atRiskDays: number;
  dormantDays: number;
  churnDays: number;
  resurrectedDays: number;
  powerDays: number;
  /** lifecycle__churn_events: 'default' (Account Deleted, App Uninstalled), 'none' (empty) or 'custom'. */
  churnEvents: 'default' | 'none' | 'custom';
  /** The growth-accounting windows (lifecycle__wau_days, lifecycle__mau_days) that WAU and MAU count over. */
  wauDays: number;
  mauDays: number;
}

export const DEFAULT_THRESHOLDS: Readonly<StatusThresholds> = {
  newDays: 7,
  atRiskDays: 7,
  dormantDays: 30,
  churnDays: 90,
  resurrectedDays: 7,
  powerDays: 20,
  churnEvents: 'default',
  wauDays: 7,
  mauDays: 30,
};

/**
 * The thresholds recorded in a build's config_fingerprint (int_lifecycle__builds, written by the macro
 * lifecycle_config_fingerprint as `key=value|…`); a key it does not carry keeps its default.
 */
export function thresholdsFromFingerprint(fingerprint: string): StatusThresholds {
  const fields = fingerprintFields(fingerprint);
  const int = (key: string, fallback: number) => {
    const v = fields.get(key);
    return v !== undefined && /^\d+$/.test(v) ? Number(v) : fallback;
  };
  const d = DEFAULT_THRESHOLDS;
  // list vars print as [a","b] (see lifecycle_list_text); only whether it is the default or empty matters
  const events = fields.get('churn_events');
  const churnEvents =
    events === undefined
      ? d.churnEvents
      : events === '[Account Deleted","App Uninstalled]'
        ? 'default'
        : events === '[]'
          ? 'none'
          : 'custom';
  return {
    newDays: int('new', d.newDays),
    atRiskDays: int('risk', d.atRiskDays),
    dormantDays: int('dormant', d.dormantDays),
    churnDays: int('churn', d.churnDays),
    resurrectedDays: int('resurrected', d.resurrectedDays),
    powerDays: int('power', d.powerDays),
    churnEvents,
    wauDays: int('wau', d.wauDays),
    mauDays: int('mau', d.mauDays),
  };
}

/**
 * The `key=value` fields of a fingerprint, split at each `|` the macro did not escape: a value written by the
 * user (the plan trait, an event name) carries its own `|` as `\|`, so `tier|wau=3` there is no wau field.
 */
function fingerprintFields(fingerprint: string): Map<string, string> {
  const fields = new Map<string, string>();
  let part = '';
  const flush = () => {
    const eq = part.indexOf('=');
    if (eq > 0 && !fields.has(part.slice(0, eq))) fields.set(part.slice(0, eq), part.slice(eq + 1));
    part = '';
  };
  for (let i = 0; i < fingerprint.length; i++) {
    const c = fingerprint[i];
    if (c === '\\' && i + 1 < fingerprint.length) {
      part += c + fingerprint[++i];
    } else if (c === '|') flush();
    else part += c;
  }
  flush();
  return fields;
}

/** "this week", "today", "in the last 10 days": the days up to D that a threshold of n days covers. */
function lastDays(n: number): string {
  return n === 7 ? 'this week' : n === 1 ? 'today' : `in the last ${n} days`;
}

/**
 * What each status means for someone planning a campaign (SPEC §4.4), in the words of the thresholds the
 * build used: a marketer reading "gone quiet for a month" beside a 60-day dormant rule would target the wrong
 * people. The default thresholds keep the plainest wording.
 */
export function statusMeanings(t: StatusThresholds = DEFAULT_THRESHOLDS): Record<LifecycleStatus, string> {
  const churnedBy =
    t.churnEvents === 'default'
      ? ', or deleted the account / app'
      : t.churnEvents === 'custom'
        ? ', or sent a churn event'
        : '';
  return {
    new: `just arrived (first seen ${lastDays(t.newDays)})`,
    active: 'using the product regularly',
    power: t.powerDays === 20 ? 'uses it nearly every day' : `active on ${t.powerDays}+ of the last 28 days`,
    resurrected: `came back ${lastDays(t.resurrectedDays)} after a long absence`,
    at_risk: `slipping: quiet for ${t.atRiskDays === 7 ? 'a week' : `${t.atRiskDays}+ days`}, or using it much less`,
    dormant: `gone quiet for ${t.dormantDays === 30 ? 'a month or more' : `${t.dormantDays}+ days`}`,
    churned: `lost: ${t.churnDays}+ days away${churnedBy}`,
  };
}

/** The meanings at the default thresholds. */
export const STATUS_MEANING: Readonly<Record<LifecycleStatus, string>> = statusMeanings();

/** RFM segments of SPEC §4.6, in the order they are listed, with their (R, F) cells. */
export const RFM_SEGMENTS = [
  { segment: 'champions', code: 'CH', label: 'Champions', r: [5, 5], f: [4, 5] },
  { segment: 'loyal', code: 'LO', label: 'Loyal', r: [3, 4], f: [4, 5] },
  { segment: 'potential_loyalist', code: 'PL', label: 'Potential loyalist', r: [4, 5], f: [2, 3] },
  { segment: 'new_customer', code: 'NC', label: 'New customer', r: [5, 5], f: [1, 1] },
  { segment: 'promising', code: 'PR', label: 'Promising', r: [4, 4], f: [1, 1] },
  { segment: 'need_attention', code: 'NA', label: 'Need attention', r: [3, 3], f: [3, 3] },
  { segment: 'about_to_sleep', code: 'AS', label: 'About to sleep', r: [3, 3], f: [1, 2] },
  { segment: 'cant_lose', code: 'CL', label: "Can't lose them", r: [1, 2], f: [5, 5] },
  { segment: 'at_risk', code: 'AR', label: 'At risk', r: [1, 2], f: [3, 4] },
  { segment: 'hibernating', code: 'HI', label: 'Hibernating', r: [1, 2], f: [1, 2] },
] as const;

export interface StatusCount {
  status: string;
  users: number;
  /** Users in that status 7 days before the as-of date; null when the history does not go back that far. */
  usersWeekAgo: number | null;
}

export interface TransitionCount {
  /** null for a user's first status (when the model records it as a transition). */
  from: string | null;
  to: string;
  last7: number;
  last30: number;
}

export interface GrowthRow {
  date: string;
  new_users: number;
  current_users: number;
  reactivated_users: number;
  resurrected_users: number;
  at_risk_wau_users: number;
  at_risk_mau_users: number;
  dormant_users: number;
  dau: number;
  wau: number;
  mau: number;
  nurr: number | null;
  curr: number | null;
  rurr: number | null;
  surr: number | null;
  iwaurr: number | null;
  reactivation_rate: number | null;
  resurrection_rate: number | null;
}

export const GROWTH_COLUMNS = [
  'date',
  'new_users',
  'current_users',
  'reactivated_users',
  'resurrected_users',
  'at_risk_wau_users',
  'at_risk_mau_users',
  'dormant_users',
  'dau',
  'wau',
  'mau',
  'nurr',
  'curr',
  'rurr',
  'surr',
  'iwaurr',
  'reactivation_rate',
  'resurrection_rate',
] as const;

export interface RfmCell {
  r: number;
  f: number;
  segment: string;
  users: number;
  monetary: number;
}

/**
 * The daily series cover three years at most: a page with every day of a long history (one event dated year 1,
 * from a client's default date, made 740,000 days and a 278 MB page) shows nothing more that a reader can use.
 */
export const REPORT_HISTORY_DAYS = 3 * 365 + 1;
/** Days read before the cut for the rolling 7-day rates (html.ts rollingRates), so its first days pool fully. */
const LEAD_IN_DAYS = 7;

export interface ReportData {
  schema: string;
  asOfDate: string;
  /** One entry per known status (all seven, zero when absent), then any unexpected status the model produced. */
  statuses: StatusCount[];
  totalUsers: number;
  /** All changes of the last 30 days, most frequent first. */
  transitions: TransitionCount[];
  /** The days of the last REPORT_HISTORY_DAYS (older ones stay in the marts). */
  statusDaily: Array<{ date: string; status: string; users: number }>;
  growthDaily: GrowthRow[];
  /** The growth rows of the week before growthDaily's first day, when the history was cut: the rolling rates
   * of the first days shown pool over them, as they would over the whole history. */
  growthLeadIn: GrowthRow[];
  /** The first day of statusDaily and growthDaily when the marts go further back; null when they do not. */
  historyCut: string | null;
  rfm: RfmCell[];
  /** Users with a purchase in the RFM window. */
  purchasers: number;
  /** What each status means, worded with the thresholds of the latest build. */
  meanings: Record<LifecycleStatus, string>;
  /** The days WAU and MAU count over in the latest build (7 and 30 unless its vars changed them). */
  growthWindows: { wauDays: number; mauDays: number };
}

const MODELS = ['user_lifecycle', 'status_transitions', 'status_daily', 'growth_accounting_daily'] as const;

/** The first day either warehouse has: the report's windows start there at the earliest. */
const FIRST_DAY_MS = Date.parse('0001-01-01T00:00:00Z');

/** `YYYY-MM-DD` plus n days, in UTC, no earlier than year 1. */
export function addDays(date: string, n: number): string {
  // a window reaching before year 1 (an as-of date in 0001-0003) gave '-000002-01', which no warehouse reads
  const ms = Math.max(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000, FIRST_DAY_MS);
  return new Date(ms).toISOString().slice(0, 10);
}

function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'bigint') return Number(v);
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  return 0;
}

function numOrNull(v: unknown): number | null {
  return v === null || v === undefined ? null : num(v);
}

function dateText(v: unknown): string {
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  return String(v).slice(0, 10);
}

/**
 * Why the built models hold no user although events landed, as a clause naming the fix; null when they hold
 * users, nothing landed, or the package's intermediate models are not there to tell. A build at an as-of date
 * before every event, or on events that are all anonymous, succeeds with empty marts: this says which.
 */
export async function whyNoUsers(wh: Warehouse, schema: string): Promise<string | null> {
  const s = quoteIdent(schema);
  for (const m of ['user_lifecycle', 'int_lifecycle__builds', 'int_lifecycle__source_days']) {
    if (!(await wh.tableExists(schema, m))) return null;
  }
  // one row is enough to know (build calls this after every build: no count over the whole view)
  const users = await wh.query(`select 1 as x from ${s}.user_lifecycle limit 1`);
  if (users.length > 0) return null;
  // rows without a fact are tombstones (see int_lifecycle__source_days)
  const [facts] = await wh.query<{ first: unknown; n: unknown; identified: unknown }>(
    `select min(event_date) as first, count(*) as n,
        sum(case when source_key like 'u:%' then 1 else 0 end) as identified
     from ${s}.int_lifecycle__source_days
     where has_event = 1 or has_identify = 1`,
  );
  if (!facts || num(facts.n) === 0) return null;
  const [build] = await wh.query<{ d: unknown }>(
    `select as_of_date as d from ${s}.int_lifecycle__builds order by built_at desc limit 1`,
  );
  const asOf = build?.d == null ? null : dateText(build.d);
  const first = facts.first == null ? null : dateText(facts.first);
  if (asOf !== null && first !== null && first > asOf) {
    const today = new Date().toISOString().slice(0, 10);
    return asOf >= today
      ? `every event is dated after the as-of date ${asOf} (the first ${first}): check the clocks of the devices that sent them and lifecycle__timezone`
      : `no event is dated on or before the as-of date ${asOf} (the first is dated ${first}): build with a later lifecycle__as_of_date, or without it for today`;
  }
  if (num(facts.identified) === 0) {
    return 'every event is anonymous (no userId, and no identify or alias ties an anonymousId to one), and statuses are computed for identified users: send identify calls with a userId';
  }
  return null;
}

/**
 * The first day of the daily marts (YYYY-MM-DD), or null when they have none: status_daily starts at the
 * earliest first-seen date (a createdAt counts), growth_accounting_daily at the earliest activity.
 */
export async function earliestDailyDay(wh: Warehouse, schema: string): Promise<string | null> {
  const s = quoteIdent(schema);
  const [row] = await wh.query<{ d: unknown }>(
    `select min(date) as d
       from (select min(date) as date from ${s}.status_daily
             union all
             select min(date) from ${s}.growth_accounting_daily) as firsts`,
  );
  return row?.d == null ? null : dateText(row.d);
}

/**
 * The thresholds of the latest build, from int_lifecycle__builds; the defaults when that table is not there
 * (marts built by something else) or holds no build.
 */
async function buildThresholds(wh: Warehouse, schema: string): Promise<StatusThresholds> {
  if (!(await wh.tableExists(schema, 'int_lifecycle__builds'))) return { ...DEFAULT_THRESHOLDS };
  const [row] = await wh.query<{ fp: unknown }>(
    `select config_fingerprint as fp from ${quoteIdent(schema)}.int_lifecycle__builds order by built_at desc limit 1`,
  );
  return typeof row?.fp === 'string' ? thresholdsFromFingerprint(row.fp) : { ...DEFAULT_THRESHOLDS };
}

/**
 * Reads everything both reports show from the built models (SPEC §5) in `schema`. Identifiers are quoted,
 * dates bound as parameters, and all ordering is done here so DuckDB and PostgreSQL give the same report.
 */
export async function loadReportData(opts: { warehouse: Warehouse; schema: string }): Promise<ReportData> {
  const wh = opts.warehouse;
  const s = quoteIdent(opts.schema);
  for (const m of MODELS) {
    if (!(await wh.tableExists(opts.schema, m))) {
      throw new UserError(
        `The model ${opts.schema}.${m} does not exist in ${wh.displayUrl}: run \`cdp-lifecycle build\` first (or pass the --schema the models were built in).`,
      );
    }
  }
  const q = <T extends Record<string, unknown>>(sql: string, params: SqlValue[] = []) =>
    wh.query<T>(sql, params);

  const [asOfRow] = await q(`select max(as_of_date) as d from ${s}.user_lifecycle`);
  let asOfDate = asOfRow?.d == null ? null : dateText(asOfRow.d);
  if (asOfDate === null) {
    const [row] = await q(`select max(date) as d from ${s}.status_daily`);
    asOfDate = row?.d == null ? null : dateText(row.d);
  }
  if (asOfDate === null) {
    // only a better message: a failing look-up leaves the plain one
    const why = await whyNoUsers(wh, opts.schema).catch(() => null);
    throw new UserError(
      why
        ? `The models in ${opts.schema} hold no user: ${why}.`
        : `The models in ${opts.schema} are empty: land some events (cdp-lifecycle load or serve) and run \`cdp-lifecycle build\`.`,
    );
  }
  const weekAgo = addDays(asOfDate, -7);
  const since = addDays(asOfDate, 1 - REPORT_HISTORY_DAYS);
  const oldest = await earliestDailyDay(wh, opts.schema);
  const historyCut = oldest !== null && oldest < since ? since : null;

  const statusDaily = (
    await q(
      `select date, lifecycle_status, users from ${s}.status_daily where date >= cast($2 as date) and date <= cast($1 as date)`,
      [asOfDate, since],
    )
  )
    .map((r) => ({ date: dateText(r.date), status: String(r.lifecycle_status), users: num(r.users) }))
    .sort((a, b) =>
      a.date < b.date ? -1 : a.date > b.date ? 1 : statusRank(a.status) - statusRank(b.status),
    );
  const firstDate = statusDaily.length > 0 ? statusDaily[0].date : asOfDate;

  const [totalRow] = await q(`select count(*) as n from ${s}.user_lifecycle`);
  const today = new Map<string, number>();
  const before = new Map<string, number>();
  for (const r of statusDaily) {
    if (r.date === asOfDate) today.set(r.status, r.users);
    if (r.date === weekAgo) before.set(r.status, r.users);
  }
  const names = [
    ...LIFECYCLE_STATUSES,
    ...[...today.keys()].filter((k) => statusRank(k) >= LIFECYCLE_STATUSES.length).sort(),
  ];
  const statuses: StatusCount[] = names.map((status) => ({
    status,
    users: today.get(status) ?? 0,
    usersWeekAgo: weekAgo < firstDate ? null : (before.get(status) ?? 0),
  }));

  const transitionRows = await q(
    `select from_status, to_status,
            sum(case when transition_date >= cast($1 as date) then 1 else 0 end) as last7,
            count(*) as last30
       from ${s}.status_transitions
      where transition_date >= cast($2 as date) and transition_date <= cast($3 as date)
      group by from_status, to_status`,
    [addDays(asOfDate, -6), addDays(asOfDate, -29), asOfDate],
  );
  const transitions = transitionRows
    .map((r) => ({
      from: r.from_status == null ? null : String(r.from_status),
      to: String(r.to_status),
      last7: num(r.last7),
      last30: num(r.last30),
    }))
    .sort(
      (a, b) =>
        b.last30 - a.last30 ||
        b.last7 - a.last7 ||
        statusRank(a.from ?? '') - statusRank(b.from ?? '') ||
        statusRank(a.to) - statusRank(b.to) ||
        (a.from ?? '').localeCompare(b.from ?? '') ||
        a.to.localeCompare(b.to),
    );

  const growthRows = (
    await q(
      `select ${GROWTH_COLUMNS.join(', ')} from ${s}.growth_accounting_daily where date >= cast($2 as date) and date <= cast($1 as date) order by date`,
      [asOfDate, addDays(since, -LEAD_IN_DAYS)],
    )
  ).map((r) => {
    const row = { date: dateText(r.date) } as Record<string, unknown>;
    for (const c of GROWTH_COLUMNS.slice(1)) {
      row[c] = c.endsWith('users') || c === 'dau' || c === 'wau' || c === 'mau' ? num(r[c]) : numOrNull(r[c]);
    }
    return row as unknown as GrowthRow;
  });
  const growthDaily = growthRows.filter((r) => r.date >= since);
  const growthLeadIn = growthRows.filter((r) => r.date < since);

  const rfm = (
    await q(
      `select rfm_recency_score as r, rfm_frequency_score as f, rfm_segment as segment,
              count(*) as users, sum(monetary) as monetary
         from ${s}.user_lifecycle
        where rfm_segment is not null
        group by rfm_recency_score, rfm_frequency_score, rfm_segment`,
    )
  )
    .map((r) => ({
      r: num(r.r),
      f: num(r.f),
      segment: String(r.segment),
      users: num(r.users),
      monetary: Math.round(num(r.monetary) * 100) / 100,
    }))
    .sort((a, b) => b.r - a.r || a.f - b.f || a.segment.localeCompare(b.segment));

  const thresholds = await buildThresholds(wh, opts.schema);
  return {
    schema: opts.schema,
    asOfDate,
    meanings: statusMeanings(thresholds),
    growthWindows: { wauDays: thresholds.wauDays, mauDays: thresholds.mauDays },
    statuses,
    totalUsers: num(totalRow?.n),
    transitions,
    statusDaily,
    growthDaily,
    growthLeadIn,
    historyCut,
    rfm,
    purchasers: rfm.reduce((n, c) => n + c.users, 0),
  };
}

/** Why the RFM part of a report is empty. */
export const NO_PURCHASES_NOTE =
  'No purchases in the RFM window (the last 365 days unless lifecycle__rfm_window_days says otherwise; purchase events are `Order Completed` unless lifecycle__purchase_events names others), so no customer has a segment.';

/**
 * A note for readers when the lowest frequency scores are empty: SPEC §4.6 scores ties upwards (k counts
 * customers with a frequency at most the customer's own), so when most customers bought once, all of them
 * get F3 or more. Without the note an empty F1 column looks like a bug.
 */
export function rfmTieNote(data: ReportData): string | undefined {
  if (data.purchasers === 0 || data.rfm.some((c) => c.f === 1)) return undefined;
  const lowest = Math.min(...data.rfm.map((c) => c.f));
  const empty = lowest === 2 ? 'F1 is' : `F1–F${lowest - 1} are`;
  return `${empty} empty: scores rank customers against each other, and those who bought equally often share the higher score, so with few customers, or many at the same count (often one purchase), the lowest scores stay empty.`;
}

export function statusRank(status: string): number {
  const i = (LIFECYCLE_STATUSES as readonly string[]).indexOf(status);
  return i === -1 ? LIFECYCLE_STATUSES.length : i;
}
