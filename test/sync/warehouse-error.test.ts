import { Client } from 'pg';
import { describeEachWarehouse, type TestWarehouse, type WarehouseKind } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { runSync, type SyncOptions, type SyncTarget } from '../../src/sync';
import { startFakeCdp, type FakeCdp, type ReceivedRequest } from './helpers/fake-cdp';
import { makeUsers, writeUserLifecycle } from './helpers/lifecycle-fixture';

const USERS = 40;

/** The status the CDP holds for each user: the last one it acknowledged. */
function cdpStatuses(requests: readonly ReceivedRequest[]): Record<string, unknown> {
  const held: Record<string, unknown> = {};
  for (const r of requests) {
    if (r.status === undefined || r.status >= 300) continue;
    for (const e of r.body.batch)
      held[String(e.userId)] = (e.traits as Record<string, unknown>).lifecycle_status;
  }
  return held;
}

/**
 * Makes the state write of the first batch the CDP acknowledged fail, as a warehouse does when it fails
 * transiently: returns what to do when that request arrives, and what to undo once the run is over.
 */
interface WriteFault {
  arm(): Promise<void>;
  disarm(): Promise<void>;
  /** What the run's error names as the cause. */
  cause: RegExp;
}

/**
 * PostgreSQL: the sync's connection is ended by pg_terminate_backend (a DBA, a failover) while it waits on a
 * lock another session holds on sync_state, so the write of that acknowledged batch is lost.
 */
function terminatedBackend(tw: () => TestWarehouse, schema: string): WriteFault {
  let admin: Client | undefined;
  let killer: Promise<void> | undefined;
  return {
    cause: /Lost the connection to PostgreSQL .*terminating connection due to administrator command/,
    arm: async () => {
      const c = new Client({ connectionString: tw().url });
      admin = c;
      await c.connect();
      await c.query('begin');
      await c.query(`lock table ${schema}.sync_state in access exclusive mode`);
      killer = (async () => {
        for (let tries = 0; tries < 500; tries++) {
          const { rows } = await c.query<{ pid: number }>(
            `select pid from pg_stat_activity
              where datname = current_database() and application_name = 'cdp-lifecycle' and wait_event_type = 'Lock'`,
          );
          if (rows.length > 0) {
            for (const r of rows) await c.query('select pg_terminate_backend($1)', [r.pid]);
            break;
          }
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
        await c.query('rollback');
      })();
    },
    disarm: async () => {
      await killer;
      await admin?.end();
    },
  };
}

/** Waits (at most 10 s) until the sync that is running has recorded a delivered row in sync_log. */
async function recordedByRunningSync(url: string, schema: string): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    for (let tries = 0; tries < 500; tries++) {
      const { rows } = await c.query<{ n: number }>(
        `select cast(count(*) as integer) as n from ${schema}.sync_log as l
          join ${schema}.sync_runs as r on r.run_id = l.run_id
          where r.finished_at is null and l.status = 'sent'`,
      );
      if (rows[0].n > 0) return;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  } finally {
    await c.end();
  }
}

/**
 * DuckDB (one process, one writer: no other session to end it): the table the state is written to goes away
 * under the run, and comes back after it.
 */
function tableGone(wh: () => Warehouse, schema: string): WriteFault {
  let armed = false;
  return {
    cause: /sync_state/,
    arm: async () => {
      armed = true;
      await wh().exec(`alter table ${schema}.sync_state rename to sync_state_away`);
    },
    disarm: async () => {
      if (armed) await wh().exec(`alter table ${schema}.sync_state_away rename to sync_state`);
    },
  };
}

