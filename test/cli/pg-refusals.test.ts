/**
 * PostgreSQL refusals that come from the database's set-up (a read-only database, a statement_timeout, a role
 * without a grant) are the user's to fix: one sentence that says what to change, exit 1, and not "This was
 * unexpected" (SPEC 8).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { ensureRawTables, openWarehouse } from '../../src/warehouse';
import { runSync } from '../../src/sync';
import { ensureSyncTables } from '../../src/sync/state';
import { makeUsers, writeUserLifecycle } from '../sync/helpers/lifecycle-fixture';
import { UserError } from '../../src/errors';
import { pgAdmin, pgDatabaseUrl, pgEnabled } from '../helpers/warehouses';

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const readOnly = `cdpl_ro_${suffix}`;
const guarded = `cdpl_grants_${suffix}`;
const role = `cdpl_nogrant_${suffix}`;

(pgEnabled() ? describe : describe.skip)('PostgreSQL refusals name what to change', () => {
  let dir: string;
  let events: string;
  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-refusals-'));
    events = path.join(dir, 'e.ndjson');
    fs.writeFileSync(
      events,
      JSON.stringify({
        type: 'track',
        userId: 'u1',
        event: 'Viewed',
        messageId: 'm1',
        timestamp: '2024-03-30T12:00:00Z',
      }) + '\n',
    );
    await pgAdmin([`create database ${readOnly}`, `create database ${guarded}`, `create role ${role} login`]);
    // raw tables (empty) for a build to read, then the database goes read-only
    const writable = await openWarehouse(pgDatabaseUrl(readOnly));
    try {
      await ensureRawTables(writable, 'cdp');
    } finally {
      await writable.close();
    }
    await pgAdmin([`alter database ${readOnly} set default_transaction_read_only = on`]);
    // a raw schema someone else owns, which the role may not use
    await pgAdmin(
      ['create schema cdp', `revoke create on database ${guarded} from public`],
      pgDatabaseUrl(guarded),
    );
    // and one whose tables it may see but not read, beside a model schema of its own
    await pgAdmin(
      [
        'create schema cdp_seen',
        `grant usage on schema cdp_seen to ${role}`,
        `create schema lifecycle authorization ${role}`,
        // a model schema the role owns, holding a table of another role's that it may not read
        `create schema lc_demo authorization ${role}`,
        'create table lc_demo.precious (x integer)',
        // models another role built, which this role may see but not read
        'create schema lc_sync',
        `grant usage on schema lc_sync to ${role}`,
        'create table lc_sync.user_lifecycle (user_id text, lifecycle_status text)',
        // models another role built, which this role may read but not add its sync tables to
        'create schema lc_usage',
        `grant usage on schema lc_usage to ${role}`,
      ],
      pgDatabaseUrl(guarded),
    );
    const admin = await openWarehouse(pgDatabaseUrl(guarded));
    try {
      await ensureRawTables(admin, 'cdp_seen');
      // raw tables in a schema the role may not even look into
      await ensureRawTables(admin, 'cdp_hidden');
      await writeUserLifecycle(admin, 'lc_usage', makeUsers(2));
      // models another role built, in a schema this role may not use at all
      await writeUserLifecycle(admin, 'lc_private', makeUsers(2));
      await admin.exec(`grant select on all tables in schema lc_usage to ${role}`);
      // models and sync tables a DBA created for the role, granting it their use but keeping them
      await admin.exec('create schema lc_granted');
      // use of the schema and of its tables, and CREATE for the sync's work tables: not their ownership
      await admin.exec(`grant usage, create on schema lc_granted to ${role}`);
      await writeUserLifecycle(admin, 'lc_granted', makeUsers(3));
      await ensureSyncTables(admin, 'lc_granted');
      await admin.exec(`grant all on all tables in schema lc_granted to ${role}`);
    } finally {
      await admin.close();
    }
  });
  afterAll(async () => {
    await pgAdmin([
      `drop database if exists ${readOnly} with (force)`,
      `drop database if exists ${guarded} with (force)`,
      `drop role if exists ${role}`,
    ]);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const errorLines = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('error:'));
  // a build as the role without grants, reading the raw tables of `rawSchema`
  const buildAsRole = (rawSchema: string, ...more: string[]) =>
    runCli(
      [
        'build',
        '--warehouse',
        pgDatabaseUrl(guarded, role),
        '--raw-schema',
        rawSchema,
        ...more,
        '--vars',
        '{"lifecycle__as_of_date": "2024-03-31"}',
      ],
      { cwd: dir },
    );

  /** One model tried (an error), and every other one skipped for the refusal `what` (run_results.json). */
  const expectStoppedAtFirstModel = (r: { stdout: string; stderr: string }, what: string) => {
    expect(((r.stdout + r.stderr).match(/ of \d+ ERROR /g) ?? []).length).toBe(1);
    const artifact = JSON.parse(fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')) as {
      results: Array<{ status: string; message: string | null }>;
    };
    expect(artifact.results[0]!.status).toBe('error');
    expect(new Set(artifact.results.slice(1).map((x) => `${x.status}: ${x.message}`))).toEqual(
      new Set([`skipped: skipped because the warehouse refused ${what}`]),
    );
  };

  const expectOneSentence = (stderr: string, pattern: RegExp) => {
    const errors = errorLines(stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(pattern);
    expect(stderr).not.toMatch(/This was unexpected/);
    expect(stderr).not.toMatch(/\n\s+at /);
  };

  it("a lock another session holds past the role's lock_timeout or statement_timeout says what to change", async () => {
    // an analyst's (or a DBA's) transaction holding the raw table the first models read
    const holder = await openWarehouse(pgDatabaseUrl(guarded));
    let release: () => void = () => undefined;
    const held = holder.transaction(async (tx) => {
      await tx.exec('lock table cdp_seen.tracks in access exclusive mode');
      await new Promise<void>((r) => (release = r));
    });
    try {
      for (const [setting, pattern] of [
        [
          'lock_timeout',
          /gave up waiting for a lock .*raise lock_timeout for this role \(alter role … set lock_timeout = 0\)/,
        ],
        [
          'statement_timeout',
          /statement_timeout.*raise it for this role \(alter role … set statement_timeout = 0\)/,
        ],
      ] as const) {
        const url = `${pgDatabaseUrl(guarded)}?options=${encodeURIComponent(`-c ${setting}=300`)}`;
        const r = await runCli(
          [
            'build',
            '--warehouse',
            url,
            '--raw-schema',
            'cdp_seen',
            '--schema',
            'lc_locked',
            '--vars',
            '{"lifecycle__as_of_date": "2024-03-31"}',
          ],
          { cwd: dir },
        );
        expect({ setting, code: r.code }).toEqual({ setting, code: 1 });
        expectOneSentence(r.stderr, pattern);
      }
    } finally {
      release();
      await held;
      await holder.close();
    }
  });

  it('a read-only database', async () => {
    const r = await runCli(['load', events, '--warehouse', pgDatabaseUrl(readOnly)], { cwd: dir });
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      /^error: The warehouse refused to write \(.*read-only transaction\): the database or role is read-only .*point --warehouse at the primary/,
    );
  });

  it('a build on a read-only database stops at its first model and says what to change', async () => {
    const r = await runCli(
      ['build', '--warehouse', pgDatabaseUrl(readOnly), '--vars', '{"lifecycle__as_of_date": "2024-03-31"}'],
      { cwd: dir },
    );
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      /^error: model \w+ \(.*\) failed on postgres creating schema lifecycle: cannot execute CREATE SCHEMA in a read-only transaction: the database or role is read-only .*, so point --warehouse at the primary with a role that may write\.$/,
    );
    // it stopped at the first model instead of trying every one
    expect(((r.stdout + r.stderr).match(/ of \d+ ERROR /g) ?? []).length).toBeLessThanOrEqual(1);
    // and dbt's artifact still lists every model: the refused one as an error, the rest as skipped
    const artifact = JSON.parse(fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')) as {
      results: Array<{ unique_id: string; status: string; message: string | null }>;
    };
    const statuses = artifact.results.map((x) => x.status);
    expect(statuses[0]).toBe('error');
    expect(artifact.results[0]!.message).toMatch(/read-only/);
    expect(statuses.length).toBeGreaterThan(10);
    expect(new Set(statuses.slice(1))).toEqual(new Set(['skipped']));
    expect(artifact.results[1]!.message).toBe(
      'skipped because the warehouse refused to create schema lifecycle',
    );
  });

  it('a build into a schema the role may not create stops at its first model and names the grant', async () => {
    const r = await buildAsRole('cdp_seen', '--schema', 'lc_missing');
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      new RegExp(
        `^error: model \\w+ \\(.*\\) failed on postgres creating schema lc_missing: permission denied for database ${guarded}: the role lacks a privilege: grant create on database ${guarded} to ${role}\\.$`,
      ),
    );
    // one model tried, not each in turn
    expectStoppedAtFirstModel(r, 'to create schema lc_missing');
  });

  it('a build into an existing schema where the role may not create stops at its first model and names the grant', async () => {
    const r = await buildAsRole('cdp_seen', '--schema', 'lc_usage');
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      new RegExp(
        `^error: model \\w+ \\(.*\\) failed on postgres: permission denied for schema lc_usage: the role lacks a privilege: grant create on schema lc_usage to ${role}\\.$`,
      ),
    );
    // every model would meet the same refusal: one tried, the rest skipped with the reason
    expectStoppedAtFirstModel(r, 'to create relations in schema lc_usage');
  });

  it('test on models in a schema the role may not use stops at its first test and names the grant', async () => {
    const r = await runCli(
      [
        'test',
        '--warehouse',
        pgDatabaseUrl(guarded, role),
        '--schema',
        'lc_private',
        '--select',
        'user_lifecycle',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(1);
    // the sentence report says for the same role (see CliOutput.failure)
    expect(errorLines(r.stderr)).toEqual([
      `error: The warehouse role lacks a privilege (permission denied for schema lc_private): grant usage on schema lc_private to ${role}.`,
    ]);
    expect(r.stderr).not.toMatch(/This was unexpected|\n\s+at /);
    // no test listed as an error (nor a misleading "a model not built or a column missing")
    expect(r.stdout + r.stderr).not.toMatch(/\bERROR\b|could not run/);
    // dbt's artifact: the test refused as an error with the grant, every other one skipped for it
    const artifact = JSON.parse(fs.readFileSync(path.join(dir, 'target', 'run_results.json'), 'utf8')) as {
      results: Array<{ status: string; message: string | null }>;
    };
    expect(artifact.results.length).toBeGreaterThan(3);
    expect(artifact.results[0]!.status).toBe('error');
    expect(artifact.results[0]!.message).toMatch(
      new RegExp(
        `permission denied for schema lc_private: the role lacks a privilege: grant usage on schema lc_private to ${role}\\.$`,
      ),
    );
    expect(new Set(artifact.results.slice(1).map((x) => `${x.status}: ${x.message}`))).toEqual(
      new Set(['skipped: skipped because the warehouse refused usage on schema lc_private']),
    );
  });

  it('a database or role that does not exist is named as such, not as a server that is down', async () => {
    const noDb = await runCli(['build', '--warehouse', pgDatabaseUrl(`${guarded}_missing`)], { cwd: dir });
    expect(noDb.code).toBe(1);
    expectOneSentence(
      noDb.stderr,
      new RegExp(
        `^error: Could not connect to PostgreSQL at .*: database "${guarded}_missing" does not exist; create the database \\(createdb\\) or fix its name in --warehouse\\.$`,
      ),
    );
    const noRole = await runCli(['build', '--warehouse', pgDatabaseUrl(guarded, `${role}_missing`)], {
      cwd: dir,
    });
    expect(noRole.code).toBe(1);
    expectOneSentence(
      noRole.stderr,
      new RegExp(
        `^error: Could not connect to PostgreSQL at .*: role "${role}_missing" does not exist; check the user name and password in --warehouse\\.$`,
      ),
    );
  });

  it('source tables the role may not read exist, and the model that reads them says so', async () => {
    const r = await buildAsRole('cdp_seen');
    expect(r.code).toBe(1);
    const errors = errorLines(r.stderr);
    expect(errors.join('\n')).toMatch(/permission denied for table/);
    expect(r.stderr).not.toMatch(/does not exist|do not exist/);
    // with the grant that lets it read the table named
    expect(errors[0]).toMatch(
      new RegExp(
        `permission denied for table (\\w+): the role lacks a privilege: grant select on cdp_seen\\.\\1 to ${role}\\.`,
      ),
    );
  });

  it('a build that may not look into the raw schema names the grant of USAGE on it', async () => {
    const r = await buildAsRole('cdp_hidden');
    expect(r.code).toBe(1);
    const errors = errorLines(r.stderr);
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(
      new RegExp(
        `permission denied for schema cdp_hidden: the role lacks a privilege: grant usage on schema cdp_hidden to ${role}\\.`,
      ),
    );
  });

  it("demo does not take another role's table it may not read for an empty schema, and drops nothing", async () => {
    const r = await runCli(
      [
        'demo',
        '--warehouse',
        pgDatabaseUrl(guarded, role),
        '--raw-schema',
        'demo_raw',
        '--schema',
        'lc_demo',
        '--no-retail',
      ],
      { cwd: dir },
    );
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/schema lc_demo .* already holds tables the demo did not create/);
    const admin = await openWarehouse(pgDatabaseUrl(guarded));
    try {
      expect(await admin.tableExists('lc_demo', 'precious')).toBe(true);
    } finally {
      await admin.close();
    }
  });

  it('sync names a user_lifecycle the role may not read instead of calling it missing', async () => {
    const wh = await openWarehouse(pgDatabaseUrl(guarded, role));
    try {
      const thrown = await runSync({ warehouse: wh, schema: 'lc_sync', to: 'segment', dryRun: true }).then(
        () => new Error('the sync did not stop'),
        (e: unknown) => e as Error,
      );
      expect(thrown).toBeInstanceOf(UserError);
      expect(thrown.message).toMatch(/^The role cannot read lc_sync\.user_lifecycle in .*: grant it select/);
    } finally {
      await wh.close();
    }
  });

  it('sync uses tables it was granted but does not own, and names one it would have to own', async () => {
    const args = ['sync', '--to', 'segment', '--dry-run', '--warehouse', pgDatabaseUrl(guarded, role)];
    const ok = await runCli([...args, '--schema', 'lc_granted'], { cwd: dir });
    expect(ok.stderr).not.toMatch(/error:/);
    expect(ok.code).toBe(0);
    expect(ok.stdout).toMatch(/changed +3/);

    // without its index, sync_log would need its owner
    await pgAdmin(['drop index lc_granted.sync_log_run_batch'], pgDatabaseUrl(guarded));
    const r = await runCli([...args, '--schema', 'lc_granted'], { cwd: dir });
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      /^error: The warehouse role does not own table sync_log, which cdp-lifecycle must alter: run it as the role that owns it, or make this role the owner \(alter table … owner to …\)\.$/,
    );
  });

  it('a role without a grant is told the grant: here USAGE and CREATE on the raw schema, to make its tables', async () => {
    const r = await runCli(['load', events, '--warehouse', pgDatabaseUrl(guarded, role)], { cwd: dir });
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      new RegExp(
        `^error: The warehouse role lacks a privilege \\(permission denied for schema cdp\\): grant usage, create on schema cdp to ${role}\\.$`,
      ),
    );
  });

  it('sync with USAGE alone on the model schema names the grant its README section names: usage, create', async () => {
    const r = await runCli(
      [
        'sync',
        '--to',
        'segment',
        '--dry-run',
        '--warehouse',
        pgDatabaseUrl(guarded, role),
        '--schema',
        'lc_usage',
      ],
      { cwd: dir },
    );
    expect(r.code).toBe(1);
    expectOneSentence(
      r.stderr,
      new RegExp(
        `^error: The warehouse role lacks a privilege \\(permission denied for schema lc_usage\\): grant usage, create on schema lc_usage to ${role}\\.$`,
      ),
    );
  });
});
