import type { ChildProcess } from 'node:child_process';
import { describeEachWarehouse } from '../helpers/warehouses';
import { spawnTs } from '../helpers/cli';
import { runSync, type SyncTarget } from '../../src/sync';
import { startFakeCdp, type FakeCdp } from './helpers/fake-cdp';
import { makeUsers, writeUserLifecycle } from './helpers/lifecycle-fixture';

function exited(
  child: ChildProcess,
): Promise<{ code: number | null; signal: NodeJS.Signals | null; out: string }> {
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, out })));
}

/**
 * Runs the sync in a child process (`args`: its options as JSON) against `cdp`, which acknowledges the next
 * `acked` requests and kills the child with SIGKILL when the one after them arrives (left unanswered).
 */
async function syncKilledAfter(cdp: FakeCdp, args: string, acked: number): ReturnType<typeof exited> {
  const before = cdp.requests.length;
  const proc: { child?: ChildProcess } = {};
  cdp.setHandler((r) => {
    if (r.n - before <= acked) return { status: 200 };
    proc.child?.kill('SIGKILL');
    return { status: 200, hang: true };
  });
  proc.child = spawnTs('test/sync/fixtures/run-sync.ts', [args]);
  return exited(proc.child);
}

for (const to of ['segment', 'rudderstack'] as SyncTarget[]) {
  describeEachWarehouse(`sync to ${to} killed with SIGKILL mid-run`, ({ tw }) => {
    let cdp: FakeCdp;
    const USERS = 400;
    const CHANGED = new Set<string>();

    beforeAll(async () => {
      cdp = await startFakeCdp();
      const wh = await tw().open();
      try {
        const users = makeUsers(USERS);
        await writeUserLifecycle(wh, 'lifecycle', users);
        // Everyone delivered once; then a rebuild changes every third user.
        await runSync({ warehouse: wh, schema: 'lifecycle', to, endpoint: cdp.url, writeKey: 'wk' });
        for (const [i, u] of users.entries()) {
          if (i % 3 === 0) {
            u.lifecycle_status = u.lifecycle_status === 'dormant' ? 'resurrected' : 'dormant';
            CHANGED.add(u.user_id as string);
          }
        }
        await writeUserLifecycle(wh, 'lifecycle', users);
      } finally {
        // A DuckDB file has one writer process: the child must find it closed.
        await wh.close();
      }
      cdp.requests.length = 0;
    });
    afterAll(async () => cdp.close());

    it('delivers every changed user exactly under one messageId after a kill and a rerun', async () => {
      const args = JSON.stringify({
        warehouse: tw().url,
        schema: 'lifecycle',
        to,
        endpoint: cdp.url,
        writeKey: 'wk',
        batchSize: 10,
        concurrency: 1,
        stateFlushRows: 10,
      });
      // Acknowledge three batches, then kill the sync while it waits for the fourth answer: batch 3 may be
      // acknowledged without its state written, batch 4 was received but never acknowledged.
      const first = await syncKilledAfter(cdp, args, 3);
      expect(first.signal).toBe('SIGKILL');
      expect(cdp.requests.length).toBe(4);
      // Through the RudderStack SDK a client's first event travels alone, so the first run sent 30 or 40.
      const firstRun = cdp.requests.reduce((n, r) => n + r.body.batch.length, 0);

      cdp.setHandler(() => ({ status: 200 }));
      const second = await exited(spawnTs('test/sync/fixtures/run-sync.ts', [args]));
      expect(second.code).toBe(0);
      const summary = JSON.parse(second.out.trim().split('\n').pop() as string) as {
        sent: number;
        failed: number;
      };
      expect(summary.failed).toBe(0);

      const all = cdp.requests.flatMap((r) => r.body.batch);
      const acked = cdp.acked();
      // Every changed user was acknowledged; no unchanged user was ever sent.
      expect(new Set(acked.map((e) => e.userId))).toEqual(CHANGED);
      for (const e of all) expect(CHANGED.has(e.userId as string)).toBe(true);
      // Replays (the unacknowledged batch, an acknowledged batch whose state was lost) reuse the messageId.
      const ids = new Map<unknown, Set<unknown>>();
      for (const e of all) ids.set(e.userId, (ids.get(e.userId) ?? new Set()).add(e.messageId));
      for (const [, set] of ids) expect(set.size).toBe(1);
      // Only what was in flight at the kill is sent twice: batch 4 for sure, batch 3 at most.
      expect(all.length - CHANGED.size).toBeGreaterThanOrEqual(10);
      expect(all.length - CHANGED.size).toBeLessThanOrEqual(20);
      expect(summary.sent).toBe(all.length - firstRun);

      const wh = await tw().open();
      try {
        const runs = await wh.query(`select status, dry_run from lifecycle.sync_runs order by started_at`);
        expect(runs.map((r) => r.status)).toEqual(['success', 'interrupted', 'success']);
        // the killed run's counts are what its sync_log recorded (they were to be written at its end)
        const [killed] = await wh.query<{ sent: number; failed: number; logged: number }>(
          `select cast(r.sent as integer) as sent, cast(r.failed as integer) as failed,
                  cast((select count(*) from lifecycle.sync_log as l where l.run_id = r.run_id and l.status = 'sent') as integer) as logged
             from lifecycle.sync_runs as r where r.status = 'interrupted'`,
        );
        expect(killed.sent).toBeGreaterThan(0);
        expect(killed).toEqual({ sent: killed.logged, failed: 0, logged: killed.logged });
        const [st] = await wh.query(
          `select count(*) as n from lifecycle.sync_state where status = 'delivered' and traits_hash is not null`,
        );
        expect(st.n).toBe(USERS);
        const again = await runSync({
          warehouse: wh,
          schema: 'lifecycle',
          to,
          endpoint: cdp.url,
          writeKey: 'wk',
        });
        expect(again).toMatchObject({ considered: USERS, changed: 0 });
      } finally {
        await wh.close();
      }
    }, 60000);
  });
}

