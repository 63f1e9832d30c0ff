import { runCli } from '../helpers/cli';

const COMMANDS = ['serve', 'load', 'build', 'test', 'compile', 'sync', 'run', 'demo', 'report'];

describe('--help', () => {
  it('lists every command of SPEC §8 and the exit codes', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toMatch(/Exit codes: 0 success, 1 failure, 2 usage error/);
  });

  it.each(COMMANDS)('%s --help shows the common flags, its own flags and examples', async (command) => {
    const r = await runCli([command, '--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(new RegExp(`^Usage: cdp-lifecycle ${command} `));
    expect(r.stdout).toMatch(/--verbose/);
    expect(r.stdout).toMatch(/--config <file>/);
    expect(r.stdout).toMatch(new RegExp(`Examples:\\n  \\$ cdp-lifecycle ${command}`));
    if (command !== 'compile') {
      expect(r.stdout).toMatch(/--warehouse <url> .*\n.*\n?.*LIFECYCLE_WAREHOUSE/);
    }
    expect(r.stdout).toMatch(/--raw-schema <name>/);
    expect(r.stdout).toMatch(/--schema <name>/);
    const own: Record<string, RegExp[]> = {
      serve: [
        /--port <port>/,
        /--host <host>/,
        /--write-key <key>/,
        /LIFECYCLE_WRITE_KEYS/,
        /--schedule <cron>/,
      ],
      build: [/--vars <vars>/, /--full-refresh/, /--select <selector\.\.\.>/],
      compile: [/--dialect <dialect>/, /duckdb.*postgres.*snowflake.*bigquery.*redshift/s],
      sync: [
        /--to <cdp>/,
        /--endpoint <url>/,
        /--write-key <key>/,
        /--dry-run/,
        /--traits <mapping>/,
        /--full-resync/,
      ],
      run: [/--to <cdp>/, /--dry-run/, /--vars <vars>/],
      report: [/--html <file>/],
      load: [/<files\.\.\.>/],
    };
    for (const re of own[command] ?? []) expect(r.stdout).toMatch(re);
  });

  it('`help <command>` works too, and --version prints the package version', async () => {
    const help = await runCli(['help', 'sync']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cdp-lifecycle sync/);
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe((require('../../package.json') as { version: string }).version);
  });
});
