import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { expectExit } from './fake-cdp';

describe('cdp-lifecycle compile', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-compile-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('renders every model for each dialect without a warehouse', async () => {
    // An unreachable warehouse proves nothing is opened.
    const r = await runCli(
      [
        'compile',
        '--dialect',
        'snowflake',
        '--out',
        'out',
        '--warehouse',
        'postgres://nobody@127.0.0.1:1/x',
        '--vars',
        '{"lifecycle__new_day": 3, "lifecycle__timezone": "Asia/Tokyo"}',
      ],
      { cwd: dir },
    );
    expectExit(r, 0);
    const files = fs.readdirSync(path.join(dir, 'out', 'snowflake'));
    for (const mart of [
      'user_lifecycle',
      'user_status_history',
      'status_transitions',
      'status_daily',
      'growth_accounting_daily',
    ]) {
      expect(files).toContain(`${mart}.sql`);
    }
    expect(r.stdout).toMatch(/Compiled \d+ models for snowflake into .*out\/snowflake/);
    // A misspelt var would silently keep its default: the CLI says so, naming the var it probably meant.
    expect(r.stderr).toMatch(
      /warning: the var lifecycle__new_day is not declared by the cdp_lifecycle package, so it changes nothing \(did you mean lifecycle__new_days\?\)/,
    );
    expect(r.stderr).not.toMatch(/lifecycle__timezone/);
  });

  it('renders what a daily run executes with --incremental, beside the first run', async () => {
    // a fixed D, so that both renders print the same dates
    const vars = ['--vars', '{"lifecycle__as_of_date": "2024-03-31"}'];
    const first = await runCli(['compile', '--dialect', 'duckdb', '--out', 'out', ...vars], { cwd: dir });
    expectExit(first, 0);
    const r = await runCli(['compile', '--dialect', 'duckdb', '--out', 'out', '--incremental', ...vars], {
      cwd: dir,
    });
    expectExit(r, 0);
    expect(r.stdout).toMatch(
      /Compiled \d+ models for duckdb \(incremental models as a daily run executes them\) into .*out\/duckdb\/incremental\./,
    );
    const read = (...p: string[]) => fs.readFileSync(path.join(dir, 'out', 'duckdb', ...p), 'utf8');
    // the daily run restarts each affected user's sweep from the stored runs; a first run has none to read
    expect(read('incremental', 'int_lifecycle__status_runs.sql')).toMatch(/restarted_sweep/);
    expect(read('int_lifecycle__status_runs.sql')).not.toMatch(/restarted_sweep/);
    // every model is there, the marts (views) as in a first run
    expect(fs.readdirSync(path.join(dir, 'out', 'duckdb', 'incremental')).sort()).toEqual(
      fs
        .readdirSync(path.join(dir, 'out', 'duckdb'))
        .filter((f) => f.endsWith('.sql'))
        .sort(),
    );
    expect(read('incremental', 'user_lifecycle.sql')).toBe(read('user_lifecycle.sql'));
  });

  it('writes into the target path, takes --select and --exclude, and names an unwritable --out', async () => {
    const r = await runCli(
      ['compile', '--dialect', 'duckdb', '--select', '+user_lifecycle', '--exclude', 'stg_lifecycle__pages'],
      { cwd: dir, env: { LIFECYCLE_TARGET_PATH: 'artifacts' } },
    );
    expectExit(r, 0);
    const files = fs.readdirSync(path.join(dir, 'artifacts', 'compiled', 'duckdb'));
    expect(files).toContain('user_lifecycle.sql');
    expect(files).toContain('stg_lifecycle__screens.sql');
    // excluded, and not an ancestor of user_lifecycle
    expect(files).not.toContain('stg_lifecycle__pages.sql');
    expect(files).not.toContain('status_daily.sql');
    expect(fs.existsSync(path.join(dir, 'target'))).toBe(false);

    fs.writeFileSync(path.join(dir, 'a-file'), '');
    const bad = await runCli(['compile', '--dialect', 'duckdb', '--out', 'a-file/out'], { cwd: dir });
    expectExit(bad, 1);
    expect(bad.stderr).toMatch(
      /Cannot write the compiled models into .*a-file\/out\/duckdb \(ENOTDIR\): pass --out \(or --target-path\) with a folder you can write to\./,
    );
    expect(bad.stderr).not.toMatch(/unexpected|\n\s+at /);
    // Node's recursive mkdir never returns under /proc: the command must fail, not hang
    const proc = await runCli(['compile', '--dialect', 'duckdb', '--target-path', '/proc/cdp-lifecycle-x'], {
      cwd: dir,
    });
    expectExit(proc, 1);
    expect(proc.stderr).toMatch(
      /Cannot write the compiled models into \/proc\/cdp-lifecycle-x\/compiled\/duckdb \(ENOENT\)/,
    );
  });
});
