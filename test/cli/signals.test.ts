import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnTs } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';

/** Ctrl-C (or a scheduler's SIGTERM) in the middle of a command: one sentence, exit 1, no stack trace. */
describe('an interrupted command', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-signal-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it.each(['SIGINT', 'SIGTERM'] as const)(
    'says what %s leaves behind and exits 1',
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
          `^error: interrupted \\(${signal}\\) before the command finished: what it completed stays and what was in flight is rolled back; run it again to finish\\.$`,
          'm',
        ),
      );
      expect(stderr).not.toMatch(/\n\s+at /);
    },
    30_000,
  );
});

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
