import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { spawnTs } from '../helpers/cli';
import { openWarehouse } from '../../src/warehouse';
import { sampleEvents, startFakeSegment } from './fake-cdp';

interface LogLine {
  level: number;
  msg: string;
  run?: number;
  exitCode?: number;
  url?: string;
  next?: string;
  sync?: { status: string; sent: number; failed: number; invalid: number; changed: number; runId: string };
}

/**
 * `serve --schedule <cron>` on the DuckDB file `file` with a free port; its log records are collected as they
 * come, and its standard error.
 */
function spawnServe(
  file: string,
  schedule: string,
  opts: { cwd: string; args?: string[]; env?: NodeJS.ProcessEnv },
): { child: ChildProcess; lines: Array<LogLine & { file?: string }>; stderr: () => string } {
  const child = spawnTs(
    'src/cli/run.ts',
    ['serve', '--warehouse', `duckdb://${file}`, '--port', '0', ...(opts.args ?? []), '--schedule', schedule],
    { cwd: opts.cwd, env: opts.env },
  );
  const lines: LogLine[] = [];
  let buf = '';
  let stderr = '';
  child.stdout?.on('data', (d: Buffer) => {
    buf += d.toString();
    const parts = buf.split('\n');
    buf = parts.pop() ?? '';
    for (const l of parts) if (l.trim() !== '') lines.push(JSON.parse(l) as LogLine);
  });
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  return { child, lines, stderr: () => stderr };
}

/**
 * `serve --schedule` end to end on a DuckDB file: the collector takes events over HTTP while build, test and
 * sync run every second in the same process (the file has one writer), never two runs at once; SIGTERM
 * drains and exits 0.
 */
