import { createHash } from 'node:crypto';
import {
  DEMO_NON_ACTIVITY_EVENTS,
  demoPersonas,
  demoVars,
  generateDemoEvents,
  type DemoEvent,
  type Persona,
} from '../../src/demo';
import { UsageError } from '../../src/errors';
import { validateEvent } from '../../transforms/schemas';
import { SPEC_DEFAULTS, statusByUser, statusCounts, type SpecVars, type Status } from './spec-status';

const END = '2026-11-20';
const DEMO_SPEC_VARS: SpecVars = { ...SPEC_DEFAULTS, nonActivityEvents: [...DEMO_NON_ACTIVITY_EVENTS] };

/** What each persona is designed to be on D; imported users are whatever the rules make of them. */
const INTENDED: Record<Exclude<Persona, 'imported'>, Status> = {
  new: 'new',
  active: 'active',
  power: 'power',
  at_risk_inactive: 'at_risk',
  at_risk_declining: 'at_risk',
  dormant: 'dormant',
  churned_inactive: 'churned',
  churned_signal: 'churned',
  resurrected_gap: 'resurrected',
  resurrected_reinstall: 'resurrected',
};

function digest(events: Iterable<DemoEvent>): string {
  const h = createHash('sha256');
  for (const e of events) h.update(JSON.stringify(e) + '\n');
  return h.digest('hex');
}

