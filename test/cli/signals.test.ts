import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { loadAndBuild, spawnTs } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';
import { interruptedLoad } from '../../src/cli/commands/load';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { runSync } from '../../src/sync';
import { startFakeCdp } from '../sync/helpers/fake-cdp';
import { makeUsers, writeUserLifecycle } from '../sync/helpers/lifecycle-fixture';

/** Ctrl-C (or a scheduler's SIGTERM) in the middle of a command: one sentence, exit 1, no stack trace. */
describe('an interrupted command', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-signal-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'says what %s leaves behind of a load that landed nothing yet, and exits 1',
    async (signal) => {
      const file = path.join(dir, `${signal}.duckdb`);
      // `load -` waits on standard input, which this test keeps open: a command caught mid-way.
      const child = spawnTs('src/cli/run.ts', ['load', '-', '--warehouse', `duckdb://${file}`], { cwd: dir });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      child.stdin?.write(JSON.stringify({ type: 'track', event: 'A', userId: 'u1', messageId: 'm1' }) + '\n');
      // the warehouse file appears once the command has opened it
      for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
      expect(fs.existsSync(file)).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      child.kill(signal);
      expect(await exited).toBe(1);
      expect(stderr).toMatch(
        new RegExp(
          `^error: interrupted \\(${signal}\\) before the command finished: no event had landed yet; run it again\\.$`,
          'm',
        ),
      );
      expect(stderr).not.toMatch(/\n\s+at /);
    },
    30_000,
  );
});

/**
 * Ctrl-C on a long load: its committed batches stay, so the line says how many events landed and where the
 * rest starts (a rerun of the whole input would land them again). PostgreSQL, so that the test can watch the
 * batches commit from another connection while the load holds its input open.
 */
describeEachWarehouse(
  'an interrupted load',
  ({ tw }) => {
    it('says how many events landed and the line to go on from', async () => {
      const child = spawnTs('src/cli/run.ts', ['load', '-', '--warehouse', tw().url]);
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      // two whole batches of 2,000 lines, then 500 lines that wait for more input
      const lines = Array.from(
        { length: 4500 },
        (_, i) => JSON.stringify({ type: 'track', event: 'A', userId: `u${i}`, messageId: `m${i}` }) + '\n',
      );
      child.stdin?.write(lines.join(''));
      const wh = await tw().open();
      try {
        const landed = async () => {
          const exists = await wh.tableExists('cdp', 'tracks');
          return exists ? (await wh.query<{ n: number }>('select count(*) as n from cdp.tracks'))[0].n : 0;
        };
        for (let i = 0; i < 300 && (await landed()) < 4000; i++) await new Promise((r) => setTimeout(r, 100));
        expect(await landed()).toBe(4000);
        const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
        child.kill('SIGINT');
        expect(await exited).toBe(1);
        expect(stderr).toMatch(
          /^error: interrupted \(SIGINT\) before the command finished: 4,000 events had landed, from stdin up to line 4,000; nothing after it was written\. To land the rest only, load from line 4,001 of standard input: a rerun of the whole load lands the first ones again, which the models count once only when they carry a messageId \(load gives those without one a new random id each time\)\.$/m,
        );
        expect(await landed()).toBe(4000);
      } finally {
        await wh.close();
      }
    }, 60_000);
  },
  ['postgres'],
);

/** A connection holding an exclusive lock on `table` in an open transaction: a build waits there. */
async function lockTable(url: string, table: string): Promise<Client> {
  const holder = new Client({ connectionString: url });
  await holder.connect();
  await holder.query('begin');
  await holder.query(`lock table ${table} in access exclusive mode`);
  return holder;
}

/**
 * Waits until `n` sessions of the database wait on a lock (or 30 s pass) and returns how many do, counted from
 * `watcher`: outside the holder's transaction, whose view of pg_stat_activity is a snapshot.
 */
async function lockWaiters(watcher: Warehouse, n: number): Promise<number> {
  const count = async () =>
    (
      await watcher.query<{ n: number }>(
        "select count(*)::int as n from pg_stat_activity where wait_event_type = 'Lock' and datname = current_database()",
      )
    )[0].n;
  for (let i = 0; i < 300 && (await count()) !== n; i++) await new Promise((r) => setTimeout(r, 100));
  return count();
}

