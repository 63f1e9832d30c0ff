/**
 * Activity dated before 1900 (a clock gone wrong, a backfill of old records) counts like any other in growth
 * accounting (SPEC 4.5: every date from the earliest activity day to D). The models' "from the beginning"
 * marker was 1900-01-01, and such days fell outside it: the mart started later and counted a user dormant -1.
 * Hand-derived, with W = 7 and M = 30 (D = 2024-03-31):
 *   a: active 1899-11-01 and 2024-03-30; b: active 2024-03-29.
 *   2024-03-29: a dormant (no activity in [d-29, d]), b new.
 *   2024-03-30: a resurrected (active, none in [d-29, d-1], not new); b at_risk_wau.
 *   2024-03-31: a and b at_risk_wau.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { TrackRow } from './oracle';
import { build, landRaw } from './helpers';

const track = (id: string, user: string, day: string): TrackRow => ({
  id,
  user_id: user,
  anonymous_id: null,
  event_text: 'Viewed Item',
  timestamp: `${day}T12:00:00.000Z`,
  received_at: `${day}T12:00:00.000Z`,
  properties: {},
});

const day = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10);

const shiftDays = (ymd: string, n: number) =>
  new Date(Date.parse(`${ymd}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

// A pattern of activity days (from a start) that walks through power, at_risk, dormant, resurrected (after a gap
// and after a churn signal on day 100) and churned.
const PATTERN = [
  ...Array.from({ length: 25 }, (_, i) => i), // 25 days in a row: power
  35, // after a 10-day gap: at_risk before it
  80, // after 44 days: dormant, then resurrected
  110, // after a churn signal on day 100: resurrected again
];

const patternTracks = (user: string, start: string): TrackRow[] => [
  ...PATTERN.map((d) => track(`${user}-${d}`, user, shiftDays(start, d))),
  { ...track(`${user}-churn`, user, shiftDays(start, 100)), event_text: 'Account Deleted' },
];

describeEachWarehouse('activity before 1900 in growth accounting', ({ tw }) => {
  test('the mart starts on the earliest activity day and counts that user on every later day', async () => {
    const wh = await tw().open();
    try {
      await landRaw(wh, {
        tracks: [
          track('o1', 'a', '1899-11-01'),
          track('o2', 'a', '2024-03-30'),
          track('o3', 'b', '2024-03-29'),
        ],
      });
      await build(wh, { vars: { lifecycle__as_of_date: '2024-03-31' } });
      // status_daily counts every user on every day from their first, never below zero
      const expectStatusDailyFromTheFirstDay = async () => {
        const [statuses] = await wh.query<{ first: unknown; lowest: number | bigint }>(
          'select min(date) as first, min(users) as lowest from lifecycle.status_daily',
        );
        expect(day(statuses.first)).toBe('1899-11-01');
        expect(Number(statuses.lowest)).toBeGreaterThan(0);
      };
      await expectStatusDailyFromTheFirstDay();
      const [span] = await wh.query<{ first: unknown; days: number | bigint }>(
        'select min(date) as first, count(*) as days from lifecycle.growth_accounting_daily',
      );
      expect(day(span.first)).toBe('1899-11-01');
      // 1899-11-01 to 2024-03-31, both included
      expect(Number(span.days)).toBe(45442);
      const rows = await wh.query<Record<string, unknown>>(
        `select date, new_users, current_users, reactivated_users, resurrected_users, at_risk_wau_users,
                at_risk_mau_users, dormant_users
         from lifecycle.growth_accounting_daily where date >= date '2024-03-29' order by date`,
      );
      const counts = rows.map((r) => ({
        date: day(r.date),
        new: Number(r.new_users),
        resurrected: Number(r.resurrected_users),
        at_risk_wau: Number(r.at_risk_wau_users),
        at_risk_mau: Number(r.at_risk_mau_users),
        dormant: Number(r.dormant_users),
        current: Number(r.current_users),
        reactivated: Number(r.reactivated_users),
      }));
      const zero = {
        new: 0,
        resurrected: 0,
        at_risk_wau: 0,
        at_risk_mau: 0,
        dormant: 0,
        current: 0,
        reactivated: 0,
      };
      expect(counts).toEqual([
        { ...zero, date: '2024-03-29', new: 1, dormant: 1 },
        { ...zero, date: '2024-03-30', resurrected: 1, at_risk_wau: 1 },
        { ...zero, date: '2024-03-31', at_risk_wau: 2 },
      ]);

      // an incremental day after, then an incremental run that recomputes everything (W = 8): the early days
      // are recomputed too (with W = 8, a is at_risk_wau on 1899-11-08, the 7th day after its activity, before the old 1900-01-01 marker)
      await build(wh, { vars: { lifecycle__as_of_date: '2024-04-01' } });
      const early = async () =>
        (
          await wh.query<{ wau: number | bigint; mau: number | bigint }>(
            `select at_risk_wau_users as wau, at_risk_mau_users as mau
             from lifecycle.growth_accounting_daily where date = date '1899-11-08'`,
          )
        ).map((r) => [Number(r.wau), Number(r.mau)]);
      expect(await early()).toEqual([[0, 1]]);
      await build(wh, { vars: { lifecycle__as_of_date: '2024-04-01', lifecycle__wau_days: 8 } });
      expect(await early()).toEqual([[1, 0]]);
      const [after] = await wh.query<{ first: unknown; days: number | bigint; dormant: number | bigint }>(
        `select min(date) as first, count(*) as days, min(dormant_users) as dormant
         from lifecycle.growth_accounting_daily`,
      );
      expect(day(after.first)).toBe('1899-11-01');
      expect(Number(after.days)).toBe(45443);
      expect(Number(after.dormant)).toBe(0);
      await expectStatusDailyFromTheFirstDay();
    } finally {
      await wh.close();
    }
  }, 120000);
});

/**
 * A user first seen before 1900 through a createdAt trait, arriving in an incremental run: the run restarts a
 * new user's history "from the start", which was the 1900-01-01 marker, so the history before it collapsed into
 * that day and the user was churned since 1900-01-01 (a full refresh: since 1899-04-02, 90 days after
 * 1899-01-02, SPEC 4.4), and status_daily began on 1900-01-01.
 */
