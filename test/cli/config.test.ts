import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { parseVars, resolveConfig } from '../../src/cli/config';
import { UsageError } from '../../src/errors';
import { PACKAGE_NAME, checkVarValues } from '../../src/cli/steps';

describe('configuration: flags > environment > cdp-lifecycle.yml > defaults', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-config-'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const write = (name: string, text: string): string => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, text);
    return file;
  };

  it('uses the SPEC defaults when nothing is configured', () => {
    const c = resolveConfig({ command: 'serve', flags: {}, env: {}, cwd: dir });
    expect(c).toMatchObject({
      warehouse: 'duckdb://./lifecycle.duckdb',
      rawSchema: 'cdp',
      schema: 'lifecycle',
      vars: {},
      serve: { port: 8080, host: '127.0.0.1', writeKeys: [], maxRequestBytes: 4194304, maxEventBytes: 32768 },
      sync: {},
    });
    expect(c.configFile).toBeUndefined();
  });

  it('layers file < env < flag for every kind of setting', () => {
    write(
      'cdp-lifecycle.yml',
      [
        'warehouse: duckdb://./from-file.duckdb',
        'raw_schema: file_raw',
        'schema: file_schema',
        'vars:',
        '  lifecycle__timezone: Europe/Berlin',
        '  lifecycle__new_days: 3',
        'serve:',
        '  port: 9000',
        '  host: 0.0.0.0',
        '  write_keys: [file-key]',
        'sync:',
        '  to: rudderstack',
        '  endpoint: https://file.example',
        '  traits: {status: lifecycle_status}',
        '  integrations: {All: false}',
      ].join('\n'),
    );
    const fileOnly = resolveConfig({ command: 'serve', flags: {}, env: {}, cwd: dir });
    expect(fileOnly).toMatchObject({
      warehouse: 'duckdb://./from-file.duckdb',
      rawSchema: 'file_raw',
      schema: 'file_schema',
      vars: { lifecycle__timezone: 'Europe/Berlin', lifecycle__new_days: 3 },
      serve: { port: 9000, host: '0.0.0.0', writeKeys: ['file-key'] },
      sync: { to: 'rudderstack', endpoint: 'https://file.example', traits: { status: 'lifecycle_status' } },
    });
    expect(fileOnly.configFile).toBe(path.join(dir, 'cdp-lifecycle.yml'));

    const env = {
      LIFECYCLE_WAREHOUSE: 'duckdb://./from-env.duckdb',
      LIFECYCLE_SCHEMA: 'env_schema',
      LIFECYCLE_VARS: '{"lifecycle__new_days": 5, "lifecycle__churn_days": 60}',
      LIFECYCLE_PORT: '9100',
      LIFECYCLE_WRITE_KEYS: 'env-a, env-b',
      LIFECYCLE_SYNC_TO: 'segment',
      LIFECYCLE_SYNC_TRAITS: 'stage=lifecycle_status,rfm=rfm_segment',
      LIFECYCLE_SYNC_INTEGRATIONS: '{"All": true, "Amplitude": false}',
    };
    const withEnv = resolveConfig({ command: 'serve', flags: {}, env, cwd: dir });
    expect(withEnv).toMatchObject({
      warehouse: 'duckdb://./from-env.duckdb',
      rawSchema: 'file_raw',
      schema: 'env_schema',
      // vars merge key by key: the timezone from the file survives
      vars: { lifecycle__timezone: 'Europe/Berlin', lifecycle__new_days: 5, lifecycle__churn_days: 60 },
      serve: { port: 9100, host: '0.0.0.0', writeKeys: ['env-a', 'env-b'] },
      sync: {
        to: 'segment',
        endpoint: 'https://file.example',
        traits: { stage: 'lifecycle_status', rfm: 'rfm_segment' },
        integrations: { All: true, Amplitude: false },
      },
    });

    const flags = {
      warehouse: 'postgres://u@h/db',
      vars: 'lifecycle__new_days: 9',
      port: '0',
      writeKey: ['flag-key'],
    };
    const withFlags = resolveConfig({ command: 'serve', flags, env, cwd: dir });
    expect(withFlags).toMatchObject({
      warehouse: 'postgres://u@h/db',
      schema: 'env_schema',
      vars: { lifecycle__timezone: 'Europe/Berlin', lifecycle__new_days: 9, lifecycle__churn_days: 60 },
      serve: { port: 0, writeKeys: ['flag-key'] },
    });
  });

  it('reads sync settings from flags only on sync and run (serve --write-key is the collector key)', () => {
    const flags = { writeKey: 'k', to: 'segment' };
    expect(resolveConfig({ command: 'sync', flags, env: {}, cwd: dir }).sync).toMatchObject({
      writeKey: 'k',
      to: 'segment',
    });
    const serve = resolveConfig({ command: 'serve', flags: { writeKey: ['c'] }, env: {}, cwd: dir });
    expect(serve.serve.writeKeys).toEqual(['c']);
    expect(serve.sync.writeKey).toBeUndefined();
  });

  it('reads --config instead of ./cdp-lifecycle.yml, and requires it to exist', () => {
    write('cdp-lifecycle.yml', 'schema: default_file');
    const other = write('prod.yml', 'schema: prod_file');
    expect(resolveConfig({ command: 'build', flags: { config: 'prod.yml' }, env: {}, cwd: dir }).schema).toBe(
      'prod_file',
    );
    expect(
      resolveConfig({ command: 'build', flags: {}, env: { LIFECYCLE_CONFIG: other }, cwd: dir }).schema,
    ).toBe('prod_file');
    expect(() =>
      resolveConfig({ command: 'build', flags: { config: 'nope.yml' }, env: {}, cwd: dir }),
    ).toThrow(/The config file .*nope\.yml does not exist/);
  });

  it.each([
    ['serve:\n  prot: 80', /Unknown key "serve\.prot" in .*: did you mean "serve\.port"\?/],
    ['warehous: duckdb://x', /Unknown key "warehous" in .*: did you mean "warehouse"\?/],
    // a key of a section at the top level, or in another section
    ['port: 1', /Unknown key "port" in .*: did you mean "serve\.port"\?/],
    // a slip inside the right section wins over the same name in another one
    ['serve:\n  write_key: abc', /Unknown key "serve\.write_key" in .*: did you mean "serve\.write_keys"\?/],
    ['sync:\n  write_keys: [abc]', /Unknown key "sync\.write_keys" in .*: did you mean "sync\.write_key"\?/],
    [
      'sync:\n  max_event_bytes: 1',
      /Unknown key "sync\.max_event_bytes" in .*: did you mean "serve\.max_event_bytes"\?/,
    ],
    ['colour: true', /Unknown key "colour" in .*see cdp-lifecycle\.example\.yml/],
    ['serve:\n  port: eighty', /The key "serve\.port" in .* must be a whole number, not "eighty"\.$/],
    // in the words of a YAML file, with what was read
    [
      'schema: 123',
      /The key "schema" in .* must be text \(quote it if YAML reads it as a number.*\), not 123\.$/,
    ],
    ['vars:', /The key "vars" in .* must be a mapping of keys to values .*, not empty\.$/],
    // a list or one text: both named, with the hint to quote a number
    [
      'serve:\n  write_keys: 5',
      /The key "serve\.write_keys" in .* must be a list or text \(quote it .*\), not 5\.$/,
    ],
    ['sync:\n  to: mparticle', /The key "sync\.to" in .* must be one of rudderstack, segment/],
    ['schema: [a', /is not valid YAML/],
    ['- a\n- b', /must be a YAML mapping/],
    ['schema: a\nschema: b', /is not valid YAML: Map keys must be unique/],
  ])('rejects a bad file (%j) with a usage error naming the key', (text, message) => {
    write('cdp-lifecycle.yml', text);
    let err: unknown;
    try {
      resolveConfig({ command: 'build', flags: {}, env: {}, cwd: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UsageError);
    expect((err as Error).message).toMatch(message);
  });

  it('ignores settings the command does not read', () => {
    const env = { LIFECYCLE_PORT: 'not a port', LIFECYCLE_SYNC_TO: 'mparticle' };
    expect(resolveConfig({ command: 'build', flags: {}, env, cwd: dir }).warehouse).toBe(
      'duckdb://./lifecycle.duckdb',
    );
  });

  it('names the source of a bad value', () => {
    expect(() =>
      resolveConfig({ command: 'serve', flags: {}, env: { LIFECYCLE_PORT: 'x' }, cwd: dir }),
    ).toThrow(/the environment variable LIFECYCLE_PORT must be a port number from 0 to 65535/);
    expect(() =>
      resolveConfig({ command: 'sync', flags: {}, env: { LIFECYCLE_SYNC_RATE_LIMIT: '-5' }, cwd: dir }),
    ).toThrow(
      'the environment variable LIFECYCLE_SYNC_RATE_LIMIT must be a whole number, 1 or more, not "-5".',
    );
    expect(() =>
      resolveConfig({ command: 'sync', flags: {}, env: { LIFECYCLE_SYNC_TO: 'mparticle' }, cwd: dir }),
    ).toThrow(/LIFECYCLE_SYNC_TO must be one of rudderstack, segment, not "mparticle"/);
    // schema names and the raw-schema clash name where the value was set, not a flag nobody passed
    expect(() =>
      resolveConfig({ command: 'build', flags: {}, env: { LIFECYCLE_SCHEMA: 'Life' }, cwd: dir }),
    ).toThrow(/^the environment variable LIFECYCLE_SCHEMA "Life" has upper-case letters/);
    expect(() =>
      resolveConfig({
        command: 'build',
        flags: { vars: '{"lifecycle__raw_schema": "other"}' },
        env: { LIFECYCLE_RAW_SCHEMA: 'foo' },
        cwd: dir,
      }),
    ).toThrow(
      /^the environment variable LIFECYCLE_RAW_SCHEMA "foo" and the var lifecycle__raw_schema "other" name different raw schemas/,
    );
    write('cdp-lifecycle.yml', 'raw_schema: foo\nvars:\n  lifecycle__raw_schema: other\n');
    expect(() => resolveConfig({ command: 'build', flags: {}, env: {}, cwd: dir })).toThrow(
      /^"raw_schema" in cdp-lifecycle.yml "foo" and the var lifecycle__raw_schema "other"/,
    );
    // the file given with --config is the one named
    write('prod.yml', 'schema: Prod\n');
    expect(() =>
      resolveConfig({ command: 'build', flags: { config: 'prod.yml' }, env: {}, cwd: dir }),
    ).toThrow(/^"schema" in prod\.yml "Prod" has upper-case letters/);
  });

  it('parses --vars as JSON, YAML or @file, and refuses anything but a mapping', () => {
    expect(parseVars('{"a": 1, "b": ["x"]}')).toEqual({ a: 1, b: ['x'] });
    expect(parseVars('a: 1\nb: [x]')).toEqual({ a: 1, b: ['x'] });
    write('vars.yml', 'lifecycle__as_of_date: "2024-06-30"\n');
    expect(parseVars('@vars.yml', '--vars', dir)).toEqual({ lifecycle__as_of_date: '2024-06-30' });
    expect(() => parseVars('just a string')).toThrow(UsageError);
    expect(() => parseVars('')).toThrow(/must be a mapping/);
  });

  it("checks --traits with the sync's parser before anything runs", () => {
    expect(
      resolveConfig({
        command: 'sync',
        flags: { traits: 'stage=lifecycle_status, rfm=rfm_segment' },
        env: {},
        cwd: dir,
      }).sync.traits,
    ).toEqual({ stage: 'lifecycle_status', rfm: 'rfm_segment' });
    expect(() =>
      resolveConfig({ command: 'sync', flags: { traits: 'bad name=x' }, env: {}, cwd: dir }),
    ).toThrow(/^The trait name "bad name" in --traits is not valid: use letters/);
    // a bad name names where it was given, so the user knows which of the three to fix
    expect(() =>
      resolveConfig({
        command: 'sync',
        flags: {},
        env: { LIFECYCLE_SYNC_TRAITS: 'ok=x,bad-name=y' },
        cwd: dir,
      }),
    ).toThrow(/^The trait name "bad-name" in the environment variable LIFECYCLE_SYNC_TRAITS is not valid/);
    write('cdp-lifecycle.yml', 'sync:\n  traits: {"bad name": lifecycle_status}\n');
    expect(() => resolveConfig({ command: 'sync', flags: {}, env: {}, cwd: dir })).toThrow(
      /^The trait name "bad name" in "sync\.traits" in cdp-lifecycle\.yml is not valid/,
    );
  });

  it('applies the same precedence in a real CLI process', async () => {
    // The warehouse each layer names is unreachable on purpose: the error says which one the CLI used.
    const url = (db: string): string => `postgres://postgres@127.0.0.1:1/${db}`;
    write('cdp-lifecycle.yml', `warehouse: ${url('from_file')}\n`);
    const fromFile = await runCli(['build'], { cwd: dir, env: { LIFECYCLE_WAREHOUSE: '' } });
    expect(fromFile.code).toBe(1);
    expect(fromFile.stderr).toContain(url('from_file'));
    const fromEnv = await runCli(['build'], { cwd: dir, env: { LIFECYCLE_WAREHOUSE: url('from_env') } });
    expect(fromEnv.stderr).toContain(url('from_env'));
    const fromFlag = await runCli(['build', '--warehouse', url('from_flag')], {
      cwd: dir,
      env: { LIFECYCLE_WAREHOUSE: url('from_env') },
    });
    expect(fromFlag.stderr).toContain(url('from_flag'));
    write('cdp-lifecycle.yml', 'serve:\n  prot: 80\n');
    const unknown = await runCli(['build'], { cwd: dir });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(
      /^error: Unknown key "serve\.prot" in .*cdp-lifecycle\.yml: did you mean "serve\.port"\?$/m,
    );
  });
});

