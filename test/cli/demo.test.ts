import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DuckDBInstance } from '@duckdb/node-api';
import { runCli } from '../helpers/cli';
import { queryHint } from '../../src/cli/commands/demo';
import { openWarehouse } from '../../src/warehouse';
import { expectExit, startFakeSegment } from './fake-cdp';

/**
 * The README's first command on a fresh checkout: `npx cdp-lifecycle demo` (here from the sources, on a temp
 * DuckDB file). The demo's data is designed so that D's marts hold every lifecycle status of SPEC §4.4.
 */
describe("the demo's query hint", () => {
  it('keeps every password out of the psql command it prints', () => {
    for (const url of [
      'postgres://u:pw1@h/db?password=pw2&sslmode=require',
      'postgres://u@h/db?pass%77ord=pw3',
      'postgres://u@h/db?sslpassword=pw4',
    ]) {
      const hint = queryHint(url, 'select 1');
      expect(hint).not.toMatch(/pw\d/);
      expect(hint).toMatch(/^psql 'postgres:\/\/u@h\/db(\?sslmode=require)?' -c "select 1"$/);
    }
  });
});

describe('cdp-lifecycle demo', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-demo-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('lands, builds, tests, reports and dry-runs the sync; the marts hold every lifecycle status', async () => {
    // The README's default file name: its catalog must not shadow the `lifecycle` schema.
    const file = path.join(dir, 'lifecycle.duckdb');
    // A config file and environment set up for the real warehouse: the demo takes its location from its own
    // flags only (default ./lifecycle.duckdb), or it would recreate the real schemas.
    fs.writeFileSync(
      path.join(dir, 'cdp-lifecycle.yml'),
      'warehouse: duckdb://./real.duckdb\nraw_schema: real_raw\nschema: real_models\n',
    );
    const r = await runCli(['demo'], {
      cwd: dir,
      timeoutMs: 170_000,
      env: { LIFECYCLE_WAREHOUSE: 'duckdb://./real-env.duckdb', LIFECYCLE_SCHEMA: 'real_env' },
    });
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /Warehouse: duckdb:\/\/\.\/lifecycle\.duckdb \(raw events in "cdp", models in "lifecycle"\)/,
    );
    expect(fs.existsSync(path.join(dir, 'real.duckdb'))).toBe(false);
    expect(fs.existsSync(path.join(dir, 'real-env.duckdb'))).toBe(false);
    // the dry run compares with no destination (nothing synced, no key): said in words, not as an id
    expect(r.stdout).toMatch(
      /^Dry run of the sync to Segment \(segment:api\.segment\.io, nothing synced there yet: every user is new\), run \S+: success$/m,
    );
    for (const heading of [
      '1. Collect',
      '2. Build',
      '3. Test',
      '4. Report',
      '5. What a sync would push',
      'Next steps',
    ]) {
      expect(r.stdout).toContain(heading);
    }
    expect(r.stdout).toMatch(/Ran \d+ tests? in .*: \d+ passed, 0 failed/);
    expect(r.stdout).toMatch(/Dry run of the sync/);
    expect(r.stdout).toMatch(/nothing was sent/);
    const html = fs.readFileSync(path.join(dir, 'lifecycle-report.html'), 'utf8');
    expect(html).toMatch(/^<!doctype html>/i);

    // The printed query runs as printed (DuckDB names a directly opened file's catalog after it: lifecycle).
    const hint = /duckdb -c "(.*?)" \(attach/.exec(r.stdout);
    expect(hint).not.toBeNull();
    const shell = await DuckDBInstance.create(':memory:');
    const con = await shell.connect();
    try {
      const statements = hint![1].split(/;\s*/).filter(Boolean);
      for (const s of statements.slice(0, -1)) await con.run(s);
      const counts = (await con.runAndReadAll(statements[statements.length - 1])).getRows();
      expect(counts.length).toBe(7);
    } finally {
      con.closeSync();
      shell.closeSync();
    }

    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const rows = await wh.query<{ lifecycle_status: string; n: number }>(
        'select lifecycle_status, count(*) as n from lifecycle.user_lifecycle group by 1 order by 1',
      );
      expect(rows.map((x) => x.lifecycle_status)).toEqual([
        'active',
        'at_risk',
        'churned',
        'dormant',
        'new',
        'power',
        'resurrected',
      ]);
      // A dry run logs the diff but sends nothing and records no delivery.
      const [{ delivered }] = await wh.query<{ delivered: number }>(
        "select count(*) as delivered from lifecycle.sync_state where status = 'delivered'",
      );
      expect(delivered).toBe(0);
      const runs = await wh.query<{ dry_run: boolean }>('select dry_run from lifecycle.sync_runs');
      expect(runs).toEqual([{ dry_run: true }]);
    } finally {
      await wh.close();
    }

    // The printed rebuild command, run as printed, gives the demo's statuses again (a plain build would drop
    // the demo's non-activity and core events and move users between statuses).
    const statuses = async () => {
      const w = await openWarehouse(`duckdb://${file}`);
      try {
        return await w.query(
          'select lifecycle_status, count(*) as n from lifecycle.user_lifecycle group by 1 order by 1',
        );
      } finally {
        await w.close();
      }
    };
    const before = await statuses();
    const rebuild =
      /Rebuild as the demo did: cdp-lifecycle (build --warehouse \S+ --raw-schema cdp --schema lifecycle) --vars '(.*)'$/m.exec(
        r.stdout,
      );
    expect(rebuild).not.toBeNull();
    const vars = JSON.parse(rebuild![2]) as Record<string, unknown>;
    expect(vars.lifecycle__core_events).toEqual(['Report Created']);
    const again = await runCli([...rebuild![1].split(' '), '--vars', rebuild![2]], { cwd: dir });
    expectExit(again, 0);
    expect(await statuses()).toEqual(before);
    fs.rmSync(path.join(dir, 'cdp-lifecycle.yml'));

    // Its generated users never reach a real CDP: a real sync of the demo's schema stops before sending.
    const fake = await startFakeSegment();
    try {
      const sync = await runCli(
        [
          'sync',
          '--warehouse',
          `duckdb://${file}`,
          '--to',
          'segment',
          '--endpoint',
          fake.url,
          '--write-key',
          'k',
        ],
        { cwd: dir },
      );
      expectExit(sync, 1);
      expect(sync.stderr).toMatch(
        /^error: The schema lifecycle of .* holds the demo's generated users \(cdp-lifecycle demo made it\): sync a schema built from your own events, or use --dry-run\.$/m,
      );
      expect(fake.batches).toHaveLength(0);
      // nor can real events be landed in its raw schema, whatever --schema says: the next demo resets it
      fs.writeFileSync(path.join(dir, 'real.ndjson'), '{"type":"track","userId":"real","event":"E"}\n');
      const load = await runCli(
        ['load', 'real.ndjson', '--warehouse', `duckdb://${file}`, '--schema', 'prod'],
        { cwd: dir },
      );
      expectExit(load, 1);
      expect(load.stderr).toMatch(/holds the demo \(cdp-lifecycle demo made schema cdp\)/);
    } finally {
      await fake.close();
    }
  }, 180_000);

  it("lets the user's vars override the demo's event lists, but not its --as-of; --no-retail keeps only the generated users", async () => {
    const file = path.join(dir, 'vars.duckdb');
    const r = await runCli(
      [
        'demo',
        '--users',
        '200',
        '--no-retail',
        '--as-of',
        '2026-03-31',
        '--vars',
        '{"lifecycle__core_events": ["Signup"], "lifecycle__as_of_date": "2020-01-01"}',
        '--warehouse',
        `duckdb://${file}`,
      ],
      { cwd: dir, timeoutMs: 170_000 },
    );
    expectExit(r, 0);
    expect(r.stdout).toContain('(the Online Retail sample is left out: --no-retail)');
    expect(r.stderr).toMatch(
      /warning: the demo builds as of 2026-03-31 \(its --as-of\); lifecycle__as_of_date from your vars is not used/,
    );
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const [b] = await wh.query<{ as_of_date: unknown; config_fingerprint: string }>(
        'select cast(as_of_date as varchar) as as_of_date, config_fingerprint from lifecycle.int_lifecycle__builds',
      );
      expect(b.as_of_date).toBe('2026-03-31');
      expect(b.config_fingerprint).toContain('[Signup]');
      expect(b.config_fingerprint).not.toContain('Report Created');
      // the demo's own list, which the user did not override, still applies
      expect(b.config_fingerprint).toContain('Email Delivered');
      // --no-retail: the generated users only (the Online Retail sample adds hundreds of customers)
      const [{ n }] = await wh.query<{ n: number }>('select count(*) as n from lifecycle.user_lifecycle');
      expect(Number(n)).toBeGreaterThan(0);
      expect(Number(n)).toBeLessThanOrEqual(200);
    } finally {
      await wh.close();
    }
  }, 180_000);

  it('builds from the events it lands, not from the tables the vars of a real project point at', async () => {
    // a project directory set up for the real warehouse's events: its vars name other tables
    const project = fs.mkdtempSync(path.join(dir, 'project-'));
    fs.writeFileSync(
      path.join(project, 'cdp-lifecycle.yml'),
      'vars:\n  lifecycle__raw_schema: realraw\n  lifecycle__tracks_table: segment_tracks\n  lifecycle__core_events: [Signup]\n',
    );
    const file = path.join(project, 'demo.duckdb');
    const r = await runCli(['demo', '--users', '50', '--no-retail', '--warehouse', `duckdb://${file}`], {
      cwd: project,
      timeoutMs: 170_000,
    });
    expectExit(r, 0);
    expect(r.stderr).toContain(
      'warning: the demo builds from the events it lands in "cdp"; lifecycle__raw_schema, lifecycle__tracks_table from your vars are not used.',
    );
    const rebuild = /Rebuild as the demo did: (.*)$/m.exec(r.stdout);
    expect(rebuild![1]).not.toContain('realraw');
    expect(rebuild![1]).toContain('Signup');
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const [{ n }] = await wh.query<{ n: number }>('select count(*) as n from lifecycle.user_lifecycle');
      expect(Number(n)).toBeGreaterThan(0);
      const [b] = await wh.query<{ config_fingerprint: string }>(
        'select config_fingerprint from lifecycle.int_lifecycle__builds',
      );
      expect(b.config_fingerprint).toContain('[Signup]');
    } finally {
      await wh.close();
    }
  }, 180_000);

  it('on an in-memory warehouse, prints only next steps that can work once it has ended', async () => {
    const r = await runCli(['demo', '--users', '50', '--no-retail', '--warehouse', 'duckdb://:memory:'], {
      cwd: dir,
      timeoutMs: 170_000,
    });
    expectExit(r, 0);
    const next = r.stdout.slice(r.stdout.indexOf('Next steps'));
    expect(next).toMatch(/Run the demo on a DuckDB file \(--warehouse duckdb:\/\/\.\/demo\.duckdb\)/);
    expect(next).not.toMatch(/cdp-lifecycle (report|build) --warehouse duckdb:\/\/:memory:/);
  }, 180_000);

  it('checks its options before touching the warehouse: a bad one exits 2 and the previous demo stays', async () => {
    const file = path.join(dir, 'lifecycle.duckdb');
    const tracks = async (): Promise<number> => {
      const wh = await openWarehouse(`duckdb://${file}`);
      try {
        return Number((await wh.query<{ n: number }>('select count(*) as n from cdp.tracks'))[0].n);
      } finally {
        await wh.close();
      }
    };
    const before = await tracks();
    expect(before).toBeGreaterThan(0);
    for (const [args, message] of [
      [['--users', 'abc'], /--users "abc" is not a whole number from 1 to 1000000/],
      [['--users', '0'], /--users "0" is not a whole number/],
      [['--seed', '1.5'], /--seed "1.5" is not a whole number/],
      [['--as-of', '2024-02-30'], /--as-of "2024-02-30" is not a date/],
      [['--retail', 'no-such.csv'], /--retail no-such\.csv: there is no file/],
    ] as const) {
      const r = await runCli(['demo', ...args, '--warehouse', `duckdb://${file}`], { cwd: dir });
      expectExit(r, 2);
      expect(r.stderr).toMatch(message);
      expect(r.stdout).not.toMatch(/1\. Collect/);
    }
    expect(await tracks()).toBe(before);
  }, 60_000);

  it('refuses to wipe a warehouse holding events it did not write', async () => {
    const file = path.join(dir, 'collected.duckdb');
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const { ensureRawTables, RAW_TABLES } = await import('../../src/warehouse');
      await ensureRawTables(wh, 'cdp');
      const row = RAW_TABLES.tracks.columns.map((c) =>
        c.name === 'id' ? 'm1' : c.name === 'received_at' ? new Date() : null,
      );
      await wh.insertRows('cdp', 'tracks', RAW_TABLES.tracks.columns, [row]);
      // every kind of call counts, not only tracks
      for (const [id, table] of [
        ['i1', 'identifies'],
        ['p1', 'pages'],
      ] as const) {
        const r = RAW_TABLES[table].columns.map((c) =>
          c.name === 'id' ? id : c.name === 'received_at' ? new Date() : null,
        );
        await wh.insertRows('cdp', table, RAW_TABLES[table].columns, [r]);
      }
    } finally {
      await wh.close();
    }
    const r = await runCli(['demo', '--warehouse', `duckdb://${file}`], { cwd: dir });
    expectExit(r, 1);
    expect(r.stderr).toMatch(
      /already holds 3 collected events in schema cdp that the demo did not write: give the demo its own file/,
    );

    // Nor a schema holding models and sync state the demo did not build, even with no raw events.
    const other = path.join(dir, 'built.duckdb');
    const wh2 = await openWarehouse(`duckdb://${other}`);
    try {
      await wh2.exec('create schema lifecycle');
      await wh2.exec('create table lifecycle.sync_state (user_id varchar)');
    } finally {
      await wh2.close();
    }
    const r2 = await runCli(['demo', '--warehouse', `duckdb://${other}`], { cwd: dir });
    expectExit(r2, 1);
    expect(r2.stderr).toMatch(/The schema lifecycle of .* already holds tables the demo did not create/);

    // Nor a raw schema of views over a warehouse destination's tables, even before it loaded a row: dropping
    // it would take the views (and, on PostgreSQL, every view built on them) with it.
    const views = path.join(dir, 'views.duckdb');
    const wh3 = await openWarehouse(`duckdb://${views}`);
    try {
      await wh3.exec('create schema segment; create table segment.tracks (id varchar)');
      await wh3.exec('create schema cdp; create view cdp.tracks as select id from segment.tracks');
    } finally {
      await wh3.close();
    }
    const r3 = await runCli(['demo', '--warehouse', `duckdb://${views}`], { cwd: dir });
    expectExit(r3, 1);
    expect(r3.stderr).toMatch(
      /^error: The schema cdp of .* already holds views \(tracks\) the demo did not create: give the demo its own file/m,
    );
    const wh4 = await openWarehouse(`duckdb://${views}`);
    try {
      expect(await wh4.query('select count(*) as n from cdp.tracks')).toEqual([{ n: 0 }]);
    } finally {
      await wh4.close();
    }
  });

  it('judges each schema on its own mark: a demo model schema does not make a real --raw-schema beside it droppable', async () => {
    const dirWithSpace = fs.mkdtempSync(path.join(dir, 'my demo '));
    const file = path.join(dirWithSpace, 'two schemas.duckdb');
    const demo = (...args: string[]) =>
      runCli(
        [
          'demo',
          '--warehouse',
          `duckdb://${file}`,
          '--users',
          '30',
          '--no-retail',
          '--as-of',
          '2024-06-30',
          ...args,
        ],
        {
          cwd: dirWithSpace,
        },
      );
    const first = await demo();
    expectExit(first, 0);
    // the printed commands run as printed, a path with spaces included
    const again = /See the report again at any time: cdp-lifecycle report (.*)$/m.exec(first.stdout);
    expect(again).not.toBeNull();
    const report = await runCli(['report', ...shellWords(again![1])], { cwd: dirWithSpace });
    expectExit(report, 0);

    // real events collected beside the demo, in a raw schema of their own
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const { ensureRawTables, RAW_TABLES } = await import('../../src/warehouse');
      await ensureRawTables(wh, 'prod_raw');
      const row = RAW_TABLES.tracks.columns.map((c) =>
        c.name === 'id' ? 'real-1' : c.name === 'received_at' ? new Date() : null,
      );
      await wh.insertRows('prod_raw', 'tracks', RAW_TABLES.tracks.columns, [row]);
    } finally {
      await wh.close();
    }
    const refused = await demo('--raw-schema', 'prod_raw');
    expectExit(refused, 1);
    expect(refused.stderr).toMatch(
      /already holds 1 collected event in schema prod_raw that the demo did not write/,
    );
    const after = await openWarehouse(`duckdb://${file}`);
    try {
      expect(await after.query('select id from prod_raw.tracks')).toEqual([{ id: 'real-1' }]);
    } finally {
      await after.close();
    }

    // the demo's own raw schema under a new, empty model schema: both are the demo's to reset
    const moved = await demo('--schema', 'mart_y');
    expectExit(moved, 0);
  });
});

/** The words of a printed command line, as a POSIX shell splits them (single quotes only, as shellWord writes). */
function shellWords(line: string): string[] {
  return [...line.matchAll(/'((?:[^']|'\\'')*)'|(\S+)/g)].map((m) =>
    m[1] !== undefined ? m[1].replace(/'\\''/g, "'") : m[2],
  );
}
