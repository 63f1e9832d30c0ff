/**
 * An independent reference implementation of SPEC §4 and §5, written to be obviously correct rather than
 * fast: it walks every user day by day and applies each definition literally. It shares no code with the SQL
 * models; tests compare every mart with it on generated data.
 */

export interface Vars {
  timezone: string;
  newDays: number;
  atRiskDays: number;
  dormantDays: number;
  churnDays: number;
  resurrectedDays: number;
  powerDays: number;
  declineMinBaselineDays: number;
  declineRatioPct: number;
  churnEvents: string[];
  nonActivityEvents: string[];
  coreEvents: string[];
  purchaseEvents: string[];
  planTrait: string;
  rfmWindowDays: number;
  wauDays: number;
  mauDays: number;
}

export const DEFAULT_VARS: Vars = {
  timezone: 'UTC',
  newDays: 7,
  atRiskDays: 7,
  dormantDays: 30,
  churnDays: 90,
  resurrectedDays: 7,
  powerDays: 20,
  declineMinBaselineDays: 6,
  declineRatioPct: 50,
  churnEvents: ['Account Deleted', 'App Uninstalled'],
  nonActivityEvents: [],
  coreEvents: [],
  purchaseEvents: ['Order Completed'],
  planTrait: 'plan',
  rfmWindowDays: 365,
  wauDays: 7,
  mauDays: 30,
};

/** The dbt var names of the fields of Vars, to pass the same settings to the models. */
export function toDbtVars(v: Partial<Vars>): Record<string, unknown> {
  const names: Record<keyof Vars, string> = {
    timezone: 'lifecycle__timezone',
    newDays: 'lifecycle__new_days',
    atRiskDays: 'lifecycle__at_risk_days',
    dormantDays: 'lifecycle__dormant_days',
    churnDays: 'lifecycle__churn_days',
    resurrectedDays: 'lifecycle__resurrected_days',
    powerDays: 'lifecycle__power_days',
    declineMinBaselineDays: 'lifecycle__decline_min_baseline_days',
    declineRatioPct: 'lifecycle__decline_ratio_pct',
    churnEvents: 'lifecycle__churn_events',
    nonActivityEvents: 'lifecycle__non_activity_events',
    coreEvents: 'lifecycle__core_events',
    purchaseEvents: 'lifecycle__purchase_events',
    planTrait: 'lifecycle__plan_trait',
    rfmWindowDays: 'lifecycle__rfm_window_days',
    wauDays: 'lifecycle__wau_days',
    mauDays: 'lifecycle__mau_days',
  };
  const out: Record<string, unknown> = {};
  for (const [k, v2] of Object.entries(v)) out[names[k as keyof Vars]] = v2;
  return out;
}

export interface TrackRow {
  id: string;
  user_id: string | null;
  anonymous_id: string | null;
  event_text: string;
  timestamp: string;
  received_at: string;
  properties: Record<string, unknown>;
}
export interface ViewRow {
  id: string;
  user_id: string | null;
  anonymous_id: string | null;
  timestamp: string;
  received_at: string;
}
export interface IdentifyRow {
  id: string;
  user_id: string | null;
  anonymous_id: string | null;
  timestamp: string;
  received_at: string;
  traits: Record<string, unknown>;
}
export interface AliasRow {
  id: string;
  previous_id: string;
  user_id: string;
  timestamp: string;
  received_at: string;
}
export interface RawData {
  tracks: TrackRow[];
  pages: ViewRow[];
  screens: ViewRow[];
  identifies: IdentifyRow[];
  aliases: AliasRow[];
}

export const STATUSES = ['churned', 'dormant', 'new', 'resurrected', 'at_risk', 'power', 'active'] as const;
export type Status = (typeof STATUSES)[number];

