/**
 * A build stopped part-way leaves the models before the stop at the new D and `user_lifecycle` (a view that
 * prints the D it was created with) at the old one: sync refuses to send those rows, dry run included, until a
 * build finishes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli, type CliResult } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';

const events = [
  { type: 'track', userId: 'u1', event: 'Viewed', messageId: 'e1', timestamp: '2024-03-01T10:00:00Z' },
  { type: 'track', userId: 'u1', event: 'Viewed', messageId: 'e2', timestamp: '2024-03-05T10:00:00Z' },
  { type: 'track', userId: 'u2', event: 'Viewed', messageId: 'e3', timestamp: '2024-03-06T10:00:00Z' },
].map((e) => JSON.stringify(e));

describeEachWarehouse('sync after a build that stopped part-way', ({ tw }) => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-unfinished-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const cli = (...args: string[]): Promise<CliResult> =>
    runCli([...args, '--warehouse', tw().url], { cwd: dir, input: events.join('\n') });
  const asOf = (d: string) => ['--vars', JSON.stringify({ lifecycle__as_of_date: d })];
  const dryRun = () => cli('sync', '--dry-run', '--to', 'segment', '--write-key', 'wk');

  it('refuses until a build for the new D finishes, then syncs', async () => {
    expect((await cli('load', '-')).code).toBe(0);
    expect((await cli('build', ...asOf('2024-03-06'))).code).toBe(0);
    expect((await dryRun()).code).toBe(0);

    // the next day's build gets as far as its first model (as a build killed after it does)
    expect((await cli('build', ...asOf('2024-03-07'), '--select', 'int_lifecycle__builds')).code).toBe(0);
    const refused = await dryRun();
    expect(refused.code).toBe(1);
    expect(refused.stderr.split('\n').filter((l) => l.startsWith('error:'))).toEqual([
      'error: lifecycle.user_lifecycle says as of 2024-03-06 while the last build started as of 2024-03-07, so that build stopped part-way (or built only some models) and the marts may mix the two: run `cdp-lifecycle build` again before syncing.',
    ]);

    expect((await cli('build', ...asOf('2024-03-07'))).code).toBe(0);
    expect((await dryRun()).code).toBe(0);
  }, 240_000);
});
