import { UsageError } from '../errors';
import {
  DAY_MS,
  isoDate,
  mulberry32,
  parseIsoDate,
  type DemoEvent,
  type IdentifyEvent,
  type JsonObject,
  type TrackEvent,
} from './events';

/**
 * A deterministic generator of Segment spec traffic for a fictional B2B analytics app ("Acme Reports", web and
 * mobile), shaped so that on the demo's as-of date D every lifecycle status of SPEC §4.4 is held by a
 * sizeable group of users. Personas are designed against the rules, in their order:
 *
 * - `new`: first seen within the last 6 days (anonymous visits before signup included, since identity
 *   resolution attributes them to the user).
 * - `power`: active on at least 21 of the last 28 days.
 * - `active`: steady but lighter use (at most 19 of the last 28 days), seen in the last 3 days, and this
 *   week's rate kept above the decline threshold.
 * - `at_risk_inactive`: stopped 8–25 days before D. `at_risk_declining`: a busy 21-day baseline and exactly
 *   one active day this week (the decline rule).
 * - `dormant`: last active 32–85 days before D, no churn signal.
 * - `churned_inactive`: last active 92+ days before D. `churned_signal`: `Account Deleted` or
 *   `App Uninstalled` on or after their last active day.
 * - `resurrected_gap`: back in the last 7 days after 32–60 silent days. `resurrected_reinstall`: uninstalled
 *   the app, then came back in the last 7 days (a churn signal between two activity days is a return).
 * - `imported`: created by a backend import (identify only, `created_at` from the CRM); some start using
 *   the product later. Their status is whatever the rules make of them.
 *
 * Around that: signup cohorts growing over the period, a weekday/weekend rhythm, habit decay, historic
 * 31–45 day breaks (so growth accounting has resurrections in the past too), anonymous visitors who never
 * sign up, web signups linking an anonymousId through identify, mobile signups linking a device id through
 * alias, legacy user ids merged by alias, groups, plan changes, purchases with clean and dirty revenue
 * fields, newsletters and win-back emails (non-activity), and a few re-delivered messageIds.
 *
 * Build the models with `demoVars(D)` so the email events are not counted as activity.
 */

export const DEMO_DEFAULTS = { users: 3000, days: 150, seed: 42 } as const;

/** Events the demo sends that are not user activity: pass them as `lifecycle__non_activity_events`. */
export const DEMO_NON_ACTIVITY_EVENTS: readonly string[] = ['Email Delivered', 'Email Opened'];
/** The demo app's core feature: pass it as `lifecycle__core_events`. */
export const DEMO_CORE_EVENTS: readonly string[] = ['Report Created'];

/** The dbt vars the demo's models should be built with (SPEC §4.1). */
export function demoVars(asOfDate: string): Record<string, unknown> {
  return {
    lifecycle__as_of_date: asOfDate,
    lifecycle__non_activity_events: [...DEMO_NON_ACTIVITY_EVENTS],
    lifecycle__core_events: [...DEMO_CORE_EVENTS],
  };
}

export interface DemoOptions {
  /** Last calendar day (UTC, `YYYY-MM-DD`) that has events. */
  endDate: string;
  /** The D the personas are designed for; defaults to `endDate`. Days after it keep ongoing users active. */
  asOfDate?: string;
  /** Number of signed-up users (anonymous-only visitors come on top). Default 3000. */
  users?: number;
  /** Length of the history that ends on D, in days (at least 60). Default 150. */
  days?: number;
  /** PRNG seed: the same options give the same events, byte for byte. Default 42. */
  seed?: number;
}

export type Persona =
  | 'new'
  | 'active'
  | 'power'
  | 'at_risk_inactive'
  | 'at_risk_declining'
  | 'dormant'
  | 'churned_inactive'
  | 'churned_signal'
  | 'resurrected_gap'
  | 'resurrected_reinstall'
  | 'imported';

/** Share of signed-up users per persona (sums to 1). */
export const PERSONA_MIX: Readonly<Record<Persona, number>> = {
  new: 0.08,
  active: 0.25,
  power: 0.11,
  at_risk_inactive: 0.06,
  at_risk_declining: 0.06,
  dormant: 0.13,
  churned_inactive: 0.1,
  churned_signal: 0.08,
  resurrected_gap: 0.05,
  resurrected_reinstall: 0.03,
  imported: 0.05,
};

type Platform = 'web' | 'ios' | 'android';
type Plan = 'free' | 'pro' | 'business';