export interface UserLifecycle {
  user_id: string;
  as_of_date: string;
  lifecycle_status: Status;
  status_since: string;
  previous_status: Status | null;
  first_seen_date: string;
  last_active_date: string | null;
  days_inactive: number;
  active_days_7: number;
  active_days_28: number;
  subscription_status: string | null;
  core_feature_adopted: boolean | null;
  purchase_count: number;
  monetary: number;
  rfm_recency_score: number | null;
  rfm_frequency_score: number | null;
  rfm_monetary_score: number | null;
  rfm_segment: string | null;
}
export interface HistoryRow {
  user_id: string;
  lifecycle_status: Status;
  valid_from: string;
  valid_to: string | null;
}
export interface TransitionRow {
  user_id: string;
  transition_date: string;
  from_status: Status;
  to_status: Status;
}
export interface StatusDailyRow {
  date: string;
  lifecycle_status: Status;
  users: number;
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
export interface OracleResult {
  user_lifecycle: UserLifecycle[];
  user_status_history: HistoryRow[];
  status_transitions: TransitionRow[];
  status_daily: StatusDailyRow[];
  growth_accounting_daily: GrowthRow[];
}

// ---- dates as day numbers ----

export function dayNum(ymd: string): number {
  // setUTCFullYear, since Date.UTC reads the years 0-99 as 1900-1999
  const d = new Date(0);
  d.setUTCFullYear(+ymd.slice(0, 4), +ymd.slice(5, 7) - 1, +ymd.slice(8, 10));
  return Math.round(d.getTime() / 86400000);
}
export function ymd(day: number): string {
  return new Date(day * 86400000).toISOString().slice(0, 10);
}

const formatters = new Map<string, Intl.DateTimeFormat>();
/** The calendar date of an instant in an IANA time zone. */
export function localDate(iso: string, tz: string): number {
  let f = formatters.get(tz);
  if (!f) {
    f = new Intl.DateTimeFormat('en-CA', { timeZone: tz, year: 'numeric', month: '2-digit', day: '2-digit' });
    formatters.set(tz, f);
  }
  return dayNum(f.format(new Date(iso)));
}

// ---- revenue: exact cents ----

// SPEC 4.6 numbers; a magnitude of 10^24 or more is a data error, not a revenue (see safe_decimal). An exponent
// of one or two digits over a bounded mantissa is read exactly; a three-digit one is 0 when negative, and when
// positive 10^24 or more (not a revenue) unless the mantissa is zero.
// Leading zeros do not count toward the 24 integer digits ('000…012.50' is 12.50).
const PLAIN = /^[-+]?(0*\d{1,24}(\.\d*)?|\.\d+)$/;
const MANTISSA = '[-+]?(0*\\d{1,24}(\\.\\d{0,24})?|\\.\\d{1,24})';
const EXPONENT = new RegExp(`^(${MANTISSA})[eE]([-+]?\\d{1,2})$`);
const TINY = new RegExp(`^${MANTISSA}[eE]-\\d{3}$`);
const ZERO_HUGE = /^[-+]?(0+(\.0{0,24})?|\.0{1,24})[eE]\+?\d{3}$/;

/** The exact plain decimal an exponent string stands for ('-1.25e1' → '-12.5'). */
function exponentToPlain(mantissa: string, exponent: number): string {
  const neg = mantissa.startsWith('-');
  const body = mantissa.replace(/^[-+]/, '');
  const [intPart, frac = ''] = body.split('.');
  let digits = intPart + frac;
  let point = intPart.length + exponent;
  if (point < 0) {
    digits = '0'.repeat(-point) + digits;
    point = 0;
  }
  if (point > digits.length) digits = digits + '0'.repeat(point - digits.length);
  const plain = `${digits.slice(0, point) || '0'}.${digits.slice(point)}`;
  return neg ? `-${plain}` : plain;
}

/** Cents of a plain decimal string rounded half away from zero, exactly (BigInt). */
function plainToCents(s: string): bigint {
  const neg = s.startsWith('-');
  const body = s.replace(/^[-+]/, '');
  const [intPart, frac = ''] = body.split('.');
  const digits = (frac + '000').slice(0, 3);
  let cents = BigInt(intPart === '' ? '0' : intPart) * 100n + BigInt(digits.slice(0, 2));
  if (Number(digits[2]) >= 5) cents += 1n;
  // Digits beyond the third never matter for half-away-from-zero except exactly at ...5, which is covered.
  return neg ? -cents : cents;
}

/** SPEC 4.6: a number or a numeric string, in cents; null when the value is neither. */
export function revenueCents(v: unknown): bigint | null {
  let s: string;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return null;
    s = String(v);
  } else if (typeof v === 'string') {
    s = v.replace(/^ +| +$/g, '');
  } else {
    return null;
  }
  if (PLAIN.test(s)) return plainToCents(s);
  const e = EXPONENT.exec(s);
  if (e) {
    if (!(Math.abs(Number(s)) < 1e24)) return null;
    return plainToCents(exponentToPlain(e[1], Number(e[e.length - 1])));
  }
  if (TINY.test(s) || ZERO_HUGE.test(s)) return 0n;
  return null;
}

