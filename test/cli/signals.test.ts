import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawnTs } from '../helpers/cli';

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