describeEachWarehouse('a createdAt before 1900 in an incremental run', ({ tw }) => {
  test('dates the history as a full refresh does', async () => {
    const wh = await tw().open();
    try {
      await wh.exec('drop schema if exists lifecycle cascade');
      await wh.exec('drop schema if exists cdp cascade');
      await landRaw(wh, { tracks: [track('e1', 'b', '2024-06-01')] });
      await build(wh, { vars: { lifecycle__as_of_date: '2024-06-02' } });
      await landRaw(wh, {
        identifies: [
          {
            id: 'i1',
            user_id: 'c',
            anonymous_id: null,
            timestamp: '2024-06-01T12:00:00.000Z',
            received_at: '2024-06-01T12:00:00.000Z',
            traits: { createdAt: '1899-01-02' },
          },
        ],
      });
      const state = async () => ({
        users: (
          await wh.query<{ user_id: string; status: string; since: unknown; first: unknown }>(
            `select user_id, lifecycle_status as status, status_since as since, first_seen_date as first
             from lifecycle.user_lifecycle order by user_id`,
          )
        ).map((r) => ({ ...r, since: day(r.since), first: day(r.first) })),
        daily: (
          await wh.query<{ first: unknown; rows: number | bigint; users: number | bigint }>(
            'select min(date) as first, count(*) as rows, sum(users) as users from lifecycle.status_daily',
          )
        ).map((r) => ({ first: day(r.first), rows: Number(r.rows), users: Number(r.users) })),
      });
      await build(wh, { vars: { lifecycle__as_of_date: '2024-06-02' } });
      const incremental = await state();
      expect(incremental.users).toEqual([
        { user_id: 'b', status: 'new', since: '2024-06-01', first: '2024-06-01' },
        { user_id: 'c', status: 'churned', since: '1899-04-02', first: '1899-01-02' },
      ]);
      expect(incremental.daily[0].first).toBe('1899-01-02');
      await build(wh, { vars: { lifecycle__as_of_date: '2024-06-02' }, fullRefresh: true });
      expect(await state()).toEqual(incremental);
    } finally {
      await wh.close();
    }
  }, 120000);
});

// The status history depends only on the gaps between a user's days (SPEC 4.4), so the same pattern of activity
// dated in 1850 and in 2020 must give the same runs, shifted by the same number of days. The sweep packed its
// dates as day counts from 1900-01-01, which a date before 1900 made negative: the 1850 user's statuses were
// garbage (dormant while active).
describeEachWarehouse('a status history before 1900', ({ tw }) => {
  const starts = { early: '1850-03-01', late: '2020-03-01' };
  const shift = Math.round((Date.parse(starts.late) - Date.parse(starts.early)) / 86_400_000);

  test('is the history of the same days after 1900, shifted', async () => {
    const wh = await tw().open();
    try {
      const tracks = Object.entries(starts).flatMap(([user, start]) => patternTracks(user, start));
      await landRaw(wh, { tracks }, 'cdp_early');
      await build(wh, {
        schema: 'lc_early',
        rawSchema: 'cdp_early',
        vars: { lifecycle__as_of_date: '2024-01-05' },
      });
      const history = async (user: string, back: number) =>
        (
          await wh.query<{ lifecycle_status: string; valid_from: unknown; valid_to: unknown }>(
            `select lifecycle_status, valid_from, valid_to from lc_early.user_status_history
             where user_id = '${user}' order by valid_from`,
          )
        ).map((r) => ({
          status: r.lifecycle_status,
          from: shiftDays(day(r.valid_from), back),
          to: r.valid_to === null ? null : shiftDays(day(r.valid_to), back),
        }));
      const late = await history('late', 0);
      // the pattern's statuses, in order (a sanity check that it exercises them, not their expected dates)
      expect(late.map((r) => r.status)).toEqual(
        expect.arrayContaining(['new', 'active', 'power', 'at_risk', 'dormant', 'resurrected', 'churned']),
      );
      expect(await history('early', shift)).toEqual(late);
    } finally {
      await wh.close();
    }
  }, 120000);
});

