import * as fs from 'node:fs';
import * as path from 'node:path';
import { Client } from 'pg';
import { describeEachWarehouse, pgAdmin } from '../helpers/warehouses';
import { PostgresWarehouse } from '../../src/warehouse/postgres';
import { buildModels } from '../../src/runner';
import { runSync } from '../../src/sync';
import { UserError } from '../../src/errors';
import { modelSchemaLock, type Warehouse } from '../../src/warehouse/types';
import { tempProject } from './temp-project';

const BASIC = path.join(__dirname, 'fixtures', 'basic');

// Two scheduled runs that overlap (a slow build, a cron that fires again) would drop each other's __dbt_tmp
// tables and apply the same incremental rows twice: a build or a real sync of a schema runs alone.
describeEachWarehouse('one build or sync of a schema at a time', ({ kind, tw }) => {
  let wh: Warehouse;
  let other: Warehouse;
  const base = (w: Warehouse) => ({ warehouse: w, projectDir: BASIC, schema: 'lifecycle', rawSchema: 'cdp' });

  /** Holds the schema's lock through `holder` until the returned function is called. */
  const holdLock = async (holder: Warehouse) => {
    let release!: () => void;
    let acquired!: () => void;
    const got = new Promise<void>((r) => (acquired = r));
    const done = holder.exclusive(modelSchemaLock('lifecycle'), 'a build or sync of schema lifecycle', () => {
      acquired();
      return new Promise<void>((r) => (release = r));
    });
    await got;
    return async () => {
      release();
      await done;
    };
  };

  beforeAll(async () => {
    wh = await tw().open();
    // another process on PostgreSQL (its own pool); on DuckDB only one process may open the file
    other = kind === 'postgres' ? await tw().open() : wh;
    await wh.exec('create schema cdp');
    await wh.exec(
      'create table cdp.orders (id integer, user_id text, amount_cents integer, status text, ordered_at timestamp)',
    );
    await wh.exec(`insert into cdp.orders values (1, 'u1', 1000, 'completed', '2024-01-01 10:00:00')`);
    await wh.exec('create table cdp.users (user_id text, plan text)');
  });
  afterAll(async () => {
    if (other !== wh) await other.close().catch(() => undefined);
    await wh.close().catch(() => undefined);
  });

  it('stops a second build with a message naming the first, and builds once it is over', async () => {
    const release = await holdLock(wh);
    try {
      const err = await buildModels(base(other)).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toMatch(
        kind === 'postgres'
          ? /^Another process is running a build or sync of schema lifecycle on postgres:\/\/\S+ \(PostgreSQL backend PID \d+, cdp-lifecycle from [\d.:]+, connected since \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC\): wait for it to finish, then run again\.$/
          : /^This process is already running a build or sync of schema lifecycle on \S+: wait for it to finish\.$/,
      );
      // nothing was built
      expect(await other.tableExists('lifecycle', 'user_revenue')).toBe(false);
      // another schema is not locked
      const elsewhere = await buildModels({ ...base(other), schema: 'lifecycle_b', select: ['stg_orders'] });
      expect(elsewhere.success).toBe(true);
    } finally {
      await release();
    }
    const res = await buildModels(base(other));
    expect(res.success).toBe(true);
    expect(await other.tableExists('lifecycle', 'user_revenue')).toBe(true);
  });

  if (kind === 'postgres') {
    it('keeps the lock while the server ends idle sessions (the lock connection is kept busy)', async () => {
      const db = new URL(tw().url).pathname.slice(1);
      // sessions opened from now on end after 1.5 s without a query
      await pgAdmin(`alter database "${db}" set idle_session_timeout = '1500ms'`);
      const saved = PostgresWarehouse.lockHeartbeatMs;
      PostgresWarehouse.lockHeartbeatMs = 300;
      const holder = await tw().open();
      let release = async (): Promise<void> => undefined;
      try {
        release = await holdLock(holder);
        await new Promise((r) => setTimeout(r, 3000));
        const probe = new Client({ connectionString: tw().url });
        await probe.connect();
        try {
          const [row] = (
            await probe.query<{ ok: boolean }>(
              `select pg_try_advisory_lock(hashtextextended('cdp-lifecycle:schema:lifecycle', 0)) as ok`,
            )
          ).rows;
          expect(row.ok).toBe(false);
        } finally {
          await probe.end();
        }
      } finally {
        await release();
        PostgresWarehouse.lockHeartbeatMs = saved;
        await holder.close().catch(() => undefined);
        await pgAdmin(`alter database "${db}" reset idle_session_timeout`);
      }
    });
  }

  if (kind === 'postgres') {
    it('stops a build between two models as soon as its lock is lost, not at the next heartbeat', async () => {
      // a first model that takes two seconds (its pre-hook), then one over it
      const proj = tempProject('lock-lost', {
        'dbt_project.yml': "name: lock_lost\nconfig-version: 2\nmodel-paths: ['models']\n",
        'models/slow.sql': `{{ config(materialized='view', pre_hook='select pg_sleep(2)') }}\nselect 1 as x\n`,
        'models/after_slow.sql': "{{ config(materialized='view') }}\nselect x from {{ ref('slow') }}\n",
      });
      // no heartbeat during the build: the end of the lock's connection itself must be noticed (a build that
      // learnt it only from a failed beat, 30 s later, ran on alongside the next run that took the lock)
      const saved = PostgresWarehouse.lockHeartbeatMs;
      PostgresWarehouse.lockHeartbeatMs = 10 * 60_000;
      try {
        let slowStarted!: () => void;
        const inSlow = new Promise<void>((r) => (slowStarted = r));
        const building = buildModels({
          warehouse: other,
          projectDir: proj,
          schema: 'lock_lost',
          rawSchema: 'cdp',
          onModel: (e) => {
            if (e.phase === 'start' && e.name === 'slow') slowStarted();
          },
        }).catch((e: unknown) => e);
        // while the first model runs, the build's lock connection, found by its advisory lock; a DBA (or a
        // network fault) ends it
        await inSlow;
        let pid: number | undefined;
        for (let i = 0; i < 50 && pid === undefined; i++) {
          const rows = await wh.query<{ pid: number }>(
            `select l.pid from pg_locks l, (select hashtextextended('cdp-lifecycle:schema:lock_lost', 0) as k) as key
             where l.locktype = 'advisory' and l.granted and l.objid = (key.k & 4294967295)::oid`,
          );
          pid = rows[0]?.pid;
          if (pid === undefined) await new Promise((r) => setTimeout(r, 50));
        }
        expect(pid).toBeDefined();
        await wh.query('select pg_terminate_backend($1)', [pid!]);
        const err = await building;
        expect(err).toBeInstanceOf(UserError);
        expect((err as Error).message).toMatch(
          /^The build lost its lock on schema lock_lost \(its connection ended: terminating connection due to administrator command\) and stopped before model after_slow, so that no other run builds alongside it; run it again\.$/,
        );
        expect(await wh.tableExists('lock_lost', 'slow')).toBe(true);
        expect(await wh.tableExists('lock_lost', 'after_slow')).toBe(false);
      } finally {
        PostgresWarehouse.lockHeartbeatMs = saved;
        fs.rmSync(proj, { recursive: true, force: true });
      }
    });
  }

  it('stops a real sync during a build, but not a dry run', async () => {
    const release = await holdLock(wh);
    try {
      const sync = { warehouse: other, schema: 'lifecycle', to: 'segment' as const };
      const err = await runSync({ ...sync, endpoint: 'http://127.0.0.1:9', writeKey: 'k' }).catch(
        (e: unknown) => e,
      );
      expect((err as Error).message).toMatch(/running a build or sync of schema lifecycle/);
      // a dry run reads past the lock: here it fails on the missing mart, not on the lock
      const dry = await runSync({ ...sync, dryRun: true }).catch((e: unknown) => e);
      expect((dry as Error).message).not.toMatch(/running a build or sync/);
      expect((dry as Error).message).toMatch(/user_lifecycle/);
    } finally {
      await release();
    }
  });
});