interface UserPlan {
  n: number;
  userId: string;
  /** Id used before an account migration merged it into `userId` with an alias. */
  legacyId?: string;
  migrateDay?: number;
  persona: Persona;
  platform: Platform;
  /** Also uses the web app (mobile users) or the mobile app (web users) on some days. */
  multiPlatform: boolean;
  signup: number;
  anonId: string;
  anonDays: number[];
  active: Set<number>;
  churn?: { day: number; event: 'Account Deleted' | 'App Uninstalled' };
  newsletter: boolean;
  company?: string;
  /** Never uses the core feature (so `core_feature_adopted` is false for some users). */
  noCore: boolean;
  plan: Plan;
  createdAtDate?: string;
}

type ActionKind = 'visit' | 'signup' | 'session' | 'churn' | 'newsletter' | 'winback' | 'lapse';
interface Action {
  kind: ActionKind;
  user: UserPlan;
}

/** A message with its position in time; messageIds are given after the day is sorted. */
interface Pending {
  ms: number;
  seq: number;
  event: DemoEvent;
}

const WEB_PAGES: ReadonlyArray<[string, string]> = [
  ['Dashboard', '/app'],
  ['Reports', '/app/reports'],
  ['Report', '/app/reports/view'],
  ['Projects', '/app/projects'],
  ['Settings', '/app/settings'],
  ['Docs', '/docs'],
];
const MARKETING_PAGES: ReadonlyArray<[string, string]> = [
  ['Home', '/'],
  ['Pricing', '/pricing'],
  ['Features', '/features'],
  ['Blog', '/blog/weekly-reporting-tips'],
  ['Customers', '/customers'],
];
const SCREENS = ['Home', 'Reports', 'Report Detail', 'Notifications', 'Projects', 'Profile'];
const PRODUCT_EVENTS = ['Dashboard Viewed', 'Search Performed', 'Report Shared', 'Export Downloaded'];
const RARE_EVENTS = ['Project Created', 'Invite Sent'];
const REFERRERS = [
  'https://www.google.com/',
  'https://www.linkedin.com/',
  'https://news.ycombinator.com/',
  '',
];
const COUNTRIES = ['US', 'GB', 'DE', 'FR', 'NL', 'CA', 'AU', 'ES', 'SE', 'IN', 'BR', 'JP'];
const INDUSTRIES = ['Retail', 'SaaS', 'Fintech', 'Healthcare', 'Media', 'Logistics', 'Education'];
const FIRST_NAMES = [
  'Ada',
  'Ben',
  'Chloe',
  'Diego',
  'Elif',
  'Femi',
  'Grace',
  'Hiro',
  'Ines',
  'Jonas',
  'Kira',
];
const LAST_NAMES = ['Okafor', 'Schmidt', 'Nakamura', 'Garcia', 'Dubois', 'Kowalski', 'Smith', 'Larsen'];

/**
 * Generates the demo's events day by day, each day in timestamp order (like a real stream), without holding
 * more than one day of messages in memory.
 */
export function generateDemoEvents(opts: DemoOptions): Iterable<DemoEvent> {
  const cfg = resolveOptions(opts);
  return {
    [Symbol.iterator]: () => new DemoWorld(cfg).events(),
  };
}

/**
 * Who is who in the demo: each signed-up user's persona (what the generator designed them to be on D). For
 * docs and tests; the events alone are the data.
 */
export function demoPersonas(opts: DemoOptions): Map<string, Persona> {
  return new DemoWorld(resolveOptions(opts)).personas();
}

interface ResolvedOptions {
  users: number;
  days: number;
  seed: number;
  asOfMs: number;
  /** Days from D to endDate (>= 0). */
  tail: number;
}

function resolveOptions(opts: DemoOptions): ResolvedOptions {
  const endMs = parseIsoDate(opts.endDate);
  if (endMs === undefined) {
    throw new UsageError(`The demo end date "${opts.endDate}" is not a calendar date: use YYYY-MM-DD.`);
  }
  const asOf = opts.asOfDate ?? opts.endDate;
  const asOfMs = parseIsoDate(asOf);
  if (asOfMs === undefined) {
    throw new UsageError(`The demo as-of date "${asOf}" is not a calendar date: use YYYY-MM-DD.`);
  }
  if (asOfMs > endMs) {
    throw new UsageError(
      `The demo as-of date ${asOf} is after its end date ${opts.endDate}: use an earlier as-of date.`,
    );
  }
  const users = opts.users ?? DEMO_DEFAULTS.users;
  if (!Number.isInteger(users) || users < 1 || users > 1_000_000) {
    throw new UsageError(
      `The demo user count ${users} is out of range: use a whole number from 1 to 1000000.`,
    );
  }
  const days = opts.days ?? DEMO_DEFAULTS.days;
  if (!Number.isInteger(days) || days < 60 || days > 3650) {
    throw new UsageError(
      `The demo history of ${days} days is out of range: use 60 to 3650 days, so that every lifecycle status can occur.`,
    );
  }
  const seed = opts.seed ?? DEMO_DEFAULTS.seed;
  if (!Number.isInteger(seed)) {
    throw new UsageError(`The demo seed ${seed} is not an integer: use a whole number.`);
  }
  return { users, days, seed, asOfMs, tail: Math.round((endMs - asOfMs) / DAY_MS) };
}

