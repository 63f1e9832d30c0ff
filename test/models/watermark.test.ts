/**
 * The incremental watermark at its edges: raw rows without a received_at (a customer's own loader into the
 * tables the sources point at) and a received_at in the future (a loader's clock). The first must be read, so
 * the incremental build still equals a full refresh (SPEC 4); the second must not make every later run read
 * every raw row again. Compared with a --full-refresh of the same data, on DuckDB and PostgreSQL.
 */
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import {
  build,
  emptyRaw as empty,
  landRaw,
  normalise,
  readMarts,
  viewedItem as track,
  type Raw,
} from './helpers';

const at = (day: string) => `${day}T12:00:00.000Z`;
// No lookback by default, so that the rows a build re-reads are exactly those received after the previous one
// started; the deletion tests inside the window set one.
const vars = (asOf: string, lookbackHours = 0) => ({
  lifecycle__as_of_date: asOf,
  lifecycle__lookback_hours: lookbackHours,
});

/** Builds incrementally, reads the marts, then rebuilds the same D with --full-refresh and reads them again. */
async function incrementalAndFull(wh: Warehouse, asOf: string, lookbackHours = 0) {
  const inc = await build(wh, { vars: vars(asOf, lookbackHours) });
  const incremental = normalise(await readMarts(wh));
  await build(wh, { vars: vars(asOf, lookbackHours), fullRefresh: true });
  const full = normalise(await readMarts(wh));
  return { inc, incremental, full };
}

/** The source_days rows the newest build wrote: all of them when it read every raw row again. */
async function rewrittenPairs(wh: Warehouse): Promise<number> {
  const [r] = await wh.query<{ n: unknown }>(
    `select count(*) as n from lifecycle.int_lifecycle__source_days
     where _built_at = (select max(_built_at) from lifecycle.int_lifecycle__source_days)`,
  );
  return Number(r.n);
}

