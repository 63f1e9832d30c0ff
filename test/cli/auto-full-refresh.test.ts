/**
 * `cdp-lifecycle build` rebuilds in full, by itself, when the stored models would recompute every user anyway:
 * a var of the lifecycle rules changed, the package's model version changed, or D moved back. The marts are
 * the oracle's either way (the incremental recompute gives the same rows); this checks that the CLI takes the
 * full path then, says why, and keeps the incremental path otherwise.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Warehouse } from '../../src/warehouse';
import {
  BUILDS_MODEL,
  changeSummary,
  describeChange,
  recomputeReason,
  REREAD_MIN_ROWS,
} from '../../src/cli/full-refresh';
import { buildModels, compileModel, openProject } from '../../src/runner/build';
import { createTestWarehouse, describeEachWarehouse, type TestWarehouse } from '../helpers/warehouses';
import { REPO_ROOT, runCli } from '../helpers/cli';
import { computeOracle, DEFAULT_VARS } from '../models/oracle';
import { emptyRaw, landRaw, normalise, readMarts, viewedItem, type Raw } from '../models/helpers';
import { expectExit } from './fake-cdp';

describeEachWarehouse('build: a full rebuild instead of an incremental recompute of everyone', ({ tw }) => {
  let dir: string;
  // u1 is active on days 1..10 of March: with new_days 7 it leaves "new" on the 8th, with 3 on the 4th
  const raw: Raw = {
    ...emptyRaw(),
    tracks: [
      ...Array.from({ length: 10 }, (_, i) =>
        viewedItem('u1', null, `2024-03-${String(i + 1).padStart(2, '0')}`),
      ),
      viewedItem('u2', null, '2024-02-01'),
      viewedItem(null, 'a9', '2024-03-05'),
    ],
  };
  const cli = (args: string[]) => runCli([...args, '--warehouse', tw().url], { cwd: dir });
  const vars = (v: Record<string, unknown>) => ['--vars', JSON.stringify(v)];
  const modelLines = (stdout: string) =>
    stdout.split('\n').filter((l) => / OK (merged|created) incremental model /.test(l));

  // The CLI opens the DuckDB file itself, so this process holds it only while it lands or reads.
  const withWarehouse = async <T>(fn: (wh: Warehouse) => Promise<T>): Promise<T> => {
    const wh = await tw().open();
    try {
      return await fn(wh);
    } finally {
      await wh.close();
    }
  };
  const marts = () => withWarehouse((wh) => readMarts(wh)).then(normalise);

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-refresh-'));
    await withWarehouse((wh) => landRaw(wh, raw));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('builds incrementally when nothing that the rules depend on changed', async () => {
    expectExit(await cli(['build', ...vars({ lifecycle__as_of_date: '2024-03-12' })]), 0);
    const r = await cli(['build', ...vars({ lifecycle__as_of_date: '2024-03-13' })]);
    expectExit(r, 0);
    expect(r.stdout).not.toMatch(/Rebuilding every model in full/);
    const lines = modelLines(r.stdout);
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines) expect(l).toMatch(/ OK merged incremental model /);
  });

  it('rebuilds in full after a rule var changed, names it, and gives the marts of the new rules', async () => {
    const r = await cli(['build', ...vars({ lifecycle__as_of_date: '2024-03-13', lifecycle__new_days: 3 })]);
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /^Rebuilding every model in full: lifecycle__new_days changed \(7 → 3\) since the last build, so every user is recomputed, which a full build does faster\.$/m,
    );
    const lines = modelLines(r.stdout);
    expect(lines.length).toBeGreaterThan(5);
    for (const l of lines)
      expect(l).toMatch(
        / OK created incremental model .*\(rebuilt in full: lifecycle vars changed since the last build\)$/,
      );
    const expected = normalise(computeOracle(raw, '2024-03-13', { ...DEFAULT_VARS, newDays: 3 }));
    expect(await marts()).toEqual(expected);
    // u1 left "new" on the 4th under the new rule (on the 8th under the default)
    expect(expected.user_status_history.filter((h) => h.user_id === 'u1')[1]).toMatchObject({
      valid_from: '2024-03-04',
    });
  });

  it('rebuilds in full when D moves back before the last build', async () => {
    const r = await cli(['build', ...vars({ lifecycle__as_of_date: '2024-03-06', lifecycle__new_days: 3 })]);
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /^Rebuilding every model in full: the as-of date 2024-03-06 is before the last build's \(2024-03-13\)/m,
    );
    expect(await marts()).toEqual(
      normalise(computeOracle(raw, '2024-03-06', { ...DEFAULT_VARS, newDays: 3 })),
    );
  });

  it('leaves a partial build (--select) to the models themselves', async () => {
    const r = await cli([
      'build',
      '--select',
      'int_lifecycle__builds',
      ...vars({ lifecycle__as_of_date: '2024-03-07', lifecycle__new_days: 4 }),
    ]);
    expectExit(r, 0);
    expect(r.stdout).not.toMatch(/Rebuilding every model in full/);
    expect(r.stdout).toMatch(/ OK merged incremental model .*int_lifecycle__builds/);
  });

  // From here on the vars stay as the last build left them: only the raw tables change.
  const same = (asOf: string) => vars({ lifecycle__as_of_date: asOf, lifecycle__new_days: 4 });
  const newDays4 = { ...DEFAULT_VARS, newDays: 4 };

  it('rebuilds in full after raw rows were deleted (a user erased), and the marts lose them', async () => {
    expectExit(await cli(['build', ...same('2024-03-08')]), 0);
    await withWarehouse((wh) => wh.exec("delete from cdp.tracks where user_id = 'u2'"));
    const r = await cli(['build', ...same('2024-03-09')]);
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /^Rebuilding every model in full: 1 raw row was deleted since the last build, so every raw row is read and every user recomputed, which a full build does faster\.$/m,
    );
    const left: Raw = { ...raw, tracks: raw.tracks.filter((t) => t.user_id !== 'u2') };
    expect(await marts()).toEqual(normalise(computeOracle(left, '2024-03-09', newDays4)));
    // the next day, with nothing deleted, is incremental again
    const next = await cli(['build', ...same('2024-03-10')]);
    expectExit(next, 0);
    expect(next.stdout).not.toMatch(/Rebuilding every model in full/);
  });

  it('rebuilds in full after rows landed with a received_at before the last cutoff (a backfill)', async () => {
    const late = viewedItem('u3', null, '2024-02-20', '2024-02-20T10:00:00.000Z');
    await withWarehouse((wh) => landRaw(wh, { ...emptyRaw(), tracks: [late] }));
    const r = await cli(['build', ...same('2024-03-10')]);
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /^Rebuilding every model in full: 1 raw row landed with a received_at before the last build's cutoff \(a backfill, or a loader catching up\)/m,
    );
    const left: Raw = { ...raw, tracks: [...raw.tracks.filter((t) => t.user_id !== 'u2'), late] };
    expect(await marts()).toEqual(normalise(computeOracle(left, '2024-03-10', newDays4)));
  });

  it('rebuilds in full when pointed at other raw tables, with the old ones dropped and views left over them', async () => {
    // DuckDB keeps a view whose table is gone: the raw-row count must not read the views the last build left
    await withWarehouse(async (wh) => {
      await landRaw(wh, raw, 'cdp2');
      await wh.exec('drop schema cdp cascade');
    });
    const r = await cli(['build', '--raw-schema', 'cdp2', ...same('2024-03-11')]);
    expectExit(r, 0);
    // the same row count as before: only the fingerprint's raw tables tell the models they read other events
    expect(r.stdout).toMatch(
      /^Rebuilding every model in full: the raw tables \(lifecycle__raw_schema, lifecycle__<call>_table\) changed \("cdp"\."tracks",.* → "cdp2"\."tracks",.*\) since the last build/m,
    );
    expect(await marts()).toEqual(normalise(computeOracle(raw, '2024-03-11', newDays4)));
  });
});

describe('describeChange: what changed between two config fingerprints', () => {
  // The fingerprints as int_lifecycle__builds stores them, rendered from the package's own macro.
  const fingerprint = (vars: Record<string, unknown>): string => {
    const parsed = openProject({ schema: 'lifecycle', rawSchema: 'cdp', vars }, 'duckdb');
    const sql = compileModel(parsed, BUILDS_MODEL, false, new Map());
    const m = /cast\('([^']*)' as varchar\) as config_fingerprint/.exec(sql);
    if (!m) throw new Error(`no fingerprint in ${sql}`);
    return m[1];
  };

  it('names each var that changed with both values, in the words of the vars', () => {
    const before = fingerprint({});
    expect(
      describeChange(
        before,
        fingerprint({ lifecycle__timezone: 'Europe/Berlin', lifecycle__churn_days: 60 }),
      ),
    ).toBe('lifecycle__timezone changed (UTC → Europe/Berlin), lifecycle__churn_days changed (90 → 60)');
    expect(
      describeChange(before, fingerprint({ lifecycle__purchase_events: ['Order Completed', 'Renewed'] })),
    ).toBe('lifecycle__purchase_events changed ([Order Completed] → [Order Completed, Renewed])');
  });

  it("sums the change up for each model's line", () => {
    const before = fingerprint({});
    expect(changeSummary(before, fingerprint({ lifecycle__new_days: 3 }))).toBe('lifecycle vars changed');
    expect(changeSummary(before, fingerprint({ lifecycle__raw_schema: 'segment' }))).toBe(
      'the raw tables changed',
    );
    expect(changeSummary(before.replace(/version=\d+$/, 'version=1'), before)).toBe(
      "the package's model version changed",
    );
  });

  it('names a new model version, and values holding the separators as they were set', () => {
    const now = fingerprint({});
    expect(describeChange(now.replace(/version=\d+$/, 'version=1'), now)).toMatch(
      /^the package's model version changed \(1 → \d+\)$/,
    );
    expect(describeChange(now, fingerprint({ lifecycle__core_events: ['a|b=c'] }))).toBe(
      'lifecycle__core_events changed ([] → [a|b=c])',
    );
    const quoted = { lifecycle__purchase_events: ['Order "Completed"', 'a\\b', 'x","y'] };
    expect(describeChange(now, fingerprint(quoted))).toBe(
      'lifecycle__purchase_events changed ([Order Completed] → [Order "Completed", a\\b, x","y])',
    );
    // a build before values were escaped stored them as they were: the same value, not a change of the user's
    const unescaped = fingerprint(quoted).replace(/\\(.)/g, '$1');
    expect(describeChange(unescaped, fingerprint(quoted))).toBe(
      'lifecycle__purchase_events is now written escaped (its value did not change)',
    );
  });
});

describe('the full-rebuild check follows a project that gives the models it reads an alias and a schema', () => {
  let dir: string;
  let tw: TestWarehouse;
  const raw: Raw = {
    ...emptyRaw(),
    tracks: [viewedItem('u1', null, '2024-03-01'), viewedItem('u2', null, '2024-03-02')],
  };
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-refresh-alias-'));
    fs.cpSync(path.join(REPO_ROOT, 'models'), dir, { recursive: true });
    const yml = path.join(dir, 'dbt_project.yml');
    fs.writeFileSync(
      yml,
      fs.readFileSync(yml, 'utf8').replace(
        /^models:\n  cdp_lifecycle:\n/m,
        // the package's model paths are its layer folders, so a model's key sits right under the package
        'models:\n  cdp_lifecycle:\n    int_lifecycle__builds: {+alias: build_log, +schema: meta}\n    int_lifecycle__source_days: {+alias: days_by_source}\n',
      ),
    );
    tw = await createTestWarehouse('duckdb', 'refreshalias');
    const wh = await tw.open();
    try {
      await landRaw(wh, raw);
    } finally {
      await wh.close();
    }
  });
  afterAll(async () => {
    await tw.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const build = async (asOf: string, newDays: number): Promise<string | null> => {
    const wh = await tw.open();
    try {
      let reason: string | null = null;
      const res = await buildModels({
        warehouse: wh,
        projectDir: dir,
        schema: 'lifecycle',
        rawSchema: 'cdp',
        vars: { lifecycle__as_of_date: asOf, lifecycle__new_days: newDays },
        decideFullRefresh: async (probe) => {
          reason = (await recomputeReason(probe))?.summary ?? null;
          return reason;
        },
      });
      expect(res.success).toBe(true);
      // the aliased relations are where the build wrote them, so the check read the stored builds
      expect(await wh.tableExists('lifecycle_meta', 'build_log')).toBe(true);
      expect(await wh.tableExists('lifecycle', 'days_by_source')).toBe(true);
      return reason;
    } finally {
      await wh.close();
    }
  };

  it('finds the stored builds and watermarks under their aliases', async () => {
    expect(await build('2024-03-10', 7)).toBeNull();
    expect(await build('2024-03-11', 7)).toBeNull();
    expect(await build('2024-03-12', 3)).toBe('lifecycle vars changed since the last build');
    const wh = await tw.open();
    try {
      await wh.exec("delete from cdp.tracks where user_id = 'u2'");
    } finally {
      await wh.close();
    }
    expect(await build('2024-03-13', 3)).toMatch(/deleted/);
  });
});

/**
 * The day after a large backfill, every raw row was received within lifecycle__lookback_hours of the newest one:
 * an incremental build would read and merge nearly all of them again, so build rebuilds in full instead.
 */