class DemoWorld {
  private readonly rng: () => number;
  /** First day of the history, relative to D (day 0). */
  private readonly start: number;
  private readonly end: number;
  private readonly users: UserPlan[] = [];
  private readonly schedule = new Map<number, Action[]>();
  private readonly anonVisitors: Array<{ id: string; days: number[] }> = [];
  private readonly companies: string[];
  private msgSeq = 0;
  private orderSeq = 0;

  constructor(private readonly cfg: ResolvedOptions) {
    this.rng = mulberry32(cfg.seed);
    this.start = -(cfg.days - 1);
    this.end = cfg.tail;
    this.companies = Array.from(
      { length: Math.max(3, Math.ceil(cfg.users / 8)) },
      (_, i) => `acct_${pad(i + 1, 5)}`,
    );
    const personas = this.assignPersonas();
    for (let n = 0; n < cfg.users; n++) this.users.push(this.planUser(n, personas[n]));
    const visitors = Math.round(cfg.users * 0.4);
    for (let i = 0; i < visitors; i++) {
      const first = this.int(this.start, this.end);
      const days = [first];
      if (this.chance(0.35)) days.push(Math.min(this.end, first + this.int(1, 20)));
      this.anonVisitors.push({ id: this.anonymousId(), days });
    }
    this.buildSchedule();
  }

  personas(): Map<string, Persona> {
    return new Map(this.users.map((u) => [u.userId, u.persona]));
  }

  // ---------------------------------------------------------------- randomness helpers

