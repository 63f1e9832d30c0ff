import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { runCli } from '../helpers/cli';
import { describeEachWarehouse, pgAdmin } from '../helpers/warehouses';
import { expectExit, sampleEvents, startFakeSegment } from './fake-cdp';

// How a DBA often sets cdp-lifecycle up on PostgreSQL: a login role that owns the two schemas made for it,
// with no CREATE on the database and no superuser rights. Load, build, test and sync must all work with that.
describeEachWarehouse(
  'cdp-lifecycle as a role that only owns its schemas',
  ({ tw }) => {
    const role = `cdpl_etl_${randomBytes(3).toString('hex')}`;
    let dir: string;
    let url: string;
    let fake: Awaited<ReturnType<typeof startFakeSegment>>;

    beforeAll(async () => {
      await pgAdmin(`create role ${role} login`);
      await pgAdmin(
        [
          'revoke create on schema public from public',
          `revoke create on database ${new URL(tw().url).pathname.slice(1)} from public`,
          `create schema cdp authorization ${role}`,
          `create schema lifecycle authorization ${role}`,
        ],
        tw().url,
      );
      const u = new URL(tw().url);
      u.username = role;
      url = u.toString();
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-role-'));
      const lines = sampleEvents(['u1', 'u2', 'u3'], (i) => [0, 40, 100][i]).map((e) => JSON.stringify(e));
      fs.writeFileSync(path.join(dir, 'events.ndjson'), lines.join('\n') + '\n');
      fake = await startFakeSegment();
    });
    afterAll(async () => {
      await fake.close();
      fs.rmSync(dir, { recursive: true, force: true });
      // the suite's database (which the role's objects live in) is dropped first
      await pgAdmin(`drop role if exists ${role}`);
    });

    it('loads, builds, tests and syncs', async () => {
      const load = await runCli(['load', 'events.ndjson', '--warehouse', url], { cwd: dir });
      expectExit(load, 0);
      const run = await runCli(
        ['run', '--warehouse', url, '--to', 'segment', '--endpoint', fake.url, '--write-key', 'k'],
        { cwd: dir },
      );
      expectExit(run, 0);
      expect(run.stdout).toMatch(/Built \d+ models/);
      expect(
        fake
          .identifies()
          .map((m) => m.userId)
          .sort(),
      ).toEqual(['u1', 'u2', 'u3']);
    });

    it('runs again incrementally, and rebuilds in full', async () => {
      const again = await runCli(
        ['run', '--warehouse', url, '--to', 'segment', '--endpoint', fake.url, '--write-key', 'k'],
        { cwd: dir },
      );
      expectExit(again, 0);
      expect(again.stdout).toMatch(/merged incremental model "lifecycle"\."int_lifecycle__status_runs"/);
      const full = await runCli(['build', '--full-refresh', '--warehouse', url], { cwd: dir });
      expectExit(full, 0);
      expect(full.stdout).toMatch(/created incremental model "lifecycle"\."int_lifecycle__status_runs"/);
    });
  },
  ['postgres'],
);
