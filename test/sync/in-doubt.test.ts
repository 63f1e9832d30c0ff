import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describeEachWarehouse } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { runSync, type SyncOptions, type SyncTarget } from '../../src/sync';
import { startFakeCdp, type FakeCdp, type ReceivedRequest } from './helpers/fake-cdp';
import { makeUsers, writeUserLifecycle, type FixtureUser } from './helpers/lifecycle-fixture';

const USERS = 40;

/**
 * The status the CDP holds for each user after `requests`: the last one received, from a request it
 * acknowledged or never answered (it may have taken that one), not from one it refused.
 */
function cdpStatuses(requests: readonly ReceivedRequest[]): Record<string, unknown> {
  const held: Record<string, unknown> = {};
  for (const r of requests) {
    if (r.status !== undefined && r.status >= 300) continue;
    for (const e of r.body.batch)
      held[String(e.userId)] = (e.traits as Record<string, unknown>).lifecycle_status;
  }
  return held;
}

const statusesOf = (users: readonly FixtureUser[]): Record<string, unknown> =>
  Object.fromEntries(users.map((u) => [u.user_id as string, u.lifecycle_status]));

for (const to of ['segment', 'rudderstack'] as SyncTarget[]) {
  describeEachWarehouse(
    `sync to ${to} stopped with requests unanswered, then the warehouse goes back`,
    ({ tw }) => {
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
        timeoutMs: 300,
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

      /**
       * Delivers `users`, then builds `bad` over them. Returns where in cdp.requests the first delivery starts
       * and where the requests after it start.
       */
      async function deliveredThenBadBuild(schema: string): Promise<{ start: number; next: number }> {
        cdp.setHandler(() => ({ status: 200 }));
        const start = cdp.requests.length;
        await writeUserLifecycle(wh, schema, users);
        expect(await runSync(opts(schema))).toMatchObject({ sent: USERS, failed: 0 });
        await writeUserLifecycle(wh, schema, bad);
        return { start, next: cdp.requests.length };
      }

      /**
       * The stopped run's log: the users of the requests left unanswered are failed as in doubt, and no user
       * that never reached the CDP is recorded.
       */
      async function expectInDoubtLogged(
        schema: string,
        scenario: readonly ReceivedRequest[],
      ): Promise<void> {
        const unanswered = new Set(
          scenario
            .filter((r) => r.status === undefined)
            .flatMap((r) => r.body.batch.map((e) => String(e.userId))),
        );
        const acked = new Set(
          scenario
            .filter((r) => r.status !== undefined && r.status < 300)
            .flatMap((r) => r.body.batch.map((e) => String(e.userId))),
        );
        expect(unanswered.size).toBeGreaterThan(0);
        const [run] = await wh.query<{ run_id: string }>(
          `select run_id from ${schema}.sync_runs order by started_at desc limit 1`,
        );
        const logged = await wh.query<{ user_id: string; status: string; error: string | null }>(
          `select user_id, status, error from ${schema}.sync_log where run_id = $1`,
          [run.run_id],
        );
        const failed = logged.filter((l) => l.status === 'failed');
        expect(new Set(failed.map((l) => l.user_id))).toEqual(unanswered);
        for (const l of failed)
          expect(l.error).toMatch(/before the CDP answered whether it received this change/);
        expect(new Set(logged.filter((l) => l.status === 'sent').map((l) => l.user_id))).toEqual(acked);
        expect(logged.length).toBe(unanswered.size + acked.size);
        const [st] = await wh.query<{ n: number }>(
          `select cast(count(*) as integer) as n from ${schema}.sync_state where status = 'failed'`,
        );
        expect(st.n).toBe(unanswered.size);
      }

      /** The build is fixed: the next run leaves the CDP with the warehouse's value for every user. */
      async function expectRevertReachesCdp(schema: string, start: number): Promise<void> {
        await writeUserLifecycle(wh, schema, users);
        cdp.setHandler(() => ({ status: 200 }));
        expect(await runSync(opts(schema))).toMatchObject({ failed: 0 });
        expect(cdpStatuses(cdp.requests.slice(start))).toEqual(statusesOf(users));
        expect(await runSync(opts(schema))).toMatchObject({ considered: USERS, changed: 0 });
      }

      it('resends the rows of a request in flight when the run was interrupted', async () => {
        const schema = 'lc_doubt_interrupted';
        const { start, next } = await deliveredThenBadBuild(schema);
        const stop = new AbortController();
        // the second request is received, the run interrupted, and no answer ever comes (it times out); on
        // Segment that is the second batch, through the RudderStack SDK the rest of the first (a client's first
        // event travels alone)
        cdp.setHandler((r) => {
          if (r.n === next + 1) return { status: 200 };
          stop.abort();
          return { status: 200, hang: true };
        });
        const s = await runSync({ ...opts(schema), concurrency: 1, signal: stop.signal });
        expect(s.status).toBe('interrupted');
        const scenario = cdp.requests.slice(next);
        expect(scenario.map((r) => r.status)).toEqual([200, undefined]);
        await expectInDoubtLogged(schema, scenario);
        expect(s).toMatchObject({
          sent: scenario[0].body.batch.length,
          failed: scenario[1].body.batch.length,
        });
        await expectRevertReachesCdp(schema, start);
      });

      it('records nothing for rows whose request never connected when the run is interrupted', async () => {
        const schema = 'lc_doubt_refused_connection';
        await deliveredThenBadBuild(schema);
        // a port nothing listens on: every attempt is refused before a byte of the request leaves
        const closed = createServer();
        await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
        const port = (closed.address() as AddressInfo).port;
        await new Promise<void>((resolve) => closed.close(() => resolve()));
        const stop = new AbortController();
        const retried: string[] = [];
        const s = await runSync({
          ...opts(schema),
          endpoint: `http://127.0.0.1:${port}`,
          signal: stop.signal,
          onRetry: (r) => {
            retried.push(r.message);
            stop.abort();
          },
        });
        expect(s.status).toBe('interrupted');
        expect(retried[0]).toMatch(/ECONNREFUSED/);
        expect(s).toMatchObject({ sent: 0, failed: 0 });
        // none of them reached the CDP: none is logged failed, and every one is still a change to send
        const [run] = await wh.query<{ run_id: string }>(
          `select run_id from ${schema}.sync_runs order by started_at desc limit 1`,
        );
        expect(
          await wh.query(`select user_id from ${schema}.sync_log where run_id = $1`, [run.run_id]),
        ).toEqual([]);
        const [st] = await wh.query<{ n: number }>(
          `select cast(count(*) as integer) as n from ${schema}.sync_state where status = 'failed'`,
        );
        expect(st.n).toBe(0);
        cdp.setHandler(() => ({ status: 200 }));
        expect(await runSync(opts(schema))).toMatchObject({ changed: USERS, sent: USERS, failed: 0 });
      });

      it('resends the rows of a request left unanswered when another is refused outright', async () => {
        const schema = 'lc_doubt_refused';
        const { start, next } = await deliveredThenBadBuild(schema);
        // two batches in flight: the first request to arrive never gets an answer, the next is refused (through
        // the RudderStack SDK these are the first events of the two batches, and the rest of each is not sent)
        cdp.setHandler((r) =>
          r.n === next + 1 ? { status: 200, hang: true } : { status: 401, body: 'bad key' },
        );
        await expect(runSync({ ...opts(schema), concurrency: 2 })).rejects.toThrow(
          /write key was refused \(HTTP 401\): bad key; nothing more was sent; \d+ row\(s\) sent without an answer are marked failed, and the next run resends them/,
        );
        const scenario = cdp.requests.slice(next);
        expect(scenario.map((r) => r.status)).toEqual([undefined, 401]);
        await expectInDoubtLogged(schema, scenario);
        await expectRevertReachesCdp(schema, start);
      });
    },
  );
}
