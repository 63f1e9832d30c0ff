/**
 * SPEC §4 rule by rule, with hand-derived expectations: each user below exercises one rule or boundary, and
 * its comment says which and why the expected value follows from the spec. D = 2024-06-30 throughout.
 */
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import type { AliasRow, IdentifyRow, RawData, TrackRow, ViewRow } from './oracle';
import { build, landRaw } from './helpers';

const D = '2024-06-30';
const day = (offset: number) => new Date(Date.parse(`${D}T12:00:00Z`) + offset * 86400000).toISOString();
const date = (offset: number) => day(offset).slice(0, 10);

let seq = 0;
const nextId = () => `r${++seq}`;
function track(
  user: string | null,
  offset: number,
  event = 'Viewed Item',
  extra: Partial<TrackRow> = {},
): TrackRow {
  const ts = day(offset);
  return {
    id: nextId(),
    user_id: user,
    anonymous_id: null,
    event_text: event,
    timestamp: ts,
    received_at: ts,
    properties: {},
    ...extra,
  };
}
function anon(anonymousId: string, offset: number, event = 'Viewed Item'): TrackRow {
  return track(null, offset, event, { anonymous_id: anonymousId });
}
function identify(
  user: string,
  anonymousId: string | null,
  offset: number,
  traits: Record<string, unknown> = {},
): IdentifyRow {
  const ts = day(offset);
  return { id: nextId(), user_id: user, anonymous_id: anonymousId, timestamp: ts, received_at: ts, traits };
}
function alias(previous: string, user: string, offset: number): AliasRow {
  const ts = day(offset);
  return { id: nextId(), previous_id: previous, user_id: user, timestamp: ts, received_at: ts };
}
function page(user: string, offset: number): ViewRow {
  const ts = day(offset);
  return { id: nextId(), user_id: user, anonymous_id: null, timestamp: ts, received_at: ts };
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

// ---------------------------------------------------------------------------------------------------------
// The main dataset: one user per rule.
const tracks: TrackRow[] = [
  // 4.4 rule 3 "new": D - first_seen = 0 < 7
  track('new_day0', 0),
  // rule 3 boundary: D - first_seen = 6 < 7 -> new (inactive 6 is not at_risk anyway)
  track('new_day6', -6),
  // rule 3 boundary: D - first_seen = 7 -> not new; inactive 7 >= at_risk_days -> at_risk since D
  track('risk_new7', -7),
  // rule 5 boundary: inactive 6 -> active since the activity on D-6 (at_risk before: inactive 7..13 from D-20)
  track('active_in6', -20),
  track('active_in6', -6),
  // rule 5 boundary: inactive 7 -> at_risk, since D, previously active
  track('risk_in7', -20),
  track('risk_in7', -7),
  // rule 2 boundary: inactive 29 -> at_risk (not dormant)
  track('dormant_29', -40),
  track('dormant_29', -29),
  // rule 2 boundary: inactive 30 -> dormant since D, previously at_risk
  track('dormant_30', -40),
  track('dormant_30', -30),
  // rule 1 boundary: inactive 89 -> dormant
  track('churn_89', -100),
  track('churn_89', -89),
  // rule 1 boundary: inactive 90 -> churned
  track('churn_90', -100),
  track('churn_90', -90),
  // rule 1 churn signal: last_churn_signal (D-5) >= last_seen (D-10) -> churned since D-5, previously new
  track('churn_signal', -10),
  track('churn_signal', -5, 'Account Deleted'),
  // churn signal then activity: a return day (churn signal in [p, r-1]) -> resurrected since D-3, previously
  // churned (on D-10 the signal is >= last_seen = first_seen even without activity)
  track('churn_back', -10, 'App Uninstalled'),
  track('churn_back', -3),
  // rule 4 boundary: return day D-6 ((r-1)-p = 43 >= 30) is in [D-6, D] -> resurrected since D-6, previously dormant
  track('resurrected_6', -50),
  track('resurrected_6', -6),
  track('resurrected_6', -1),
  // rule 4 boundary: return day D-7 is out of [D-6, D] -> active since D, previously resurrected
  track('resurrected_7', -50),
  track('resurrected_7', -7),
  track('resurrected_7', -1),
  // rule 6: 20 activity days in [D-27, D] (D-19..D): ad7 = 7, baseline 13: 300*7 > 50*13 -> power on D
  // (19 days on D-1: active)
  ...range(-19, 0).map((o) => track('power_20', o)),
  // rule 6 boundary: 19 activity days -> active
  ...range(-18, 0).map((o) => track('power_19', o)),
  // rule 5 decline: baseline 12 (D-27..D-16) >= 6, ad7 = 2 (D-3, D): 300*2 <= 50*12 -> at_risk; it started on
  // D-10, when ad7 fell to 1 (6 * ad7 <= baseline = 12 - ad7 holds from ad7 <= 1)
  ...range(-27, -16).map((o) => track('decline_yes', o)),
  track('decline_yes', -3),
  track('decline_yes', 0),
  // same with ad7 = 3 on D: 900 > 600 -> active since D (on D-1, ad7 = 2: 600 <= 600 -> at_risk)
  ...range(-27, -16).map((o) => track('decline_no', o)),
  track('decline_no', -3),
  track('decline_no', -1),
  track('decline_no', 0),
  // non-activity: churn events are never activity; an identify is not activity either
  track('only_churn', -2, 'Account Deleted'),
  // 4.2 anonymous activity before the identify belongs to the user
  anon('anon_a1', -10),
  // 4.2 identifies after D are ignored: anon_a2's activity stays anonymous, later_user does not exist at D
  anon('anon_a2', -3),
  // 4.2 step 1 via alias when there is no identify
  anon('anon_a3', -4),
  // 4.2 step 2: old_user was aliased to new_user, so old_user's events are new_user's
  track('old_user', -12),
  track('new_user', -2),
  // 4.2 single hop: x1 -> x2 -> x3 stops at x2
  track('x1', -3),
  // 4.2 the latest identify wins: anon_a4 is id_e (identified after id_d)
  anon('anon_a4', -8),
  // events after D do not count
  track('future_only', 1),
  track('future_too', -8),
  track('future_too', 1),
  // 4.6 purchases, ties and revenue shapes (N = 5 purchasers: dup, tie_a, tie_b, tie_c, tie_d):
  // dup: the first received copy is a purchase of 10; the copy received later (a view on D-1) is ignored
  { ...track('dup', -2, 'Order Completed', { properties: { revenue: 10 } }), id: 'dup1' },
  { ...track('dup', -1, 'Viewed Item'), id: 'dup1', received_at: day(1) },
  // text that is not a number whole is not one, whatever it starts with: total counts
  track('tie_a', -5, 'Order Completed', { properties: { revenue: '99.999 USD', total: 10.0 } }),
  // cents from the exact text: 10.0049999… rounds down (a cast to 12 places first made it 10.005, then 10.01)
  track('tie_b', -5, 'Order Completed', { properties: { revenue: '10.0049999999999999' } }),
  track('tie_c', -20, 'Order Completed', { properties: { revenue: 'n/a', total: '5.499' } }),
  // a revenue of 10^24 or more is a data error: the next field counts (and the build does not overflow);
  // leading zeros are not magnitude: 28 digits that read 4.50 are 4.50
  track('tie_c', -1, 'Order Completed', {
    properties: {
      revenue: '123456789012345678901234567890',
      total: '0000000000000000000000000004.50',
      value: 'x',
    },
  }),
  track('tie_d', -40, 'Order Completed', {
    properties: { revenue: '1e300', total: null, value: '00000000000000000000000000001e1' },
  }),
  // a purchase outside the 365-day window does not make a purchaser
  track('old_buyer', -365, 'Order Completed', { properties: { revenue: 50 } }),
  // time zones: 23:30 UTC on D-1 is D in Tokyo and D-1 in Los Angeles; 02:00 UTC on D is D-1 in Los Angeles;
  // 20:00 UTC on D is D+1 in Tokyo (after D: the user does not exist there)
  {
    ...track('tz_late', 0),
    timestamp: `${date(-1)}T23:30:00.000Z`,
    received_at: `${date(-1)}T23:30:00.000Z`,
  },
  { ...track('tz_early', 0), timestamp: `${D}T02:00:00.000Z`, received_at: `${D}T02:00:00.000Z` },
  { ...track('tz_evening', 0), timestamp: `${D}T20:00:00.000Z`, received_at: `${D}T20:00:00.000Z` },
];

const identifies: IdentifyRow[] = [
  identify('id_a', 'anon_a1', -2),
  identify('later_user', 'anon_a2', 1),
  identify('id_d', 'anon_a4', -9),
  identify('id_e', 'anon_a4', -5),
  // createdAt: a literal date earlier than any event becomes first_seen_date
  identify('created_camel', null, -3, { createdAt: '2024-01-15T10:00:00Z' }),
  // created_at (snake case) works too, and the earliest of both wins
  identify('created_snake', null, -3, { created_at: '2024-02-01 08:00', createdAt: '2024-03-01' }),
  // not a date, or an impossible one: ignored
  identify('created_bad', null, -3, { createdAt: 'yesterday' }),
  identify('created_bad', null, -2, { created_at: '2024-02-30' }),
  // subscription_status: the latest non-null plan (a later identify without the trait or with null keeps 'pro')
  identify('plan_user', null, -10, { plan: 'free' }),
  identify('plan_user', null, -5, { plan: 'pro' }),
  identify('plan_user', null, -2, { plan: null }),
  identify('plan_user', null, -1, { email: 'x@example.com' }),
  // a numeric or boolean plan is text
  identify('plan_number', null, -1, { plan: 3 }),
  identify('plan_boolean', null, -1, { plan: true }),
  // an object or an array is not a plan value (warehouses print them differently): the earlier 'basic' stays
  identify('plan_nested', null, -3, { plan: 'basic' }),
  identify('plan_nested', null, -2, { plan: { tier: 'pro', seats: 5 } }),
  identify('plan_nested', null, -1, { plan: ['pro'] }),
];

const aliases: AliasRow[] = [
  alias('anon_a3', 'id_c', -4),
  alias('old_user', 'new_user', -1),
  alias('x1', 'x2', -5),
  alias('x2', 'x3', -5),
];

const MAIN: RawData = { tracks, pages: [page('page_user', -1)], screens: [], identifies, aliases };

// ---------------------------------------------------------------------------------------------------------
// RFM grid: N = 15 purchasers, so a score is ceil(5k/15) = ceil(k/3): three users per score. Recency 100..8
// days and frequencies 1..15 are all distinct; the (R, F) pairs cover all ten segments.
const GRID: Array<{
  user: string;
  recency: number;
  frequency: number;
  r: number;
  f: number;
  segment: string;
}> = [
  { user: 'g_r1f1', recency: 100, frequency: 1, r: 1, f: 1, segment: 'hibernating' },
  { user: 'g_r1f3', recency: 99, frequency: 7, r: 1, f: 3, segment: 'at_risk' },
  { user: 'g_r1f5', recency: 98, frequency: 13, r: 1, f: 5, segment: 'cant_lose' },
  { user: 'g_r2f2', recency: 90, frequency: 4, r: 2, f: 2, segment: 'hibernating' },
  { user: 'g_r2f4', recency: 89, frequency: 10, r: 2, f: 4, segment: 'at_risk' },
  { user: 'g_r2f5', recency: 88, frequency: 14, r: 2, f: 5, segment: 'cant_lose' },
  { user: 'g_r3f2', recency: 80, frequency: 5, r: 3, f: 2, segment: 'about_to_sleep' },
  { user: 'g_r3f3', recency: 79, frequency: 8, r: 3, f: 3, segment: 'need_attention' },
  { user: 'g_r3f4', recency: 78, frequency: 11, r: 3, f: 4, segment: 'loyal' },
  { user: 'g_r4f1', recency: 70, frequency: 2, r: 4, f: 1, segment: 'promising' },
  { user: 'g_r4f2', recency: 69, frequency: 6, r: 4, f: 2, segment: 'potential_loyalist' },
  { user: 'g_r4f5', recency: 68, frequency: 15, r: 4, f: 5, segment: 'loyal' },
  { user: 'g_r5f1', recency: 10, frequency: 3, r: 5, f: 1, segment: 'new_customer' },
  { user: 'g_r5f3', recency: 9, frequency: 9, r: 5, f: 3, segment: 'potential_loyalist' },
  { user: 'g_r5f4', recency: 8, frequency: 12, r: 5, f: 4, segment: 'champions' },
];
const RFM: RawData = {
  // every purchase is worth 1.25, so monetary = 1.25 * frequency and the monetary score equals F
  tracks: GRID.flatMap((g) =>
    range(1, g.frequency).map(() =>
      track(g.user, -g.recency, 'Order Completed', { properties: { revenue: '1.25' } }),
    ),
  ),
  pages: [],
  screens: [],
  identifies: [],
  aliases: [],
};

// ---------------------------------------------------------------------------------------------------------
// Growth accounting: four users, S = D-40 the first activity day, W = 7, M = 30.
//   u1: S, S+1, S+7, S+35, S+40   u2: S+5   u3: S+1, S+2   u4: S, S+31
const S = -40;
const GROWTH: RawData = {
  tracks: [
    ...[0, 1, 7, 35, 40].map((o) => track('u1', S + o)),
    track('u2', S + 5),
    ...[1, 2].map((o) => track('u3', S + o)),
    ...[0, 31].map((o) => track('u4', S + o)),
  ],
  pages: [],
  screens: [],
  identifies: [],
  aliases: [],
};

type Row = Record<string, unknown>;

describeEachWarehouse('lifecycle rules of SPEC 4, hand-derived', ({ tw }) => {
  let wh: Warehouse;
  let users: Map<string, Row>;

  beforeAll(async () => {
    wh = await tw().open();
    await landRaw(wh, MAIN, 'cdp');
    await build(wh, { vars: { lifecycle__as_of_date: D } });
    const rows = await wh.query('select * from lifecycle.user_lifecycle');
    users = new Map(rows.map((r) => [r.user_id as string, r]));
  });
  afterAll(async () => {
    await wh?.close();
  });

  test.each([
    ['new_day0', 'new', D, null],
    ['new_day6', 'new', date(-6), null],
    ['risk_new7', 'at_risk', D, 'new'],
    ['active_in6', 'active', date(-6), 'at_risk'],
    ['risk_in7', 'at_risk', D, 'active'],
    ['dormant_29', 'at_risk', date(-22), 'active'],
    ['dormant_30', 'dormant', D, 'at_risk'],
    ['churn_89', 'dormant', date(-59), 'at_risk'],
    ['churn_90', 'churned', D, 'dormant'],
    ['churn_signal', 'churned', date(-5), 'new'],
    ['churn_back', 'resurrected', date(-3), 'churned'],
    ['resurrected_6', 'resurrected', date(-6), 'dormant'],
    ['resurrected_7', 'active', D, 'resurrected'],
    ['power_20', 'power', D, 'active'],
    ['power_19', 'active', date(-11), 'new'],
    ['decline_yes', 'at_risk', date(-10), 'active'],
    ['decline_no', 'active', D, 'at_risk'],
    ['only_churn', 'churned', date(-2), null],
  ])('%s is %s since %s (previous %s)', (user, expected, since, previous) => {
    const u = users.get(user);
    expect(u).toBeDefined();
    expect(u?.lifecycle_status).toBe(expected);
    expect(u?.status_since).toBe(since);
    expect(u?.previous_status).toBe(previous);
  });

  test('days_inactive, last_active_date and the 7/28-day activity counts follow SPEC 4.3', () => {
    expect(users.get('dormant_30')).toMatchObject({
      first_seen_date: date(-40),
      last_active_date: date(-30),
      days_inactive: 30,
      active_days_7: 0,
      active_days_28: 0,
    });
    expect(users.get('power_20')).toMatchObject({ active_days_7: 7, active_days_28: 20, days_inactive: 0 });
    expect(users.get('decline_yes')).toMatchObject({ active_days_7: 2, active_days_28: 14 });
    // a churn event is never activity, but it dates first_seen: last_active is null, days_inactive counts from first_seen
    expect(users.get('only_churn')).toMatchObject({
      first_seen_date: date(-2),
      last_active_date: null,
      days_inactive: 2,
    });
    // pages are activity
    expect(users.get('page_user')).toMatchObject({ last_active_date: date(-1), lifecycle_status: 'new' });
  });

  test('identity: anonymous history, identifies after D, aliases, the single hop, the latest identify', () => {
    // anonymous activity on D-10 before the identify on D-2 is id_a's; the identify is not activity
    expect(users.get('id_a')).toMatchObject({
      first_seen_date: date(-10),
      last_active_date: date(-10),
      lifecycle_status: 'at_risk',
    });
    expect(users.has('later_user')).toBe(false);
    expect(users.get('id_c')).toMatchObject({ first_seen_date: date(-4), lifecycle_status: 'new' });
    // old_user's D-12 activity is new_user's: gap (D-3)-(D-12) = 9 < 30 is no return -> active
    expect(users.has('old_user')).toBe(false);
    expect(users.get('new_user')).toMatchObject({
      first_seen_date: date(-12),
      last_active_date: date(-2),
      lifecycle_status: 'active',
    });
    // x1 -> x2 -> x3: one hop only
    expect(users.get('x2')).toMatchObject({ first_seen_date: date(-3) });
    expect(users.has('x1')).toBe(false);
    expect(users.has('x3')).toBe(false);
    // anon_a4's activity is id_e's (identified last); id_d keeps only its own identify (D-9, no activity)
    expect(users.get('id_e')).toMatchObject({
      first_seen_date: date(-8),
      last_active_date: date(-8),
      lifecycle_status: 'at_risk',
    });
    expect(users.get('id_d')).toMatchObject({
      first_seen_date: date(-9),
      last_active_date: null,
      days_inactive: 9,
      lifecycle_status: 'at_risk',
    });
  });

  test('events after D, duplicates, createdAt and plan traits', () => {
    expect(users.has('future_only')).toBe(false);
    expect(users.get('future_too')).toMatchObject({ last_active_date: date(-8), days_inactive: 8 });
    // the first received copy wins: a purchase on D-2, not a view on D-1
    expect(users.get('dup')).toMatchObject({ last_active_date: date(-2), purchase_count: 1, monetary: 10 });
    expect(users.get('created_camel')).toMatchObject({
      first_seen_date: '2024-01-15',
      lifecycle_status: 'churned',
    });
    expect(users.get('created_snake')).toMatchObject({ first_seen_date: '2024-02-01' });
    expect(users.get('created_bad')).toMatchObject({ first_seen_date: date(-3) });
    expect(users.get('plan_user')?.subscription_status).toBe('pro');
    expect(users.get('plan_number')?.subscription_status).toBe('3');
    expect(users.get('plan_boolean')?.subscription_status).toBe('true');
    expect(users.get('plan_nested')?.subscription_status).toBe('basic');
    expect(users.get('new_day0')?.subscription_status).toBeNull();
    // core_events is empty by default: adoption is unknown, not false
    expect(users.get('new_day0')?.core_feature_adopted).toBeNull();
  });

  test('RFM ties: k counts every purchaser tied with the user; revenue shapes sum to exact cents', () => {
    // recency 2/5/5/1/40, frequency 1/1/1/2/1, monetary 10.00 each (10, '10.0049999999999999', '5.499'->5.50 + '0…04.50',
    // '0…01e1')
    expect(users.get('dup')).toMatchObject({
      rfm_recency_score: 4,
      rfm_frequency_score: 4,
      rfm_monetary_score: 5,
      rfm_segment: 'loyal',
    });
    expect(users.get('tie_a')).toMatchObject({
      rfm_recency_score: 3,
      rfm_frequency_score: 4,
      rfm_monetary_score: 5,
      rfm_segment: 'loyal',
    });
    expect(users.get('tie_b')).toMatchObject({
      rfm_recency_score: 3,
      rfm_frequency_score: 4,
      rfm_monetary_score: 5,
      rfm_segment: 'loyal',
    });
    expect(users.get('tie_c')).toMatchObject({
      purchase_count: 2,
      monetary: 10,
      rfm_recency_score: 5,
      rfm_frequency_score: 5,
      rfm_segment: 'champions',
    });
    expect(users.get('tie_d')).toMatchObject({
      monetary: 10,
      rfm_recency_score: 1,
      rfm_frequency_score: 4,
      rfm_segment: 'at_risk',
    });
    // outside the window: no RFM, zero purchases
    expect(users.get('old_buyer')).toMatchObject({
      purchase_count: 0,
      monetary: 0,
      rfm_recency_score: null,
      rfm_segment: null,
    });
  });

  test('the history, transitions and daily counts agree with the runs of one user', async () => {
    // churn_back: churned on D-10..D-4 (signal on first_seen), resurrected from the return day D-3
    const runs = await wh.query(
      "select lifecycle_status, valid_from, valid_to from lifecycle.user_status_history where user_id = 'churn_back' order by valid_from",
    );
    expect(runs).toEqual([
      { lifecycle_status: 'churned', valid_from: date(-10), valid_to: date(-4) },
      { lifecycle_status: 'resurrected', valid_from: date(-3), valid_to: null },
    ]);
    const transitions = await wh.query(
      "select transition_date, from_status, to_status from lifecycle.status_transitions where user_id = 'churn_back'",
    );
    expect(transitions).toEqual([
      { transition_date: date(-3), from_status: 'churned', to_status: 'resurrected' },
    ]);
    // status_daily on D counts every user once, by status
    const daily = await wh.query<{ lifecycle_status: string; users: number }>(
      `select lifecycle_status, users from lifecycle.status_daily where date = '${D}'`,
    );
    const byStatus = new Map<string, number>();
    for (const u of users.values())
      byStatus.set(u.lifecycle_status as string, (byStatus.get(u.lifecycle_status as string) ?? 0) + 1);
    expect(new Map(daily.map((r) => [r.lifecycle_status, r.users]))).toEqual(byStatus);
  });

  test('time zones: the date of an event is its date in lifecycle__timezone', async () => {
    await build(wh, {
      schema: 'lifecycle_tokyo',
      vars: { lifecycle__as_of_date: D, lifecycle__timezone: 'Asia/Tokyo' },
      fullRefresh: true,
    });
    await build(wh, {
      schema: 'lifecycle_la',
      vars: { lifecycle__as_of_date: D, lifecycle__timezone: 'America/Los_Angeles' },
      fullRefresh: true,
    });
    const firstSeen = async (schema: string) =>
      new Map(
        (
          await wh.query<{ user_id: string; first_seen_date: string }>(
            `select user_id, first_seen_date from ${schema}.user_lifecycle where user_id like 'tz_%'`,
          )
        ).map((r) => [r.user_id, r.first_seen_date]),
      );
    expect(await firstSeen('lifecycle')).toEqual(
      new Map([
        ['tz_late', date(-1)],
        ['tz_early', D],
        ['tz_evening', D],
      ]),
    );
    // Tokyo is UTC+9: 23:30 UTC on D-1 is D; 20:00 UTC on D is D+1, after D
    expect(await firstSeen('lifecycle_tokyo')).toEqual(
      new Map([
        ['tz_late', D],
        ['tz_early', D],
      ]),
    );
    // Los Angeles is UTC-7 in June: 02:00 UTC on D is D-1
    expect(await firstSeen('lifecycle_la')).toEqual(
      new Map([
        ['tz_late', date(-1)],
        ['tz_early', date(-1)],
        ['tz_evening', D],
      ]),
    );
  });

  test('bad vars fail with a message naming the var, before anything is built', async () => {
    await expect(
      build(wh, { schema: 'lifecycle_bad', vars: { lifecycle__new_days: 'seven' } }),
    ).rejects.toThrow(/lifecycle__new_days/);
    await expect(
      build(wh, { schema: 'lifecycle_bad', vars: { lifecycle__as_of_date: '30/06/2024' } }),
    ).rejects.toThrow(/lifecycle__as_of_date must be a date as YYYY-MM-DD/);
    await expect(
      build(wh, { schema: 'lifecycle_bad', vars: { lifecycle__churn_events: 'Account Deleted' } }),
    ).rejects.toThrow(/lifecycle__churn_events must be a list/);
    // a quote in an event name is escaped, never SQL
    await build(wh, {
      schema: 'lifecycle_quote',
      vars: { lifecycle__as_of_date: D, lifecycle__core_events: ["it's'; drop table x; --"] },
      fullRefresh: true,
    });
    const adopted = await wh.query(
      'select count(*) as n from lifecycle_quote.user_lifecycle where core_feature_adopted',
    );
    expect(adopted).toEqual([{ n: 0 }]);
  });
});

describeEachWarehouse('RFM segment grid and growth accounting, hand-derived', ({ tw }) => {
  let wh: Warehouse;

  beforeAll(async () => {
    wh = await tw().open();
    await landRaw(wh, RFM, 'cdp_rfm');
    await landRaw(wh, GROWTH, 'cdp_growth');
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('every (R, F) cell maps to its segment of SPEC 4.6, with integer ceil(5k/N) scores', async () => {
    await build(wh, { schema: 'rfm', rawSchema: 'cdp_rfm', vars: { lifecycle__as_of_date: D } });
    const rows = await wh.query('select * from rfm.user_lifecycle');
    const byUser = new Map(rows.map((r) => [r.user_id as string, r]));
    for (const g of GRID) {
      expect({ user: g.user, ...byUser.get(g.user) }).toMatchObject({
        user: g.user,
        purchase_count: g.frequency,
        monetary: 1.25 * g.frequency,
        rfm_recency_score: g.r,
        rfm_frequency_score: g.f,
        rfm_monetary_score: g.f,
        rfm_segment: g.segment,
      });
    }
    expect(new Set(rows.map((r) => r.rfm_segment)).size).toBe(10);
  });

  test('growth accounting states, DAU/WAU/MAU and rates on the dates that matter', async () => {
    await build(wh, { schema: 'growth', rawSchema: 'cdp_growth', vars: { lifecycle__as_of_date: D } });
    const rows = await wh.query('select * from growth.growth_accounting_daily order by date');
    expect(rows).toHaveLength(41); // S .. D
    const on = (o: number) => rows.find((r) => r.date === date(S + o));
    const zero = {
      new_users: 0,
      current_users: 0,
      reactivated_users: 0,
      resurrected_users: 0,
      at_risk_wau_users: 0,
      at_risk_mau_users: 0,
      dormant_users: 0,
    };
    // S: u1 and u4 start; every rate is null (nobody the day before)
    expect(on(0)).toMatchObject({
      ...zero,
      new_users: 2,
      dau: 2,
      wau: 2,
      mau: 2,
      nurr: null,
      curr: null,
      resurrection_rate: null,
    });
    // S+1: u1 current, u3 new, u4 at_risk_wau; half of yesterday's new users came back
    expect(on(1)).toMatchObject({
      ...zero,
      new_users: 1,
      current_users: 1,
      at_risk_wau_users: 1,
      dau: 2,
      wau: 3,
      mau: 3,
      nurr: 0.5,
    });
    // S+2: u3 current (u3 was new yesterday: nurr 1), u1 and u4 at_risk_wau (u1 was current: curr 0)
    expect(on(2)).toMatchObject({ ...zero, current_users: 1, at_risk_wau_users: 2, nurr: 1, curr: 0 });
    // S+7: u1 current again (last active S+1, 6 days ago), u2 and u3 at_risk_wau, u4 at_risk_mau
    expect(on(7)).toMatchObject({
      ...zero,
      current_users: 1,
      at_risk_wau_users: 2,
      at_risk_mau_users: 1,
      dau: 1,
      wau: 3,
      mau: 4,
    });
    // S+30: u4 dormant (30 days since S), the rest at_risk_mau
    expect(on(30)).toMatchObject({ ...zero, at_risk_mau_users: 3, dormant_users: 1 });
    // S+31: u4 resurrected; yesterday's dormant user came back (resurrection_rate 1), no at_risk_mau one did
    expect(on(31)).toMatchObject({
      ...zero,
      resurrected_users: 1,
      at_risk_mau_users: 3,
      dau: 1,
      wau: 1,
      mau: 4,
      resurrection_rate: 1,
      reactivation_rate: 0,
    });
    // S+35: u1 reactivated (28 days after S+7); u2, u3 dormant; u4 at_risk_wau; of yesterday's at_risk_mau (u1, u2) half came back
    expect(on(35)).toMatchObject({
      ...zero,
      reactivated_users: 1,
      at_risk_wau_users: 1,
      dormant_users: 2,
      dau: 1,
      wau: 2,
      mau: 2,
      reactivation_rate: 0.5,
      resurrection_rate: 0,
      iwaurr: 0,
    });
    // D: u1 current, u4 at_risk_mau, u2 and u3 dormant
    expect(on(40)).toMatchObject({
      ...zero,
      current_users: 1,
      at_risk_mau_users: 1,
      dormant_users: 2,
      dau: 1,
      wau: 1,
      mau: 2,
    });
  });

  test('the source vars point the package at differently named raw tables', async () => {
    await wh.exec('create table cdp_growth.segment_tracks as select * from cdp_growth.tracks');
    await wh.exec('delete from cdp_growth.tracks');
    await build(wh, {
      schema: 'growth_renamed',
      vars: {
        lifecycle__raw_schema: 'cdp_growth',
        lifecycle__tracks_table: 'segment_tracks',
        lifecycle__as_of_date: D,
      },
    });
    const renamed = await wh.query('select * from growth_renamed.growth_accounting_daily order by date');
    const original = await wh.query('select * from growth.growth_accounting_daily order by date');
    expect(renamed).toHaveLength(41);
    expect(renamed).toEqual(original);
    await wh.exec('insert into cdp_growth.tracks select * from cdp_growth.segment_tracks');
  });

  test('without lifecycle__as_of_date, D is today in lifecycle__timezone, the same in every mart', async () => {
    const before = new Date().toISOString().slice(0, 10);
    await build(wh, { schema: 'growth_today', rawSchema: 'cdp_growth' });
    const after = new Date().toISOString().slice(0, 10);
    const [u] = await wh.query<{ d: string }>('select max(as_of_date) as d from growth_today.user_lifecycle');
    const [g] = await wh.query<{ d: string }>(
      'select max(date) as d from growth_today.growth_accounting_daily',
    );
    expect([before, after]).toContain(u.d);
    expect(g.d).toBe(u.d);
  });
});