// ---- dedup / identity ----

/** A copy without a received_at counts as received before any other (the models' watermark counts it so). */
const receivedMs = (r: { received_at: string | null }): number =>
  r.received_at === null || r.received_at === undefined ? -Infinity : Date.parse(r.received_at);

function dedup<T extends { id: string; received_at: string; timestamp: string }>(rows: T[]): T[] {
  const best = new Map<string, T>();
  for (const r of rows) {
    const cur = best.get(r.id);
    if (
      !cur ||
      receivedMs(r) < receivedMs(cur) ||
      (receivedMs(r) === receivedMs(cur) && Date.parse(r.timestamp) < Date.parse(cur.timestamp))
    ) {
      best.set(r.id, r);
    }
  }
  return [...best.values()];
}

function later(
  a: { timestamp: string; received_at: string; id: string },
  b: { timestamp: string; received_at: string; id: string },
): boolean {
  const ta = Date.parse(a.timestamp);
  const tb = Date.parse(b.timestamp);
  if (ta !== tb) return ta > tb;
  const ra = receivedMs(a);
  const rb = receivedMs(b);
  if (ra !== rb) return ra > rb;
  return a.id > b.id;
}

const present = (s: string | null | undefined): s is string => s !== null && s !== undefined && s !== '';

/** A scalar trait's text; objects and arrays are not values (see the json_scalar_text macro). */
function textOf(v: unknown): string | null {
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  return null;
}

function createdDate(v: unknown): number | null {
  if (typeof v !== 'string') return null;
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(v);
  if (!m) return null;
  // year 0000 is not a date (PostgreSQL has no year 0); Date.UTC would read years below 100 as 19xx
  if (+m[1] === 0) return null;
  const d = new Date(Date.UTC(2000, 0, 1));
  d.setUTCFullYear(+m[1], +m[2] - 1, +m[3]);
  if (d.getUTCFullYear() !== +m[1] || d.getUTCMonth() !== +m[2] - 1 || d.getUTCDate() !== +m[3]) return null;
  return dayNum(m[0]);
}

interface UserData {
  eventDays: Set<number>;
  active: Set<number>;
  churn: Set<number>;
  core: boolean;
  purchases: Array<{ day: number; cents: bigint }>;
  created: number[];
  plan: { value: string; timestamp: string; received_at: string; id: string } | null;
}