  private chance(p: number): boolean {
    return this.rng() < p;
  }
  /** Uniform integer in [lo, hi] (hi < lo gives lo). */
  private int(lo: number, hi: number): number {
    if (hi <= lo) return lo;
    return lo + Math.floor(this.rng() * (hi - lo + 1));
  }
  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.rng() * items.length)];
  }
  private anonymousId(): string {
    const hex = () =>
      Math.floor(this.rng() * 0x10000)
        .toString(16)
        .padStart(4, '0');
    return `${hex()}${hex()}-${hex()}-4${hex().slice(1)}-a${hex().slice(1)}-${hex()}${hex()}${hex()}`;
  }

  private dayMs(day: number): number {
    return this.cfg.asOfMs + day * DAY_MS;
  }
  /** 0 = Sunday … 6 = Saturday. */
  private dow(day: number): number {
    return new Date(this.dayMs(day)).getUTCDay();
  }
  /** A B2B product: weekends are quiet, Fridays a little quieter. */
  private weekFactor(day: number, weekend: number): number {
    const d = this.dow(day);
    if (d === 0 || d === 6) return weekend;
    return d === 5 ? 0.9 : 1;
  }

  // ---------------------------------------------------------------- users

  /** Exact persona counts (largest remainder), shuffled, so small demos still get every persona. */
  private assignPersonas(): Persona[] {
    const entries = Object.entries(PERSONA_MIX) as Array<[Persona, number]>;
    const total = entries.reduce((s, [, share]) => s + share, 0);
    const counts = entries.map(([p, share]) => {
      const exact = (share / total) * this.cfg.users;
      return { p, n: Math.floor(exact), rem: exact - Math.floor(exact) };
    });
    const byRemainder = [...counts].sort((a, b) => b.rem - a.rem);
    for (let left = this.cfg.users - counts.reduce((s, c) => s + c.n, 0), i = 0; left > 0; left--, i++) {
      byRemainder[i % byRemainder.length].n++;
    }
    const list: Persona[] = [];
    for (const c of counts) for (let i = 0; i < c.n; i++) list.push(c.p);
    for (let i = list.length - 1; i > 0; i--) {
      const j = Math.floor(this.rng() * (i + 1));
      [list[i], list[j]] = [list[j], list[i]];
    }
    return list;
  }

  /** A signup day in [lo, hi]: more signups as the product grows, fewer at weekends. */
  private signupDay(lo: number, hi: number): number {
    lo = Math.max(lo, this.start);
    hi = Math.max(lo, Math.min(hi, this.end));
    for (let tries = 0; tries < 50; tries++) {
      const d = this.int(lo, hi);
      const growth = 0.4 + 0.6 * ((d - this.start) / Math.max(1, this.end - this.start));
      if (this.rng() < growth * this.weekFactor(d, 0.5)) return d;
    }
    return this.int(lo, hi);
  }

  /** Adds activity days in [from, to] with daily probability p, a weekend factor and optional habit decay. */
  private fill(u: UserPlan, from: number, to: number, p: number, weekend = 0.4, tau = 0, floor = 1): void {
    for (let d = Math.max(from, this.start); d <= Math.min(to, this.end); d++) {
      const age = d - u.signup;
      const decay = tau > 0 ? floor + (1 - floor) * Math.exp(-age / tau) : 1;
      if (this.chance(p * this.weekFactor(d, weekend) * decay)) u.active.add(d);
    }
  }

  private count(u: UserPlan, from: number, to: number): number {
    let c = 0;
    for (let d = from; d <= to; d++) if (u.active.has(d)) c++;
    return c;
  }

  /** A break of 31–45 days somewhere in [lo, hi] (for history: the user comes back long before D). */
  private historicBreak(u: UserPlan, lo: number, hi: number): void {
    const len = this.int(31, 45);
    if (hi - lo < len + 2) return;
    const from = this.int(lo, hi - len);
    for (let d = from; d < from + len; d++) u.active.delete(d);
  }

  private planUser(n: number, persona: Persona): UserPlan {
    const mobileFirst = persona === 'resurrected_reinstall' || this.chance(0.4);
    const u: UserPlan = {
      n,
      userId: `user_${pad(n + 1, 6)}`,
      persona,
      platform: mobileFirst ? (this.chance(0.55) ? 'ios' : 'android') : 'web',
      multiPlatform: this.chance(0.3),
      signup: 0,
      anonId: this.anonymousId(),
      anonDays: [],
      active: new Set<number>(),
      newsletter: this.chance(0.6),
      noCore: this.chance(0.3),
      plan: 'free',
    };
    const S = this.start;
    const E = this.end;
    switch (persona) {
      case 'new': {
        u.signup = this.signupDay(-6, 0);
        this.fill(u, u.signup + 1, E, 0.55);
        break;
      }
      case 'power': {
        u.signup = this.signupDay(S, -35);
        u.noCore = false;
        this.fill(u, u.signup, E, 0.93, 0.8);
        if (this.chance(0.2)) this.historicBreak(u, u.signup + 7, -30);
        // At least 21 of the last 28 days, and 5 of the last 7 so the decline rule can never fire.
        for (let d = 0; d >= -6 && this.count(u, -6, 0) < 5; d--) u.active.add(d);
        for (let d = 0; d >= -27 && this.count(u, -27, 0) < 21; d--) u.active.add(d);
        break;
      }
      case 'active': {
        u.signup = this.signupDay(S, -28);
        this.fill(u, u.signup, E, 0.45, 0.35, 90, 0.7);
        if (this.chance(0.2)) this.historicBreak(u, u.signup + 7, -40);
        // Keep them clearly "active": not power, seen recently, no decline, no 30-day gap before this week.
        const inWindow = [...u.active].filter((d) => d >= -27 && d <= -7);
        while (inWindow.length > 14) {
          u.active.delete(inWindow.splice(Math.floor(this.rng() * inWindow.length), 1)[0]);
        }
        if (this.count(u, -27, -7) === 0) u.active.add(this.int(-20, -8));
        if (this.count(u, -3, 0) === 0) u.active.add(this.int(-3, 0));
        for (
          let d = -1;
          d >= -6 && (this.count(u, -6, 0) < 2 || 6 * this.count(u, -6, 0) <= this.count(u, -27, -7));
          d--
        ) {
          u.active.add(d);
        }
        for (const d of [...u.active])
          if (d >= -6 && d <= 0 && this.count(u, -27, 0) > 19 && d !== -1) u.active.delete(d);
        break;
      }
      case 'at_risk_inactive': {
        const last = this.int(-25, -8);
        u.signup = this.signupDay(S, Math.min(-40, last - 10));
        this.fill(u, u.signup, last, 0.5);
        u.active.add(last);
        break;
      }
      case 'at_risk_declining': {
        u.signup = this.signupDay(S, -45);
        this.fill(u, u.signup, -7, 0.8, 0.5);
        for (let d = -7; d >= -27 && this.count(u, -27, -7) < 8; d--) u.active.add(d);
        u.active.add(this.int(-4, 0));
        this.fill(u, 1, E, 0.2);
        break;
      }
      case 'dormant': {
        const last = this.int(Math.max(S + 5, -85), -32);
        u.signup = this.signupDay(last - 90, last - 3);
        this.fill(u, u.signup, last, 0.6, 0.4, 25, 0.25);
        u.active.add(last);
        break;
      }
      case 'churned_inactive':
      case 'churned_signal': {
        if (persona === 'churned_inactive' && S + 5 <= -92) {
          const last = this.int(Math.max(S + 5, -140), -92);
          u.signup = this.signupDay(last - 60, last - 2);
          this.fill(u, u.signup, last, 0.6, 0.4, 20, 0.2);
          u.active.add(last);
        } else {
          u.persona = 'churned_signal';
          const last = this.int(Math.max(S + 10, -75), -1);
          u.signup = this.signupDay(last - 100, last - 5);
          this.fill(u, u.signup, last, 0.45, 0.4, 40, 0.3);
          u.active.add(last);
          const day = Math.min(0, last + (this.chance(0.5) ? 0 : this.int(1, 3)));
          u.churn = { day, event: u.platform === 'web' ? 'Account Deleted' : 'App Uninstalled' };
        }
        break;
      }
      case 'resurrected_gap': {
        const back = this.int(-6, 0);
        const gap = this.int(32, Math.min(60, back - S - 6));
        const left = back - gap;
        u.signup = this.signupDay(left - 80, left - 5);
        this.fill(u, u.signup, left, 0.45);
        u.active.add(left);
        u.active.add(back);
        this.fill(u, back + 1, E, 0.55);
        break;
      }
      case 'resurrected_reinstall': {
        const left = this.int(-35, -9);
        const uninstall = left + this.int(0, 2);
        const back = this.int(Math.max(uninstall + 1, -6), 0);
        u.signup = this.signupDay(left - 90, left - 5);
        this.fill(u, u.signup, left, 0.5);
        u.active.add(left);
        u.active.add(back);
        u.churn = { day: uninstall, event: 'App Uninstalled' };
        this.fill(u, back + 1, E, 0.6);
        break;
      }
      case 'imported': {
        u.signup = this.signupDay(S, 0);
        u.platform = 'web';
        u.createdAtDate = isoDate(this.dayMs(u.signup - this.int(0, 60)));
        if (this.chance(0.4)) this.fill(u, u.signup + this.int(3, 20), E, 0.25);
        break;
      }
    }
    if (persona !== 'imported') u.active.add(u.signup);
    for (const d of [...u.active]) if (d < u.signup || d > E) u.active.delete(d);

    // Anonymous visits before signup (never earlier than the window, and never before D-6 for a new user,
    // because identity resolution makes them part of the user's history).
    if (persona !== 'imported' && this.chance(0.7)) {
      const earliest = persona === 'new' ? Math.max(-6, S) : S;
      const k = this.int(1, 3);
      for (let i = 0; i < k; i++) {
        const d = u.signup - this.int(0, 10);
        if (d >= earliest && !u.anonDays.includes(d)) u.anonDays.push(d);
      }
      u.anonDays.sort((a, b) => a - b);
    }
    // Account migration: an older id merged into the current one by an alias on an activity day.
    if (u.platform === 'web' && persona !== 'imported' && this.chance(0.05)) {
      const later = [...u.active].filter((d) => d > u.signup + 5 && d <= 0).sort((a, b) => a - b);
      if (later.length > 0) {
        u.legacyId = `legacy-${pad(n + 1, 6)}`;
        u.migrateDay = later[Math.floor(this.rng() * later.length)];
      }
    }
    if (u.platform === 'web' && this.chance(0.35)) u.company = this.pick(this.companies);
    return u;
  }

  private at(day: number, action: Action): void {
    if (day < this.start || day > this.end) return;
    let list = this.schedule.get(day);
    if (!list) this.schedule.set(day, (list = []));
    list.push(action);
  }

  private buildSchedule(): void {
    for (const u of this.users) {
      for (const d of u.anonDays) if (d < u.signup) this.at(d, { kind: 'visit', user: u });
      this.at(u.signup, { kind: 'signup', user: u });
      for (const d of [...u.active].sort((a, b) => a - b))
        if (d !== u.signup || u.persona === 'imported') {
          this.at(d, { kind: 'session', user: u });
        }
      if (u.churn) this.at(u.churn.day, { kind: 'churn', user: u });
      const deletedOn = u.churn?.event === 'Account Deleted' ? u.churn.day : Infinity;
      const lastActive = Math.max(u.signup, ...u.active);
      for (let d = u.signup + 1; d <= Math.min(this.end, deletedOn); d++) {
        // A fortnightly digest on Tuesdays: deliveries are not activity, but they land like any track.
        if (u.newsletter && this.dow(d) === 2 && Math.floor((d - this.start) / 7) % 2 === 0) {
          this.at(d, { kind: 'newsletter', user: u });
        }
      }
      if (deletedOn === Infinity) {
        for (const after of [14, 45])
          if (lastActive + after <= this.end) this.at(lastActive + after, { kind: 'winback', user: u });
        if (lastActive + 31 <= this.end) this.at(lastActive + 31, { kind: 'lapse', user: u });
      }
    }
    for (const v of this.anonVisitors) {
      for (const d of v.days) {
        const pseudo: UserPlan = {
          n: -1,
          userId: '',
          persona: 'new',
          platform: 'web',
          multiPlatform: false,
          signup: d,
          anonId: v.id,
          anonDays: [],
          active: new Set(),
          newsletter: false,
          noCore: true,
          plan: 'free',
        };
        this.at(d, { kind: 'visit', user: pseudo });
      }
    }
  }

  // ---------------------------------------------------------------- events

  *events(): Generator<DemoEvent> {
    for (let day = this.start; day <= this.end; day++) {
      const actions = this.schedule.get(day);
      if (!actions) continue;
      const pending: Pending[] = [];
      let seq = 0;
      const push = (ms: number, event: DemoEvent) => pending.push({ ms, seq: seq++, event });
      for (const a of actions) this.emit(day, a, push);
      pending.sort((a, b) => a.ms - b.ms || a.seq - b.seq);
      const redeliver: DemoEvent[] = [];
      for (const p of pending) {
        p.event.messageId = `demo-${this.cfg.seed}-${pad(++this.msgSeq, 7)}`;
        p.event.timestamp = new Date(p.ms).toISOString();
        // At-least-once delivery: SDK retries re-send a message with the same messageId now and then.
        if (this.chance(0.002)) redeliver.push({ ...p.event });
        yield p.event;
      }
      yield* redeliver;
    }
  }

  /** A session start within the day: office hours on the web, evenings too on mobile. */
  private sessionStart(day: number, mobile: boolean): number {
    const hours = mobile
      ? [7, 8, 9, 12, 13, 17, 18, 19, 20, 21, 22]
      : [8, 9, 9, 10, 10, 11, 13, 14, 14, 15, 16, 17];
    return this.dayMs(day) + this.pick(hours) * 3_600_000 + Math.floor(this.rng() * 3_300_000);
  }

  private emit(day: number, a: Action, push: (ms: number, e: DemoEvent) => void): void {
    const u = a.user;
    const dayEnd = this.dayMs(day) + DAY_MS - 1;
    let ms = 0;
    const next = (maxGapMs = 120_000) =>
      (ms = Math.min(dayEnd, ms + 1000 + Math.floor(this.rng() * maxGapMs)));
    const mobileToday =
      u.platform !== 'web' ? !(u.multiPlatform && this.chance(0.3)) : u.multiPlatform && this.chance(0.3);
    const id =
      u.legacyId !== undefined && u.migrateDay !== undefined && day < u.migrateDay ? u.legacyId : u.userId;
    switch (a.kind) {
      case 'visit': {
        ms = this.sessionStart(day, false);
        const referrer = this.pick(REFERRERS);
        const pages = 1 + this.int(0, 2);
        for (let i = 0; i < pages; i++) {
          const [name, path] = i === 0 ? MARKETING_PAGES[0] : this.pick(MARKETING_PAGES);
          push(ms, this.page({ anonymousId: u.anonId }, name, path, i === 0 ? referrer : ''));
          next();
        }
        return;
      }
      case 'signup': {
        ms = this.sessionStart(day, u.platform !== 'web');
        this.signup(u, id, () => ms, next, push);
        return;
      }
      case 'session': {
        ms = this.sessionStart(day, mobileToday);
        if (u.migrateDay === day && u.legacyId) {
          push(ms, this.alias(u.legacyId, u.userId, 'server'));
          next(5000);
          push(
            ms,
            this.identify({ userId: u.userId }, { email: this.email(u), legacy_id: u.legacyId }, 'server'),
          );
          next();
        }
        this.session(u, id, mobileToday, () => ms, next, push);
        return;
      }
      case 'churn': {
        const ev = u.churn;
        if (!ev) return;
        ms = this.dayMs(day) + 22 * 3_600_000 + Math.floor(this.rng() * 3_000_000);
        const ids = ev.event === 'App Uninstalled' ? { userId: id, anonymousId: u.anonId } : { userId: id };
        const props: JsonObject =
          ev.event === 'Account Deleted'
            ? {
                reason: this.pick(['too_expensive', 'missing_features', 'switched_tool', 'no_longer_needed']),
              }
            : { source: 'attribution_partner' };
        push(ms, this.track(ids, ev.event, props, ev.event === 'App Uninstalled' ? u.platform : 'server'));
        return;
      }
      case 'newsletter':
      case 'winback': {
        ms =
          this.dayMs(day) + (a.kind === 'newsletter' ? 7 : 10) * 3_600_000 + Math.floor(this.rng() * 600_000);
        const campaign = a.kind === 'newsletter' ? 'Fortnightly digest' : 'We miss you';
        const props = {
          campaign_name: campaign,
          email_subject: campaign === 'We miss you' ? 'Your reports are waiting' : 'Your digest',
          email_id: `em_${pad(++this.orderSeq, 7)}`,
        };
        push(ms, this.track({ userId: id }, 'Email Delivered', props, 'email'));
        if (this.chance(a.kind === 'newsletter' ? 0.3 : 0.15)) {
          next(3_000_000);
          push(ms, this.track({ userId: id }, 'Email Opened', props, 'email'));
        }
        return;
      }
      case 'lapse': {
        // The billing system downgrades an unpaid subscription: an identify, not user activity.
        if (u.plan === 'free') return;
        u.plan = 'free';
        ms = this.dayMs(day) + 3 * 3_600_000 + Math.floor(this.rng() * 600_000);
        push(
          ms,
          this.identify({ userId: id }, { plan: 'free', plan_change_reason: 'payment_lapsed' }, 'server'),
        );
        return;
      }
    }
  }

  private signup(
    u: UserPlan,
    id: string,
    now: () => number,
    next: (gap?: number) => number,
    push: (ms: number, e: DemoEvent) => void,
  ): void {
    const traits: JsonObject = {
      email: this.email(u),
      name: `${this.pick(FIRST_NAMES)} ${this.pick(LAST_NAMES)}`,
      plan: 'free',
      country: this.pick(COUNTRIES),
    };
    if (u.persona === 'imported') {
      // Backfilled from the CRM: the account is older than its first event.
      traits.created_at = u.createdAtDate;
      traits.source = 'crm_import';
      push(now(), this.identify({ userId: id }, traits, 'server'));
      return;
    }
    traits.createdAt = new Date(now()).toISOString();
    const mobile = u.platform !== 'web';
    if (mobile) {
      push(now(), this.screen({ anonymousId: u.anonId }, 'Welcome', u.platform));
      next();
      push(now(), this.screen({ anonymousId: u.anonId }, 'Sign Up', u.platform));
      next();
      // Mobile SDKs merge the pre-login device id into the account with an alias.
      push(now(), this.alias(u.anonId, id, u.platform));
      next(5000);
      push(now(), this.identify({ userId: id }, traits, u.platform));
    } else {
      push(now(), this.page({ anonymousId: u.anonId }, 'Sign Up', '/signup', this.pick(REFERRERS)));
      next();
      push(now(), this.identify({ userId: id, anonymousId: u.anonId }, traits, 'web'));
    }
    next(5000);
    const ids = { userId: id, anonymousId: u.anonId };
    push(
      now(),
      this.track(
        ids,
        'Signed Up',
        { method: this.pick(['email', 'google', 'sso']) },
        mobile ? u.platform : 'web',
      ),
    );
    next();
    if (u.company) {
      const company = u.company;
      push(now(), {
        type: 'group',
        messageId: '',
        timestamp: '',
        userId: id,
        groupId: company,
        traits: {
          name: `Company ${company.slice(5)}`,
          industry: this.pick(INDUSTRIES),
          employees: this.int(5, 2000),
        },
        context: this.context('web'),
      });
      next();
    }
    this.session(u, id, mobile, now, next, push);
  }

  private session(
    u: UserPlan,
    id: string,
    mobile: boolean,
    now: () => number,
    next: (gap?: number) => number,
    push: (ms: number, e: DemoEvent) => void,
  ): void {
    const power = u.persona === 'power';
    const ids = { userId: id, anonymousId: u.anonId };
    const source: Platform = mobile ? (u.platform === 'web' ? 'ios' : u.platform) : 'web';
    const views = 1 + this.int(0, power ? 3 : 1);
    for (let i = 0; i < views; i++) {
      if (mobile) push(now(), this.screen(ids, this.pick(SCREENS), source));
      else {
        const [name, path] = this.pick(WEB_PAGES);
        push(now(), this.page(ids, name, path, ''));
      }
      next();
      if (this.chance(power ? 0.5 : 0.3)) {
        push(now(), this.track(ids, this.pick(PRODUCT_EVENTS), {}, source));
        next();
      }
    }
    if (!u.noCore && this.chance(power ? 0.35 : 0.15)) {
      push(
        now(),
        this.track(
          ids,
          'Report Created',
          { report_type: this.pick(['funnel', 'retention', 'kpi', 'table']), widgets: this.int(1, 12) },
          source,
        ),
      );
      next();
    }
    if (this.chance(0.03)) {
      push(now(), this.track(ids, this.pick(RARE_EVENTS), {}, source));
      next();
    }
    // Plan changes and purchases (Segment e-commerce spec), paid plans buy more add-ons.
    const upgrade = u.plan === 'free' ? (power ? 0.04 : 0.015) : u.plan === 'pro' ? 0.004 : 0;
    if (this.chance(upgrade)) {
      u.plan = u.plan === 'free' ? 'pro' : 'business';
      push(now(), this.identify({ userId: id }, { plan: u.plan }, source));
      next(10_000);
      const price = u.plan === 'pro' ? this.pick([29, 290]) : this.pick([99, 990]);
      push(now(), this.order(ids, source, `${u.plan === 'pro' ? 'Pro' : 'Business'} plan`, price));
      next();
    } else if (this.chance(u.plan === 'free' ? 0.006 : u.plan === 'pro' ? 0.03 : 0.05)) {
      const [name, price] = this.pick<[string, number]>([
        ['Report pack', 19.5],
        ['Extra seat', 12],
        ['Data export credits', 4.99],
        ['Premium template', 9.9],
        ['Onboarding call', 149],
      ]);
      push(now(), this.order(ids, source, name, price * this.int(1, 3)));
      next();
    }
  }

  /** `Order Completed` with the revenue field variations seen in real tracking plans. */
  private order(
    ids: { userId: string; anonymousId: string },
    source: Platform,
    product: string,
    amount: number,
  ): TrackEvent {
    const value = Math.round(amount * 100) / 100;
    const orderId = `ord_${pad(++this.orderSeq, 7)}`;
    // pounds, as the retail sample's invoices: RFM monetary adds revenue as sent (SPEC §4.6 has no currency), so
    // one currency keeps the demo's totals meaningful
    const props: JsonObject = { order_id: orderId, currency: 'GBP' };
    const r = this.rng();
    if (r < 0.78) props.revenue = value;
    else if (r < 0.88)
      props.total = value; // older tracking plan: total only
    else if (r < 0.95)
      props.revenue = value.toFixed(2); // numeric string from a form field
    else if (r < 0.98) {
      props.revenue = 'n/a'; // garbage first, a usable value later in the precedence order
      props.value = value;
    } else props.revenue = 'see invoice'; // nothing usable: counts as 0
    props.products = [
      { product_id: product.toLowerCase().replace(/\s+/g, '-'), name: product, price: value, quantity: 1 },
    ];
    return this.track(ids, 'Order Completed', props, source);
  }

  private email(u: UserPlan): string {
    return `${u.userId}@example.com`;
  }

  private context(source: Platform | 'server' | 'email'): JsonObject {
    switch (source) {
      case 'web':
        return {
          library: { name: 'analytics.js', version: 'npm:next-1.72.0' },
          userAgent:
            'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36',
          locale: 'en-US',
        };
      case 'ios':
        return {
          library: { name: 'analytics-swift', version: '1.6.1' },
          app: { name: 'Acme Reports', version: '3.4.0', build: '340' },
          device: { type: 'ios', manufacturer: 'Apple', model: 'iPhone15,2' },
          os: { name: 'iOS', version: '18.1' },
        };
      case 'android':
        return {
          library: { name: 'analytics-kotlin', version: '1.18.0' },
          app: { name: 'Acme Reports', version: '3.4.0', build: '340' },
          device: { type: 'android', manufacturer: 'Google', model: 'Pixel 8' },
          os: { name: 'Android', version: '15' },
        };
      case 'email':
        return {
          library: { name: 'analytics-node', version: '2.2.0' },
          integration: { name: 'customer.io' },
        };
      case 'server':
        return { library: { name: 'analytics-node', version: '2.2.0' } };
    }
  }

  private track(
    ids: { userId?: string; anonymousId?: string },
    event: string,
    properties: JsonObject,
    source: Platform | 'server' | 'email',
  ): TrackEvent {
    return {
      type: 'track',
      messageId: '',
      timestamp: '',
      ...ids,
      event,
      properties,
      context: this.context(source),
    };
  }

  private identify(
    ids: { userId?: string; anonymousId?: string },
    traits: JsonObject,
    source: Platform | 'server',
  ): IdentifyEvent {
    return { type: 'identify', messageId: '', timestamp: '', ...ids, traits, context: this.context(source) };
  }

  private alias(previousId: string, userId: string, source: Platform | 'server'): DemoEvent {
    return { type: 'alias', messageId: '', timestamp: '', previousId, userId, context: this.context(source) };
  }

  private page(
    ids: { userId?: string; anonymousId?: string },
    name: string,
    path: string,
    referrer: string,
  ): DemoEvent {
    const url = `https://acme-reports.example${path}`;
    const context = this.context('web');
    context.page = { path, url, title: `${name} | Acme Reports`, referrer };
    return {
      type: 'page',
      messageId: '',
      timestamp: '',
      ...ids,
      name,
      properties: { path, url, title: `${name} | Acme Reports`, referrer },
      context,
    };
  }

  private screen(ids: { userId?: string; anonymousId?: string }, name: string, source: Platform): DemoEvent {
    return {
      type: 'screen',
      messageId: '',
      timestamp: '',
      ...ids,
      name,
      properties: {},
      context: this.context(source),
    };
  }
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}