describe('checkVarValues: time zones the warehouses read alike', () => {
  it('accepts IANA names, the short zone names of the database and its country zones', () => {
    for (const tz of ['UTC', 'Etc/GMT+8', 'US/Pacific', 'America/Los_Angeles', 'GMT', 'Japan', 'Cuba']) {
      expect(() => checkVarValues({ lifecycle__timezone: tz })).not.toThrow();
    }
  });
  it('refuses a zone written with white space around it, which the models would pass on as it is', () => {
    expect(() => checkVarValues({ lifecycle__timezone: ' America/New_York ' })).toThrow(
      'The var lifecycle__timezone " America/New_York " has white space around the zone\'s name: write it as "America/New_York".',
    );
  });
  it('reads an as-of date in the years 0001-0099 as that date (Date.UTC took them for 1900-1999)', () => {
    expect(() => checkVarValues({ lifecycle__as_of_date: '0002-02-01' })).not.toThrow();
    expect(() => checkVarValues({ lifecycle__as_of_date: '0099-12-31' })).not.toThrow();
    expect(() => checkVarValues({ lifecycle__as_of_date: '0002-02-29' })).toThrow(/is not a calendar date/);
    // PostgreSQL has no year 0
    expect(() => checkVarValues({ lifecycle__as_of_date: '0000-06-01' })).toThrow(/is not a calendar date/);
  });
  it('refuses abbreviations, which PostgreSQL reads as fixed offsets, naming the region Node takes them for', () => {
    expect(() => checkVarValues({ lifecycle__timezone: 'PST' })).toThrow(UsageError);
    expect(() => checkVarValues({ lifecycle__timezone: 'JST' })).toThrow(
      /"JST" is an abbreviation, .*use an IANA name such as Asia\/Tokyo\./,
    );
  });
});