// One event from a zeroed device clock (Go's zero time, 0001-01-01) or a clock far ahead, beside a user's real
// activity, made the sweep's day counts overflow: a 64-bit integer error on both warehouses for a span of more
// than 718 years (every build failed), wrong statuses from 358 years. 1300-01-01 stands for 0001-01-01 here (the
// same overflow, on a date spine a third as long).
// Day counts are now kept within the 358 years before D: the status in force over those years is exact, so from
// the end of its return's "resurrected" week (the 0001 event makes the first 2020 day a return, and the user
// never "new") the history is the same as that of the same days alone; an event after D changes nothing.
describeEachWarehouse('a status history beside a zeroed or runaway clock', ({ tw }) => {
  const start = '2020-03-01';
  const D = shiftDays(start, 116);
  const from = shiftDays(start, 7);

  test('builds, and is exact over the years before D, incrementally as in a full refresh', async () => {
    const wh = await tw().open();
    try {
      const tracks = ['alone', 'zeroed', 'runaway'].flatMap((user) => patternTracks(user, start));
      tracks.push(track('zeroed-1300', 'zeroed', '1300-01-01'));
      tracks.push(track('runaway-9000', 'runaway', '9000-01-01'));
      // active on the earliest day D keeps exact (131000 days before D, past a date of 1300): the next day that
      // day is before the kept years, and the full refresh of that day dates its statuses differently, so the
      // incremental build must re-derive this user although nothing new happened to them
      tracks.push(track('edge-1300', 'edge', '1300-01-01'));
      tracks.push(track('edge-1', 'edge', shiftDays(D, -130999)));
      tracks.push(track('edge-2', 'edge', shiftDays(D, -130990)));
      // received on their day, the runaway clock's at D (a received_at in 9000 would make every later build read
      // everything, and re-derive every user)
      const atD = `${D}T12:00:00.000Z`;
      await landRaw(
        wh,
        { tracks: tracks.map((t) => (t.received_at > atD ? { ...t, received_at: atD } : t)) },
        'cdp_clock',
      );
      const opts = (asOf: string, fullRefresh = false) => ({
        schema: 'lc_clock',
        rawSchema: 'cdp_clock',
        vars: { lifecycle__as_of_date: asOf },
        fullRefresh,
      });
      await build(wh, opts(D));
      const runs = async (user: string, since: string) =>
        (
          await wh.query<{ lifecycle_status: string; valid_from: unknown; valid_to: unknown }>(
            `select lifecycle_status, valid_from, valid_to from lc_clock.user_status_history
             where user_id = '${user}' order by valid_from`,
          )
        )
          .map((r) => ({
            status: r.lifecycle_status,
            from: day(r.valid_from) < since ? since : day(r.valid_from),
            to: r.valid_to === null ? null : day(r.valid_to),
          }))
          .filter((r) => r.to === null || r.to >= since);
      const alone = await runs('alone', from);
      expect(alone.map((r) => r.status)).toEqual(
        expect.arrayContaining(['power', 'at_risk', 'dormant', 'resurrected', 'churned']),
      );
      expect(await runs('zeroed', from)).toEqual(alone);
      expect(await runs('runaway', '0001-01-01')).toEqual(await runs('alone', '0001-01-01'));
      const [current] = await wh.query<{ statuses: number | bigint }>(
        `select count(distinct lifecycle_status) as statuses from lc_clock.user_lifecycle
         where user_id in ('alone', 'zeroed', 'runaway')`,
      );
      expect(Number(current.statuses)).toBe(1);

      // the next day, incrementally, then a full refresh of the same day: the same rows
      await landRaw(wh, { tracks: [track('zeroed-next', 'zeroed', shiftDays(D, 1))] }, 'cdp_clock');
      const history = async () =>
        (
          await wh.query<{
            user_id: string;
            lifecycle_status: string;
            valid_from: unknown;
            valid_to: unknown;
          }>(
            `select user_id, lifecycle_status, valid_from, valid_to from lc_clock.user_status_history
             order by user_id, valid_from`,
          )
        ).map((r) => ({
          ...r,
          valid_from: day(r.valid_from),
          valid_to: r.valid_to === null ? null : day(r.valid_to),
        }));
      await build(wh, opts(shiftDays(D, 1)));
      const incremental = await history();
      await build(wh, opts(shiftDays(D, 1), true));
      expect(await history()).toEqual(incremental);
    } finally {
      await wh.close();
    }
  }, 180000);
});