/**
 * Ctrl-C (or a scheduler's SIGTERM) in the middle of a build: run_results.json still says what finished and
 * which model was running, as dbt writes it on an interrupt, so a monitor reading it sees the failed run. The
 * build is held at one model by a lock another connection keeps on its table, then interrupted there.
 */
describeEachWarehouse(
  'an interrupted build',
  ({ tw }) => {
    it.each(['SIGINT', 'SIGTERM'] as const)(
      'leaves run_results.json with the models that finished and the one %s stopped',
      async (signal) => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-signal-build-'));
        const events = Array.from({ length: 40 }, (_, i) =>
          JSON.stringify({
            type: 'track',
            event: 'Opened App',
            userId: `u${i % 7}`,
            messageId: `m${i}`,
            timestamp: `2026-11-${String(1 + (i % 20)).padStart(2, '0')}T10:00:00Z`,
          }),
        );
        const target = path.join(dir, 'target');
        const base = ['--warehouse', tw().url, '--schema', `lc_${signal.toLowerCase()}`];
        const watcher = await tw().open();
        let holder: Client | undefined;
        try {
          await loadAndBuild(base, dir, events);
          holder = await lockTable(tw().url, `lc_${signal.toLowerCase()}.user_lifecycle`);
          const child = spawnTs('src/cli/run.ts', ['build', ...base, '--target-path', target], { cwd: dir });
          let stderr = '';
          child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
          const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
          expect(await lockWaiters(watcher, 1)).toBe(1);
          child.kill(signal);
          expect(await exited).toBe(1);
          expect(stderr).toMatch(
            new RegExp(`^error: interrupted \\(${signal}\\) before the command finished: `, 'm'),
          );
          const artifact = JSON.parse(fs.readFileSync(path.join(target, 'run_results.json'), 'utf8')) as {
            args: { which: string };
            results: Array<{ unique_id: string; status: string; message: string | null }>;
          };
          expect(artifact.args.which).toBe('build');
          const last = artifact.results[artifact.results.length - 1];
          // the model that was waiting for the lock (the locked table itself, or one whose build reads it)
          expect(last.status).toBe('error');
          const before = artifact.results.slice(0, -1);
          expect(before.length).toBeGreaterThan(3);
          expect(before.map((r) => r.status)).toEqual(before.map(() => 'success'));
          expect(before.map((r) => r.unique_id)).toContain('model.cdp_lifecycle.int_lifecycle__user_days');
          expect(before.map((r) => r.unique_id)).not.toContain(last.unique_id);
          expect(before.map((r) => r.unique_id)).not.toContain('model.cdp_lifecycle.user_lifecycle');
          // the same for `test`, held at a test that reads the locked table: the tests that finished are listed
          // (once the build's statement has stopped: PostgreSQL notices its client is gone within a second)
          expect(await lockWaiters(watcher, 0)).toBe(0);
          const tester = spawnTs('src/cli/run.ts', ['test', ...base, '--target-path', target], { cwd: dir });
          const testerExited = new Promise<number | null>((resolve) =>
            tester.on('close', (code) => resolve(code)),
          );
          expect(await lockWaiters(watcher, 1)).toBe(1);
          tester.kill(signal);
          expect(await testerExited).toBe(1);
          const tests = JSON.parse(fs.readFileSync(path.join(target, 'run_results.json'), 'utf8')) as {
            args: { which: string };
            results: Array<{ unique_id: string; status: string }>;
          };
          expect(tests.args.which).toBe('test');
          // tests run in the models' order: those of the models upstream of the locked one have finished
          const ids = tests.results.map((r) => r.unique_id);
          expect(ids).toContain('test.cdp_lifecycle.not_null_int_lifecycle__user_days_user_id');
          expect(tests.results.map((r) => r.status)).toEqual(ids.map(() => 'pass'));
          expect(ids.filter((id) => id.includes('user_lifecycle_'))).toEqual([]);
        } finally {
          await holder?.end().catch(() => undefined);
          await watcher.close();
          fs.rmSync(dir, { recursive: true, force: true });
        }
      },
      120_000,
    );

    it('leaves run_results.json when a second signal stops serve during a scheduled run', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-signal-serve-'));
      const schema = 'lc_serve';
      const base = ['--warehouse', tw().url, '--schema', schema];
      const watcher = await tw().open();
      let holder: Client | undefined;
      try {
        const events = Array.from({ length: 10 }, (_, i) =>
          JSON.stringify({ type: 'track', event: 'Opened App', userId: `u${i % 3}`, messageId: `m${i}` }),
        );
        await loadAndBuild(base, dir, events);
        holder = await lockTable(tw().url, `${schema}.user_lifecycle`);
        const serve = spawnTs(
          'src/cli/run.ts',
          ['serve', ...base, '--port', '0', '--write-key', 'k', '--schedule', '* * * * * *'],
          { cwd: dir },
        );
        let stdout = '';
        serve.stdout?.on('data', (d: Buffer) => (stdout += d.toString()));
        const exited = new Promise<number | null>((resolve) => serve.on('close', (code) => resolve(code)));
        expect(await lockWaiters(watcher, 1)).toBe(1);
        // the first signal waits for the scheduled run, which waits for the lock; the second leaves at once
        serve.kill('SIGTERM');
        for (let i = 0; i < 100 && !stdout.includes('shutting down'); i++)
          await new Promise((r) => setTimeout(r, 50));
        serve.kill('SIGTERM');
        expect(await exited).toBe(1);
        const artifact = JSON.parse(
          fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8'),
        ) as {
          args: { which: string };
          results: Array<{ unique_id: string; status: string; message: string | null }>;
        };
        expect(artifact.args.which).toBe('run');
        const last = artifact.results[artifact.results.length - 1];
        expect(last.status).toBe('error');
        expect(last.message).toMatch(/^interrupted \(SIGTERM\) while it ran: /);
        expect(artifact.results.slice(0, -1).map((r) => r.status)).toContain('success');
      } finally {
        await holder?.end().catch(() => undefined);
        await watcher.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 120_000);
  },
  ['postgres'],
);