describe('generateDemoEvents', () => {
  let events: DemoEvent[];
  beforeAll(() => {
    events = [...generateDemoEvents({ endDate: END })];
  });

  it('is deterministic: the same options give the same events, another seed other events', () => {
    const small = { endDate: END, users: 300, days: 90 };
    const a = digest(generateDemoEvents(small));
    expect(digest(generateDemoEvents(small))).toBe(a);
    // Iterating the same iterable twice restarts from the seed.
    const it = generateDemoEvents(small);
    expect(digest(it)).toBe(digest(it));
    expect(digest(generateDemoEvents({ ...small, seed: 7 }))).not.toBe(a);
  });

  it('has the default size the demo is budgeted for', () => {
    expect(events.length).toBeGreaterThan(100_000);
    expect(events.length).toBeLessThan(300_000);
    const users = new Set(events.map((e) => e.userId).filter((u) => u?.startsWith('user_')));
    expect(users.size).toBe(3000);
  });

  it('gives every lifecycle status of SPEC §4.4 to a sizeable group on D (independent classification)', () => {
    const counts = statusCounts(events, END, DEMO_SPEC_VARS);
    for (const s of ['new', 'active', 'power', 'at_risk', 'dormant', 'churned', 'resurrected'] as const) {
      expect(`${s}: ${counts[s] >= 100}`).toBe(`${s}: true`);
    }
  });

  it('makes every designed persona hold its status on D', () => {
    const status = statusByUser(events, END, DEMO_SPEC_VARS);
    const personas = demoPersonas({ endDate: END });
    const wrong: string[] = [];
    const seen = new Set<Persona>();
    for (const [user, persona] of personas) {
      seen.add(persona);
      if (persona === 'imported') continue;
      const got = status.get(user);
      if (got !== INTENDED[persona]) wrong.push(`${user} (${persona}) is ${got}`);
    }
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(seen.size).toBe(11);
  });

  it('still holds every status on a small demo with the shortest history', () => {
    const small = [...generateDemoEvents({ endDate: END, users: 150, days: 60, seed: 3 })];
    const counts = statusCounts(small, END, DEMO_SPEC_VARS);
    for (const s of Object.keys(counts) as Status[]) expect(`${s}:${counts[s] > 0}`).toBe(`${s}:true`);
  });

  it('needs the email events configured as non-activity: counted as activity, dormant users look active', () => {
    // This is why the demo builds with demoVars(D): win-back emails would otherwise "revive" dormant users.
    const naive = statusCounts(events, END, SPEC_DEFAULTS);
    const right = statusCounts(events, END, DEMO_SPEC_VARS);
    expect(naive.dormant).toBeLessThan(right.dormant);
    expect(demoVars(END)).toEqual({
      lifecycle__as_of_date: END,
      lifecycle__non_activity_events: ['Email Delivered', 'Email Opened'],
      lifecycle__core_events: ['Report Created'],
    });
  });

  it('emits only events the collector accepts (its own JSON Schemas), within the period, in time order per day', () => {
    const first = Date.parse('2026-06-24T00:00:00Z'); // D - 149
    const last = Date.parse('2026-11-21T00:00:00Z');
    const ids = new Map<string, string>();
    const problems: string[] = [];
    let prevDay = '';
    let prevTs = '';
    // Plain checks in the loop (jest's expect is too slow for 250k events); the problems are asserted once.
    for (const e of events) {
      const v = validateEvent(e);
      if ('reason' in v) problems.push(`${e.messageId}: ${v.reason}`);
      if (e.messageId.length > 100) problems.push(`${e.messageId}: messageId longer than 100`);
      if (new Date(e.timestamp).toISOString() !== e.timestamp)
        problems.push(`${e.messageId}: timestamp not ISO`);
      const t = Date.parse(e.timestamp);
      if (t < first || t >= last) problems.push(`${e.messageId} at ${e.timestamp} is outside the period`);
      if (e.type === 'alias') {
        if (!e.previousId || !e.userId) problems.push(`${e.messageId}: alias without previousId/userId`);
      } else if (!e.userId && !e.anonymousId)
        problems.push(`${e.messageId} has neither userId nor anonymousId`);
      if (e.type === 'track' && !e.event) problems.push(`${e.messageId}: track without event`);
      // A re-delivered message is the same message: same id, same content.
      const text = JSON.stringify(e);
      const before = ids.get(e.messageId);
      if (before !== undefined && before !== text)
        problems.push(`${e.messageId}: redelivered with other content`);
      ids.set(e.messageId, text);
      const day = e.timestamp.slice(0, 10);
      if (day < prevDay) problems.push(`${e.messageId} goes back to an earlier day`);
      if (day === prevDay && before === undefined && e.timestamp < prevTs) {
        problems.push(`${e.messageId} goes back in time within ${day}`);
      }
      prevDay = day;
      if (before === undefined) prevTs = e.timestamp;
    }
    expect(problems.slice(0, 10)).toEqual([]);
    expect(ids.size).toBeLessThan(events.length); // some redeliveries exist
  });

  it('covers the tracking-plan features the models must handle', () => {
    const tracks = events.filter((e) => e.type === 'track');
    const names = new Set(tracks.map((e) => e.event));
    for (const n of [
      'Account Deleted',
      'App Uninstalled',
      'Order Completed',
      'Email Delivered',
      'Report Created',
    ]) {
      expect(names).toContain(n);
    }
    const orders = tracks.filter((e) => e.event === 'Order Completed').map((e) => e.properties);
    expect(orders.some((p) => typeof p.revenue === 'number')).toBe(true);
    expect(orders.some((p) => p.revenue === undefined && typeof p.total === 'number')).toBe(true);
    expect(orders.some((p) => typeof p.revenue === 'string' && /^\d+\.\d\d$/.test(p.revenue))).toBe(true);
    expect(orders.some((p) => p.revenue === 'n/a' && typeof p.value === 'number')).toBe(true);
    expect(
      orders.some((p) => p.revenue === 'see invoice' && p.total === undefined && p.value === undefined),
    ).toBe(true);

    const byType = (t: string) => events.filter((e) => e.type === t);
    expect(byType('screen').length).toBeGreaterThan(1000);
    expect(byType('group').length).toBeGreaterThan(0);
    // Anonymous visits, and identifies that link an anonymousId to a user.
    expect(events.some((e) => e.type === 'page' && e.anonymousId && !e.userId)).toBe(true);
    const idents = events.filter((e): e is Extract<DemoEvent, { type: 'identify' }> => e.type === 'identify');
    expect(idents.some((e) => e.userId && e.anonymousId)).toBe(true);
    const plans = new Set(idents.map((e) => e.traits.plan).filter((p) => p !== undefined));
    expect([...plans].sort()).toEqual(['business', 'free', 'pro']);
    expect(idents.some((e) => typeof e.traits.created_at === 'string')).toBe(true);
    // Aliases both for mobile device ids and for legacy user ids.
    const aliases = byType('alias') as Array<Extract<DemoEvent, { type: 'alias' }>>;
    expect(aliases.some((a) => a.previousId.startsWith('legacy-'))).toBe(true);
    expect(aliases.some((a) => !a.previousId.startsWith('legacy-'))).toBe(true);
    expect(tracks.some((e) => e.userId?.startsWith('legacy-'))).toBe(true);
  });

  it('has a weekly rhythm: weekdays busier than weekends', () => {
    const perDow = new Array<number>(7).fill(0);
    for (const e of events)
      if (e.type === 'page' || e.type === 'screen') perDow[new Date(e.timestamp).getUTCDay()]++;
    const weekday = (perDow[1] + perDow[2] + perDow[3] + perDow[4]) / 4;
    const weekend = (perDow[0] + perDow[6]) / 2;
    expect(weekend).toBeLessThan(weekday * 0.75);
  });

  it('keeps the personas on an as-of date before the end date, and goes on after it', () => {
    const asOf = '2026-11-10';
    const evs = [...generateDemoEvents({ endDate: END, asOfDate: asOf, users: 400 })];
    expect(evs.some((e) => e.timestamp > '2026-11-11')).toBe(true);
    const counts = statusCounts(evs, asOf, DEMO_SPEC_VARS);
    for (const s of Object.keys(counts) as Status[]) expect(`${s}:${counts[s] > 0}`).toBe(`${s}:true`);
  });

  it('refuses bad options with a usage error naming what to fix', () => {
    const gen = (o: Parameters<typeof generateDemoEvents>[0]) => () => generateDemoEvents(o);
    expect(gen({ endDate: '2026-02-30' })).toThrow(UsageError);
    expect(gen({ endDate: '20-11-2026' })).toThrow(/not a calendar date: use YYYY-MM-DD/);
    expect(gen({ endDate: END, asOfDate: '2026-12-01' })).toThrow(/after its end date/);
    expect(gen({ endDate: END, users: 0 })).toThrow(/user count 0 is out of range/);
    expect(gen({ endDate: END, days: 30 })).toThrow(/use 60 to 3650 days/);
    expect(gen({ endDate: END, seed: 1.5 })).toThrow(/seed 1.5 is not an integer/);
  });
});
