import * as fs from 'node:fs';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Client } from 'pg';
import { runCli } from '../helpers/cli';
import { describeEachWarehouse, type WarehouseKind } from '../helpers/warehouses';
import { expectExit, sampleEvents, startFakeSegment } from './fake-cdp';

/** The suite, run on one warehouse kind per test file so that each file stays short on 2 cores. */
export function runSuite(kind: WarehouseKind): void {
  describeEachWarehouse(
    'cdp-lifecycle load + run (build, test, sync)',
    ({ tw }) => {
      let dir: string;
      let fake: Awaited<ReturnType<typeof startFakeSegment>>;
      beforeAll(async () => {
        dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-run-'));
        fake = await startFakeSegment();
        // u_new: first and last seen today (new); u_dormant: 40 days ago (30 <= 40 < 90: dormant);
        // u_churned: 100 days ago (>= 90: churned). SPEC §4.4 with the default vars.
        const ago = [0, 40, 100];
        const lines = sampleEvents(['u_new', 'u_dormant', 'u_churned'], (i) => ago[i]).map((e) =>
          JSON.stringify(e),
        );
        fs.writeFileSync(path.join(dir, 'events.ndjson'), lines.join('\n') + '\nnot json\n');
      });
      afterAll(async () => {
        await fake.close();
        fs.rmSync(dir, { recursive: true, force: true });
      });

      const cli = (args: string[]) => runCli([...args, '--warehouse', tw().url], { cwd: dir });
      const syncArgs = (): string[] => ['--to', 'segment', '--endpoint', fake.url, '--write-key', 'sync-key'];

      it('loads NDJSON through the collector path, keeping the bad line in rejected_events', async () => {
        const r = await cli(['load', 'events.ndjson']);
        expectExit(r, 0);
        expect(r.stdout).toMatch(
          /Landed 6 events from 7 lines of 1 file into .* \(schema cdp\); 1 line rejected, kept in cdp\.rejected_events\.\n/,
        );
        expect(r.stderr).toMatch(/1 line rejected, kept in cdp\.rejected_events/);
        const wh = await tw().open();
        try {
          const [{ n }] = await wh.query<{ n: number }>('select count(*) as n from cdp.tracks');
          expect(n).toBe(3);
          const [{ r: rejected }] = await wh.query<{ r: number }>(
            'select count(*) as r from cdp.rejected_events',
          );
          expect(rejected).toBe(1);
        } finally {
          await wh.close();
        }
      });

      it('exits 1 when no line of the files landed, and says why a JSON array is not NDJSON', async () => {
        fs.writeFileSync(
          path.join(dir, 'array.json'),
          JSON.stringify([{ type: 'track', userId: 'arr-user', event: 'Array Event', messageId: 'arr-1' }]) +
            '\n',
        );
        const r = await cli(['load', 'array.json']);
        expectExit(r, 1);
        expect(r.stderr).toMatch(
          /array\.json:1: line is a JSON array: load takes NDJSON, one event object per line/,
        );
        expect(r.stderr).toMatch(/^error: The one line read did not land: fix the reasons above/m);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        const wh = await tw().open();
        try {
          // nothing lost: the line is in quarantine as it was
          const rows = await wh.query<{ payload: string }>(
            `select payload from cdp.rejected_events where payload like '%arr-user%'`,
          );
          expect(rows).toHaveLength(1);
        } finally {
          await wh.close();
        }
      });

      it('stops at the first failing step with its exit code: a bad --select fails the build, nothing is synced', async () => {
        const r = await cli(['run', ...syncArgs(), '--select', 'no_such_model']);
        expectExit(r, 2);
        expect(r.stderr).toMatch(/no_such_model/);
        expect(r.stderr).not.toMatch(/\n\s+at /);
        expect(fake.batches).toHaveLength(0);
      });

      it('names a raw schema that does not exist, with the nearest one, before building anything', async () => {
        const r = await cli(['build', '--raw-schema', 'cpd']);
        expectExit(r, 1);
        expect(r.stderr).toMatch(
          /^error: The schema cpd, where the source tables should be, does not exist in .*: did you mean --raw-schema cdp\? \(schemas there: .*\bcdp\b.*\)\.$/m,
        );
        expect(r.stdout).not.toMatch(/ OK created /);
      });

      it('names every missing source table before building anything: a wrong --raw-schema', async () => {
        const wh = await tw().open();
        try {
          await wh.exec('create schema if not exists segment');
        } finally {
          await wh.close();
        }
        const r = await cli(['build', '--raw-schema', 'segment']);
        expectExit(r, 1);
        expect(r.stderr).toMatch(
          // int_lifecycle__builds names the sources in its config fingerprint (lifecycle_config_fingerprint)
          /^error: The source tables segment\.tracks \(read by int_lifecycle__builds, stg_lifecycle__tracks\); .*segment\.aliases \(read by int_lifecycle__builds, stg_lifecycle__aliases\) do not exist in .*: land events there first \(cdp-lifecycle serve or load\), check --raw-schema/m,
        );
        expect(r.stdout).not.toMatch(/ OK created /);
      });

      it("names the columns a destination's own tables lack before building anything: --raw-schema at them", async () => {
        // A Segment warehouse destination flattens properties and traits into columns of their own.
        const base =
          'id text, user_id text, anonymous_id text, "timestamp" timestamptz, received_at timestamptz';
        const wh = await tw().open();
        try {
          await wh.exec('create schema if not exists seg_dest');
          await wh.exec(
            `create table seg_dest.tracks (${base}, event text, event_text text, revenue double precision)`,
          );
          await wh.exec(`create table seg_dest.identifies (${base}, email text)`);
          for (const t of ['pages', 'screens']) await wh.exec(`create table seg_dest.${t} (${base})`);
          await wh.exec(
            'create table seg_dest.aliases (id text, previous_id text, user_id text, "timestamp" timestamptz, received_at timestamptz)',
          );
        } finally {
          await wh.close();
        }
        const r = await cli(['build', '--raw-schema', 'seg_dest']);
        expectExit(r, 1);
        expect(r.stderr).toMatch(
          /^error: The source tables seg_dest\.tracks has no column properties \(read by int_lifecycle__builds, stg_lifecycle__tracks\); seg_dest\.identifies has no column traits \(read by int_lifecycle__builds, stg_lifecycle__identifies\), though .* docs\/warehouse-destinations\.md/m,
        );
        // The views that read complete tables (aliases, pages, screens) were not repointed either.
        expect(r.stdout).not.toMatch(/ OK created /);
      });

      it('builds, tests and syncs each user once with the lifecycle traits', async () => {
        const r = await cli(['run', ...syncArgs()]);
        expectExit(r, 0);
        expect(r.stdout).toMatch(/Built \d+ models/);
        expect(r.stdout).toMatch(/Ran \d+ tests? in .*: \d+ passed, 0 failed/);
        expect(r.stdout).toMatch(/Sync to Segment/);
        const sent = fake.identifies();
        expect(sent.map((m) => [m.userId, m.traits.lifecycle_status]).sort()).toEqual([
          ['u_churned', 'churned'],
          ['u_dormant', 'dormant'],
          ['u_new', 'new'],
        ]);
        for (const m of sent) expect(m.type).toBe('identify');
        // dbt's artifact of the build and test steps (test/cli/run-results.test.ts checks its shape)
        const art = JSON.parse(fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')) as {
          results: Array<{ unique_id: string; status: string; adapter_response: { rows_affected?: number } }>;
        };
        const state = art.results.find(
          (e) => e.unique_id === 'model.cdp_lifecycle.int_lifecycle__user_state',
        );
        expect(state).toMatchObject({ status: 'success', adapter_response: { rows_affected: 3 } });
        expect(art.results.filter((e) => e.unique_id.startsWith('test.')).map((e) => e.status)).not.toContain(
          'fail',
        );
        expect(fake.batches[0].authorization).toBe(`Basic ${Buffer.from('sync-key:').toString('base64')}`);
      });

      it('sends nothing on a second run when no status changed', async () => {
        const before = fake.identifies().length;
        const r = await cli(['run', ...syncArgs()]);
        expectExit(r, 0);
        expect(fake.identifies()).toHaveLength(before);
      });

      it('run --dry-run to RudderStack without --endpoint builds, tests and warns, as sync --dry-run does', async () => {
        const before = fake.identifies().length;
        const r = await cli(['run', '--to', 'rudderstack', '--dry-run']);
        expectExit(r, 0);
        expect(r.stdout).toMatch(/Ran \d+ tests? in .*: \d+ passed, 0 failed/);
        expect(r.stdout).toMatch(/nothing was sent \(dry run\)/);
        expect(r.stderr).toMatch(/^warning: a real sync to rudderstack also needs --write-key/m);
        expect(r.stderr).toMatch(
          /^warning: a real sync to RudderStack also needs your data plane URL: --endpoint https:\/\/<your-data-plane>\.$/m,
        );
        expect(r.stderr).not.toMatch(/^error:/m);
        expect(fake.identifies()).toHaveLength(before);
      });

      it('exits 1 when the CDP refuses the rows, and says they are retried', async () => {
        const refusing = await startFakeSegment(400);
        try {
          const r = await cli(['sync', '--to', 'segment', '--endpoint', refusing.url, '--write-key', 'k2']);
          expectExit(r, 1);
          expect(r.stderr).toMatch(
            /^error: 3 users could not be delivered to segment: they are retried on the next sync/m,
          );
          expect(r.stderr).not.toMatch(/\n\s+at /);
          // through run, the last step failing: nothing after it to call skipped
          const viaRun = await cli([
            'run',
            '--to',
            'segment',
            '--endpoint',
            refusing.url,
            '--write-key',
            'k2',
          ]);
          expectExit(viaRun, 1);
          expect(viaRun.stderr).toMatch(/^error: 3 users could not be delivered to segment/m);
          expect(viaRun.stderr).not.toMatch(/did not run/);
        } finally {
          await refusing.close();
        }
      });

      it('says each retry of a failing request on stderr without --verbose (a cron log shows why a sync is slow)', async () => {
        let calls = 0;
        const flaky = http.createServer((req, res) => {
          req.resume();
          req.on('end', () => {
            calls++;
            res.writeHead(calls === 1 ? 500 : 200, { 'content-type': 'application/json' });
            res.end(calls === 1 ? '{"message":"boom"}' : '{"success":true}');
          });
        });
        await new Promise<void>((resolve) => flaky.listen(0, '127.0.0.1', resolve));
        try {
          const url = `http://127.0.0.1:${(flaky.address() as AddressInfo).port}`;
          const r = await cli(['sync', '--to', 'segment', '--endpoint', url, '--write-key', 'k3']);
          expectExit(r, 0);
          expect(r.stderr).toMatch(/^warning: retry 1 in [^\n]*: HTTP 500/m);
          expect(calls).toBe(2);
        } finally {
          await new Promise<void>((resolve) => flaky.close(() => resolve()));
        }
      });

      if (kind === 'postgres') {
        it('stops a run that overlaps another process on the same schema, exit 1, nothing sent', async () => {
          // the lock another cdp-lifecycle process (a slow scheduled run) holds while it builds or syncs
          const other = new Client({ connectionString: tw().url });
          await other.connect();
          try {
            await other.query(
              `select pg_advisory_lock(hashtextextended('cdp-lifecycle:schema:lifecycle', 0))`,
            );
            const before = fake.batches.length;
            const r = await cli(['run', ...syncArgs(), '--full-resync']);
            expectExit(r, 1);
            expect(r.stderr).toMatch(
              /^error: Another process is running a build or sync of schema lifecycle on postgres:\/\/\S+ \(PostgreSQL backend PID \d+ from [\d.:]+, connected since [^)]+ UTC\): wait for it to finish, then run again\.$/m,
            );
            expect(fake.batches.length).toBe(before);
          } finally {
            await other.end();
          }
        });
      }

      it('reports in the terminal and as a self-contained HTML page', async () => {
        const r = await cli(['report', '--html', 'report.html']);
        expectExit(r, 0);
        expect(r.stdout).toMatch(/3 users in lifecycle\.user_lifecycle/);
        expect(r.stdout).not.toMatch(/\u001b\[/); // no colour off a terminal
        expect(r.stderr).toMatch(/HTML report written to .*report\.html/);
        expect(fs.readFileSync(path.join(dir, 'report.html'), 'utf8')).toMatch(/<script>[\s\S]*Chart/);
      });

      it('wraps the status meanings to an exported COLUMNS, and keeps a plain pipe one line per status', async () => {
        const narrow = await runCli(['report', '--warehouse', tw().url], {
          cwd: dir,
          env: { ...process.env, COLUMNS: '80' },
        });
        expectExit(narrow, 0);
        const lines = narrow.stdout.split('\n');
        const churned = lines.findIndex((l) => l.startsWith('  churned '));
        expect(lines[churned]).toMatch(/ {3}lost: 90\+ days away, or$/);
        expect(lines[churned + 1]).toMatch(/^ {50}deleted the account \/ app$/);
        for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);

        // an empty COLUMNS stands for one the shell did not export
        const piped = await runCli(['report', '--warehouse', tw().url], { cwd: dir, env: { COLUMNS: '' } });
        expect(piped.stdout).toMatch(
          /^ {2}churned .* {3}lost: 90\+ days away, or deleted the account \/ app$/m,
        );
      });
    },
    [kind],
  );
}