/** Everything of SPEC 4 and 5 for as-of date `asOf` (YYYY-MM-DD). */
export function computeOracle(raw: RawData, asOfYmd: string, vars: Vars = DEFAULT_VARS): OracleResult {
  const D = dayNum(asOfYmd);
  const tz = vars.timezone;
  const date = (iso: string) => localDate(iso, tz);

  // 4.2 identity, with identifies and aliases dated <= D
  const identifies = dedup(raw.identifies);
  const aliases = dedup(raw.aliases);
  const identifyOf = new Map<string, IdentifyRow>();
  for (const i of identifies) {
    if (!present(i.anonymous_id) || !present(i.user_id) || date(i.timestamp) > D) continue;
    const cur = identifyOf.get(i.anonymous_id);
    if (!cur || later(i, cur)) identifyOf.set(i.anonymous_id, i);
  }
  const aliasOf = new Map<string, AliasRow>();
  for (const a of aliases) {
    if (!present(a.previous_id) || !present(a.user_id) || date(a.timestamp) > D) continue;
    const cur = aliasOf.get(a.previous_id);
    if (!cur || later(a, cur)) aliasOf.set(a.previous_id, a);
  }
  const resolve = (userId: string | null, anon: string | null): string | null => {
    let uid: string | null = null;
    if (present(userId)) uid = userId;
    else if (present(anon)) uid = identifyOf.get(anon)?.user_id ?? aliasOf.get(anon)?.user_id ?? null;
    if (uid === null) return null;
    return aliasOf.get(uid)?.user_id ?? uid;
  };

  const users = new Map<string, UserData>();
  const u = (id: string): UserData => {
    let d = users.get(id);
    if (!d) {
      d = {
        eventDays: new Set(),
        active: new Set(),
        churn: new Set(),
        core: false,
        purchases: [],
        created: [],
        plan: null,
      };
      users.set(id, d);
    }
    return d;
  };

  // 4.3 facts of events dated <= D
  for (const t of dedup(raw.tracks)) {
    const day = date(t.timestamp);
    if (day > D) continue;
    const uid = resolve(t.user_id, t.anonymous_id);
    if (uid === null) continue;
    const d = u(uid);
    d.eventDays.add(day);
    const isChurn = vars.churnEvents.includes(t.event_text);
    if (isChurn) d.churn.add(day);
    if (!isChurn && !vars.nonActivityEvents.includes(t.event_text)) d.active.add(day);
    if (vars.coreEvents.includes(t.event_text)) d.core = true;
    if (vars.purchaseEvents.includes(t.event_text)) {
      const p = t.properties ?? {};
      const cents = revenueCents(p.revenue) ?? revenueCents(p.total) ?? revenueCents(p.value) ?? 0n;
      d.purchases.push({ day, cents });
    }
  }
  for (const v of [...dedup(raw.pages), ...dedup(raw.screens)]) {
    const day = date(v.timestamp);
    if (day > D) continue;
    const uid = resolve(v.user_id, v.anonymous_id);
    if (uid === null) continue;
    const d = u(uid);
    d.eventDays.add(day);
    d.active.add(day);
  }
  for (const i of identifies) {
    if (!present(i.user_id)) continue;
    const day = date(i.timestamp);
    if (day > D) continue;
    const d = u(resolve(i.user_id, null) as string);
    d.eventDays.add(day);
    const traits = i.traits ?? {};
    for (const key of ['createdAt', 'created_at']) {
      const c = createdDate(traits[key]);
      if (c !== null) d.created.push(c);
    }
    const plan = textOf(traits[vars.planTrait]);
    if (plan !== null && (!d.plan || later(i, d.plan))) {
      d.plan = { value: plan, timestamp: i.timestamp, received_at: i.received_at, id: i.id };
    }
  }

  const firstSeen = new Map<string, number>();
  for (const [id, d] of users) firstSeen.set(id, Math.min(...d.eventDays, ...d.created));

  // 4.4, day by day
  const statusOn = (d: UserData, F: number, day: number): Status => {
    let lastActive: number | null = null;
    let lastChurn: number | null = null;
    let ad7 = 0;
    let ad28 = 0;
    for (const a of d.active) {
      if (a > day) continue;
      if (lastActive === null || a > lastActive) lastActive = a;
      if (a >= day - 6) ad7++;
      if (a >= day - 27) ad28++;
    }
    for (const c of d.churn) if (c <= day && (lastChurn === null || c > lastChurn)) lastChurn = c;
    const lastSeen = lastActive ?? F;
    const inactive = day - lastSeen;
    const baseline = ad28 - ad7;
    if ((lastChurn !== null && lastChurn >= lastSeen) || inactive >= vars.churnDays) return 'churned';
    if (inactive >= vars.dormantDays) return 'dormant';
    if (day - F < vars.newDays) return 'new';
    for (let r = day - vars.resurrectedDays + 1; r <= day; r++)
      if (isReturnDay(d, F, r)) return 'resurrected';
    if (
      inactive >= vars.atRiskDays ||
      (baseline >= vars.declineMinBaselineDays && 300 * ad7 <= vars.declineRatioPct * baseline)
    ) {
      return 'at_risk';
    }
    if (ad28 >= vars.powerDays) return 'power';
    return 'active';
  };
  const isReturnDay = (d: UserData, F: number, r: number): boolean => {
    if (!d.active.has(r) || !(F < r)) return false;
    let p: number | null = null;
    for (const a of d.active) if (a < r && (p === null || a > p)) p = a;
    const pp = p ?? F;
    if (r - 1 - pp >= vars.dormantDays) return true;
    for (const c of d.churn) if (c >= pp && c <= r - 1) return true;
    return false;
  };

  const history: HistoryRow[] = [];
  const transitions: TransitionRow[] = [];
  const dailyCounts = new Map<string, number>();
  const current = new Map<string, { status: Status; since: number; previous: Status | null }>();
  for (const [id, d] of users) {
    const F = firstSeen.get(id) as number;
    let runStart = F;
    let runStatus: Status | null = null;
    let prevRunStatus: Status | null = null;
    for (let day = F; day <= D; day++) {
      const s = statusOn(d, F, day);
      dailyCounts.set(`${ymd(day)}|${s}`, (dailyCounts.get(`${ymd(day)}|${s}`) ?? 0) + 1);
      if (s !== runStatus) {
        if (runStatus !== null) {
          history.push({
            user_id: id,
            lifecycle_status: runStatus,
            valid_from: ymd(runStart),
            valid_to: ymd(day - 1),
          });
          transitions.push({ user_id: id, transition_date: ymd(day), from_status: runStatus, to_status: s });
          prevRunStatus = runStatus;
        }
        runStatus = s;
        runStart = day;
      }
    }
    history.push({
      user_id: id,
      lifecycle_status: runStatus as Status,
      valid_from: ymd(runStart),
      valid_to: null,
    });
    current.set(id, { status: runStatus as Status, since: runStart, previous: prevRunStatus });
  }
  const statusDaily: StatusDailyRow[] = [...dailyCounts].map(([k, n]) => {
    const [dd, s] = k.split('|');
    return { date: dd, lifecycle_status: s as Status, users: n };
  });

  // 4.6 RFM
  const windowStart = D - vars.rfmWindowDays + 1;
  const buyers: Array<{ id: string; recency: number; frequency: number; cents: bigint }> = [];
  for (const [id, d] of users) {
    const ps = d.purchases.filter((p) => p.day >= windowStart && p.day <= D);
    if (ps.length === 0) continue;
    buyers.push({
      id,
      recency: D - Math.max(...ps.map((p) => p.day)),
      frequency: ps.length,
      cents: ps.reduce((s, p) => s + p.cents, 0n),
    });
  }
  const N = buyers.length;
  const score = (k: number) => Math.ceil((5 * k) / N);
  const rfm = new Map<string, { r: number; f: number; m: number; frequency: number; cents: bigint }>();
  for (const b of buyers) {
    const kr = buyers.filter((o) => o.recency >= b.recency).length;
    const kf = buyers.filter((o) => o.frequency <= b.frequency).length;
    const km = buyers.filter((o) => o.cents <= b.cents).length;
    rfm.set(b.id, { r: score(kr), f: score(kf), m: score(km), frequency: b.frequency, cents: b.cents });
  }

  const lifecycle: UserLifecycle[] = [];
  for (const [id, d] of users) {
    const F = firstSeen.get(id) as number;
    const activeDays = [...d.active];
    const lastActive = activeDays.length ? Math.max(...activeDays) : null;
    const cur = current.get(id) as { status: Status; since: number; previous: Status | null };
    const r = rfm.get(id);
    lifecycle.push({
      user_id: id,
      as_of_date: ymd(D),
      lifecycle_status: cur.status,
      status_since: ymd(cur.since),
      previous_status: cur.previous,
      first_seen_date: ymd(F),
      last_active_date: lastActive === null ? null : ymd(lastActive),
      days_inactive: D - (lastActive ?? F),
      active_days_7: activeDays.filter((a) => a >= D - 6).length,
      active_days_28: activeDays.filter((a) => a >= D - 27).length,
      subscription_status: d.plan?.value ?? null,
      core_feature_adopted: vars.coreEvents.length === 0 ? null : d.core,
      purchase_count: r?.frequency ?? 0,
      monetary: r ? Number(r.cents) / 100 : 0,
      rfm_recency_score: r?.r ?? null,
      rfm_frequency_score: r?.f ?? null,
      rfm_monetary_score: r?.m ?? null,
      rfm_segment: r ? rfmSegment(r.r, r.f) : null,
    });
  }

  return {
    user_lifecycle: lifecycle,
    user_status_history: history,
    status_transitions: transitions,
    status_daily: statusDaily,
    growth_accounting_daily: growth(users, D, vars),
  };
}