describe('cdp-lifecycle serve --schedule', () => {
  let dir: string;
  let child: ChildProcess;
  let fake: Awaited<ReturnType<typeof startFakeSegment>>;
  let logs: LogLine[] = [];
  let stderr: () => string;
  let exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;

  const waitFor = async (pred: () => boolean, what: string, ms = 90_000): Promise<void> => {
    const until = Date.now() + ms;
    while (!pred()) {
      if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stderr: ${stderr()}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-serve-'));
    fake = await startFakeSegment();
    const served = spawnServe(path.join(dir, 'w.duckdb'), '* * * * * *', {
      cwd: dir,
      env: {
        LIFECYCLE_WRITE_KEYS: 'collector-key',
        LIFECYCLE_SYNC_TO: 'segment',
        LIFECYCLE_SYNC_ENDPOINT: fake.url,
        LIFECYCLE_SYNC_WRITE_KEY: 'sync-key',
      },
    });
    child = served.child;
    logs = served.lines;
    stderr = served.stderr;
    exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
  });

  afterAll(async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
    await fake.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('collects, builds, tests and syncs on the schedule, one run at a time, and exits 0 on SIGTERM', async () => {
    await waitFor(() => logs.some((l) => l.url?.startsWith('http://')), 'the collector to listen');
    const url = logs.find((l) => l.url)!.url!;

    // Land events over HTTP while the schedule is already running.
    const res = await fetch(`${url}/v1/batch`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from('collector-key:').toString('base64')}`,
      },
      body: JSON.stringify({ batch: sampleEvents(['s1', 's2'], () => 0) }),
    });
    expect(res.status).toBe(200);
    const wrongKey = await fetch(`${url}/v1/batch`, {
      method: 'POST',
      headers: {
        'content-type': 'application/json',
        authorization: `Basic ${Buffer.from('nope:').toString('base64')}`,
      },
      body: JSON.stringify({ batch: sampleEvents(['intruder'], () => 0) }),
    });
    expect(wrongKey.status).toBe(401);

    // A later scheduled run picks the events up and syncs both users (first seen today: new).
    await waitFor(() => fake.identifies().length >= 2, 'the scheduled sync to deliver both users');
    expect(
      fake
        .identifies()
        .map((m) => [m.userId, m.traits.lifecycle_status])
        .sort(),
    ).toEqual([
      ['s1', 'new'],
      ['s2', 'new'],
    ]);
    // Let one whole run start and finish after the one that synced.
    const count = (re: RegExp): number => logs.filter((l) => re.test(l.msg)).length;
    const startedSoFar = count(/^scheduled run started/);
    await waitFor(
      () => count(/^scheduled run succeeded/) >= startedSoFar + 1,
      'one more scheduled run after the sync',
    );
    // Unchanged users are not sent again by the later runs.
    expect(fake.identifies()).toHaveLength(2);
    // Each sync's figures are fields of one record, for alerts that read the log without parsing text.
    const syncs = logs.filter((l) => l.sync !== undefined);
    expect(syncs.some((l) => l.sync?.sent === 2 && l.sync.failed === 0 && l.sync.status === 'success')).toBe(
      true,
    );
    expect(syncs.every((l) => l.level === 30 && l.run !== undefined && /^sync success: /.test(l.msg))).toBe(
      true,
    );
    // Each scheduled run leaves dbt's artifact of its build and test steps in the working directory (the
    // next run, a second later, removes it when it starts, writes it after its build and again after its
    // tests: read it once it holds both steps).
    type Artifact = { results: Array<{ unique_id: string; status: string }>; args: { which: string } };
    const got: { art?: Artifact } = {};
    await waitFor(() => {
      try {
        got.art = JSON.parse(
          fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8'),
        ) as Artifact;
        return got.art.results.some((e) => e.unique_id.startsWith('test.'));
      } catch {
        return false;
      }
    }, "a scheduled run's run_results.json with its tests");
    const art = got.art as Artifact;
    expect(art.args.which).toBe('run');
    expect(art.results.find((e) => e.unique_id === 'model.cdp_lifecycle.user_lifecycle')?.status).toBe(
      'success',
    );
    expect(art.results.some((e) => e.unique_id.startsWith('test.') && e.status === 'pass')).toBe(true);

    child.kill('SIGTERM');
    const { code } = await exited;
    expect(stderr()).toBe('');
    expect(code).toBe(0);

    // Runs never overlap: every "started" follows the previous run's end, in order.
    const events = logs.filter(
      (l) => l.run !== undefined && /^scheduled run (started|succeeded|failed)/.test(l.msg),
    );
    let open: number | undefined;
    for (const e of events) {
      if (/started/.test(e.msg)) {
        expect(open).toBeUndefined();
        open = e.run;
      } else {
        expect(e.run).toBe(open);
        open = undefined;
      }
    }
    expect(events.filter((e) => /started/.test(e.msg)).length).toBeGreaterThanOrEqual(2);
    expect(logs.some((l) => /shutting down/.test(l.msg))).toBe(true);
    // a run finished while stopping has no next run to announce
    expect(logs.filter((l) => l.msg === 'next scheduled run').every((l) => typeof l.next === 'string')).toBe(
      true,
    );

    // The warehouse was closed cleanly (the lock is free) and holds what was collected and synced.
    const wh = await openWarehouse(`duckdb://${path.join(dir, 'w.duckdb')}`);
    try {
      const [{ n }] = await wh.query<{ n: number }>('select count(*) as n from cdp.tracks');
      expect(n).toBe(2);
      const state = await wh.query<{ user_id: string }>(
        "select user_id from lifecycle.sync_state where status = 'delivered' order by user_id",
      );
      expect(state.map((r) => r.user_id)).toEqual(['s1', 's2']);
    } finally {
      await wh.close();
    }
  });

  it('on SIGTERM during a scheduled run, finishes that run, then exits 0', async () => {
    const file = path.join(dir, 'drain.duckdb');
    const {
      child: second,
      lines,
      stderr: err,
    } = spawnServe(file, '* * * * * *', {
      cwd: dir,
      args: ['--write-key', 'k'],
    });
    const done = new Promise<number | null>((resolve) => second.on('exit', (code) => resolve(code)));
    try {
      const until = Date.now() + 60_000;
      while (!lines.some((l) => l.msg === 'scheduled run started')) {
        if (Date.now() > until) throw new Error(`no scheduled run started; stderr: ${err()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      second.kill('SIGTERM');
      const until2 = Date.now() + 10_000;
      while (!lines.some((l) => l.msg === 'shutting down: draining in-flight requests')) {
        if (Date.now() > until2) throw new Error(`no shutdown logged; stderr: ${err()}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      // it stops taking events at once, while the scheduled run in progress finishes
      const url = lines.find((l) => l.url)!.url!;
      const late = await fetch(`${url}/v1/track`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from('k:').toString('base64')}` },
        body: JSON.stringify({ userId: 'late', event: 'Late' }),
      }).then(
        (r) => r.status,
        () => 'refused',
      );
      expect(late).not.toBe(200);
      expect(await done).toBe(0);
    } finally {
      if (second.exitCode === null) second.kill('SIGKILL');
    }
    const msgs = lines.map((l) => l.msg);
    const shutdown = msgs.indexOf('shutting down: draining in-flight requests');
    const finished = msgs.findIndex((m) => /^scheduled run (succeeded|failed)/.test(m));
    expect(shutdown).toBeGreaterThanOrEqual(0);
    // The run in progress ended after the signal and before the warehouse was closed.
    expect(finished).toBeGreaterThan(shutdown);
    expect(msgs.indexOf('closing the warehouse')).toBeGreaterThan(finished);
    expect(msgs.filter((m) => m === 'scheduled run started')).toHaveLength(1);
  });
});

describe('cdp-lifecycle serve --schedule with sync.to but no sync write key', () => {
  it('says which sync setting is missing, and keeps collecting', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-serve-half-'));
    const { child, lines } = spawnServe(path.join(dir, 'w.duckdb'), '0 0 1 1 *', {
      cwd: dir,
      env: { LIFECYCLE_WRITE_KEYS: 'collector-key', LIFECYCLE_SYNC_TO: 'segment' },
    });
    try {
      // the schedule starts once the collector listens: wait for its warning
      const until = Date.now() + 30_000;
      let warning: LogLine | undefined;
      while (!(warning = lines.find((l) => l.msg.includes('scheduled runs will')))) {
        if (child.exitCode !== null) throw new Error(`serve exited early (${String(child.exitCode)})`);
        if (Date.now() > until) throw new Error('no warning about the schedule');
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(warning.msg).toBe(
        'sync.to is segment but no sync write key is set (sync.write_key in cdp-lifecycle.yml, or LIFECYCLE_SYNC_WRITE_KEY): scheduled runs will build and test only',
      );
      expect(warning.level).toBe(40);
      // a relative --warehouse path follows the working directory: the log names the file itself
      expect(lines.find((l) => l.msg === 'DuckDB warehouse file')?.file).toBe(path.join(dir, 'w.duckdb'));
    } finally {
      const closed = new Promise((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      await closed;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cdp-lifecycle serve --schedule when a run fails before its first model', () => {
  it('logs the exit code `run` would give, writes run_results.json into --target-path, and keeps collecting', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-serve-fail-'));
    const { child, lines, stderr } = spawnServe(path.join(dir, 'w.duckdb'), '* * * * * *', {
      cwd: dir,
      args: ['--target-path', 'artifacts'],
      // a pages table that does not exist: the build stops at its source check, before any model
      env: { LIFECYCLE_WRITE_KEYS: 'collector-key', LIFECYCLE_VARS: '{"lifecycle__pages_table": "nope"}' },
    });
    try {
      const until = Date.now() + 60_000;
      let failed: LogLine | undefined;
      while (!(failed = lines.find((l) => l.msg.startsWith('scheduled run failed')))) {
        if (child.exitCode !== null)
          throw new Error(`serve exited early (${String(child.exitCode)}): ${stderr()}`);
        if (Date.now() > until) throw new Error(`no failed scheduled run; stderr: ${stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      expect(failed.level).toBe(50);
      expect(failed.exitCode).toBe(1);
      expect(lines.some((l) => /cdp\.nope/.test(l.msg))).toBe(true);
      // the steps after the failed build are said to be skipped, as after a failed test
      expect(lines.find((l) => /^build failed, so test did not run\.$/.test(l.msg))).toMatchObject({
        level: 50,
      });
      const art = JSON.parse(fs.readFileSync(path.join(dir, 'artifacts', 'run_results.json'), 'utf8')) as {
        results: Array<{ status: string; message: string | null }>;
      };
      expect(art.results.length).toBeGreaterThan(0);
      expect(art.results.every((e) => e.status === 'skipped' && /cdp\.nope/.test(e.message ?? ''))).toBe(
        true,
      );
      // the collector is still up
      expect(child.exitCode).toBeNull();
    } finally {
      const closed = new Promise((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      await closed;
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('cdp-lifecycle serve --schedule when the CDP refuses the sync', () => {
  it("logs the sync record with the run's figures (status error), which an alert reads", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-serve-refused-'));
    const refusing = await startFakeSegment(401);
    const { child, lines, stderr } = spawnServe(path.join(dir, 'w.duckdb'), '* * * * * *', {
      cwd: dir,
      env: {
        LIFECYCLE_WRITE_KEYS: 'collector-key',
        LIFECYCLE_SYNC_TO: 'segment',
        LIFECYCLE_SYNC_ENDPOINT: refusing.url,
        LIFECYCLE_SYNC_WRITE_KEY: 'sync-key',
      },
    });
    const waitFor = async <T>(find: () => T | undefined, what: string): Promise<T> => {
      const until = Date.now() + 90_000;
      let found: T | undefined;
      while ((found = find()) === undefined) {
        if (child.exitCode !== null)
          throw new Error(`serve exited early (${String(child.exitCode)}): ${stderr()}`);
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}; stderr: ${stderr()}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      return found;
    };
    try {
      const url = (await waitFor(() => lines.find((l) => l.url), 'the collector to listen')).url!;
      const res = await fetch(`${url}/v1/batch`, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          authorization: `Basic ${Buffer.from('collector-key:').toString('base64')}`,
        },
        body: JSON.stringify({ batch: sampleEvents(['r1'], () => 0) }),
      });
      expect(res.status).toBe(200);
      const record = await waitFor(
        () => lines.find((l) => l.sync?.status === 'error'),
        'a sync error record',
      );
      expect(record).toMatchObject({ level: 50, msg: 'sync error: 0 sent, 0 failed, 0 invalid' });
      expect(record.sync).toMatchObject({ sent: 0, changed: 1 });
      expect(typeof record.sync?.runId).toBe('string');
      expect(child.exitCode).toBeNull();
    } finally {
      const closed = new Promise((resolve) => child.on('close', resolve));
      child.kill('SIGTERM');
      await closed;
      await refusing.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
