import { CommanderError } from 'commander';
import { runCli } from '../helpers/cli';
import { buildProgram } from '../../src/cli/main';

const COMMANDS = ['serve', 'load', 'build', 'test', 'compile', 'sync', 'run', 'demo', 'report'];

/** The help text commander prints for `args`, from the real program (no process needed for each command). */
function helpOf(args: string[]): string {
  let text = '';
  const program = buildProgram(undefined, { writeOut: (s) => (text += s), writeErr: (s) => (text += s) });
  try {
    program.parse(['node', 'cdp-lifecycle', ...args]);
  } catch (err) {
    expect(err).toBeInstanceOf(CommanderError);
    expect((err as CommanderError).exitCode).toBe(0);
  }
  return text;
}

describe('--help', () => {
  it('lists every command of SPEC §8 and the exit codes, in a real process, exit 0', async () => {
    const r = await runCli(['--help']);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    for (const c of COMMANDS) expect(r.stdout).toMatch(new RegExp(`^  ${c} `, 'm'));
    expect(r.stdout).toMatch(/Exit codes: 0 success, 1 failure, 2 usage error/);
  });

  it('`help <command>` and `<command> --help` exit 0 in a real process; --version prints the version', async () => {
    const help = await runCli(['help', 'sync']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: cdp-lifecycle sync/);
    const own = await runCli(['serve', '--help']);
    expect(own.code).toBe(0);
    expect(own.stdout).toMatch(/^Usage: cdp-lifecycle serve/);
    const version = await runCli(['--version']);
    expect(version.code).toBe(0);
    expect(version.stdout.trim()).toBe((require('../../package.json') as { version: string }).version);
  });

  it.each(COMMANDS)('%s --help shows the common flags, its own flags and examples', (command) => {
    const text = helpOf([command, '--help']);
    expect(text).toMatch(new RegExp(`^Usage: cdp-lifecycle ${command} `));
    expect(text).toMatch(/--verbose/);
    expect(text).toMatch(/--config <file>/);
    expect(text).toMatch(new RegExp(`Examples:\\n  \\$ cdp-lifecycle ${command}`));
    expect(text).toMatch(/--warehouse <url>[\s\S]*default:\s+duckdb:\/\/\.\/lifecycle\.duckdb/);
    // the demo's location comes from its flags only, so its help names no environment variable for it
    if (command === 'demo')
      expect(text).not.toMatch(/LIFECYCLE_WAREHOUSE|LIFECYCLE_RAW_SCHEMA|LIFECYCLE_SCHEMA\b/);
    else expect(text).toMatch(/--warehouse <url>[\s\S]*LIFECYCLE_WAREHOUSE/);
    expect(text).toMatch(/--raw-schema <name>[\s\S]*default: cdp\)/);
    expect(text).toMatch(/--schema <name>[\s\S]*default:\s+lifecycle\)/);
    const own: Record<string, RegExp[]> = {
      serve: [
        /--port <port>/,
        /--host <host>/,
        /--write-key <key>/,
        /LIFECYCLE_WRITE_KEYS/,
        /--schedule <cron>/,
      ],
      build: [/--vars <vars>/, /--full-refresh/, /--select <selector\.\.\.>/],
      test: [/--select <selector\.\.\.>/],
      compile: [/--dialect <dialect>/, /"duckdb",\s+"postgres",\s+"snowflake",\s+"bigquery",\s+"redshift"/],
      sync: [
        /--to <cdp>/,
        /--endpoint <url>/,
        /--write-key <key>/,
        /--dry-run/,
        /--traits <mapping>/,
        /--full-resync/,
      ],
      run: [/--to <cdp>/, /--write-key <key>/, /--dry-run/, /--vars <vars>/, /--full-refresh/],
      demo: [/--as-of <date>/, /--html <file>/],
      report: [/--html <file>/],
      load: [/<files\.\.\.>/],
    };
    for (const re of own[command]) expect(text).toMatch(re);
  });
});