describe('a JSON object setting that does not parse', () => {
  it('names the setting and shows the form it takes', () => {
    expect(() =>
      resolveConfig({
        command: 'sync',
        flags: {},
        env: { LIFECYCLE_SYNC_INTEGRATIONS: '{All: false' },
        cwd: os.tmpdir(),
      }),
    ).toThrow(
      /^the environment variable LIFECYCLE_SYNC_INTEGRATIONS is not valid JSON \(.+\): pass an object such as '\{"All": true\}'\.$/,
    );
  });
});

describe('vars nested under the package name', () => {
  it('is a usage error naming the flat form, as dbt reads --vars flat', () => {
    expect(() => checkVarValues({ cdp_lifecycle: { lifecycle__as_of_date: '2026-11-01' } })).toThrow(
      `The var cdp_lifecycle nests other vars, which only dbt_project.yml scopes to a package: give them at the top level, as '{"lifecycle__as_of_date":"2026-11-01"}'.`,
    );
    expect(() => checkVarValues({ cdp_lifecycle: 'a value' })).not.toThrow();
  });
  it('names the package dbt_project.yml declares', () => {
    expect(fs.readFileSync(path.join(__dirname, '../../models/dbt_project.yml'), 'utf8')).toMatch(
      new RegExp(`^name: '?${PACKAGE_NAME}'?$`, 'm'),
    );
  });
  it('stops build, compile and test before anything runs (exit 2)', async () => {
    for (const command of ['compile', 'build', 'test']) {
      const res = await runCli(
        [
          command,
          '--warehouse',
          'duckdb:///nonexistent/dir/w.duckdb',
          '--vars',
          '{"cdp_lifecycle": {"lifecycle__timezone": "PST"}}',
        ],
        { cwd: os.tmpdir() },
      );
      expect({ command, code: res.code }).toEqual({ command, code: 2 });
      expect(res.stderr).toContain('The var cdp_lifecycle nests other vars');
      expect(res.stderr).not.toMatch(/\n\s+at /);
    }
  });
});

