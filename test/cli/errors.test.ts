import * as fs from 'node:fs';
import * as zlib from 'node:zlib';
import * as os from 'node:os';
import * as path from 'node:path';
import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { runCli, spawnTs, type CliResult } from '../helpers/cli';
import { main } from '../../src/cli/main';
import { openWarehouse } from '../../src/warehouse';

/** Neither a stack frame nor a multi-line dump: the CLI's errors are one sentence. */
function expectNoStack(r: CliResult): void {
  expect(r.stderr).not.toMatch(/\n\s+at /);
  expect(r.stdout).not.toMatch(/\n\s+at /);
}

function errorLines(r: CliResult): string[] {
  return r.stderr.split('\n').filter((l) => l.startsWith('error:'));
}

describe('cli error manners', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-errors-'));
    // a collector key reused as the sync key
    fs.writeFileSync(path.join(dir, 'loop.yml'), 'serve:\n  write_keys: [collector-key]\n');
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('exits 2 on an unknown command and suggests help', async () => {
    const r = await runCli(['no-such-command'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command 'no-such-command'/);
    expect(r.stderr).toMatch(/--help/);
    expectNoStack(r);
    const typo = await inProcess(['biuld']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/Did you mean build\?/);
  });

  it('`help <unknown>` says the command is unknown, as `<unknown>` does, instead of printing the whole help', async () => {
    const r = await inProcess(['help', 'nope']);
    expect(r.code).toBe(2);
    expect(errorLines({ ...r, signal: null })).toEqual(["error: unknown command 'nope'"]);
    expect(r.stdout + r.stderr).not.toMatch(/Usage:/);
    const typo = await inProcess(['help', 'biuld']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'biuld'\n\(Did you mean build\?\)/);
    const known = await inProcess(['help', 'sync']);
    expect(known.code).toBe(0);
    expect(known.stdout).toMatch(/^Usage: cdp-lifecycle sync/);
  });

  it('`<unknown> --help` says the command is unknown instead of printing the whole help', async () => {
    const typo = await inProcess(['buld', '--help']);
    expect(typo.code).toBe(2);
    expect(typo.stderr).toMatch(/unknown command 'buld'\n\(Did you mean build\?\)/);
    expect(typo.stdout + typo.stderr).not.toMatch(/Usage:/);
    const known = await inProcess(['build', '-h']);
    expect(known.code).toBe(0);
    expect(known.stdout).toMatch(/^Usage: cdp-lifecycle build/);
  });

  it('finishes its work quietly when the reader of its output goes away (| head)', async () => {
    const cwd = fs.mkdtempSync(path.join(dir, 'pipe-'));
    fs.writeFileSync(
      path.join(cwd, 'e.ndjson'),
      '{"type":"track","userId":"piped","event":"E","timestamp":"2024-03-10T10:00:00Z"}\n',
    );
    const warehouse = `duckdb://${path.join(cwd, 'w.duckdb')}`;
    expect((await runCli(['load', 'e.ndjson', '--warehouse', warehouse], { cwd })).code).toBe(0);
    const child = spawnTs(
      'src/cli/run.ts',
      ['build', '--warehouse', warehouse, '--vars', '{"lifecycle__as_of_date": "2024-03-12"}'],
      { cwd },
    );
    // the read end closed before the first line: every write of the CLI meets EPIPE, the first one before
    // any model is built
    child.stdout?.destroy();
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    child.stdin?.end();
    const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
    expect(stderr).not.toMatch(/EPIPE|\n\s+at /);
    expect(code).toBe(0);
    // the work was done: every model built, the last marts included
    const wh = await openWarehouse(warehouse);
    try {
      expect(await wh.query('select user_id, lifecycle_status from lifecycle.user_lifecycle')).toEqual([
        { user_id: 'piped', lifecycle_status: 'new' },
      ]);
    } finally {
      await wh.close();
    }
  });

  it('exits 2 on an unknown flag', async () => {
    const r = await runCli(['build', '--no-such-flag'], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--no-such-flag'/);
  });

  it.each([
    ['{"lifecycle__new_days": 14', /--vars is not valid JSON or YAML/],
    ['[1, 2]', /--vars must be a mapping of var names to values/],
    ['@does-not-exist.yml', /Cannot read the vars file .*does-not-exist\.yml given to --vars/],
    [
      '{lifecycle__timezone: Europe/Berln}',
      /The var lifecycle__timezone "Europe\/Berln" is not an IANA time zone \(did you mean Europe\/Berlin\?\)/,
    ],
    [
      '{lifecycle__as_of_date: 2024-13-45}',
      /The var lifecycle__as_of_date "2024-13-45" is not a calendar date/,
    ],
    // the package's own checks (models/macros/lifecycle_vars.sql), before anything is opened, in their words
    ['{lifecycle__new_days: 0}', /^error: The var lifecycle__new_days must be a whole number >= 1, not '0'/m],
    // refused by dbt's Jinja2 too (jinja2-parity.test.ts), where 7.0 is taken by both
    [
      '{lifecycle__new_days: 7.5}',
      /^error: The var lifecycle__new_days must be a whole number >= 1, not '7.5'/m,
    ],
    [
      '{lifecycle__new_days: true}',
      /^error: The var lifecycle__new_days must be a whole number >= 1, not 'True'/m,
    ],
    [
      "{lifecycle__new_days: '7.0'}",
      /^error: The var lifecycle__new_days must be a whole number >= 1, not '7.0'/m,
    ],
    // a typo too large to be days: refused up front, not as a date or integer overflow in some model
    [
      '{lifecycle__rfm_window_days: 3000000000}',
      /^error: The var lifecycle__rfm_window_days must be at most 100000, not '3000000000'/m,
    ],
    // past 2^53, quoted or not: still too large, not "not a whole number"
    [
      "{lifecycle__churn_days: '100000000000000000000000'}",
      /^error: The var lifecycle__churn_days must be at most 100000, not '100000000000000000000000'/m,
    ],
    [
      '{lifecycle__churn_days: ninety}',
      /The var lifecycle__churn_days must be a whole number >= 1, not 'ninety'/,
    ],
    ['{lifecycle__core_events: Signup}', /The var lifecycle__core_events must be a list of event names/],
    [
      '{lifecycle__as_of_date: 2024-02-30}',
      /The var lifecycle__as_of_date "2024-02-30" is not a calendar date/,
    ],
    // a NUL cut the SQL text short ("unterminated quoted string", reported as unexpected)
    [
      '{"lifecycle__churn_events": ["a\\u0000b"]}',
      /^error: The var lifecycle__churn_events holds a NUL character \(\\u0000\), which SQL texts cannot: remove it\.$/m,
    ],
    [
      '{"lifecycle__plan_trait": "pl\\u0000an"}',
      /^error: The var lifecycle__plan_trait holds a NUL character/m,
    ],
    // templates would print None, True or ['a'] as the relation's name
    [
      '{lifecycle__raw_schema: null}',
      /^error: The var lifecycle__raw_schema must be a schema name as a string, not null\.$/m,
    ],
    [
      '{lifecycle__tracks_table: true}',
      /^error: The var lifecycle__tracks_table must be a table name as a string, not true\.$/m,
    ],
    [
      '{lifecycle__pages_table: [a]}',
      /^error: The var lifecycle__pages_table must be a table name as a string, not \["a"\]\.$/m,
    ],
  ])('exits 2 on bad --vars %s', async (vars, message) => {
    const r = await runCli(['build', '--warehouse', `duckdb://${dir}/x.duckdb`, '--vars', vars], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(errorLines(r)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
    expectNoStack(r);
    // A usage error is caught before anything is opened or created.
    expect(fs.existsSync(path.join(dir, 'x.duckdb'))).toBe(false);
  });

  it.each([
    ['mysql://h/db', /The warehouse URL "mysql:\/\/h\/db" is not supported: use duckdb:\/\/<path>/],
    // a mistyped URL still holds a password: it is masked all the same
    [
      'postgres:postgres:S3cretPW@127.0.0.1:5999/x',
      /The warehouse URL "postgres:\*\*\*@127\.0\.0\.1:5999\/x" is not supported/,
    ],
    ['postgres//app:S3cretPW@db/x', /The warehouse URL "postgres\/\/app:\*\*\*@db\/x" is not supported/],
    ['postgres:app:S3cretPW/x@db/x', /The warehouse URL "postgres:\*\*\*@db\/x" is not supported/],
    ['duckdb://', /has no path/],
    ['postgres://host-only', /needs a host and a database/],
    [
      './seg.duckdb',
      /The warehouse URL "\.\/seg\.duckdb" is a file path: write it as duckdb:\/\/\.\/seg\.duckdb\./,
    ],
  ])('exits 2 on the bad --warehouse %s', async (url, message) => {
    const r = await runCli(['build', '--warehouse', url], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toContain('S3cretPW');
    expectNoStack(r);
  });

  it.each([
    // an empty selector (an unset shell variable) picks nothing, not everything
    [
      ['build', '--select', ''],
      /^error: --select is empty: name the models to pick .*, or leave --select out for every model\.$/m,
    ],
    [['test', '--select', ' '], /^error: --select is empty: name the models to pick/m],
    [['build', '--select', ','], /^error: The selector "," names no model: name the models to pick/m],
    [
      ['build', '--exclude', ','],
      /^error: The --exclude selector "," names no model: name the models to leave out\.$/m,
    ],
    // a typo gets the nearest model, keeping the graph operators
    [
      ['build', '--select', 'user_lifecyle+'],
      /The selector "user_lifecyle\+" matches no model: did you mean user_lifecycle\+\?/,
    ],
    [
      ['test', '--select', '+nope'],
      /The selector "\+nope" matches no model: check the name \(models: .*user_lifecycle/,
    ],
    [
      ['run', '--to', 'segment', '--dry-run', '--select', 'tag:nope'],
      /The selector "tag:nope" matches no model: check the name \(models: .*user_lifecycle/,
    ],
    // dbt's short form
    [
      ['build', '-s', 'user_lifecyle'],
      /The selector "user_lifecyle" matches no model: did you mean user_lifecycle\?/,
    ],
  ])('exits 2 on a selector that matches no model before connecting: %j', async (args, message) => {
    // Port 1 refuses connections: reaching the warehouse would fail with a connection error instead.
    const r = await inProcess([...args, '--warehouse', 'postgres://postgres@127.0.0.1:1/nowhere']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
    expect(r.stderr).not.toMatch(/ECONNREFUSED|connect/i);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('warns when the inactivity thresholds are out of order, naming the status that cannot happen', async () => {
    const out = path.join(dir, 'compiled-order');
    const r = await inProcess(['compile', '--out', out, '--vars', '{lifecycle__churn_days: 5}']);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /warning: lifecycle__churn_days \(5\) is not above lifecycle__dormant_days \(30\), so no user can be dormant/,
    );
    const fine = await inProcess(['compile', '--out', out, '--vars', '{lifecycle__churn_days: 60}']);
    expect(fine.stderr).not.toMatch(/is not above/);
  });

  it('warns when a threshold lies outside the window its rule counts in', async () => {
    const out = path.join(dir, 'compiled-windows');
    const vars =
      '{lifecycle__power_days: 29, lifecycle__decline_min_baseline_days: 22, lifecycle__decline_ratio_pct: 101}';
    const r = await inProcess(['compile', '--out', out, '--vars', vars]);
    expect(r.code).toBe(0);
    expect(r.stderr).toMatch(
      /warning: lifecycle__power_days \(29\) is above the 28 days it counts activity in, so no user can be power: use 28 or less\./,
    );
    expect(r.stderr).toMatch(
      /warning: lifecycle__decline_min_baseline_days \(22\) is above the 21 days of the baseline .* never marks anyone at_risk/,
    );
    expect(r.stderr).toMatch(
      /warning: lifecycle__decline_ratio_pct \(101\) is above 100, so users more active/,
    );
    const edge =
      '{lifecycle__power_days: 28, lifecycle__decline_min_baseline_days: 21, lifecycle__decline_ratio_pct: 100}';
    const fine = await inProcess(['compile', '--out', out, '--vars', edge]);
    expect(fine.code).toBe(0);
    expect(fine.stderr).not.toMatch(/warning/);
  });

  // The same main() as the process runs, called in-process to keep this file fast; stderr is captured.
  async function inProcess(args: string[]): Promise<{ code: number; stderr: string; stdout: string }> {
    let stderr = '';
    let stdout = '';
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stderr += String(chunk);
      return true;
    });
    // captured too, so that a command's results do not end up in the test run's own output
    const outSpy = jest.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      stdout += String(chunk);
      return true;
    });
    try {
      const code = await main(['node', 'cdp-lifecycle', ...args]);
      return { code, stderr, stdout };
    } finally {
      spy.mockRestore();
      outSpy.mockRestore();
    }
  }

  it.each([
    [
      ['compile', '--dialect', 'oracle'],
      /Allowed choices are duckdb, postgres, snowflake, bigquery, redshift/,
    ],
    [['build', '--schema', 'life-cycle'], /--schema "life-cycle" is not a valid schema name/],
    [['build', '--raw-schema', 'x;drop'], /--raw-schema "x;drop" is not a valid schema name/],
    [['build', '--schema', '1abc'], /--schema "1abc" is not a valid schema name: start it with a letter/],
    [['build', '--schema', 'a'.repeat(64)], /is not a valid schema name: use at most 63 characters/],
    [['build', '--schema', 'LIFECYCLE'], /--schema "LIFECYCLE" has upper-case letters: use "lifecycle"/],
    // DuckDB's own catalogs: every model would fail as an ambiguous reference
    [
      ['build', '--schema', 'temp'],
      /--schema "temp" is reserved by the warehouse for its own use: choose another name\./,
    ],
    [
      ['build', '--schema', 'information_schema'],
      /--schema "information_schema" is reserved by the warehouse/,
    ],
    // the catalog a DuckDB file is attached as
    [
      ['build', '--schema', 'cdp_lifecycle_db'],
      /--schema "cdp_lifecycle_db" is reserved by the warehouse for its own use: choose another name\./,
    ],
    // the raw schema too, which load creates
    [['load', '-', '--raw-schema', 'temp'], /--raw-schema "temp" is reserved by the warehouse/],
    // pg_ is PostgreSQL's prefix only: DuckDB takes pg_events, PostgreSQL refuses it
    [
      ['build', '--schema', 'pg_lifecycle', '--warehouse', 'postgres://postgres@127.0.0.1:1/nowhere'],
      /--schema "pg_lifecycle" is reserved by the warehouse/,
    ],
    [['test', '--raw-schema', 'CDP'], /--raw-schema "CDP" has upper-case letters: use "cdp"/],
    [
      ['build', '--schema', 'a$b'],
      /--schema "a\$b" is not a valid schema name: use letters, digits and underscores only\./,
    ],
    // the var that points the package at other raw tables: checked like the flag, and never against it
    [
      ['build', '--vars', '{"lifecycle__raw_schema": "a b"}'],
      /^error: The var lifecycle__raw_schema "a b" is not a valid schema name: use letters, digits and underscores only\.$/m,
    ],
    [
      ['test', '--vars', '{"lifecycle__tracks_table": "Tracks"}'],
      /The var lifecycle__tracks_table "Tracks" has upper-case letters: use "tracks"/,
    ],
    [
      ['compile', '--vars', '{"lifecycle__aliases_table": "x;drop"}'],
      /The var lifecycle__aliases_table "x;drop" is not a valid table name/,
    ],
    [
      ['build', '--raw-schema', 'foo', '--vars', '{"lifecycle__raw_schema": "other"}'],
      /--raw-schema "foo" and the var lifecycle__raw_schema "other" name different raw schemas: set only one of them\./,
    ],
    // SPEC 4.5: with W > M a user would be in two growth-accounting states on one day
    [
      ['build', '--vars', '{"lifecycle__wau_days": 40, "lifecycle__mau_days": 7}'],
      /^error: The var lifecycle__wau_days \(40\) must not be above lifecycle__mau_days \(7\)/m,
    ],
    [
      ['serve', '--write-key', 'k', '--port', 'eighty'],
      /--port must be a port number from 0 to 65535 \(0: any free port\), not "eighty"\./,
    ],
    [
      ['serve', '--write-key', 'k', '--port', '70000'],
      /--port must be a port number from 0 to 65535 .*not "70000"/,
    ],
    [
      ['serve', '--write-key', 'k', '--port', '-1'],
      /--port must be a port number from 0 to 65535 .*not "-1"/,
    ],
    [
      ['serve', '--write-key', 'k', '--max-request-bytes', '0'],
      /--max-request-bytes must be a whole number, 1 or more, not "0"\./,
    ],
    [
      ['serve', '--write-key', 'k', '--schedule', 'every minute'],
      /The schedule "every minute" is not a valid cron/,
    ],
    // croner reads a date-time as one run, after which nothing would be scheduled
    [
      ['serve', '--write-key', 'k', '--schedule', '2099-01-01T00:00:00'],
      /The schedule "2099-01-01T00:00:00" is not a valid cron expression \(a date-time fires once: a cron expression has 5 fields/,
    ],
    [['serve'], /--write-key <key>.*LIFECYCLE_WRITE_KEYS/],
    [
      ['serve', '--write-key', 'change-me'],
      /^error: The write key "change-me" is the example config's placeholder: set serve\.write_keys \(or LIFECYCLE_WRITE_KEYS\) to keys of your own/m,
    ],
    // every scheduled run would fail on these: refused before the collector starts
    [
      ['serve', '--write-key', 'k', '--schedule', '0 * * * *', '--vars', '{"lifecycle__new_days": 0}'],
      /The var lifecycle__new_days must be a whole number >= 1/,
    ],
    [
      ['build', '--schema', 'cdp'],
      /^error: --schema "cdp" is also the raw schema the events land in: build the models into a schema of their own, e\.g\. lifecycle\.$/m,
    ],
    [
      ['test', '--schema', 'raw', '--vars', '{"lifecycle__raw_schema": "raw"}'],
      /--schema "raw" is also the raw schema/,
    ],
    [
      ['build', '--raw-schema', 'lifecycle'],
      /^error: --raw-schema "lifecycle" is also the schema the models are built in \(--schema, default lifecycle\): land the events in a schema of their own, e\.g\. cdp, or pass another --schema\.$/m,
    ],
    [['sync'], /pass --to segment or --to rudderstack/],
    [['sync', '--to', 'segment'], /pass --write-key .* or use --dry-run/],
    [
      ['sync', '--to', 'segment', '--write-key', 'collector-key', '--config', 'loop.yml'],
      /^error: The sync write key is also a write key of this collector \(serve\.write_keys or LIFECYCLE_WRITE_KEYS\), so the synced identifies would land back in this warehouse as events: use the write key of a source that does not load it\.$/m,
    ],
    [['sync', '--to', 'rudderstack', '--write-key', 'k'], /needs your data plane URL: pass --endpoint/],
    [['run', '--to', 'segment'], /pass --write-key .* or use --dry-run/],
    // found before run builds and tests, not after
    [
      ['run', '--to', 'segment', '--dry-run', '--traits', 'x=not_a_column'],
      /The trait "x" maps to "not_a_column", which is not a column of lifecycle\.user_lifecycle/,
    ],
    [
      ['run', '--to', 'segment', '--dry-run', '--rate-limit', '0'],
      /--rate-limit must be a whole number, 1 or more, not "0"\./,
    ],
    [
      ['run', '--to', 'segment', '--dry-run', '--rate-limit', '-5'],
      /--rate-limit must be a whole number, 1 or more, not "-5"\./,
    ],
    [
      ['run', '--to', 'segment', '--dry-run', '--endpoint', 'ftp://x'],
      /--endpoint "ftp:\/\/x" is not an http\(s\) URL/,
    ],
    // the example names the target's own kind of URL
    [
      ['sync', '--to', 'rudderstack', '--write-key', 'k', '--endpoint', '127.0.0.1:8080'],
      /^error: --endpoint "127\.0\.0\.1:8080" is not an http\(s\) URL: pass e\.g\. https:\/\/<your-data-plane>\.dataplane\.rudderstack\.com\.$/m,
    ],
    [['sync', '--to', 'segment', '--dry-run', '--traits', 'bad trait=x'], /trait/],
    // JSON's last-one-wins would drop the first column without a word
    [
      [
        'sync',
        '--to',
        'segment',
        '--dry-run',
        '--traits',
        '{"stage":"lifecycle_status","stage":"rfm_segment"}',
      ],
      /^error: --traits names the trait "stage" twice: give each trait once\.$/m,
    ],
    [['report', '--html', ''], /^error: --html is empty: name the file to write/m],
    // credentials in the URL were dropped without a word (a proxy needing them answered 401), and a bad
    // scheme printed the password back
    [
      ['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', 'http://proxy:Pr0xyPW@127.0.0.1:9'],
      /^error: --endpoint "http:\/\/proxy:\*\*\*@127\.0\.0\.1:9" carries a user name or password, which the sync does not send \(it authenticates with --write-key\): remove them from the URL\.$/m,
    ],
    // a slash in the user part makes the rest a path, where the password was sent and printed in every retry
    [
      ['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', 'https://pro/xy:Pr0xyPW@x'],
      /^error: --endpoint "https:\/\/pro\/xy:\*\*\*@x" carries a user name or password/m,
    ],
    [
      ['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', 'ftp://proxy:Pr0xyPW@x'],
      /^error: --endpoint "ftp:\/\/proxy:\*\*\*@x" is not an http\(s\) URL/m,
    ],
    // the client adds /v1/batch: a URL copied with it would be posted to /v1/batch/v1/batch
    [
      ['sync', '--to', 'segment', '--write-key', 'k', '--endpoint', 'http://127.0.0.1:9/v1/batch'],
      /^error: --endpoint "http:\/\/127\.0\.0\.1:9\/v1\/batch" ends with the API path \/v1\/batch: pass the base URL, http:\/\/127\.0\.0\.1:9, and the sync adds \/v1\/batch itself\.$/m,
    ],
    [
      ['run', '--to', 'rudderstack', '--dry-run', '--endpoint', 'https://acme.dataplane.rudderstack.com/v1/'],
      /ends with the API path \/v1: pass the base URL, https:\/\/acme\.dataplane\.rudderstack\.com, and/,
    ],
    [['demo', '--as-of', '2024-13-45'], /--as-of "2024-13-45" is not a date/],
    // before it resets its schemas and lands the demo events
    [
      ['demo', '--vars', '{"lifecycle__timezone": "Mars/Base"}'],
      /The var lifecycle__timezone "Mars\/Base" is not an IANA time zone/,
    ],
    // PostgreSQL reads PST as a fixed -08:00 and IST as Israel's; DuckDB and Node as regions
    [
      ['build', '--vars', '{"lifecycle__timezone": "PST"}'],
      /The var lifecycle__timezone "PST" is an abbreviation, which warehouses read differently \(PostgreSQL as a fixed offset\): use an IANA name such as America\/Los_Angeles\./,
    ],
    [['build', '--vars', '{"lifecycle__timezone": "IST"}'], /"IST" is an abbreviation/],
    // a bad zone is named as such even when the as-of date's warning would need it first
    [
      ['build', '--vars', '{"lifecycle__timezone": "Europe/Berln", "lifecycle__as_of_date": "2099-01-01"}'],
      /The var lifecycle__timezone "Europe\/Berln" is not an IANA time zone \(did you mean Europe\/Berlin\?\)/,
    ],
    // before any query or, for the demo, its whole run
    [
      ['report', '--html', '/nonexistent/x.html'],
      /^error: --html \/nonexistent\/x\.html: the folder \/nonexistent does not exist; choose another file\.$/m,
    ],
    [['demo', '--html', '.'], /^error: --html \.: .* is a folder, not a file; choose another file\.$/m],
    // a folder that takes no files whoever asks (root passes every access() check)
    [
      ['demo', '--html', '/proc/x.html'],
      /^error: --html \/proc\/x\.html: (\/proc\/x\.html cannot be written \(ENOENT\)|\/proc is not writable); choose another file\.$/m,
    ],
  ])('exits 2 on %j', async (args, message) => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const r = await inProcess(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      process.chdir(cwd);
    }
  });

  it('refuses a LOG_LEVEL pino does not know before serve opens anything', async () => {
    const before = process.env.LOG_LEVEL;
    process.env.LOG_LEVEL = 'bogus';
    try {
      const r = await inProcess([
        'serve',
        '--write-key',
        'k',
        '--warehouse',
        `duckdb://${path.join(dir, 'll.duckdb')}`,
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(
        /^error: LOG_LEVEL "bogus" is not a log level: use one of trace, debug, info/m,
      );
      expect(fs.existsSync(path.join(dir, 'll.duckdb'))).toBe(false);
    } finally {
      if (before === undefined) delete process.env.LOG_LEVEL;
      else process.env.LOG_LEVEL = before;
    }
  });

  it('names --host when the collector cannot listen on it', async () => {
    const r = await inProcess([
      'serve',
      '--write-key',
      'k',
      '--warehouse',
      `duckdb://${path.join(dir, 'host.duckdb')}`,
      '--host',
      'no-such-host.invalid',
      '--port',
      '0',
    ]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /^error: Cannot listen on --host no-such-host\.invalid: it is not an address of this machine/m,
    );
    expect(r.stderr).not.toMatch(/unexpected/);
    // the DuckDB file it had just created for the collector is gone: nothing landed there
    expect(fs.existsSync(path.join(dir, 'host.duckdb'))).toBe(false);
    // a warehouse that was there before stays, whatever the failure
    const kept = path.join(dir, 'kept.duckdb');
    const wh = await openWarehouse(`duckdb://${kept}`);
    await wh.close();
    const again = await inProcess([
      'serve',
      '--write-key',
      'k',
      '--warehouse',
      `duckdb://${kept}`,
      '--host',
      'no-such-host.invalid',
      '--port',
      '0',
    ]);
    expect(again.code).toBe(1);
    expect(fs.existsSync(kept)).toBe(true);
  });

  it('stops a demo with a var the package refuses before it creates or resets anything', async () => {
    const file = path.join(dir, 'demo-bad-vars.duckdb');
    const r = await inProcess([
      'demo',
      '--warehouse',
      `duckdb://${file}`,
      '--vars',
      '{"lifecycle__new_days": 0}',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/The var lifecycle__new_days must be a whole number >= 1/);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('never removes a new DuckDB file another collector opened first (the second one cannot start)', async () => {
    const file = path.join(dir, 'shared-new.duckdb');
    const first = spawnTs(
      'src/cli/run.ts',
      ['serve', '--write-key', 'k', '--port', '0', '--warehouse', `duckdb://${file}`],
      { cwd: dir },
    );
    try {
      await new Promise<void>((resolve, reject) => {
        let out = '';
        first.stdout?.on('data', (d: Buffer) => {
          out += d.toString();
          if (out.includes('collector listening')) resolve();
        });
        first.on('exit', (code) => reject(new Error(`the first collector exited (${String(code)})`)));
      });
      const second = await runCli(
        ['serve', '--write-key', 'k', '--port', '0', '--warehouse', `duckdb://${file}`],
        {
          cwd: dir,
        },
      );
      expect(second.code).toBe(1);
      expect(second.stderr).toMatch(/is in use by another process \(PID \d+\), `cdp-lifecycle serve`: /);
      expect(fs.existsSync(file)).toBe(true);
    } finally {
      first.kill('SIGTERM');
      await new Promise((resolve) => first.on('close', resolve));
    }
    expect(fs.existsSync(file)).toBe(true);
  });

  it('starts one of two collectors started at once on a new DuckDB file, and keeps the file', async () => {
    // Both may find no file and both try to create it: the one that fails to open it must not remove it.
    const file = path.join(dir, 'raced-new.duckdb');
    const start = () =>
      spawnTs(
        'src/cli/run.ts',
        ['serve', '--write-key', 'k', '--port', '0', '--warehouse', `duckdb://${file}`],
        {
          cwd: dir,
        },
      );
    const children = [start(), start()];
    const outcomes = children.map(
      (child) =>
        new Promise<{ listening: boolean; code: number | null; stderr: string }>((resolve) => {
          let out = '';
          let stderr = '';
          child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
          child.stdout?.on('data', (d: Buffer) => {
            out += d.toString();
            if (out.includes('collector listening')) resolve({ listening: true, code: null, stderr });
          });
          child.on('close', (code) => resolve({ listening: false, code, stderr }));
        }),
    );
    try {
      const [a, b] = await Promise.all(outcomes);
      const winners = [a, b].filter((o) => o.listening);
      const losers = [a, b].filter((o) => !o.listening);
      expect(winners).toHaveLength(1);
      expect(losers).toHaveLength(1);
      expect(losers[0].code).toBe(1);
      expect(losers[0].stderr).toMatch(/is in use by another process/);
      expect(fs.existsSync(file)).toBe(true);
    } finally {
      for (const child of children) {
        if (child.exitCode === null && child.signalCode === null) {
          const closed = new Promise((resolve) => child.on('close', resolve));
          child.kill('SIGTERM');
          await closed;
        }
      }
    }
    expect(fs.existsSync(file)).toBe(true);
  });

  it("refuses to land real events in the demo's warehouse, which the next demo resets", async () => {
    const file = path.join(dir, 'demo-made.duckdb');
    const wh = await openWarehouse(`duckdb://${file}`);
    await wh.exec('create schema lifecycle');
    await wh.exec('create table lifecycle.cdp_lifecycle_demo (created_at timestamptz, as_of_date date)');
    await wh.close();
    fs.writeFileSync(path.join(dir, 'one.ndjson'), '{"type":"track","userId":"u","event":"E"}\n');
    const message = `error: The warehouse duckdb://${file} holds the demo (cdp-lifecycle demo made schema lifecycle), which the next demo resets: land your events in a warehouse of their own, e.g. --warehouse duckdb://./events.duckdb.`;
    for (const args of [
      ['load', path.join(dir, 'one.ndjson')],
      ['serve', '--write-key', 'k', '--port', '0'],
    ]) {
      const r = await inProcess([...args, '--warehouse', `duckdb://${file}`]);
      expect(r.code).toBe(1);
      expect(r.stderr.trim()).toBe(message);
    }
    const after = await openWarehouse(`duckdb://${file}`);
    try {
      expect(await after.tableExists('cdp', 'tracks')).toBe(false);
      // the demo marks its raw schema too: another --schema does not make its raw tables safe to land in
      await after.exec('create schema cdp');
      await after.exec('create table cdp.cdp_lifecycle_demo (created_at timestamptz)');
    } finally {
      await after.close();
    }
    const other = await inProcess([
      'load',
      path.join(dir, 'one.ndjson'),
      '--schema',
      'prod',
      '--warehouse',
      `duckdb://${file}`,
    ]);
    expect(other.code).toBe(1);
    expect(other.stderr).toMatch(/holds the demo \(cdp-lifecycle demo made schema cdp\)/);
  });

  it('names where a var the package refuses was set: --vars, LIFECYCLE_VARS or the config file', async () => {
    const out = path.join(dir, 'compiled-var-source');
    const fromFlag = await inProcess(['compile', '--out', out, '--vars', '{lifecycle__new_days: 0}']);
    expect(fromFlag.code).toBe(2);
    expect(fromFlag.stderr).toMatch(/: fix it in --vars or dbt_project\.yml\.$/m);
    process.env.LIFECYCLE_VARS = '{lifecycle__new_days: 0}';
    try {
      const fromEnv = await inProcess(['compile', '--out', out]);
      expect(fromEnv.code).toBe(2);
      expect(fromEnv.stderr).toMatch(
        /^error: The var lifecycle__new_days must be a whole number >= 1, not '0': fix it in the environment variable LIFECYCLE_VARS\.$/m,
      );
    } finally {
      delete process.env.LIFECYCLE_VARS;
    }
    const project = fs.mkdtempSync(path.join(dir, 'var-file-'));
    fs.writeFileSync(path.join(project, 'cdp-lifecycle.yml'), 'vars:\n  lifecycle__churn_days: 0\n');
    const cwd = process.cwd();
    process.chdir(project);
    try {
      const fromFile = await inProcess(['compile', '--out', out]);
      expect(fromFile.code).toBe(2);
      expect(fromFile.stderr).toMatch(/: fix it in vars\.lifecycle__churn_days in cdp-lifecycle\.yml\.$/m);
    } finally {
      process.chdir(cwd);
    }
  });

  it('points a model named as an argument to --select, as dbt users write it', async () => {
    const r = await inProcess(['build', '--vars', '{}', '+user_lifecycle']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/too many arguments for 'build'/);
    expect(r.stderr).toMatch(
      /^hint: models are selected with --select: cdp-lifecycle build --select \+user_lifecycle$/m,
    );
    // a command without --select gets commander's message alone
    const other = await inProcess(['report', 'user_lifecycle']);
    expect(other.code).toBe(2);
    expect(other.stderr).not.toMatch(/hint:/);
  });

  it("prints a rejected line's reason with the control characters of its values spelt out", async () => {
    const file = path.join(dir, 'escapes.ndjson');
    fs.writeFileSync(
      file,
      JSON.stringify({ type: 'x\u001b[2J\u001b[31mX\u001b[0m\nFAKE', userId: 'u' }) +
        '\n' +
        JSON.stringify({ type: 'track', userId: 'u', event: 'A' }) +
        '\n',
    );
    const r = await inProcess(['load', file, '--warehouse', `duckdb://${path.join(dir, 'escapes.duckdb')}`]);
    expect(r.code).toBe(0);
    const out = r.stdout + r.stderr;
    expect(out).not.toMatch(/\u001b/);
    expect(out).toContain('unknown type "x\\u001b[2J\\u001b[31mX\\u001b[0m\\nFAKE" (expected one of');
  });

  it('says that an in-memory DuckDB holds no events, rather than to land them there first', async () => {
    const r = await inProcess(['build', '--warehouse', 'duckdb://:memory:']);
    expect(r.code).toBe(1);
    expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toEqual([
      'error: The source tables do not exist in duckdb://:memory:, a database that starts empty and ends with this command: point --warehouse at the DuckDB file your events were landed in, e.g. duckdb://./lifecycle.duckdb.',
    ]);
  });

  it('warns when a stray early date stretches the daily models, and not otherwise', async () => {
    const events = path.join(dir, 'early.ndjson');
    const url = `duckdb://${path.join(dir, 'early.duckdb')}`;
    const line = (id: string, user: string, timestamp: string) =>
      JSON.stringify({ type: 'track', userId: user, event: 'E', messageId: id, timestamp });
    fs.writeFileSync(events, line('x2', 'b', '2024-06-01T00:00:00Z') + '\n');
    expect((await runCli(['load', events, '--warehouse', url], { cwd: dir })).code).toBe(0);
    const vars = ['--vars', '{"lifecycle__as_of_date": "2024-06-02"}'];
    const clean = await runCli(['build', '--warehouse', url, ...vars], { cwd: dir });
    expect(clean.code).toBe(0);
    expect(clean.stderr).not.toMatch(/warning: the daily models start/);
    fs.writeFileSync(events, line('x1', 'a', '1900-06-01T00:00:00Z') + '\n');
    expect((await runCli(['load', events, '--warehouse', url], { cwd: dir })).code).toBe(0);
    const stretched = await runCli(['build', '--warehouse', url, ...vars], { cwd: dir });
    expect(stretched.code).toBe(0);
    expect(stretched.stderr).toMatch(
      /^warning: the daily models start on 1900-06-01: an event or a createdAt trait is dated that early .*; find it with `select \* from cdp\.tracks where timestamp < '1970-01-01'`/m,
    );
    // a createdAt alone stretches status_daily (growth accounting starts at the first activity)
    fs.writeFileSync(
      events,
      JSON.stringify({
        type: 'identify',
        userId: 'c',
        messageId: 'x3',
        traits: { createdAt: '1899-01-02' },
        timestamp: '2024-06-01T00:00:00Z',
      }) + '\n',
    );
    expect((await runCli(['load', events, '--warehouse', url], { cwd: dir })).code).toBe(0);
    const created = await runCli(['build', '--warehouse', url, ...vars], { cwd: dir });
    expect(created.code).toBe(0);
    expect(created.stderr).toMatch(/^warning: the daily models start on 1899-01-02: /m);
  });

  it('stops a keyless dry `run` that cannot tell which destination to compare with before it builds', async () => {
    const file = path.join(dir, 'two-destinations.duckdb');
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      const { ensureSyncTables } = await import('../../src/sync/state');
      await ensureSyncTables(wh, 'lifecycle');
      await wh.exec(
        `insert into lifecycle.sync_state (destination, user_id, status, attempts) values
           ('segment:api.segment.io:aaaaaaaaaaaa', 'u1', 'delivered', 1),
           ('segment:api.segment.io:bbbbbbbbbbbb', 'u1', 'delivered', 1)`,
      );
    } finally {
      await wh.close();
    }
    const r = await runCli(['run', '--to', 'segment', '--dry-run', '--warehouse', `duckdb://${file}`], {
      cwd: dir,
    });
    expect(r.code).toBe(2);
    expect(errorLines(r)).toEqual([
      expect.stringMatching(
        /^error: 2 destinations have been synced to segment \(.*\): pass the --write-key of the one this dry run should compare with\.$/,
      ),
    ]);
    // no model was built: the raw tables do not even exist, which a build would have stopped at
    expect(r.stderr).not.toMatch(/Building models|source table/i);
    expectNoStack(r);
  });

  it('checks the files to load before it opens, and so creates, a DuckDB warehouse', async () => {
    const file = path.join(dir, 'never-made.duckdb');
    const missing = path.join(dir, 'no-such-events.ndjson');
    const r = await inProcess(['load', missing, '--warehouse', `duckdb://${file}`]);
    expect(r.code).toBe(1);
    expect(r.stderr.trim()).toBe(`error: The file ${missing} does not exist: check the path.`);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('refuses at start the sync settings every scheduled run would fail on, before it builds', async () => {
    const warehouse = `duckdb://${path.join(dir, 'sched-sync.duckdb')}`;
    const serve = (env: Record<string, string>) =>
      runCli(
        [
          'serve',
          '--write-key',
          'collector-key',
          '--port',
          '0',
          '--schedule',
          '0 * * * *',
          '--warehouse',
          warehouse,
        ],
        {
          cwd: dir,
          env: { LIFECYCLE_SYNC_TO: 'segment', ...env },
          timeoutMs: 30_000,
        },
      );
    const loop = await serve({ LIFECYCLE_SYNC_WRITE_KEY: 'collector-key' });
    expect(loop.code).toBe(2);
    expect(loop.stderr).toMatch(/^error: The sync write key is also a write key of this collector/m);
    const traits = await serve({
      LIFECYCLE_SYNC_WRITE_KEY: 'sync-key',
      LIFECYCLE_SYNC_TRAITS: 'lifecycle_status=lifecycle_statsu',
    });
    expect(traits.code).toBe(2);
    expect(traits.stderr).toMatch(/lifecycle_statsu/);
    expect(traits.stderr).not.toMatch(/collector listening/);
  });

  it('lands the lines of a gzip cut short, says how many, and where the rest starts once it is whole', async () => {
    // a partial download of a storage export, under a name with a space
    const file = path.join(dir, 'cut export.json.gz');
    const lines = Array.from({ length: 3000 }, (_, i) =>
      JSON.stringify({ type: 'track', userId: `cut-u${i % 50}`, event: 'Cut', messageId: `cutx-${i}` }),
    );
    const whole = zlib.gzipSync(lines.join('\n') + '\n');
    fs.writeFileSync(file, whole.subarray(0, Math.floor(whole.length * 0.8)));
    const warehouse = `duckdb://${path.join(dir, 'cut.duckdb')}`;
    const r = await inProcess(['load', file, '--warehouse', warehouse]);
    expect(r.code).toBe(1);
    const m =
      /^error: Reading .* failed after line (\d+): .*\. ([\d,]+) events had landed, from .* up to line ([\d,]+); nothing after it was written\. To land the rest only, load from `gzip -dc '(.*)' \| tail -n \+(\d+) \| cdp-lifecycle load - …`/m.exec(
        r.stderr,
      );
    expect(m).not.toBeNull();
    const [read, landed, through, quoted, from] = [m![1], m![2], m![3], m![4], m![5]];
    expect(quoted).toBe(file);
    expect(Number(landed.replace(/,/g, ''))).toBe(Number(read));
    expect(Number(through.replace(/,/g, ''))).toBe(Number(read));
    expect(Number(from)).toBe(Number(read) + 1);
    // past the first batch of 2,000: the batch being read when the file ended landed too
    expect(Number(read)).toBeGreaterThan(2000);
    const wh = await openWarehouse(warehouse);
    try {
      expect(await wh.query(`select count(*) as n from cdp.tracks`)).toEqual([{ n: Number(read) }]);
    } finally {
      await wh.close();
    }
  });

  it('exits 1 with one sentence when PostgreSQL is unreachable', async () => {
    const r = await runCli(['build', '--warehouse', 'postgres://postgres@127.0.0.1:1/x'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(errorLines(r)).toEqual([
      'error: Could not connect to PostgreSQL at postgres://postgres@127.0.0.1:1/x: connect ECONNREFUSED 127.0.0.1:1; check --warehouse and that the server is running.',
    ]);
    expectNoStack(r);
  });

  it('names where a warehouse URL set outside the command line came from', async () => {
    const bad = await runCli(['build'], {
      cwd: dir,
      env: { ...process.env, LIFECYCLE_WAREHOUSE: 'mysql://x/y' },
    });
    expect(bad.code).toBe(2);
    expect(errorLines(bad)).toEqual([
      'error: The warehouse URL "mysql://x/y" (from the environment variable LIFECYCLE_WAREHOUSE) is not supported: use duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db.',
    ]);
    const cwd = fs.mkdtempSync(path.join(dir, 'from-file-'));
    fs.writeFileSync(path.join(cwd, 'cdp-lifecycle.yml'), 'warehouse: duckdb://./missing.duckdb\n');
    const missing = await runCli(['build'], { cwd });
    expect(missing.code).toBe(1);
    expect(errorLines(missing)).toEqual([
      `error: There is no DuckDB file at ${fs.realpathSync(cwd)}/missing.duckdb: check "warehouse" in cdp-lifecycle.yml, or land events there first with \`cdp-lifecycle serve\`, \`load\` or \`demo --warehouse duckdb://./missing.duckdb\`.`,
    ]);
    // the flag is in front of the user: its value is quoted as before
    const flag = await runCli(['build', '--warehouse', 'mysql://x/y'], { cwd: dir });
    expect(errorLines(flag)[0]).toMatch(/^error: The warehouse URL "mysql:\/\/x\/y" is not supported/);
    expectNoStack(bad);
    expectNoStack(missing);
  });

  it('names where a sync endpoint set outside the command line came from, in serve too', async () => {
    const fromEnv = await runCli(['sync', '--to', 'rudderstack', '--dry-run'], {
      cwd: dir,
      env: { ...process.env, LIFECYCLE_SYNC_ENDPOINT: 'notaurl' },
    });
    expect(fromEnv.code).toBe(2);
    expect(errorLines(fromEnv)).toEqual([
      'error: The sync endpoint "notaurl" (from the environment variable LIFECYCLE_SYNC_ENDPOINT) is not an http(s) URL: set it to e.g. https://<your-data-plane>.dataplane.rudderstack.com.',
    ]);
    const cwd = fs.mkdtempSync(path.join(dir, 'endpoint-file-'));
    fs.writeFileSync(path.join(cwd, 'cdp-lifecycle.yml'), 'sync:\n  endpoint: dataplane.example.com\n');
    const fromFile = await runCli(['run', '--to', 'rudderstack', '--dry-run'], { cwd });
    expect(fromFile.code).toBe(2);
    expect(errorLines(fromFile)).toEqual([
      'error: The sync endpoint "dataplane.example.com" (from "sync.endpoint" in cdp-lifecycle.yml) is not an http(s) URL: set it to e.g. https://<your-data-plane>.dataplane.rudderstack.com.',
    ]);
    // serve takes no --endpoint: naming it would send the reader looking for a flag that is not there
    const serve = await runCli(
      ['serve', '--write-key', 'collector-key', '--port', '0', '--schedule', '0 * * * *'],
      {
        cwd,
        env: {
          ...process.env,
          LIFECYCLE_SYNC_TO: 'segment',
          LIFECYCLE_SYNC_WRITE_KEY: 'sync-key',
          LIFECYCLE_SYNC_ENDPOINT: 'https://events.example.com/v1/batch',
        },
        timeoutMs: 30_000,
      },
    );
    expect(serve.code).toBe(2);
    expect(errorLines(serve)).toEqual([
      'error: The sync endpoint "https://events.example.com/v1/batch" (from the environment variable LIFECYCLE_SYNC_ENDPOINT) ends with the API path /v1/batch: set it to the base URL, https://events.example.com, and the sync adds /v1/batch itself.',
    ]);
    expect(serve.stderr + serve.stdout).not.toMatch(/--endpoint|collector listening/);
    expectNoStack(fromEnv);
    expectNoStack(fromFile);
    expectNoStack(serve);
  });

  it('names where a trait mapping set outside the command line came from', async () => {
    const fromEnv = await runCli(['sync', '--to', 'segment', '--dry-run'], {
      cwd: dir,
      env: { ...process.env, LIFECYCLE_SYNC_TRAITS: '{"stage":"lifecycle_status","stage":"rfm_segment"}' },
    });
    expect(fromEnv.code).toBe(2);
    expect(errorLines(fromEnv)).toEqual([
      'error: the environment variable LIFECYCLE_SYNC_TRAITS names the trait "stage" twice: give each trait once.',
    ]);
    const cwd = fs.mkdtempSync(path.join(dir, 'traits-file-'));
    fs.writeFileSync(path.join(cwd, 'cdp-lifecycle.yml'), 'sync:\n  traits: {}\n');
    const fromFile = await runCli(['sync', '--to', 'segment', '--dry-run'], { cwd });
    expect(fromFile.code).toBe(2);
    expect(errorLines(fromFile)).toEqual([
      'error: "sync.traits" in cdp-lifecycle.yml maps no trait: give at least one trait=column pair.',
    ]);
    expectNoStack(fromEnv);
    expectNoStack(fromFile);
  });

  it('refuses a YAML tag it does not know in --vars, LIFECYCLE_VARS and the config file, with no Node warning', async () => {
    const out = path.join(dir, 'tagged-out');
    const compile = (vars: string[], env: Record<string, string> = {}, cwd = dir) =>
      runCli(['compile', '--out', out, ...vars], { cwd, env: { ...process.env, ...env } });
    const cases: Array<[Promise<CliResult>, string]> = [
      [
        compile(['--vars', 'lifecycle__churn_events: !foo [a]']),
        'error: --vars uses the YAML tag !foo (line 1, column 26), which cdp-lifecycle does not know: remove it.',
      ],
      [
        compile(['--vars', '!!js/function "x"']),
        'error: --vars uses the YAML tag !!js/function (line 1, column 1), which cdp-lifecycle does not know: remove it.',
      ],
    ];
    fs.writeFileSync(
      path.join(dir, 'tagged-vars.yml'),
      'lifecycle__new_days: 7\nlifecycle__churn_days: !days 90\n',
    );
    cases.push([
      compile([], { LIFECYCLE_VARS: '@tagged-vars.yml' }),
      `error: the environment variable LIFECYCLE_VARS file ${path.join(dir, 'tagged-vars.yml')} uses the YAML tag !days (line 2, column 24), which cdp-lifecycle does not know: remove it.`,
    ]);
    const cwd = fs.mkdtempSync(path.join(dir, 'tagged-file-'));
    fs.writeFileSync(path.join(cwd, 'cdp-lifecycle.yml'), 'warehouse: !custom x\n');
    cases.push([
      compile([], {}, cwd),
      `error: The config file ${path.join(cwd, 'cdp-lifecycle.yml')} uses the YAML tag !custom (line 1, column 12), which cdp-lifecycle does not know: remove it.`,
    ]);
    for (const [run, sentence] of cases) {
      const r = await run;
      // the sentence alone: no `(node:…) [TAG_RESOLVE_FAILED] YAMLWarning` around it
      expect({ code: r.code, stderr: r.stderr }).toEqual({ code: 2, stderr: `${sentence}\n` });
    }
    // refused before anything is written
    expect(fs.existsSync(out)).toBe(false);
  });

  it('reads a !!timestamp in --vars as dbt does, and refuses a YAML type it does not support in one sentence', async () => {
    const out = path.join(dir, 'timestamp-out');
    const compile = (vars: string) =>
      runCli(['compile', '--dialect', 'duckdb', '--out', out, '--vars', vars], { cwd: dir });
    const [dated, merged] = await Promise.all([
      // PyYAML reads a date, which dbt prints as 2024-03-12; the YAML parser alone made a JS Date of it
      compile('lifecycle__as_of_date: !!timestamp 2024-03-12'),
      // the parser alone made a Symbol of it, which failed to render with a TypeError
      compile('lifecycle__new_days: !!merge x'),
    ]);
    expect({ code: dated.code, stderr: dated.stderr }).toEqual({ code: 0, stderr: '' });
    expect(fs.readFileSync(path.join(out, 'duckdb', 'int_lifecycle__builds.sql'), 'utf8')).toMatch(
      /cast\('2024-03-12' as date\) as as_of_date/,
    );
    expect({ code: merged.code, stderr: merged.stderr }).toEqual({
      code: 2,
      stderr:
        'error: --vars tags a value !!merge (line 1, column 30), a YAML type cdp-lifecycle does not support: remove the tag.\n',
    });
  });

  it('exits 1 with one sentence when the collector port is taken', async () => {
    const taken = http.createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const { port } = taken.address() as AddressInfo;
    try {
      const r = await runCli(
        ['serve', '--write-key', 'k', '--port', String(port), '--warehouse', `duckdb://${dir}/port.duckdb`],
        { cwd: dir },
      );
      expect(r.code).toBe(1);
      expect(errorLines(r)).toEqual([
        `error: Port ${port} on 127.0.0.1 is already in use: stop the other process or pick another --port.`,
      ]);
      expectNoStack(r);
      expect(fs.existsSync(path.join(dir, 'port.duckdb'))).toBe(false);
    } finally {
      await new Promise((resolve) => taken.close(resolve));
    }
  });

  it('hides the password of an unreachable PostgreSQL URL', async () => {
    const r = await runCli(['report', '--warehouse', 'postgres://etl:s3cret@127.0.0.1:1/x'], { cwd: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/postgres:\/\/etl:\*\*\*@127\.0\.0\.1:1\/x/);
    expect(r.stderr).not.toMatch(/s3cret/);
  });
});