for (const to of ['segment', 'rudderstack'] as SyncTarget[]) {
  describeEachWarehouse(
    `sync to ${to} killed after the CDP took changes the warehouse then took back`,
    ({ tw }) => {
      let cdp: FakeCdp;
      const USERS = 200;
      const users = makeUsers(USERS);
      const changed = new Set<string>();

      beforeAll(async () => {
        cdp = await startFakeCdp();
        const wh = await tw().open();
        try {
          await writeUserLifecycle(wh, 'lifecycle', users);
          await runSync({ warehouse: wh, schema: 'lifecycle', to, endpoint: cdp.url, writeKey: 'wk' });
          // a bad build: everyone churned
          const bad = users.map((u) => ({ ...u, lifecycle_status: 'churned' }));
          for (const u of users) if (u.lifecycle_status !== 'churned') changed.add(u.user_id as string);
          await writeUserLifecycle(wh, 'lifecycle', bad);
        } finally {
          await wh.close();
        }
      });
      afterAll(async () => cdp.close());

      it('resends what the killed run may have delivered, so the CDP ends with the fixed value', async () => {
        const before = cdp.requests.length;
        const args = JSON.stringify({
          warehouse: tw().url,
          schema: 'lifecycle',
          to,
          endpoint: cdp.url,
          writeKey: 'wk',
          batchSize: 10,
          concurrency: 1,
        });
        // three batches acknowledged (their state not yet written: it is written in chunks), a fourth received
        expect((await syncKilledAfter(cdp, args, 3)).signal).toBe('SIGKILL');
        const received = cdp.requests.slice(before).flatMap((r) => r.body.batch);
        const killedRun = new Set(received.map((e) => e.userId as string));
        expect(killedRun.size).toBeGreaterThanOrEqual(30);

        cdp.setHandler(() => ({ status: 200 }));
        const wh = await tw().open();
        try {
          // the build is fixed: the warehouse holds again what was delivered before the bad one
          await writeUserLifecycle(wh, 'lifecycle', users);
          const rerun = await runSync({
            warehouse: wh,
            schema: 'lifecycle',
            to,
            endpoint: cdp.url,
            writeKey: 'wk',
          });
          expect(rerun.failed).toBe(0);
          const resent = new Set(
            cdp.requests
              .slice(before)
              .flatMap((r) => r.body.batch)
              .map((e) => e.userId as string),
          );
          for (const id of killedRun) expect(resent.has(id)).toBe(true);
          for (const id of resent) expect(changed.has(id)).toBe(true);
          // what the CDP last received for each user is what the warehouse holds
          const last = new Map<string, unknown>();
          for (const e of cdp.requests.flatMap((r) => r.body.batch)) {
            last.set(e.userId as string, (e.traits as Record<string, unknown>).lifecycle_status);
          }
          expect(Object.fromEntries(last)).toEqual(
            Object.fromEntries(users.map((u) => [u.user_id as string, u.lifecycle_status])),
          );
          const again = await runSync({
            warehouse: wh,
            schema: 'lifecycle',
            to,
            endpoint: cdp.url,
            writeKey: 'wk',
          });
          expect(again).toMatchObject({ considered: USERS, changed: 0 });
          const [st] = await wh.query<{ n: number }>(
            `select cast(count(*) as integer) as n from lifecycle.sync_state where status = 'delivered'`,
          );
          expect(st.n).toBe(USERS);
        } finally {
          await wh.close();
        }
      }, 60000);
    },
  );
}