describe('the var lifecycle__raw_schema set alone', () => {
  const resolve = (command: string, env: Record<string, string>) =>
    resolveConfig({ command, flags: {}, env, cwd: os.tmpdir() });
  it('is the raw schema of every command, so that load and serve land the events where the build reads them', () => {
    for (const command of ['load', 'serve', 'build', 'run']) {
      expect(resolve(command, { LIFECYCLE_VARS: '{"lifecycle__raw_schema": "events"}' }).rawSchema).toBe(
        'events',
      );
    }
    // the demo lands and builds in its own raw schema, whatever the var says
    expect(resolve('demo', { LIFECYCLE_VARS: '{"lifecycle__raw_schema": "events"}' }).rawSchema).toBe('cdp');
  });
  it('is checked as --raw-schema is', () => {
    expect(() => resolve('load', { LIFECYCLE_VARS: '{"lifecycle__raw_schema": "Events"}' })).toThrow(
      /^The var lifecycle__raw_schema "Events" has upper-case letters/,
    );
    expect(() => resolve('load', { LIFECYCLE_VARS: '{"lifecycle__raw_schema": 7}' })).toThrow(
      'The var lifecycle__raw_schema must be a schema name as a string, not 7.',
    );
  });
  it('lands what load reads in that schema', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-rawvar-'));
    try {
      fs.writeFileSync(
        path.join(dir, 'e.ndjson'),
        JSON.stringify({ type: 'track', userId: 'u1', event: 'A', timestamp: '2026-11-01T00:00:00Z' }) + '\n',
      );
      const url = `duckdb://${path.join(dir, 'w.duckdb')}`;
      const r = await runCli(['load', 'e.ndjson', '--warehouse', url], {
        cwd: dir,
        env: { LIFECYCLE_VARS: '{"lifecycle__raw_schema": "events"}' },
      });
      expect(r.code).toBe(0);
      expect(r.stdout).toContain('(schema events)');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('the models schema against the raw schema', () => {
  const resolve = (command: string, flags: Record<string, unknown>) =>
    resolveConfig({ command, flags, env: {}, cwd: os.tmpdir() });
  it('leaves load and a collector alone, which never touch the models', () => {
    expect(resolve('load', { rawSchema: 'lifecycle' }).rawSchema).toBe('lifecycle');
    expect(resolve('serve', { rawSchema: 'lifecycle', writeKey: ['k'] }).rawSchema).toBe('lifecycle');
  });
  it('refuses the same schema for the commands that build or read the models', () => {
    for (const command of ['build', 'test', 'run', 'sync', 'report']) {
      expect(() => resolve(command, { rawSchema: 'lifecycle' })).toThrow(
        /is also the schema the models are built in/,
      );
    }
  });
});