/**
 * A process that goes away mid-statement (Ctrl-C on a build): PostgreSQL notices within a second and stops the
 * statement, instead of running it to its end with its locks held, which a rerun would wait on in silence.
 */
describeEachWarehouse(
  'a PostgreSQL statement whose process went away',
  ({ tw }) => {
    it('stops within a few seconds', async () => {
      const child = spawnTs('test/cli/fixtures/long-pg-query.ts', [tw().url]);
      await new Promise<void>((resolve, reject) => {
        child.stdout?.on('data', (d: Buffer) => d.toString().includes('ready') && resolve());
        child.on('exit', (code) => reject(new Error(`the query process exited early (${String(code)})`)));
      });
      const admin = await tw().open();
      try {
        const running = () =>
          admin.query<{ n: number }>(
            "select count(*)::int as n from pg_stat_activity where query like '%cdp_lifecycle_long_query%' and pid <> pg_backend_pid()",
          );
        for (let i = 0; i < 50 && (await running())[0].n === 0; i++)
          await new Promise((r) => setTimeout(r, 100));
        expect((await running())[0].n).toBe(1);
        const gone = new Promise((resolve) => child.on('close', resolve));
        child.kill('SIGKILL');
        await gone;
        const killedAt = Date.now();
        while ((await running())[0].n > 0 && Date.now() - killedAt < 10_000) {
          await new Promise((r) => setTimeout(r, 100));
        }
        expect((await running())[0].n).toBe(0);
        // the statement asked for 60 s: it stopped because its client was gone, not because it ended
        expect(Date.now() - killedAt).toBeLessThan(5_000);
      } finally {
        await admin.close();
      }
    }, 30_000);
  },
  ['postgres'],
);