describe('build after a backfill received all at once', () => {
  let dir: string;
  let tw: TestWarehouse;
  const cli = (args: string[]) => runCli([...args, '--warehouse', tw.url], { cwd: dir });
  const lines = (stdout: string) =>
    stdout.split('\n').filter((l) => /Rebuilding every model in full/.test(l));
  // REREAD_MIN_ROWS tracks of 2,000 users over February, received in March: old by the first build's D
  const rows = (received: (i: number) => string) =>
    Array.from({ length: REREAD_MIN_ROWS }, (_, i) =>
      viewedItem(`u${i % 2000}`, null, `2024-02-${String(1 + (i % 28)).padStart(2, '0')}`, received(i)),
    );
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-backfill-'));
    tw = await createTestWarehouse('duckdb', 'backfill');
  });
  afterAll(async () => {
    await tw.drop();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const land = async (raw: Raw) => {
    const wh = await tw.open();
    try {
      await landRaw(wh, raw);
    } finally {
      await wh.close();
    }
  };
  const vars = (asOf: string) => ['--vars', JSON.stringify({ lifecycle__as_of_date: asOf })];

  it('rebuilds in full while most rows are newer than the cutoff, then builds incrementally', async () => {
    // one backfill, every row received within the same minute
    await land({
      ...emptyRaw(),
      tracks: rows((i) => `2024-03-01T12:00:${String(i % 60).padStart(2, '0')}.000Z`),
    });
    expectExit(await cli(['build', ...vars('2024-03-01')]), 0);
    await land({ ...emptyRaw(), tracks: [viewedItem('u1', null, '2024-03-02', '2024-03-02T09:00:00.000Z')] });
    const next = await cli(['build', ...vars('2024-03-02')]);
    expectExit(next, 0);
    expect(lines(next.stdout)).toEqual([
      `Rebuilding every model in full: ${(REREAD_MIN_ROWS + 1).toLocaleString('en-US')} of the ${(REREAD_MIN_ROWS + 1).toLocaleString('en-US')} raw rows were received after the last build's cutoff (the newest received_at it saw minus lifecycle__lookback_hours), so an incremental build would read nearly every row again, which a full build does faster.`,
    ]);
    // once a build has seen a row received a day after the backfill, the backfill is older than its cutoff,
    // and the daily build is incremental again
    await land({ ...emptyRaw(), tracks: [viewedItem('u2', null, '2024-03-04', '2024-03-04T09:00:00.000Z')] });
    expectExit(await cli(['build', ...vars('2024-03-04')]), 0);
    await land({ ...emptyRaw(), tracks: [viewedItem('u3', null, '2024-03-05', '2024-03-05T09:00:00.000Z')] });
    const later = await cli(['build', ...vars('2024-03-05')]);
    expectExit(later, 0);
    expect(lines(later.stdout)).toEqual([]);
    expect(later.stdout).toMatch(/ OK merged incremental model .*int_lifecycle__source_days/);
    // four builds through the CLI, each a process of its own: on a loaded 2-core machine that passes 60 s
  }, 240_000);
});
