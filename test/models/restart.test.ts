/**
 * Incremental status histories restart each user from the earliest day their status can have changed
 * (int_lifecycle__status_runs): these cases make a too-late restart visible. Each affected user also has an
 * ordinary event on the new D, so a restart that only looked at the newest facts would keep a stale history.
 * Every mart is compared with the independent oracle, on DuckDB and PostgreSQL.
 */
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import { merge } from './generate';
import { build, emptyRaw as empty, expectOracle, landRaw, viewedItem as track, type Raw } from './helpers';

let seq = 0;
function identify(user: string, anonymous: string | null, day: string, traits: Record<string, unknown> = {}) {
  const timestamp = `${day}T08:00:00.000Z`;
  return {
    id: `i${++seq}`,
    user_id: user,
    anonymous_id: anonymous,
    timestamp,
    received_at: timestamp,
    traits,
  };
}

const tracks = (...t: ReturnType<typeof track>[]): Raw => ({ ...empty(), tracks: t });

describeEachWarehouse('status histories restarted from the earliest change', ({ tw }) => {
  let wh: Warehouse;
  const D1 = '2024-03-20';
  const D2 = '2024-03-21';
  // Dormant from December to D1 (days 30+ after their last activity), each with activity on D1.
  const first: Raw = {
    ...tracks(
      ...['01', '02', '03', '04', '05'].map((d) => track('late_u', null, `2023-12-${d}`)),
      track('late_u', null, D1),
      track('gain_u', null, '2023-12-01'),
      track('gain_u', null, D1),
      track(null, 'gain_anon', '2024-01-10'),
      track(null, 'gain_anon', '2024-01-11'),
      track('lose_u', null, '2023-12-01'),
      track('lose_u', null, D1),
      track(null, 'moved_anon', '2024-01-20'),
      track(null, 'moved_anon', '2024-01-21'),
      track('win_u', null, '2023-11-01'),
    ),
    identifies: [identify('lose_u', 'moved_anon', '2024-01-22')],
  };
  const recv = `${D2}T12:00:00.000Z`;
  const second: Raw = {
    ...tracks(
      // a late activity dated in the dormant gap: a return day in February (a re-derived pair before D1)
      track('late_u', null, '2024-02-15', recv),
      track('late_u', null, D2, recv),
      track('gain_u', null, D2, recv),
      track('lose_u', null, D2, recv),
      track('win_u', null, D2, recv),
    ),
    identifies: [
      // gain_u gains an anonymous January (a source that moved to them) ...
      { ...identify('gain_u', 'gain_anon', D2), received_at: recv },
      // ... and moved_anon's January moves from lose_u to win_u (the latest identify wins)
      { ...identify('win_u', 'moved_anon', D2), received_at: recv },
    ],
  };

  beforeAll(async () => {
    wh = await tw().open();
    await landRaw(wh, first);
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('a late activity, a gained and a lost anonymous history rewrite the runs before the new D', async () => {
    await build(wh, { vars: { lifecycle__as_of_date: D1 }, fullRefresh: true });
    await landRaw(wh, second);
    const inc = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(inc.models.find((m) => m.name === 'int_lifecycle__status_runs')?.incremental).toBe(true);
    await expectOracle(wh, merge(first, second), D2);
    // the data really moves the histories: each user has a return day in January or February at D2 ...
    const history = await wh.query<{ user_id: string; valid_from: unknown }>(
      "select user_id, valid_from from lifecycle.user_status_history where lifecycle_status = 'resurrected' order by 1, 2",
    );
    const returns = (u: string) =>
      history.filter((h) => h.user_id === u).map((h) => String(h.valid_from).slice(0, 10));
    expect(returns('late_u')).toContain('2024-02-15');
    expect(returns('gain_u')).toContain('2024-01-10');
    expect(returns('win_u')).toContain('2024-01-20');
    // ... and lose_u no longer has the one they had at D1
    expect(returns('lose_u')).not.toContain('2024-01-20');
  });

  test('a week later (the passage of time only) the runs still equal the oracle', async () => {
    await build(wh, { vars: { lifecycle__as_of_date: '2024-03-28' } });
    await expectOracle(wh, merge(first, second), '2024-03-28');
  });
});

/**
 * The restart date comes from what changed since the last build of int_lifecycle__status_runs. When an upstream
 * model ran twice without it (partial builds with --exclude), the older change is overwritten and the model must
 * fall back to the user's whole history; and int_lifecycle__user_days, when identity ran twice without it,
 * re-derives everyone.
 */
describeEachWarehouse('status histories after upstream models were built twice without them', ({ tw }) => {
  let wh: Warehouse;
  let landed: Raw = empty();
  const land = async (raw: Raw) => {
    landed = merge(landed, raw) as Raw;
    await landRaw(wh, raw);
  };
  const base: Raw = {
    ...tracks(
      track('seen_u', null, '2023-12-10'),
      track('seen_u', null, '2023-12-11'),
      track('seen_u', null, '2024-03-20'),
      track('first_u', null, '2023-12-01'),
      track('first_u', null, '2024-03-20'),
      track(null, 'hop_anon', '2024-01-05'),
      track(null, 'hop_anon', '2024-01-06'),
      track('hop2_u', null, '2023-12-01'),
      track('hop2_u', null, '2024-03-20'),
      track(null, 'hop2_anon', '2024-01-05'),
      track(null, 'hop2_anon', '2024-01-06'),
    ),
    identifies: [
      identify('first_u', 'hop_anon', '2024-01-07'),
      identify('hop2_u', 'hop2_anon', '2024-01-07'),
    ],
  };
  const at = (day: string) => `${day}T12:00:00.000Z`;

  beforeAll(async () => {
    wh = await tw().open();
    await land(base);
    await build(wh, { vars: { lifecycle__as_of_date: '2024-03-20' }, fullRefresh: true });
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('user_facts built twice: a first_seen_date moved a year back by createdAt still counts', async () => {
    await land({
      ...empty(),
      identifies: [
        {
          ...identify('seen_u', null, '2024-03-21', { createdAt: '2023-03-01' }),
          received_at: at('2024-03-21'),
        },
      ],
    });
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-21' },
      exclude: ['int_lifecycle__status_runs+'],
    });
    await land(tracks(track('seen_u', null, '2024-03-22', at('2024-03-22'))));
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-22' },
      exclude: ['int_lifecycle__status_runs+'],
    });
    await build(wh, { vars: { lifecycle__as_of_date: '2024-03-22' } });
    await expectOracle(wh, landed, '2024-03-22');
    const [since] = await wh.query<{ first_seen_date: unknown }>(
      "select first_seen_date from lifecycle.user_lifecycle where user_id = 'seen_u'",
    );
    expect(String(since.first_seen_date).slice(0, 10)).toBe('2023-03-01');
  });

  test('identity built twice without status_runs: the user an anonymous id first left loses its history', async () => {
    // hop_anon: first_u -> second_u (identity, user_days, not user_facts) -> third_u (identity, user_days)
    await land({
      ...tracks(track('second_u', null, '2024-03-23', at('2024-03-23'))),
      identifies: [{ ...identify('second_u', 'hop_anon', '2024-03-23'), received_at: at('2024-03-23') }],
    });
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-23' },
      exclude: ['int_lifecycle__user_facts+'],
    });
    await land({
      ...tracks(
        track('first_u', null, '2024-03-24', at('2024-03-24')),
        track('third_u', null, '2024-03-24', at('2024-03-24')),
      ),
      identifies: [{ ...identify('third_u', 'hop_anon', '2024-03-24'), received_at: at('2024-03-24') }],
    });
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-24' },
      exclude: ['int_lifecycle__user_facts+'],
    });
    await build(wh, { vars: { lifecycle__as_of_date: '2024-03-24' } });
    await expectOracle(wh, landed, '2024-03-24');
  });

  test('identity built twice without user_days: every user is re-derived', async () => {
    // hop2_anon: hop2_u -> hop2_second -> hop2_third, with only identity (and raw facts) built in between
    await land({
      ...tracks(track('hop2_second', null, '2024-03-25', at('2024-03-25'))),
      identifies: [{ ...identify('hop2_second', 'hop2_anon', '2024-03-25'), received_at: at('2024-03-25') }],
    });
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-25' },
      exclude: ['int_lifecycle__user_days+'],
    });
    await land({
      // hop2_u has nothing new: only the identity map says it lost hop2_anon's January
      ...tracks(track('hop2_third', null, '2024-03-26', at('2024-03-26'))),
      identifies: [{ ...identify('hop2_third', 'hop2_anon', '2024-03-26'), received_at: at('2024-03-26') }],
    });
    await build(wh, {
      vars: { lifecycle__as_of_date: '2024-03-26' },
      exclude: ['int_lifecycle__user_days+'],
    });
    await build(wh, { vars: { lifecycle__as_of_date: '2024-03-26' } });
    await expectOracle(wh, landed, '2024-03-26');
  });
});