for (const to of ['segment', 'rudderstack'] as SyncTarget[]) {
  describeEachWarehouse(
    `sync to ${to} whose warehouse fails to record what the CDP acknowledged`,
    ({ kind, tw }: { kind: WarehouseKind; tw: () => TestWarehouse }) => {
      let wh: Warehouse;
      let cdp: FakeCdp;
      const users = makeUsers(USERS);
      // a bad build that changes every user's status
      const bad = users.map((u) => ({
        ...u,
        lifecycle_status: u.lifecycle_status === 'churned' ? 'active' : 'churned',
      }));
      const opts = (schema: string): SyncOptions => ({
        warehouse: wh,
        schema,
        to,
        endpoint: cdp.url,
        writeKey: 'wk',
        batchSize: 10,
        concurrency: 1,
        // each acknowledged batch is written at once, so the fault meets the first one
        stateFlushRows: 1,
        timeoutMs: 2000,
        retry: { baseDelayMs: 20, maxDelayMs: 100 },
      });
      beforeAll(async () => {
        wh = await tw().open();
        cdp = await startFakeCdp();
      });
      afterAll(async () => {
        await cdp.close();
        await wh.close();
      });

      it('resends the unrecorded users next run, so a warehouse value that went back reaches the CDP', async () => {
        const schema = 'lc_write_error';
        cdp.setHandler(() => ({ status: 200 }));
        const start = cdp.requests.length;
        await writeUserLifecycle(wh, schema, users);
        expect(await runSync(opts(schema))).toMatchObject({ sent: USERS, failed: 0 });
        await writeUserLifecycle(wh, schema, bad);

        const fault = kind === 'postgres' ? terminatedBackend(tw, schema) : tableGone(() => wh, schema);
        const next = cdp.requests.length;
        cdp.setHandler(async (r) => {
          if (r.n === next + 1) await fault.arm();
          return { status: 200 };
        });
        let thrown: unknown;
        try {
          await runSync(opts(schema));
        } catch (err) {
          thrown = err;
        } finally {
          await fault.disarm();
        }
        // acknowledged, none of them recorded (the first write failed, the later ones were skipped)
        const acked = cdp.acked().length - USERS;
        expect(acked).toBeGreaterThan(0);
        expect(String(thrown)).toMatch(fault.cause);
        expect(String(thrown)).toMatch(
          new RegExp(
            `; ${acked} row\\(s\\) sent to the CDP could not be recorded: the next run resends them \\(run [0-9a-f-]+\\)\\.$`,
          ),
        );
        const [run] = await wh.query<{ status: string; error: string }>(
          `select status, error from ${schema}.sync_runs order by started_at desc limit 1`,
        );
        expect(run.status).toBe('error');
        expect(run.error).toMatch(/the next run resends them/);
        const pendingTables = async (): Promise<number> => {
          const [t] = await wh.query<{ n: number }>(
            `select cast(count(*) as integer) as n from information_schema.tables
              where table_schema = $1 and table_name like 'sync_pending%'`,
            [schema],
          );
          return t.n;
        };
        // what tells the next run which users the failed one may have sent
        expect(await pendingTables()).toBe(1);

        // the build is fixed: the warehouse holds again what sync_state says was delivered
        await writeUserLifecycle(wh, schema, users);
        cdp.setHandler(() => ({ status: 200 }));
        const rerun = await runSync(opts(schema));
        // every user of the failed run's diff it did not record, as for a killed run: the ones it never sent get
        // the value the CDP already holds
        expect(rerun).toMatchObject({ sent: USERS, failed: 0 });
        expect(cdpStatuses(cdp.requests.slice(start))).toEqual(
          Object.fromEntries(users.map((u) => [u.user_id as string, u.lifecycle_status])),
        );
        expect(await pendingTables()).toBe(0);
        expect(await runSync(opts(schema))).toMatchObject({ considered: USERS, changed: 0 });
        const [st] = await wh.query<{ n: number }>(
          `select cast(count(*) as integer) as n from ${schema}.sync_state where status = 'delivered'`,
        );
        expect(st.n).toBe(USERS);
      });

      it("marks the failed run's users once: a later run that stops before its diff does not mark them again", async () => {
        const schema = 'lc_write_error_twice';
        cdp.setHandler(() => ({ status: 200 }));
        await writeUserLifecycle(wh, schema, users);
        expect(await runSync(opts(schema))).toMatchObject({ sent: USERS, failed: 0 });
        await writeUserLifecycle(wh, schema, bad);
        // the third batch's write fails: the first two are recorded as delivered
        const fault = kind === 'postgres' ? terminatedBackend(tw, schema) : tableGone(() => wh, schema);
        const next = cdp.requests.length;
        cdp.setHandler(async (r) => {
          if (r.n === next + 3) {
            // A run writes an acknowledged batch while it sends the next one: through the RudderStack SDK the
            // third request is the second batch's first event, and the first batch's write could still be
            // waiting when the lock was taken, so nothing was recorded (seen once in CI). Waits for it first.
            if (kind === 'postgres') await recordedByRunningSync(tw().url, schema);
            await fault.arm();
          }
          return { status: 200 };
        });
        await expect(runSync(opts(schema))).rejects.toThrow(/could not be recorded/);
        await fault.disarm();
        cdp.setHandler(() => ({ status: 200 }));
        const [recorded] = await wh.query<{ n: number }>(
          `select cast(count(*) as integer) as n from ${schema}.sync_state where status = 'delivered'
             and traits_hash is not null and user_id in (select l.user_id from ${schema}.sync_log as l
               join ${schema}.sync_runs as r on r.run_id = l.run_id where r.status = 'error' and l.status = 'sent')`,
        );
        expect(recorded.n).toBeGreaterThan(0);
        // a run that stops after it started, before it replaced the pending table: too many duplicated ids
        const dup = makeUsers(10_001, 'dup');
        await writeUserLifecycle(wh, schema, [...dup, ...dup]);
        await expect(runSync(opts(schema))).rejects.toThrow(/duplicated user_ids/);
        // the warehouse holds what the failed run delivered: only the users it did not record are resent
        await writeUserLifecycle(wh, schema, bad);
        const rerun = await runSync(opts(schema));
        expect(rerun).toMatchObject({ sent: USERS - recorded.n, failed: 0 });
        expect(await runSync(opts(schema))).toMatchObject({ considered: USERS, changed: 0 });
      });
    },
  );
}
