import * as fs from 'node:fs';
import * as http from 'node:http';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AddressInfo } from 'node:net';
import { runCli } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';
import { expectExit } from './fake-cdp';

// A typo in the year of lifecycle__as_of_date (2062 for 2026) computes every status for that day: every user
// inactive or churned. The build warns; a real sync refuses before sending anything, a dry run warns.
describeEachWarehouse('cli with an as-of date in the future', ({ tw }) => {
  let dir: string;
  let server: http.Server;
  let endpoint = '';
  let requests = 0;
  const cli = (args: string[]) =>
    runCli([...args, '--warehouse', tw().url, '--raw-schema', 'fut_raw', '--schema', 'fut'], { cwd: dir });
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-future-'));
    const today = new Date().toISOString().slice(0, 10);
    const tenDaysAgo = new Date(Date.now() - 10 * 86400000).toISOString().slice(0, 10);
    const track = (messageId: string, day: string) =>
      JSON.stringify({
        type: 'track',
        event: 'Viewed Item',
        userId: 'u1',
        messageId,
        timestamp: `${day}T00:00:00.000Z`,
      });
    fs.writeFileSync(path.join(dir, 'events.ndjson'), `${track('m1', today)}\n${track('m0', tenDaysAgo)}\n`);
    // a CDP that answers every batch with 200: the test counts what reached it
    server = http.createServer((req, res) => {
      requests += 1;
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{}'));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    endpoint = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('warns on build, refuses a real sync and warns on a dry run', async () => {
    expectExit(await cli(['load', 'events.ndjson']), 0);
    const vars = ['--vars', '{"lifecycle__as_of_date": "2062-12-06"}'];
    const build = await cli(['build', ...vars]);
    expectExit(build, 0);
    expect(build.stderr).toMatch(
      /^warning: the var lifecycle__as_of_date \(2062-12-06\) is after today \(\d{4}-\d{2}-\d{2} in UTC\): every user's status is computed for that day, inactive until then, and sync refuses statuses built for a day that has not begun anywhere yet\.$/m,
    );
    expect(build.stdout).toMatch(
      /^Statuses as of 2062-12-06 \(lifecycle__as_of_date\), days dated in UTC \(lifecycle__timezone\)\.$/m,
    );
    const sync = await cli(['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', endpoint]);
    expectExit(sync, 1);
    expect(sync.stderr.trim()).toBe(
      'error: The models in schema fut were built as of 2062-12-06, a day that has not begun anywhere yet, so every status is computed for then: rebuild without lifecycle__as_of_date (today) or with a past date before syncing.',
    );
    expect(requests).toBe(0);
    const dry = await cli(['sync', '--to', 'segment', '--dry-run']);
    expectExit(dry, 0);
    expect(dry.stderr).toMatch(
      /^warning: the models in schema fut were built as of 2062-12-06, a day that has not begun anywhere yet: a real sync refuses to send these statuses\.$/m,
    );
    // built as of today, the same sync goes through
    const before = new Date().toISOString().slice(0, 10);
    const today = await cli(['build']);
    const after = new Date().toISOString().slice(0, 10);
    expectExit(today, 0);
    // the warehouse's today in the default zone (either side of a midnight during the build)
    const asOfLine = today.stdout.split('\n').find((l) => l.startsWith('Statuses as of '));
    expect([before, after].map((d) => `Statuses as of ${d} (today in UTC, lifecycle__timezone).`)).toContain(
      asOfLine,
    );
    expect(today.stderr).not.toMatch(/after today/);
    const synced = await cli(['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', endpoint]);
    expectExit(synced, 0);
    expect(synced.stderr).not.toMatch(/warning/);
    expect(requests).toBeGreaterThan(0);
    // six CLI runs, each compiling TypeScript on start: well over a minute on a loaded CI machine
  }, 300_000);

  it('warns when the statuses to sync are of a day that has passed everywhere (a backfill build)', async () => {
    const past = new Date(Date.now() - 3 * 86400000).toISOString().slice(0, 10);
    const build = await cli(['build', '--vars', JSON.stringify({ lifecycle__as_of_date: past })]);
    expectExit(build, 0);
    const dry = await cli(['sync', '--to', 'segment', '--dry-run']);
    expectExit(dry, 0);
    expect(dry.stderr).toContain(
      `warning: the models in schema fut were built as of ${past}, a day that has passed everywhere: the CDP would get the statuses of that day; rebuild without lifecycle__as_of_date for today's.`,
    );
  }, 180_000);
});