/**
 * Ctrl-C while a batch is being written: the load stops reading, lets that batch commit, and only then says
 * what landed, so the count and the line to go on from are what the table holds. (It used to print the state
 * of the moment, and a batch committing just then landed 2,000 events more than it said: loading from the
 * line it named landed them twice.) Three interruptions at different moments of a long load.
 */
describe('a load interrupted while it writes', () => {
  let dir: string;
  let input: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-signal-busy-'));
    input = path.join(dir, 'events.ndjson');
    // no messageId: load gives each a random one, so an event landed twice would count twice
    const lines = Array.from(
      { length: 400_000 },
      (_, i) =>
        JSON.stringify({ type: 'track', event: 'Viewed Page', userId: `u${i % 5000}`, properties: { i } }) +
        '\n',
    );
    fs.writeFileSync(input, lines.join(''));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each([1500, 2300, 3100])(
    'says exactly what landed when stopped after %i ms',
    async (ms) => {
      const file = path.join(dir, `w${ms}.duckdb`);
      const child = spawnTs('src/cli/run.ts', ['load', input, '--warehouse', `duckdb://${file}`], {
        cwd: dir,
      });
      let stderr = '';
      child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const exited = new Promise<number | null>((resolve) => child.on('close', (code) => resolve(code)));
      for (let i = 0; i < 200 && !fs.existsSync(file); i++) await new Promise((r) => setTimeout(r, 50));
      await new Promise((r) => setTimeout(r, ms));
      child.kill('SIGINT');
      expect(await exited).toBe(1);
      const said =
        /error: interrupted \(SIGINT\) before the command finished: ([\d,]+) events had landed, from \S+ up to line ([\d,]+); nothing after it was written\./.exec(
          stderr,
        );
      expect(said).not.toBeNull();
      const [events, line] = [Number(said![1].replace(/,/g, '')), Number(said![2].replace(/,/g, ''))];
      expect(events).toBeGreaterThan(0);
      expect(events).toBeLessThan(400_000);
      const wh = await openWarehouse(`duckdb://${file}`);
      try {
        const [{ n, last }] = await wh.query<{ n: number; last: number }>(
          `select count(*) as n, max(cast(json_extract_string(properties, '$.i') as integer)) + 1 as last from cdp.tracks`,
        );
        expect(n).toBe(events);
        // every line one event: the events landed are lines 1 to the one named, and no other
        expect(line).toBe(events);
        expect(last).toBe(line);
      } finally {
        await wh.close();
      }
    },
    60_000,
  );
});

