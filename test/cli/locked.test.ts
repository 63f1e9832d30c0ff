import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { loadAndBuild, runCli, spawnTs, type CliResult } from '../helpers/cli';

function errorLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('error:'));
}

/** The small holder of a DuckDB file (test/cli/fixtures/hold-duckdb.ts), once it has the file open. */
async function startHolder(args: string[]): Promise<ChildProcess> {
  const holder = spawnTs('test/cli/fixtures/hold-duckdb.ts', args);
  await new Promise<void>((resolve, reject) => {
    let out = '';
    holder.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    holder.on('exit', (code) => reject(new Error(`holder exited early with ${code}`)));
  });
  return holder;
}

async function stopHolder(holder: ChildProcess): Promise<void> {
  const exited = new Promise((r) => holder.once('exit', r));
  holder.kill('SIGTERM');
  await exited;
}

/**
 * A DuckDB file has one writer process: a second process (here a small holder, in real life `serve`) makes
 * every other command fail with one sentence saying what to do instead.
 */
describe('cli on a DuckDB file locked by another process', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-locked-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  describe('a DuckDB file locked by another process', () => {
    let holder: ChildProcess;
    let file: string;
    beforeAll(async () => {
      file = path.join(dir, 'held.duckdb');
      holder = await startHolder([file]);
    });
    afterAll(() => stopHolder(holder));

    it.each([
      ['build', /serve --schedule/],
      ['load', /send the events to that collector \(POST \/v1\/batch\) instead/],
      ['report', /stop it for a moment/],
    ])('%s exits 1 and says what to do instead', async (command, advice) => {
      const args = command === 'load' ? ['load', '-'] : [command];
      const r = await runCli([...args, '--warehouse', `duckdb://${file}`], { cwd: dir, input: '' });
      expect(r.code).toBe(1);
      const lines = errorLines(r);
      expect(lines).toHaveLength(1);
      // named by what it runs, read from /proc: not guessed to be serve
      expect(lines[0]).toContain(
        `The DuckDB file ${file} is in use by another process (PID ${holder.pid}), \`node hold-duckdb.ts\`: `,
      );
      expect(lines[0]).toMatch(advice);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });

    it('shows the stack trace only with --verbose', async () => {
      const r = await runCli(['build', '--warehouse', `duckdb://${file}`, '--verbose'], { cwd: dir });
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/\n\s+at /);
    });
  });
  /**
   * An analyst's `duckdb -readonly` session (or a BI tool) shares the file with other readers: `report` and
   * `test` only read, so they open it read-only and run beside it; commands that write still cannot.
   */
  describe('a DuckDB file another process reads', () => {
    let holder: ChildProcess;
    let file: string;
    beforeAll(async () => {
      file = path.join(dir, 'read.duckdb');
      const events = Array.from({ length: 30 }, (_, i) =>
        JSON.stringify({ type: 'track', event: 'Opened App', userId: `u${i % 5}`, messageId: `m${i}` }),
      );
      await loadAndBuild(['--warehouse', `duckdb://${file}`], dir, events);
      holder = await startHolder([file, '--read-only']);
    }, 60_000);
    afterAll(() => stopHolder(holder));

    it('report and test run beside it', async () => {
      const report = await runCli(['report', '--warehouse', `duckdb://${file}`], { cwd: dir });
      expect(report.stderr).toBe('');
      expect(report.code).toBe(0);
      expect(report.stdout).toMatch(/^5 users in lifecycle\.user_lifecycle$/m);
      const test = await runCli(['test', '--warehouse', `duckdb://${file}`], { cwd: dir });
      expect(test.code).toBe(0);
      expect(test.stdout).toMatch(/^Ran \d+ tests in [\d.]+s: \d+ passed, 0 failed/m);
    });

    it('build, which writes, still says who holds the file', async () => {
      const r = await runCli(['build', '--warehouse', `duckdb://${file}`], { cwd: dir });
      expect(r.code).toBe(1);
      expect(errorLines(r)).toEqual([
        expect.stringContaining(`The DuckDB file ${file} is in use by another process (PID ${holder.pid})`),
      ]);
    });
  });
});