export function rfmSegment(r: number, f: number): string {
  if (r <= 2) return f <= 2 ? 'hibernating' : f <= 4 ? 'at_risk' : 'cant_lose';
  if (r === 3) return f <= 2 ? 'about_to_sleep' : f === 3 ? 'need_attention' : 'loyal';
  if (r === 4) return f === 1 ? 'promising' : f <= 3 ? 'potential_loyalist' : 'loyal';
  return f === 1 ? 'new_customer' : f <= 3 ? 'potential_loyalist' : 'champions';
}

type GState = 'new' | 'current' | 'reactivated' | 'resurrected' | 'at_risk_wau' | 'at_risk_mau' | 'dormant';
const GSTATES: GState[] = [
  'new',
  'current',
  'reactivated',
  'resurrected',
  'at_risk_wau',
  'at_risk_mau',
  'dormant',
];

/** 4.5, literally: every date, every user, every definition. */
function growth(users: Map<string, UserData>, D: number, vars: Vars): GrowthRow[] {
  const W = vars.wauDays;
  const M = vars.mauDays;
  const all = [...users.values()].filter((d) => d.active.size > 0);
  if (all.length === 0) return [];
  const start = Math.min(...all.map((d) => Math.min(...d.active)));
  const activeIn = (d: UserData, a: number, b: number) => {
    for (let x = a; x <= b; x++) if (d.active.has(x)) return true;
    return false;
  };
  const stateOf = (d: UserData, day: number): GState | null => {
    const first = Math.min(...d.active);
    if (first > day) return null;
    const activeToday = d.active.has(day);
    if (activeToday && day === first) return 'new';
    if (activeToday && activeIn(d, day - (W - 1), day - 1)) return 'current';
    if (activeToday && activeIn(d, day - (M - 1), day - W)) return 'reactivated';
    if (activeToday) return 'resurrected';
    if (activeIn(d, day - (W - 1), day - 1)) return 'at_risk_wau';
    if (activeIn(d, day - (M - 1), day - W)) return 'at_risk_mau';
    return 'dormant';
  };
  const rows: GrowthRow[] = [];
  let yesterday: Map<GState, UserData[]> | null = null;
  for (let day = start; day <= D; day++) {
    const today = new Map<GState, UserData[]>(GSTATES.map((s) => [s, []]));
    for (const d of all) {
      const s = stateOf(d, day);
      if (s) (today.get(s) as UserData[]).push(d);
    }
    const n = (s: GState) => (today.get(s) as UserData[]).length;
    const rate = (s: GState): number | null => {
      const prev = yesterday?.get(s) ?? [];
      if (prev.length === 0) return null;
      return prev.filter((d) => d.active.has(day)).length / prev.length;
    };
    const dau = n('new') + n('current') + n('reactivated') + n('resurrected');
    rows.push({
      date: ymd(day),
      new_users: n('new'),
      current_users: n('current'),
      reactivated_users: n('reactivated'),
      resurrected_users: n('resurrected'),
      at_risk_wau_users: n('at_risk_wau'),
      at_risk_mau_users: n('at_risk_mau'),
      dormant_users: n('dormant'),
      dau,
      wau: dau + n('at_risk_wau'),
      mau: dau + n('at_risk_wau') + n('at_risk_mau'),
      nurr: rate('new'),
      curr: rate('current'),
      rurr: rate('reactivated'),
      surr: rate('resurrected'),
      iwaurr: rate('at_risk_wau'),
      reactivation_rate: rate('at_risk_mau'),
      resurrection_rate: rate('dormant'),
    });
    yesterday = today;
  }
  return rows;
}