describe('the line an interrupted load of files ends with', () => {
  it('names the command that lands the rest of the file, then the files not started', () => {
    const text = interruptedLoad(['a.ndjson', 'b.ndjson', 'c.ndjson', 'd.ndjson'], {
      filesDone: ['a.ndjson'],
      file: 'b.ndjson',
      throughLine: 12_000,
      landed: 31_990,
      rejected: 10,
      landedBeyond: 0,
    });
    expect(text).toBe(
      '31,990 events had landed (10 lines rejected), from a.ndjson and b.ndjson up to line 12,000; nothing after it was written. To land the rest only, load from `tail -n +12001 b.ndjson | cdp-lifecycle load - …`, then load c.ndjson d.ndjson: a rerun of the whole load lands the first ones again, which the models count once only when they carry a messageId (load gives those without one a new random id each time).',
    );
  });

  it('decompresses a gzipped file before counting its lines', () => {
    const text = interruptedLoad(['export.json.gz'], {
      filesDone: [],
      file: 'export.json.gz',
      gzipped: true,
      throughLine: 41_211,
      landed: 41_211,
      rejected: 0,
      landedBeyond: 0,
    });
    expect(text).toContain('load from `gzip -dc export.json.gz | tail -n +41212 | cdp-lifecycle load - …`');
  });

  it('quotes the file names that the shell would split, so that the command runs as printed', () => {
    const text = interruptedLoad(['my export.ndjson', "it's.ndjson"], {
      filesDone: [],
      file: 'my export.ndjson',
      throughLine: 10,
      landed: 10,
      rejected: 0,
      landedBeyond: 0,
    });
    expect(text).toContain(
      "load from `tail -n +11 'my export.ndjson' | cdp-lifecycle load - …`, then load 'it'\\''s.ndjson':",
    );
  });

  it('names the events of a later batch that committed first (PostgreSQL writes two batches at once)', () => {
    const text = interruptedLoad(['e.ndjson'], {
      filesDone: [],
      file: 'e.ndjson',
      throughLine: 2000,
      landed: 2000,
      rejected: 0,
      landedBeyond: 2000,
    });
    expect(text).toMatch(
      /^2,000 events had landed, from e\.ndjson up to line 2,000 \(and 2,000 lines of a later batch, which loading from there lands again\); /,
    );
    // the later batch committed, the first not yet: not "no event had landed", which would land it twice
    const early = interruptedLoad(['e.ndjson'], {
      filesDone: [],
      file: 'e.ndjson',
      throughLine: 0,
      landed: 0,
      rejected: 0,
      landedBeyond: 2000,
    });
    expect(early).toMatch(
      /^0 events had landed, from e\.ndjson up to line 0 \(and 2,000 lines of a later batch, which loading from there lands again\); .* load from `tail -n \+1 e\.ndjson/,
    );
  });
});

/**
 * Ctrl-C during a sync: no new request leaves, the one in flight gets its answer and is recorded, the run ends
 * `interrupted` with what it delivered, and the line says so; the next sync sends exactly the rest.
 */
describeEachWarehouse('an interrupted sync', ({ tw }) => {
  it('records what the CDP acknowledged, says how many, and leaves the rest to the next sync', async () => {
    const USERS = 200;
    const wh = await tw().open();
    try {
      await writeUserLifecycle(wh, 'lifecycle', makeUsers(USERS));
    } finally {
      await wh.close();
    }
    const cdp = await startFakeCdp();
    try {
      const proc: { child?: ReturnType<typeof spawnTs> } = {};
      // the third request is where Ctrl-C lands; its answer comes while the sync is stopping
      cdp.setHandler(async (r) => {
        if (r.n === 3) {
          proc.child?.kill('SIGINT');
          await new Promise((resolve) => setTimeout(resolve, 500));
        }
        return { status: 200 };
      });
      // 20 events a second: requests of 20, a second apart, so that the sync is caught between two
      proc.child = spawnTs('src/cli/run.ts', [
        'sync',
        '--to',
        'segment',
        '--endpoint',
        cdp.url,
        '--write-key',
        'wk-interrupted',
        '--rate-limit',
        '20',
        '--warehouse',
        tw().url,
      ]);
      let stderr = '';
      proc.child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
      const code = await new Promise<number | null>((resolve) => proc.child!.on('close', resolve));
      expect(code).toBe(1);
      expect(cdp.requests.map((r) => r.body.batch.length)).toEqual([20, 20, 20]);
      expect(stderr).toMatch(
        /^error: interrupted \(SIGINT\) before the command finished: 60 users delivered and recorded in lifecycle\.sync_state; the next sync sends the rest\.$/m,
      );
      const first = new Set(cdp.acked().map((e) => e.userId));
      const again = await tw().open();
      try {
        const runs = await again.query<{ status: string; sent: number; done: boolean }>(
          `select status, cast(sent as integer) as sent, finished_at is not null as done from lifecycle.sync_runs`,
        );
        expect(runs).toEqual([{ status: 'interrupted', sent: 60, done: true }]);
        const before = cdp.requests.length;
        cdp.setHandler(() => ({ status: 200 }));
        const rest = await runSync({
          warehouse: again,
          schema: 'lifecycle',
          to: 'segment',
          endpoint: cdp.url,
          writeKey: 'wk-interrupted',
        });
        expect(rest).toMatchObject({ changed: USERS - 60, sent: USERS - 60, failed: 0 });
        const second = cdp.requests.slice(before).flatMap((r) => r.body.batch.map((e) => e.userId));
        for (const id of second) expect(first.has(id)).toBe(false);
        expect(new Set([...first, ...second]).size).toBe(USERS);
      } finally {
        await again.close();
      }
    } finally {
      await cdp.close();
    }
  }, 60_000);
});