/**
 * A partial --full-refresh of int_lifecycle__user_days with its upstream rebuilds it without the tombstone of a
 * user the alias left with no fact at all, so the models downstream cannot learn of that user from the rows
 * rebuilt since their last build. The refresh also restarts the builds log (int_lifecycle__builds is upstream),
 * and the next build then recomputes every model from scratch: the user goes.
 */
describeEachWarehouse('a user left without facts by a partial --full-refresh upstream', ({ tw }) => {
  let wh: Warehouse;
  const D1 = '2024-03-20';
  const D2 = '2024-03-21';
  const first: Raw = tracks(
    track('gone_u', null, '2024-03-01'),
    track('gone_u', null, D1),
    track('keep_u', null, '2024-03-10'),
  );
  // gone_u is aliased to keep_u: every event of gone_u is keep_u's now (SPEC 4.2), and gone_u has no fact
  const at = `${D2}T09:00:00.000Z`;
  const second: Raw = {
    ...empty(),
    aliases: [{ id: 'al1', previous_id: 'gone_u', user_id: 'keep_u', timestamp: at, received_at: at }],
  };

  beforeAll(async () => {
    wh = await tw().open();
    await landRaw(wh, first);
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('the next build drops the user, and every mart equals the oracle', async () => {
    await build(wh, { vars: { lifecycle__as_of_date: D1 }, fullRefresh: true });
    expect(
      await wh.query("select user_id from lifecycle.user_lifecycle where user_id = 'gone_u'"),
    ).toHaveLength(1);
    await landRaw(wh, second);
    await build(wh, {
      vars: { lifecycle__as_of_date: D2 },
      fullRefresh: true,
      select: ['+int_lifecycle__user_days'],
    });
    await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    await expectOracle(wh, merge(first, second), D2);
    expect(await wh.query("select user_id from lifecycle.user_lifecycle where user_id = 'gone_u'")).toEqual(
      [],
    );
  });
});

/**
 * A build that leaves the builds log out (dbt's `dbt run -s int_lifecycle__identity`) adds no row to
 * int_lifecycle__builds, so the log alone cannot tell the models downstream that they skipped it: the rows it
 * stamped with a time the log lacks do. A model whose own last build is not in the log recomputes everything,
 * and says so on the rows it writes (`_recomputed_all`), as a full build does: the models downstream then
 * recompute everything too, since the previous_* values that told them what changed may be gone. These runs
 * use no note of pending rebuilds (the runner's), as with dbt.
 */
describeEachWarehouse('identity rebuilt by builds that leave the builds log out', ({ tw }) => {
  let wh: Warehouse;
  const at = (day: string) => `${day}T12:00:00.000Z`;
  const moveTo = (user: string, anonymous: string, day: string): Raw => ({
    ...empty(),
    identifies: [{ ...identify(user, anonymous, day), received_at: at(day) }],
  });

  beforeAll(async () => {
    wh = await tw().open();
  });
  afterAll(async () => {
    await wh?.close();
  });

  /**
   * Each case in schemas of its own (cdp_<n>, lifecycle_<n>), so that one cannot pass on what another left:
   * anon1's April is a_user's until an identify moves it. No lookback: a build re-reads nothing a build
   * before it has read.
   */
  const scenario = async (n: number) => {
    const rawSchema = `cdp_${n}`;
    const schema = `lifecycle_${n}`;
    let landed: Raw = empty();
    const land = async (raw: Raw) => {
      landed = merge(landed, raw) as Raw;
      await landRaw(wh, raw, rawSchema);
    };
    const run = (asOf: string, opts: { select?: string[]; exclude?: string[]; fullRefresh?: boolean } = {}) =>
      build(wh, {
        schema,
        rawSchema,
        vars: { lifecycle__lookback_hours: 0, lifecycle__as_of_date: asOf },
        ...opts,
      });
    await land({
      ...tracks(track('a_user', null, '2024-05-01'), track(null, 'anon1', '2024-04-01')),
      identifies: [identify('a_user', 'anon1', '2024-04-02')],
    });
    await run('2024-05-10', { fullRefresh: true });
    return {
      land,
      run,
      eraseTracks: async (user: string) => {
        landed = { ...landed, tracks: landed.tracks.filter((t) => t.user_id !== user) };
        await wh.exec(`delete from ${rawSchema}.tracks where user_id = '${user}'`);
      },
      // the runner's own note of models to rebuild in full (dbt keeps none)
      dropPendingNote: () => wh.exec(`drop table if exists ${schema}.cdp_lifecycle_pending_rebuilds`),
      expectOracle: (asOf: string) => expectOracle(wh, landed, asOf, schema),
      firstSeen: async (user: string) => {
        const [r] = await wh.query<{ first_seen_date: unknown }>(
          `select first_seen_date from ${schema}.user_lifecycle where user_id = '${user}'`,
        );
        return String(r.first_seen_date).slice(0, 10);
      },
    };
  };

  /** anon1 moves to b_user, then to c_user, each time with only identity built (no builds log row). */
  const identityAloneTwice = async (s: Awaited<ReturnType<typeof scenario>>) => {
    await s.land(moveTo('b_user', 'anon1', '2024-05-11'));
    await s.run('2024-05-11', { select: ['int_lifecycle__identity'] });
    await s.land(moveTo('c_user', 'anon1', '2024-05-14'));
    await s.run('2024-05-14', { select: ['int_lifecycle__identity'] });
  };

  test('identity built alone twice, then the models after it: the user the id first left loses its history', async () => {
    const s = await scenario(1);
    await identityAloneTwice(s);
    // identity only remembers b_user as the previous user: a_user is found through the unlogged builds
    await s.run('2024-05-14', { select: ['int_lifecycle__source_days', 'int_lifecycle__user_days+'] });
    await s.expectOracle('2024-05-14');
    expect(await s.firstSeen('a_user')).toBe('2024-04-02');
  });

  test('identity built alone twice, then a complete build: the same', async () => {
    const s = await scenario(2);
    await identityAloneTwice(s);
    await s.dropPendingNote();
    await s.run('2024-05-14');
    await s.expectOracle('2024-05-14');
    expect(await s.firstSeen('a_user')).toBe('2024-04-02');
  });

  test('identity alone rebuilt in full (dbt run --full-refresh -s int_lifecycle__identity), then a complete build', async () => {
    const s = await scenario(3);
    await s.land(moveTo('b_user', 'anon1', '2024-05-11'));
    await s.run('2024-05-11', { select: ['int_lifecycle__identity'], fullRefresh: true });
    await s.dropPendingNote();
    await s.run('2024-05-11');
    await s.expectOracle('2024-05-11');
    expect(await s.firstSeen('a_user')).toBe('2024-04-02');
  });

  test('source_days alone rebuilt in full after a user was erased, then a complete build: the user goes', async () => {
    const s = await scenario(4);
    await s.land(tracks(track('gone_user', null, '2024-05-02', at('2024-05-02'))));
    await s.run('2024-05-11');
    expect(await s.firstSeen('gone_user')).toBe('2024-05-02');
    // the rebuilt table has no row left for the erased user's day, not even a tombstone downstream could follow
    await s.eraseTracks('gone_user');
    await s.run('2024-05-11', { select: ['int_lifecycle__source_days'], fullRefresh: true });
    await s.dropPendingNote();
    await s.run('2024-05-12');
    await s.expectOracle('2024-05-12');
    expect(
      await wh.query("select user_id from lifecycle_4.user_lifecycle where user_id = 'gone_user'"),
    ).toEqual([]);
  });

  test('a build that leaves only the log out still recomputes the daily marts from the new day only', async () => {
    const s = await scenario(5);
    await s.land(tracks(track('a_user', null, '2024-05-11', at('2024-05-11'))));
    // the rows the models upstream write in this build are not in the log, and are no skipped build
    const r = await s.run('2024-05-11', { exclude: ['int_lifecycle__builds'] });
    const rows = (name: string) => r.models.find((m) => m.name === name)?.rows;
    expect(rows('int_lifecycle__status_daily')).toBeLessThanOrEqual(2);
    expect(rows('int_lifecycle__growth_accounting_daily')).toBeLessThanOrEqual(2);
    await s.expectOracle('2024-05-11');
  });
});
