import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEachWarehouse } from './helpers/warehouses';
import {
  ensureRawTables,
  openWarehouse,
  parseWarehouseUrl,
  RAW_TABLES,
  type Warehouse,
} from '../src/warehouse';
import { UsageError } from '../src/errors';
import { withLibpqSslModes } from '../src/warehouse/postgres';
import { REPO_ROOT, loadAndBuild, runCli } from './helpers/cli';

describe('parseWarehouseUrl', () => {
  it('accepts the forms of SPEC §2', () => {
    expect(parseWarehouseUrl('duckdb://./lifecycle.duckdb')).toMatchObject({
      kind: 'duckdb',
      path: './lifecycle.duckdb',
    });
    expect(parseWarehouseUrl('duckdb://:memory:')).toMatchObject({ kind: 'duckdb', path: ':memory:' });
    expect(parseWarehouseUrl('postgresql://u:secret@h:5433/db')).toMatchObject({
      kind: 'postgres',
      displayUrl: 'postgresql://u:***@h:5433/db',
    });
    // an @ in the password: the user part ends at the last one, and none of the password shows
    expect(parseWarehouseUrl('postgres://postgres:Sup3r@Secret@127.0.0.1:5432/db')).toMatchObject({
      kind: 'postgres',
      url: 'postgres://postgres:Sup3r@Secret@127.0.0.1:5432/db',
      displayUrl: 'postgres://postgres:***@127.0.0.1:5432/db',
    });
    expect(parseWarehouseUrl('postgres://u@h/db')).toMatchObject({ displayUrl: 'postgres://u@h/db' });
    expect(parseWarehouseUrl('postgres://u@h/db?sslmode=require&password=s3cret')).toMatchObject({
      displayUrl: 'postgres://u@h/db?sslmode=require&password=***',
    });
    // pg decodes a parameter's name: a percent-encoded `password` is the password too
    expect(parseWarehouseUrl('postgres://u@h/db?pass%77ord=Hunter2&sslpassword=k3y&x=1')).toMatchObject({
      displayUrl: 'postgres://u@h/db?pass%77ord=***&sslpassword=***&x=1',
    });
    // an @ in a query parameter is no password: the URL's real problem is named
    for (const url of [
      'postgres://etl@db.internal?application_name=etl@acme',
      'postgres://u:pw@host?sslrootcert=/etc/ssl/ca@2024.pem',
    ]) {
      expect(() => parseWarehouseUrl(url)).toThrow(/needs a host and a database/);
    }
  });
  it('rejects anything else with a usage error naming the accepted forms', () => {
    expect(() => parseWarehouseUrl('mysql://x/y')).toThrow(UsageError);
    expect(() => parseWarehouseUrl('mysql://x/y')).toThrow(/duckdb:\/\/<path>.*postgres:\/\//);
    expect(() => parseWarehouseUrl('postgres://host-only')).toThrow(/needs a host and a database/);
  });
  it('reads the scheme in any case', () => {
    expect(parseWarehouseUrl('DuckDB://./lifecycle.duckdb')).toMatchObject({
      kind: 'duckdb',
      path: './lifecycle.duckdb',
    });
    expect(parseWarehouseUrl('PostgreSQL://u@h/db')).toMatchObject({
      kind: 'postgres',
      url: 'postgresql://u@h/db',
    });
  });
  it('names the missing slashes of a duckdb: URL', () => {
    expect(() => parseWarehouseUrl('duckdb:/data/x.duckdb')).toThrow(
      'The warehouse URL "duckdb:/data/x.duckdb" lacks the // after duckdb:: write it as duckdb:///data/x.duckdb (three slashes before an absolute path).',
    );
    expect(() => parseWarehouseUrl('duckdb:x.duckdb')).toThrow(/write it as duckdb:\/\/x\.duckdb\.$/);
  });
  it('says to percent-encode a password with a reserved character, without showing it', () => {
    for (const password of ['p#ss', 'a/b', 'a?b', 'p@ss:w/rd', 'x@y?z']) {
      let message = '';
      try {
        parseWarehouseUrl(`postgres://postgres:${password}@127.0.0.1:5432/db`);
      } catch (err) {
        message = (err as Error).message;
      }
      expect(message).toMatch(/percent-encode the reserved characters .*# as %23, \/ as %2F, \? as %3F/);
      expect(message).not.toContain(password);
    }
    // encoded, it parses (and @ in a password works raw too: the last @ ends the user part)
    expect(parseWarehouseUrl('postgres://postgres:p%23ss@127.0.0.1:5432/db').kind).toBe('postgres');
  });
});

describe('a DuckDB bulk insert the warehouse refuses', () => {
  it('leaves nothing behind that a later garbage collection could flush into another transaction', () => {
    // The appender that failed keeps the refused rows; destroying it at a GC used to flush them again and
    // abort whatever transaction ran then ("Current transaction is aborted"): the collector answered 500 to
    // a later, valid request. A child process with --expose-gc makes the GC happen inside that transaction.
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-appender-gc-'));
    try {
      const out = execFileSync(
        process.execPath,
        [
          '--expose-gc',
          '-r',
          path.join(__dirname, 'helpers', 'ts-register.js'),
          path.join(__dirname, 'helpers', 'appender-gc.ts'),
          path.join(dir, 'w.duckdb'),
        ],
        { encoding: 'utf8' },
      );
      expect(out.trim()).toBe('[{"a":"ok"}]');
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('opening a DuckDB file', () => {
  it('refuses a file that is not a DuckDB database instead of writing to memory and losing everything', async () => {
    // DuckDB attaches an existing .ndjson/.json/.csv file as an empty in-memory database unless told its type
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-notduckdb-'));
    try {
      for (const name of ['events.ndjson', 'events.json', 'events.csv']) {
        const file = path.join(dir, name);
        fs.writeFileSync(file, '{"type":"track"}\n');
        await expect(openWarehouse(`duckdb://${file}`)).rejects.toThrow(
          `The file ${file} is not a DuckDB database: point --warehouse at a DuckDB database file (serve, load and demo create one under a new name).`,
        );
        expect(fs.readFileSync(file, 'utf8')).toBe('{"type":"track"}\n');
      }
      // a directory: the fix is a file in it, not DuckDB's "IO Error: Is a directory"
      await expect(openWarehouse(`duckdb://${dir}`)).rejects.toThrow(
        `${dir} is a directory: point --warehouse at a DuckDB file, e.g. duckdb://${path.join(dir, 'lifecycle.duckdb')}.`,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says a damaged file is damaged, not locked, whatever its path holds (blocks/, unlocked/)', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-blocks-'));
    try {
      const file = path.join(dir, 'blocks', 'lifecycle.duckdb');
      fs.mkdirSync(path.dirname(file));
      const wh = await openWarehouse(`duckdb://${file}`);
      await wh.exec('create table t as select range as a from range(100000)');
      await wh.close();
      // its first block overwritten, as a bad copy leaves it: DuckDB's checksum error names the "block"
      const fd = fs.openSync(file, 'r+');
      fs.writeSync(fd, Buffer.alloc(8, 0xff), 0, 8, 12);
      fs.closeSync(fd);
      const err = await openWarehouse(`duckdb://${file}`).then(
        () => new Error('opened'),
        (e: unknown) => e as Error,
      );
      expect(err.message).toMatch(new RegExp(`^Could not open the DuckDB database ${file}: `));
      expect(err.message).not.toMatch(/locked/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('names a missing folder instead of creating nothing with an IO error', async () => {
    const file = path.join(os.tmpdir(), 'cdpl-no-such-folder', 'x.duckdb');
    await expect(openWarehouse(`duckdb://${file}`)).rejects.toThrow(
      `The folder ${path.dirname(file)} does not exist: create it, or point --warehouse at a file in an existing folder.`,
    );
    expect(fs.existsSync(path.dirname(file))).toBe(false);
  });

  it('reports from a file this user can only read, and says a command that writes needs it writable', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-readonly-'));
    try {
      const file = path.join(dir, 'x.duckdb');
      const events = Array.from({ length: 12 }, (_, i) =>
        JSON.stringify({ type: 'track', event: 'Opened App', userId: `u${i % 3}`, messageId: `m${i}` }),
      );
      await loadAndBuild(['--warehouse', `duckdb://${file}`], dir, events);
      fs.chmodSync(file, 0o444);
      fs.chmodSync(dir, 0o555);
      // root writes any file: the CLI then runs without the capability that lets it (still root, so it reads
      // the repository wherever CI cloned it)
      const cli = (command: string) => {
        const argv = [
          process.execPath,
          '-r',
          path.join(REPO_ROOT, 'test/helpers/ts-register.js'),
          path.join(REPO_ROOT, 'src/cli/run.ts'),
          command,
          '--warehouse',
          `duckdb://${file}`,
        ];
        const cmd =
          process.getuid?.() === 0
            ? ['setpriv', '--bounding-set=-dac_override,-dac_read_search', ...argv]
            : argv;
        const r = spawnSync(cmd[0], cmd.slice(1), {
          cwd: dir,
          encoding: 'utf8',
          env: { ...process.env, FORCE_COLOR: '0' },
        });
        expect(r.error).toBeUndefined();
        return r;
      };
      // report and test only read: they open the file read-only
      const report = cli('report');
      expect(report.stderr).toBe('');
      expect(report.status).toBe(0);
      expect(report.stdout).toMatch(/^3 users in lifecycle\.user_lifecycle$/m);
      expect(cli('test').status).toBe(0);
      const build = cli('build');
      expect(build.status).toBe(1);
      expect(build.stderr).toBe(
        `error: The DuckDB file ${file} cannot be opened for writing (permission denied): make it and its folder writable for this user (DuckDB writes even to read), or point --warehouse at a copy.\n`,
      );
    } finally {
      fs.chmodSync(dir, 0o755);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 60_000);
});

describeEachWarehouse('warehouse layer', ({ tw }) => {
  let wh: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
    await ensureRawTables(wh, 'cdp');
    await ensureRawTables(wh, 'cdp'); // idempotent
  });
  afterAll(async () => wh.close());

  it('creates every raw table of SPEC §3', async () => {
    for (const t of Object.values(RAW_TABLES)) expect(await wh.tableExists('cdp', t.name)).toBe(true);
    expect(await wh.tableExists('cdp', 'nope')).toBe(false);
  });

  it('reads a timestamp before 1970 with a fraction of a millisecond as its millisecond, on its own day', async () => {
    await wh.exec('create table if not exists cdp.early_ts (t timestamptz)');
    await wh.insertRows(
      'cdp',
      'early_ts',
      [{ name: 't', type: 'timestamptz' }],
      [['1969-12-31T23:59:59.999999Z'], ['1960-06-30T12:00:00.000500Z'], ['2024-01-01T00:00:00.000900Z']],
    );
    const sql = `select t as at from cdp.early_ts order by t`;
    const expected = ['1960-06-30T12:00:00.000Z', '1969-12-31T23:59:59.999Z', '2024-01-01T00:00:00.000Z'];
    const rows = await wh.query<{ at: Date }>(sql);
    expect(rows.map((r) => r.at.toISOString())).toEqual(expected);
    const streamed: string[] = [];
    for await (const page of wh.stream<{ at: Date }>(sql, [], 2)) {
      for (const r of page) streamed.push(r.at.toISOString());
    }
    expect(streamed).toEqual(expected);
  });

  it('reads a decimal as the double nearest to it, as PostgreSQL does (one rounding, not two)', async () => {
    const texts = [
      '9054314288976277.35',
      '9007199254740993.01',
      '-9054314288976277.35',
      '19339038515609905.73',
      '12.35',
      '0.000000000001',
      '99999999999999999999999.99',
    ];
    const cols = texts.map((t, i) => `cast('${t}' as decimal(38, ${i === 5 ? 12 : 2})) as d${i}`).join(', ');
    const [row] = await wh.query<Record<string, number>>(`select ${cols}`);
    expect(texts.map((_, i) => row[`d${i}`])).toEqual(texts.map((t) => Number(t)));
  });

  it('bulk-inserts rows and reads them back normalised identically', async () => {
    const cols = RAW_TABLES.tracks.columns;
    const row = [
      'm1',
      'u1',
      null,
      'order_completed',
      "Order Completed'); drop table cdp.tracks; --",
      '2024-03-10T07:30:00.123Z',
      null,
      null,
      new Date('2024-03-10T07:30:01Z'),
      { revenue: '12.5', nested: { a: [1, 2] }, s: 'é"\n,' },
      '{"ip":"1.2.3.4"}',
    ];
    expect(
      await wh.insertRows('cdp', 'tracks', cols, [
        row,
        ['m2', null, 'a1', 'x', 'x', new Date(0), null, null, new Date(0), null, null],
      ]),
    ).toBe(2);
    const rows = await wh.query('select * from cdp.tracks where id = $1', ['m1']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      id: 'm1',
      user_id: 'u1',
      anonymous_id: null,
      event_text: "Order Completed'); drop table cdp.tracks; --",
      properties: { revenue: '12.5', nested: { a: [1, 2] }, s: 'é"\n,' },
      context: { ip: '1.2.3.4' },
    });
    expect((rows[0].timestamp as Date).toISOString()).toBe('2024-03-10T07:30:00.123Z');
    const [agg] = await wh.query(
      `select count(*) as n, cast(max(timestamp) as date) as d, sum(1.25) as s from cdp.tracks`,
    );
    expect(agg).toEqual({ n: 2, d: '2024-03-10', s: 2.5 });
  });

  it('rolls back a failed transaction entirely', async () => {
    const cols = RAW_TABLES.rejected_events.columns;
    await expect(
      wh.transaction(async (tx) => {
        await tx.insertRows('cdp', 'rejected_events', cols, [[new Date(), 'r', 'p']]);
        await tx.query('select * from no_such_table');
      }),
    ).rejects.toThrow();
    expect(await wh.query('select count(*) as n from cdp.rejected_events')).toEqual([{ n: 0 }]);
    await wh.transaction((tx) => tx.insertRows('cdp', 'rejected_events', cols, [[new Date(), 'r', 'p']]));
    expect(await wh.query('select count(*) as n from cdp.rejected_events')).toEqual([{ n: 1 }]);
  });

  it('streams large results in pages', async () => {
    let pages = 0;
    let n = 0;
    for await (const page of wh.stream<{ i: number }>(
      'select i from generate_series(1, 2500) as g(i) where i > $1',
      [0],
      1000,
    )) {
      pages++;
      n += page.length;
    }
    expect(n).toBe(2500);
    expect(pages).toBeGreaterThanOrEqual(3);
  });

  it('ends a read its reader stops early: later reads work and later writes commit', async () => {
    // a sync refused by its CDP breaks out of its read like this
    for (let round = 0; round < 3; round++) {
      for await (const page of wh.stream('select i from generate_series(1, 2500) as g(i)', [], 100)) {
        expect(page).toHaveLength(100);
        break;
      }
    }
    await wh.exec('create table cdp.after_early_stop (n integer)');
    await wh.exec('insert into cdp.after_early_stop values (1)');
    if (wh.dialect === 'postgres') {
      // no connection of the pool was handed back inside the read's transaction
      expect(
        await wh.query(
          `select count(*) as n from pg_stat_activity
           where datname = current_database() and state like 'idle in transaction%'`,
        ),
      ).toEqual([{ n: 0 }]);
      // and what was written is committed: another session sees it
      const other = await tw().open();
      try {
        expect(await other.query('select n from cdp.after_early_stop')).toEqual([{ n: 1 }]);
      } finally {
        await other.close();
      }
    } else {
      expect(await wh.query('select n from cdp.after_early_stop')).toEqual([{ n: 1 }]);
    }
    await wh.exec('drop table cdp.after_early_stop');
  });
});

describeEachWarehouse(
  'PostgreSQL sessions',
  ({ tw }) => {
    // JIT compiled every expression of a model's plan on first use: 2.5 s per big statement (docs/models.md).
    // An options parameter in the URL replaces startup options, so the settings must not depend on them.
    const withOptions = (url: string) =>
      `${url}${url.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c statement_timeout=0')}`;
    it.each([
      ['the warehouse URL', (url: string) => url],
      ['a URL that passes options of its own', withOptions],
    ])('compute in UTC and without JIT, whatever the server defaults, with %s', async (_what, urlOf) => {
      const wh = await openWarehouse(urlOf(tw().url));
      try {
        expect(
          await wh.query("select current_setting('TimeZone') as tz, current_setting('jit') as jit"),
        ).toEqual([{ tz: 'UTC', jit: 'off' }]);
      } finally {
        await wh.close();
      }
    });

    it('creates the raw tables once when several sessions start on a new schema at the same time', async () => {
      // The first events of a destination arrive in parallel calls, each on its own connection: two sessions
      // passing `create table if not exists` together made one fail on the catalog (type "tracks" already exists).
      const whs = await Promise.all(Array.from({ length: 8 }, () => openWarehouse(tw().url)));
      try {
        for (let round = 0; round < 4; round++) {
          const schema = `raw_race_${round}`;
          const results = await Promise.allSettled(whs.map((wh) => ensureRawTables(wh, schema)));
          expect(results.filter((r) => r.status === 'rejected')).toEqual([]);
          const [n] = await whs[0].query<{ n: number }>(
            'select count(*)::int as n from information_schema.tables where table_schema = $1',
            [schema],
          );
          expect(n.n).toBe(Object.keys(RAW_TABLES).length);
        }
      } finally {
        await Promise.all(whs.map((wh) => wh.close()));
      }
    });
  },
  ['postgres'],
);

describe('sslmode in a PostgreSQL URL, read as libpq does', () => {
  it('takes the modes of libpq and node-postgres, and names a mistyped one', () => {
    for (const mode of ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify']) {
      expect(parseWarehouseUrl(`postgres://u@h/db?sslmode=${mode}`).kind).toBe('postgres');
    }
    expect(() => parseWarehouseUrl('postgres://u:secret@h/db?sslmode=requre')).toThrow(
      'The warehouse URL\'s sslmode "requre" is not one of disable, allow, prefer, require, verify-ca, verify-full, no-verify: fix it in the URL (e.g. ?sslmode=require).',
    );
  });

  it('adds libpq compatibility only when the URL sets sslmode and does not choose itself', () => {
    expect(withLibpqSslModes('postgres://u:p%40ss@h:5432/db?sslmode=require')).toBe(
      'postgres://u:p%40ss@h:5432/db?sslmode=require&uselibpqcompat=true',
    );
    expect(withLibpqSslModes('postgres://u@h/db')).toBe('postgres://u@h/db');
    // node-postgres' own no-verify, and modes it reads as libpq does, stay as they are
    for (const mode of ['no-verify', 'verify-full', 'disable']) {
      expect(withLibpqSslModes(`postgres://u@h/db?sslmode=${mode}`)).toBe(
        `postgres://u@h/db?sslmode=${mode}`,
      );
    }
    expect(withLibpqSslModes('postgres://u@h/db?sslmode=require&uselibpqcompat=false')).toBe(
      'postgres://u@h/db?sslmode=require&uselibpqcompat=false',
    );
  });

  it('reads verify-ca as libpq: the CA of sslrootcert, else ~/.postgresql/root.crt, the host name unchecked', () => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-home-'));
    try {
      expect(withLibpqSslModes('postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem', home)).toBe(
        'postgres://u@h/db?sslmode=verify-ca&sslrootcert=%2Fetc%2Fca.pem&uselibpqcompat=true',
      );
      // node-postgres would refuse in a paragraph headed SECURITY WARNING; libpq names the missing file
      expect(() => withLibpqSslModes('postgres://u@h/db?sslmode=verify-ca', home)).toThrow(
        `sslmode=verify-ca checks the server's certificate against your CA, and no CA file was given: add sslrootcert=<CA file> to the warehouse URL (libpq's default, ${path.join(home, '.postgresql', 'root.crt')}, is not there), or use sslmode=verify-full.`,
      );
      fs.mkdirSync(path.join(home, '.postgresql'));
      fs.writeFileSync(path.join(home, '.postgresql', 'root.crt'), 'x');
      expect(withLibpqSslModes('postgres://u@h/db?sslmode=verify-ca', home)).toBe(
        `postgres://u@h/db?sslmode=verify-ca&sslrootcert=${encodeURIComponent(path.join(home, '.postgresql', 'root.crt'))}&uselibpqcompat=true`,
      );
    } finally {
      fs.rmSync(home, { recursive: true, force: true });
    }
  });
});

describeEachWarehouse(
  'a PostgreSQL URL with sslmode=require or prefer',
  ({ tw }) => {
    it('connects without a certificate check, or fails in one sentence, and prints no security warning', async () => {
      const admin = await tw().open();
      const [{ ssl }] = await admin.query<{ ssl: string }>('show ssl');
      await admin.close();
      const url = `${tw().url}${tw().url.includes('?') ? '&' : '?'}sslmode=require`;
      // a process of its own: node-postgres warns once per process, on the process's stderr
      const r = await runCli(['report', '--warehouse', url]);
      expect(r.stderr).not.toMatch(/SECURITY WARNING/);
      expect(r.code).toBe(1);
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toMatch(
        ssl === 'on'
          ? // libpq's require: encrypted, the server's certificate (often self-signed) not checked; the empty
            // database then has no models to report on
            /^error: The model lifecycle\.user_lifecycle does not exist in .*: run `cdp-lifecycle build` first/
          : /^error: Could not connect to PostgreSQL at .*sslmode=require: The server does not support SSL connections; check --warehouse/,
      );
    });

    it('with sslmode=allow, connects without TLS first, as libpq, and says in one sentence what verify-ca lacks', async () => {
      const url = (mode: string) => `${tw().url}${tw().url.includes('?') ? '&' : '?'}sslmode=${mode}`;
      const r = await runCli(['report', '--warehouse', url('allow')]);
      expect(r.stderr).not.toMatch(/SECURITY WARNING/);
      // connected: the empty database then has no models to report on
      expect(r.stderr.trim()).toMatch(
        /^error: The model lifecycle\.user_lifecycle does not exist in .*: run `cdp-lifecycle build` first/,
      );
      const home = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-home-'));
      try {
        const ca = await runCli(['report', '--warehouse', url('verify-ca')], { env: { HOME: home } });
        expect(ca.code).toBe(1);
        expect(ca.stderr).not.toMatch(/SECURITY WARNING/);
        const lines = ca.stderr.trim().split('\n');
        expect(lines).toHaveLength(1);
        expect(lines[0]).toMatch(
          /sslmode=verify-ca checks the server's certificate against your CA, and no CA file was given: add sslrootcert=<CA file>/,
        );
      } finally {
        fs.rmSync(home, { recursive: true, force: true });
      }
    });

    it('with sslmode=prefer, connects with TLS when the server has it and without when it does not, as libpq', async () => {
      const url = `${tw().url}${tw().url.includes('?') ? '&' : '?'}sslmode=prefer`;
      const r = await runCli(['report', '--warehouse', url]);
      expect(r.stderr).not.toMatch(/SECURITY WARNING/);
      expect(r.code).toBe(1);
      // connected either way: the empty database then has no models to report on
      expect(r.stderr.trim()).toMatch(
        /^error: The model lifecycle\.user_lifecycle does not exist in .*: run `cdp-lifecycle build` first/,
      );
    });
  },
  ['postgres'],
);