describeEachWarehouse('the incremental watermark', ({ tw }) => {
  let wh: Warehouse;
  const base: Raw = {
    ...empty(),
    tracks: ['2024-03-01', '2024-03-05', '2024-03-10', '2024-03-19'].flatMap((d, i) => [
      track(`base${i}`, null, d, at(d)),
      track('steady', null, d, at(d)),
    ]),
  };

  beforeEach(async () => {
    wh = await tw().open();
    await wh.exec('drop schema if exists lifecycle cascade');
    await wh.exec('drop schema if exists cdp cascade');
    await landRaw(wh, base);
    await build(wh, { vars: vars('2024-03-20'), fullRefresh: true });
  });
  afterEach(async () => {
    await wh?.close();
  });

  test('rows without a received_at landed after a build are read by the next incremental one', async () => {
    await landRaw(wh, {
      ...empty(),
      tracks: [
        track('unstamped', null, '2024-03-12', null),
        track('unstamped', null, '2024-03-21', null),
        track(null, 'unstamped_anon', '2024-03-11', null),
      ],
      identifies: [
        {
          id: 'w_i1',
          user_id: 'unstamped',
          anonymous_id: 'unstamped_anon',
          timestamp: '2024-03-11T11:00:00.000Z',
          received_at: null as unknown as string,
          traits: { plan: 'pro' },
        },
      ],
    });
    const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21');
    expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
    const user = incremental.user_lifecycle.find((u) => u.user_id === 'unstamped');
    expect(user).toMatchObject({ first_seen_date: '2024-03-11', subscription_status: 'pro' });
    expect(incremental).toEqual(full);
  });

  test('a received_at in the future does not make every later run read everything', async () => {
    await landRaw(wh, {
      ...empty(),
      tracks: [track('clock', null, '2024-03-20', '2099-01-01T00:00:00.000Z')],
    });
    await build(wh, { vars: vars('2024-03-21') });
    // the next days land as usual, received now
    const now = new Date().toISOString();
    await landRaw(wh, { ...empty(), tracks: [track('steady', null, '2024-03-21', now)] });
    const first = await incrementalAndFull(wh, '2024-03-22');
    expect(first.incremental).toEqual(first.full);
    await build(wh, { vars: vars('2024-03-22') });
    await landRaw(wh, {
      ...empty(),
      tracks: [track('steady', null, '2024-03-22', new Date().toISOString())],
    });
    const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-23');
    expect(incremental).toEqual(full);
    // reading everything would have rewritten all 9 (source, day) pairs; the newest row's pair and the future
    // row's pair (after every cutoff, so read each time) are what is left
    await build(wh, { vars: vars('2024-03-23') });
    expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
    await landRaw(wh, {
      ...empty(),
      tracks: [track('steady', null, '2024-03-23', new Date().toISOString())],
    });
    await build(wh, { vars: vars('2024-03-24') });
    expect(await rewrittenPairs(wh)).toBe(2);
  });

  test.each(['1899-12-31T00:00:00.000Z', '1900-01-01T00:00:00.000Z', '0001-01-01T00:00:00.000Z'])(
    'a row received at %s (at or before the watermark that stands for "everything") is read',
    async (received) => {
      await landRaw(wh, { ...empty(), tracks: [track('old_clock', null, '2024-03-15', received)] });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21');
      expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.map((u) => u.user_id)).toContain('old_clock');
      expect(incremental).toEqual(full);
    },
  );

  test('a copy without a received_at counts as the first received: a stamped copy landed later loses', async () => {
    // read by the next build (a new unstamped row makes it read everything) ...
    await landRaw(wh, { ...empty(), tracks: [{ ...track('ux', null, '2024-03-12', null), id: 'dup' }] });
    await build(wh, { vars: vars('2024-03-21') });
    // ... then the same message id again, stamped and attributed to another user; and an identify the same way
    const now = new Date().toISOString();
    await landRaw(wh, {
      ...empty(),
      tracks: [{ ...track('uy', null, '2024-03-12', now), id: 'dup' }],
      identifies: [
        {
          id: 'dup_i',
          user_id: 'u5',
          anonymous_id: 'a5',
          timestamp: '2024-03-11T09:00:00.000Z',
          received_at: null as unknown as string,
          traits: {},
        },
      ],
    });
    await build(wh, { vars: vars('2024-03-22') });
    await landRaw(wh, {
      ...empty(),
      tracks: [track(null, 'a5', '2024-03-10', new Date().toISOString())],
      identifies: [
        {
          id: 'dup_i',
          user_id: 'u6',
          anonymous_id: 'a6',
          timestamp: '2024-03-11T09:00:00.000Z',
          received_at: new Date().toISOString(),
          traits: {},
        },
      ],
    });
    const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-23');
    expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
    const users = incremental.user_lifecycle.map((u) => u.user_id);
    expect(users).toContain('ux');
    expect(users).toContain('u5');
    expect(users).not.toContain('uy');
    expect(users).not.toContain('u6');
    expect(incremental).toEqual(full);
  });

  test('between two rows of the same time, one without a received_at, the stamped one is the latest', async () => {
    const at = '2024-03-11T09:00:00.000Z';
    const ident = (id: string, user: string, anonymous: string, plan: string, received: string | null) => ({
      id,
      user_id: user,
      anonymous_id: anonymous,
      timestamp: at,
      received_at: received as string,
      traits: { plan },
    });
    await landRaw(wh, {
      ...empty(),
      tracks: [track('tie_a', null, '2024-03-11', null), track(null, 'tie_anon', '2024-03-10', null)],
      identifies: [
        ident('tie1', 'tie_a', 'tie_anon', 'free', null),
        ident('tie2', 'tie_a', 'other_anon', 'pro', new Date().toISOString()),
        ident('tie3', 'tie_b', 'tie_anon', 'team', new Date().toISOString()),
      ],
    });
    const { incremental, full } = await incrementalAndFull(wh, '2024-03-21');
    for (const r of [incremental, full]) {
      const a = r.user_lifecycle.find((u) => u.user_id === 'tie_a');
      const b = r.user_lifecycle.find((u) => u.user_id === 'tie_b');
      // the plan of the stamped identify, and tie_anon's day goes to the user of its stamped identify
      expect(a?.subscription_status).toBe('pro');
      expect(b?.first_seen_date).toBe('2024-03-10');
    }
    expect(incremental).toEqual(full);
  });

  test('pointed at other raw tables with as many rows, the next run recomputes from them', async () => {
    // the same number of rows, other users: no count can tell, the config fingerprint does
    await landRaw(
      wh,
      { ...base, tracks: base.tracks.map((t) => ({ ...t, user_id: `other_${t.user_id}` })) },
      'cdp_moved',
    );
    const inc = await build(wh, { vars: vars('2024-03-21'), rawSchema: 'cdp_moved' });
    expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
    const incremental = normalise(await readMarts(wh));
    expect(incremental.user_lifecycle.map((u) => u.user_id).every((u) => u.startsWith('other_'))).toBe(true);
    await build(wh, { vars: vars('2024-03-21'), rawSchema: 'cdp_moved', fullRefresh: true });
    expect(incremental).toEqual(normalise(await readMarts(wh)));
    await wh.exec('drop schema cdp_moved cascade');
  });

  describe('raw rows deleted after a build (a user erased on request)', () => {
    // gone: two days of tracks, and an anonymous day stitched to them by an identify with a plan
    const erased: Raw = {
      ...empty(),
      tracks: [
        track('gone', null, '2024-03-02', at('2024-03-02')),
        track('gone', null, '2024-03-12', at('2024-03-12')),
        track(null, 'gone_anon', '2024-03-01', at('2024-03-01')),
        track('stays', null, '2024-03-12', at('2024-03-12')),
      ],
      identifies: [
        {
          id: 'gone_i',
          user_id: 'gone',
          anonymous_id: 'gone_anon',
          timestamp: '2024-03-03T09:00:00.000Z',
          received_at: at('2024-03-03'),
          traits: { plan: 'pro' },
        },
      ],
    };
    // an identify of 2024-03-19, received at `received`
    const identify = (id: string, user: string, anonymous: string, received: string) => ({
      id,
      user_id: user,
      anonymous_id: anonymous,
      timestamp: '2024-03-19T09:00:00.000Z',
      received_at: received,
      traits: {},
    });
    const erase = async (where: { tracks: string; identifies: string }) => {
      await wh.exec(`delete from cdp.tracks where ${where.tracks}`);
      await wh.exec(`delete from cdp.identifies where ${where.identifies}`);
    };

    test('every row of a user: the next incremental build forgets them, as a full refresh does', async () => {
      await landRaw(wh, erased);
      await build(wh, { vars: vars('2024-03-20') });
      const before = normalise(await readMarts(wh));
      expect(before.user_lifecycle.find((u) => u.user_id === 'gone')).toMatchObject({
        first_seen_date: '2024-03-01',
        subscription_status: 'pro',
      });
      await erase({
        tracks: "user_id = 'gone' or anonymous_id = 'gone_anon'",
        identifies: "user_id = 'gone'",
      });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21');
      expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.map((u) => u.user_id)).not.toContain('gone');
      expect(incremental.user_status_history.map((h) => h.user_id)).not.toContain('gone');
      expect(incremental).toEqual(full);
      // and the intermediate tables keep nothing of them either, once the next build has run
      const [{ n }] = await wh.query<{ n: unknown }>(
        `select count(*) as n from lifecycle.int_lifecycle__identity where source_key = 'a:gone_anon' and user_id is not null`,
      );
      expect(Number(n)).toBe(0);
    });

    test('only the identify: the anonymous day goes back to nobody, the rest of the user stays', async () => {
      await landRaw(wh, erased);
      await build(wh, { vars: vars('2024-03-20') });
      await erase({ tracks: '1 = 0', identifies: "id = 'gone_i'" });
      const { incremental, full } = await incrementalAndFull(wh, '2024-03-21');
      expect(incremental.user_lifecycle.find((u) => u.user_id === 'gone')).toMatchObject({
        first_seen_date: '2024-03-02',
        subscription_status: null,
      });
      expect(incremental).toEqual(full);
    });

    test('rows received inside the lookback window of the build before', async () => {
      // a lookback of 48 hours: the cutoff lies before both rows, which the next build re-reads anyway
      await landRaw(wh, {
        ...empty(),
        tracks: [
          track('recent', null, '2024-03-19', at('2024-03-20')),
          track('recent', null, '2024-03-20', at('2024-03-20')),
        ],
      });
      await build(wh, { vars: vars('2024-03-20', 48) });
      await erase({
        tracks: "user_id = 'recent' and timestamp < '2024-03-20T00:00:00Z'",
        identifies: '1 = 0',
      });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21', 48);
      expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.find((u) => u.user_id === 'recent')).toMatchObject({
        first_seen_date: '2024-03-20',
      });
      expect(incremental).toEqual(full);
    });

    test('a row inside the lookback window deleted while another lands late in it: the counts cancel, the pairs do not', async () => {
      await landRaw(wh, {
        ...empty(),
        tracks: [track('erased', null, '2024-03-19', at('2024-03-20'))],
      });
      await build(wh, { vars: vars('2024-03-20', 48) });
      await erase({ tracks: "user_id = 'erased'", identifies: '1 = 0' });
      // a loader commits a row stamped inside the same window after the build: one row more, one fewer
      await landRaw(wh, {
        ...empty(),
        tracks: [track('lagging', null, '2024-03-19', '2024-03-20T06:00:00.000Z')],
      });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21', 48);
      expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
      const users = incremental.user_lifecycle.map((u) => u.user_id);
      expect(users).not.toContain('erased');
      expect(users).toContain('lagging');
      expect(incremental).toEqual(full);
    });

    test('an identify inside the lookback window deleted while another lands late in it: the mapping goes', async () => {
      await landRaw(wh, {
        ...empty(),
        tracks: [
          track(null, 'anon_e', '2024-03-18', at('2024-03-18')),
          track('erased', null, '2024-03-02', at('2024-03-02')),
        ],
        identifies: [identify('ie', 'erased', 'anon_e', '2024-03-20T12:00:00.000Z')],
      });
      await build(wh, { vars: vars('2024-03-20', 48) });
      expect(normalise(await readMarts(wh)).user_lifecycle.find((u) => u.user_id === 'erased')).toMatchObject(
        {
          last_active_date: '2024-03-18',
        },
      );
      await erase({ tracks: '1 = 0', identifies: "id = 'ie'" });
      // another user's identify, committed late inside the same window: the identify counts stay equal
      await landRaw(wh, {
        ...empty(),
        identifies: [identify('il', 'late_user', 'anon_l', '2024-03-20T06:00:00.000Z')],
      });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21', 48);
      expect(inc.models.find((m) => m.name === 'int_lifecycle__identity')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.find((u) => u.user_id === 'erased')).toMatchObject({
        last_active_date: '2024-03-02',
      });
      expect(incremental).toEqual(full);
    });

    test('an identify stamped after its build started, deleted before the next build: the mapping goes', async () => {
      await landRaw(wh, {
        ...empty(),
        tracks: [
          track(null, 'anon_f', '2024-03-18', at('2024-03-18')),
          track('fu', null, '2024-03-02', at('2024-03-02')),
        ],
        identifies: [identify('if', 'fu', 'anon_f', '2099-01-01T00:00:00.000Z')],
      });
      await build(wh, { vars: vars('2024-03-20') });
      await erase({ tracks: '1 = 0', identifies: "id = 'if'" });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21');
      expect(inc.models.find((m) => m.name === 'int_lifecycle__identity')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.find((u) => u.user_id === 'fu')).toMatchObject({
        last_active_date: '2024-03-02',
      });
      expect(incremental).toEqual(full);
    });

    test('a row stamped after its build started (a loader clock ahead), deleted before the next build', async () => {
      await landRaw(wh, {
        ...empty(),
        tracks: [track('ahead', null, '2024-03-15', '2099-01-01T00:00:00.000Z')],
      });
      await build(wh, { vars: vars('2024-03-20') });
      expect(normalise(await readMarts(wh)).user_lifecycle.map((u) => u.user_id)).toContain('ahead');
      await erase({ tracks: "user_id = 'ahead'", identifies: '1 = 0' });
      const { inc, incremental, full } = await incrementalAndFull(wh, '2024-03-21');
      expect(inc.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
      expect(incremental.user_lifecycle.map((u) => u.user_id)).not.toContain('ahead');
      expect(incremental).toEqual(full);
    });
  });
});
