import * as http from 'node:http';
import * as net from 'node:net';
import { describeEachWarehouse } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { formatSyncSummary, runSync, type SyncOptions, type SyncTarget } from '../../src/sync';
import { startFakeCdp, type FakeCdp } from './helpers/fake-cdp';
import { makeUsers, writeUserLifecycle } from './helpers/lifecycle-fixture';

/** A port with nothing listening: connections are refused. */
async function closedPort(): Promise<number> {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  const { port } = srv.address() as net.AddressInfo;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

for (const to of ['segment', 'rudderstack'] as SyncTarget[]) {
  describeEachWarehouse(`sync faults (${to})`, ({ tw }) => {
    let wh: Warehouse;
    let cdp: FakeCdp;
    const base = (): SyncOptions => ({
      warehouse: wh,
      schema: 'lifecycle',
      to,
      endpoint: cdp.url,
      writeKey: 'wk',
      retry: { baseDelayMs: 20, maxDelayMs: 100 },
      fullResync: true,
    });
    beforeAll(async () => {
      wh = await tw().open();
      cdp = await startFakeCdp();
      await writeUserLifecycle(wh, 'lifecycle', makeUsers(30));
    });
    afterAll(async () => {
      await cdp.close();
      await wh.close();
    });
    beforeEach(() => {
      cdp.requests.length = 0;
      cdp.setHandler(() => ({ status: 200 }));
    });

    it('retries a request that timed out, under the same messageIds', async () => {
      cdp.setHandler((r) => (r.n === 1 ? { status: 200, hang: true } : { status: 200 }));
      const s = await runSync({ ...base(), batchSize: 30, concurrency: 1, timeoutMs: 300 });
      expect(s).toMatchObject({ sent: 30, failed: 0 });
      // The unanswered request's events were acknowledged later under the same ids. (Through the RudderStack
      // SDK the first request of a client carries only its first event; see docs/sync.md.)
      const hung = cdp.requests[0].body.batch.map((e) => e.messageId);
      const acked = cdp.acked().map((e) => e.messageId);
      expect(hung.length).toBeGreaterThan(0);
      for (const id of hung) expect(acked).toContain(id);
      expect(new Set(acked).size).toBe(30);
    });

    it('marks rows failed and stops when the endpoint refuses connections', async () => {
      const port = await closedPort();
      const s = await runSync({
        ...base(),
        endpoint: `http://127.0.0.1:${port}`,
        batchSize: 10,
        concurrency: 1,
        retry: { baseDelayMs: 10, maxDelayMs: 20, maxAttempts: 2 },
      });
      expect(s).toMatchObject({ sent: 0, failed: 10, status: 'failed', exitCode: 1 });
      expect(s.aborted).toMatch(/kept failing after 2 attempts/);
      expect(s.errors[0].error).toMatch(/gave up after 2 attempts: .*ECONNREFUSED/);
      // The other 20 changed users were not tried: they stay changed for the next run.
      expect(s.changed).toBe(30);
      expect(formatSyncSummary(s)).toMatch(/not tried\s+20/);
      // the changes by status still describe the whole diff, as the sync_runs row does
      expect(s.transitions.reduce((n, t) => n + t.count, 0)).toBe(30);
      const [run] = await wh.query<{ transitions: unknown }>(
        `select transitions from lifecycle.sync_runs order by started_at desc limit 1`,
      );
      const recorded = (
        typeof run.transitions === 'string' ? JSON.parse(run.transitions) : run.transitions
      ) as Record<string, number>;
      expect(Object.values(recorded).reduce((n, c) => n + c, 0)).toBe(30);
      // One reason for all ten rows: one summary line with the count and a few users, not ten lines.
      expect(s.problemGroups).toHaveLength(1);
      expect(formatSyncSummary(s)).toMatch(
        /problems:\n {4}failed 10 \(u\d+, u\d+, u\d+ and 7 more\): gave up after 2 attempts: .*ECONNREFUSED.*\n {2}stopped early/,
      );
    });

    it('stops at a redirect instead of following it: a POST re-sent as a GET delivers nothing', async () => {
      await wh.exec('delete from lifecycle.sync_state');
      // a proxy that moved the API: the redirected GET (without the events) would be answered 200; its
      // relative Location is named as the URL it points to
      cdp.setHandler((r) =>
        r.method === 'POST' ? { status: 301, headers: { location: '/moved' } } : { status: 200 },
      );
      await expect(runSync({ ...base(), batchSize: 10, concurrency: 1 })).rejects.toThrow(
        `refused the sync: the endpoint redirects (HTTP 301 to ${cdp.url}/moved), which the sync does not follow: pass the final base URL as --endpoint; nothing more was sent`,
      );
      // nothing followed the redirect (through the RudderStack SDK, a client's first request carries one event)
      expect(cdp.requests.length).toBeGreaterThan(0);
      expect(new Set(cdp.requests.map((r) => `${r.method} ${r.path}`))).toEqual(new Set(['POST /v1/batch']));
      expect(
        await wh.query(`select count(*) as n from lifecycle.sync_state where status = 'delivered'`),
      ).toEqual([{ n: 0 }]);
    });

    it('names a disabled RudderStack source rather than the endpoint, and a data plane given to --to segment', async () => {
      cdp.setHandler(() => ({ status: 404, body: 'Source is disabled\n' }));
      await expect(runSync({ ...base(), batchSize: 10, concurrency: 1 })).rejects.toThrow(
        to === 'rudderstack'
          ? 'refused the sync: the source of this write key is disabled (HTTP 404: Source is disabled): enable it in RudderStack, or pass the write key of an enabled source; nothing more was sent'
          : 'refused the sync: the endpoint answers as a RudderStack data plane whose source of this write key is disabled (HTTP 404: Source is disabled): to sync to RudderStack, pass --to rudderstack and the write key of an enabled source; nothing more was sent',
      );
    });

    it('does not resend before a long Retry-After: marks the rows failed and stops the run', async () => {
      cdp.setHandler(() => ({
        status: 429,
        headers: { 'retry-after': '3600' },
        body: 'come back in an hour',
      }));
      const started = Date.now();
      const s = await runSync({ ...base(), batchSize: 10, concurrency: 1 });
      expect(Date.now() - started).toBeLessThan(20_000);
      // the batch answered 429 was never resent (the RudderStack SDK sends a client's first event alone, so
      // its batch of 10 arrives as two requests); the other 20 users were not tried
      const sentIds = cdp.requests.flatMap((r) => r.body.batch.map((e) => e.messageId));
      expect(sentIds.length).toBeGreaterThan(0);
      expect(sentIds.length).toBeLessThanOrEqual(10);
      expect(new Set(sentIds).size).toBe(sentIds.length);
      expect(cdp.acked()).toEqual([]);
      expect(s).toMatchObject({ sent: 0, status: 'failed', exitCode: 1 });
      expect(s.failed).toBeGreaterThan(0);
      expect(s.failed).toBeLessThanOrEqual(10);
      expect(s.errors[0].error).toMatch(
        /the endpoint asked to wait 3600 s \(Retry-After\), longer than a run waits \(120 s\)/,
      );
      expect(s.aborted).toMatch(
        /the CDP asked to wait 3600 s \(Retry-After\); the rest is left for the next run/,
      );
      // a short Retry-After is still waited for and the same events resent
      let n = 0;
      cdp.setHandler(() => (++n === 1 ? { status: 429, headers: { 'retry-after': '1' } } : { status: 200 }));
      const waited = Date.now();
      const again = await runSync({ ...base(), batchSize: 30, concurrency: 1 });
      expect(again).toMatchObject({ sent: 30, failed: 0 });
      expect(Date.now() - waited).toBeGreaterThanOrEqual(900);
    });

    it('holds every request, not only the throttled one, while a Retry-After runs', async () => {
      // the first request is throttled; the others take 50 ms each, so the free slot would send many meanwhile
      cdp.setHandler(async (r) => {
        if (r.n === 1) return { status: 429, headers: { 'retry-after': '1' } };
        await new Promise((resolve) => setTimeout(resolve, 50));
        return { status: 200 };
      });
      const s = await runSync({ ...base(), batchSize: 1 });
      expect(s).toMatchObject({ sent: 30, failed: 0 });
      const [first, ...rest] = cdp.requests;
      expect(first.status).toBe(429);
      // the other slot's request may have left before the 429 came back; none leaves after it, within the second
      const during = rest.filter(
        (r) => r.receivedAt > first.receivedAt + 200 && r.receivedAt < first.receivedAt + 900,
      );
      expect(during.map((r) => r.n)).toEqual([]);
      expect(rest.filter((r) => r.receivedAt >= first.receivedAt + 900).length).toBeGreaterThan(0);
    });

    it("waits for the longest Retry-After of a batch's answers, and stops on one longer than a run waits", async () => {
      // Through the RudderStack SDK a batch's first event travels alone: its 429 must not be lost to the 503
      // of the rest of the batch (for Segment the 429 answers the whole batch)
      const throttled = (retryAfter: string): void =>
        cdp.setHandler((r) =>
          r.n === 1
            ? { status: 429, headers: { 'retry-after': retryAfter } }
            : r.n === 2
              ? { status: 503 }
              : { status: 200 },
        );
      throttled('1');
      const s = await runSync({ ...base(), batchSize: 20, concurrency: 1 });
      expect(s).toMatchObject({ sent: 30, failed: 0 });
      const [first, ...rest] = cdp.requests;
      // after the 429, nothing more of the batch left until the second was over
      const early = rest.filter(
        (r) =>
          r.receivedAt < first.receivedAt + 900 &&
          r.body.batch.some((e) => e.userId !== first.body.batch[0].userId),
      );
      expect(early.map((r) => r.n)).toEqual([]);
      cdp.requests.length = 0;
      throttled('3600');
      const long = await runSync({ ...base(), batchSize: 20, concurrency: 1 });
      expect(long).toMatchObject({ sent: 0, failed: 20, status: 'failed' });
      expect(long.aborted).toMatch(/asked to wait 3600 s/);
      expect(cdp.requests.length).toBe(1);
    });

    it('holds the other requests of the run for a Retry-After longer than a run waits: their retries fail, none is sent', async () => {
      const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
      cdp.setHandler(async (r) => {
        if (r.n === 1) {
          // answered once the other batch's request is in flight too
          for (let t = 0; cdp.requests.length < 2 && t < 100; t++) await pause(20);
          return { status: 429, headers: { 'retry-after': '600' }, body: 'come back in ten minutes' };
        }
        // the other batch's first request fails after the 429 came back, and its retry would follow at once
        if (r.n === 2) {
          await pause(200);
          return { status: 503 };
        }
        return { status: 200 };
      });
      const started = Date.now();
      const s = await runSync({ ...base(), batchSize: 15, concurrency: 2 });
      expect(Date.now() - started).toBeLessThan(20_000);
      // both batches were in flight; neither was sent again before the ten minutes
      expect(cdp.requests.map((r) => r.status)).toEqual([429, 503]);
      expect(cdp.acked()).toEqual([]);
      expect(s).toMatchObject({ sent: 0, failed: 30, status: 'failed', exitCode: 1 });
      // the retried batch's rows fail with the wait named, as the throttled one's do
      expect(s.problemGroups).toEqual([
        {
          status: 'failed',
          error:
            'the endpoint asked to wait 600 s (Retry-After), longer than a run waits (120 s): HTTP 429: come back in ten minutes',
          count: 30,
          userIds: expect.any(Array) as unknown,
        },
      ]);
      expect(s.aborted).toMatch(
        /the CDP asked to wait 600 s \(Retry-After\); the rest is left for the next run/,
      );
    });

    it('holds the other requests of the run for a Retry-After answering the last attempt', async () => {
      const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
      let first: unknown;
      cdp.setHandler(async (r) => {
        const batch = r.body.batch.map((e) => e.userId);
        if (r.n === 1) {
          first = batch[0];
          // answered once the other batch's request is in flight too
          for (let t = 0; cdp.requests.length < 2 && t < 100; t++) await pause(20);
          return { status: 503 };
        }
        // the first batch's second and last attempt is throttled for a second
        if (batch.includes(first)) return { status: 429, headers: { 'retry-after': '1' }, body: 'slow down' };
        // the other batch's first request fails later, so that its retry would leave within the second
        if (r.n === 2) {
          await pause(300);
          return { status: 503 };
        }
        return { status: 200 };
      });
      const s = await runSync({
        ...base(),
        batchSize: 15,
        concurrency: 2,
        retry: { ...base().retry, maxAttempts: 2 },
      });
      expect(s).toMatchObject({ sent: 15, failed: 15, status: 'failed' });
      expect(s.errors[0].error).toMatch(/gave up after 2 attempts: HTTP 429: slow down/);
      // the other batch's retry left only once the second asked for was over
      const throttled = cdp.requests.filter((r) => r.status === 429).map((r) => r.receivedAt);
      const resent = cdp.requests.filter((r) => r.status === 200).map((r) => r.receivedAt);
      expect(throttled).toHaveLength(1);
      expect(resent).toHaveLength(1);
      expect(resent[0] - throttled[0]).toBeGreaterThanOrEqual(900);
    });

    it('sends nothing more of a batch once interrupted or refused outright', async () => {
      const stop = new AbortController();
      cdp.setHandler(async (r) => {
        if (r.n === 1) {
          stop.abort();
          await new Promise((resolve) => setTimeout(resolve, 300));
        }
        return { status: 200 };
      });
      const s = await runSync({ ...base(), batchSize: 20, concurrency: 1, signal: stop.signal });
      expect(s.status).toBe('interrupted');
      // the request in flight was answered and recorded; none left after the interruption
      expect(cdp.requests.length).toBe(1);
      expect(s.sent).toBe(cdp.requests[0].body.batch.length);
      cdp.requests.length = 0;
      cdp.setHandler(() => ({ status: 401, body: 'bad key' }));
      await expect(runSync({ ...base(), batchSize: 20, concurrency: 1 })).rejects.toThrow(
        /nothing more was sent/,
      );
      expect(cdp.requests.length).toBe(1);
    });

    it('stops the sends of every batch in flight when one is refused outright, not only its own', async () => {
      const schema = 'lc_fatal_concurrent';
      await writeUserLifecycle(wh, schema, makeUsers(40));
      // two batches in flight: one meets a 500 and backs off (at least 250 ms here), the other a 404
      cdp.requests.length = 0;
      cdp.setHandler((r) =>
        r.n === 1
          ? { status: 500, body: 'try again' }
          : r.n === 2
            ? { status: 404, body: 'no such source' }
            : { status: 200 },
      );
      await expect(
        runSync({
          ...base(),
          schema,
          batchSize: 10,
          concurrency: 2,
          retry: { baseDelayMs: 500, maxDelayMs: 500 },
        }),
      ).rejects.toThrow(/HTTP 404/);
      const refused = cdp.requests.find((r) => r.status === 404);
      expect(refused).toBeDefined();
      // the backed-off batch's retry would leave 250-500 ms after its 500: nothing leaves after the 404
      expect(cdp.requests.filter((r) => r.receivedAt > refused!.receivedAt + 150).map((r) => r.n)).toEqual(
        [],
      );
      // nothing was acknowledged, so nothing is recorded: the next run sends every user
      expect(await wh.query(`select user_id from ${schema}.sync_state where status = 'delivered'`)).toEqual(
        [],
      );
    });

    it('records the rows acknowledged before a later request of their batch is refused outright', async () => {
      // A schema of its own: the test diffs against what was delivered, which the full resyncs above overwrite.
      const schema = 'lc_fatal';
      await writeUserLifecycle(wh, schema, makeUsers(20));
      const opts = (): SyncOptions => ({
        ...base(),
        schema,
        fullResync: false,
        batchSize: 10,
        concurrency: 1,
      });
      expect(await runSync(opts())).toMatchObject({ sent: 20, failed: 0 });
      type StateRow = { user_id: string; status: string; traits_hash: string; message_id: string };
      const stateOf = async (): Promise<Map<string, StateRow>> =>
        new Map(
          (
            await wh.query<StateRow>(
              `select user_id, status, traits_hash, message_id from ${schema}.sync_state order by user_id`,
            )
          ).map((r) => [r.user_id, r]),
        );
      const before = await stateOf();

      // every user changes; the first batch (u00000…u00009) holds a row the CDP refuses, so it is bisected, and
      // the write key is refused from a later request of that same batch on: Segment's halves are requests
      // 1–6 (400, 400, 200, 400, 400, 200) and 7; the RudderStack SDK sends the first event alone, then the
      // other nine, whose halves are requests 2–7, and request 8 is refused
      await wh.exec(
        `update ${schema}.user_lifecycle set previous_status = lifecycle_status, lifecycle_status = 'churned', status_since = cast('2024-06-30' as date)`,
      );
      const bad = 'u00003';
      const refusedFrom = to === 'segment' ? 7 : 8;
      cdp.requests.length = 0;
      cdp.setHandler((r) =>
        r.n >= refusedFrom
          ? { status: 401, body: 'bad key' }
          : r.body.batch.some((e) => e.userId === bad)
            ? { status: 400, body: `userId ${bad} is blocked` }
            : { status: 200 },
      );
      await expect(runSync(opts())).rejects.toThrow(
        /refused the sync: the write key was refused \(HTTP 401\): bad key; nothing more was sent; the [45] row\(s\) it acknowledged before are recorded/,
      );
      const acked = new Set(cdp.acked().map((e) => String(e.userId)));
      // part of the first batch only: the halves answered 200 before the 401
      expect([...acked].sort()).toEqual(
        to === 'segment'
          ? ['u00000', 'u00001', 'u00002', 'u00004']
          : ['u00000', 'u00001', 'u00002', 'u00004', 'u00005'],
      );

      // what the CDP acknowledged is delivered with the new traits, the row it refused alone is failed, and
      // every other user is as before (not acknowledged: the next run sends it again)
      const after = await stateOf();
      expect(after.size).toBe(20);
      for (const [userId, old] of before) {
        const now = after.get(userId);
        if (acked.has(userId)) {
          expect(now).toMatchObject({ status: 'delivered' });
          expect(now?.traits_hash).not.toBe(old.traits_hash);
        } else if (userId === bad) {
          expect(now).toEqual({ ...old, status: 'failed' });
        } else {
          expect(now).toEqual(old);
        }
      }
      const [run] = await wh.query<{ run_id: string; status: string; sent: unknown; failed: unknown }>(
        `select run_id, status, sent, failed from ${schema}.sync_runs order by started_at desc limit 1`,
      );
      expect({ ...run, sent: Number(run.sent), failed: Number(run.failed) }).toMatchObject({
        status: 'error',
        sent: acked.size,
        failed: 1,
      });
      const logged = await wh.query<{ user_id: string; status: string }>(
        `select user_id, status from ${schema}.sync_log where run_id = $1 order by user_id`,
        [run.run_id],
      );
      expect(logged).toEqual(
        [...acked, bad].sort().map((u) => ({ user_id: u, status: u === bad ? 'failed' : 'sent' })),
      );

      // Back to the old values: exactly the users the CDP holds the new traits of are changed, and the
      // refused row is retried; the rest never left the old values, so they are not sent.
      await writeUserLifecycle(wh, schema, makeUsers(20));
      cdp.requests.length = 0;
      cdp.setHandler(() => ({ status: 200 }));
      const next = await runSync(opts());
      expect(next).toMatchObject({ changed: acked.size + 1, sent: acked.size + 1, failed: 0 });
      expect(new Set(cdp.acked().map((e) => String(e.userId)))).toEqual(new Set([...acked, bad]));
    });

    it('sends the configured integrations object and spaces requests to the rate limit', async () => {
      const s = await runSync({
        ...base(),
        integrations: { All: false, Braze: true },
        rateLimit: 20,
        concurrency: 1,
      });
      expect(s.sent).toBe(30);
      // 20 events/s: a request never carries more than 20, and the second waits for the first one's second.
      expect(new Set(cdp.acked().map((e) => e.userId)).size).toBe(30);
      for (const r of cdp.requests) expect(r.body.batch.length).toBeLessThanOrEqual(20);
      const last = cdp.requests[cdp.requests.length - 1];
      // The limiter holds the second batch 1 s after the first leaves; the server-side gap also absorbs the
      // first request's connection set-up, so only a loose lower bound is stable under load (unlimited: a few ms).
      expect(last.receivedAt - cdp.requests[0].receivedAt).toBeGreaterThanOrEqual(500);
      for (const e of cdp.acked()) expect(e.integrations).toEqual({ All: false, Braze: true });
    });
  });
}

describeEachWarehouse('sync to RudderStack: the SDK on the wire', ({ tw }) => {
  let wh: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
    await writeUserLifecycle(wh, 'lifecycle', makeUsers(3));
  });
  afterAll(async () => wh.close());

  it('bounds a whole request by the timeout, not only the wait for its first byte', async () => {
    // headers at once, then a byte every 200 ms for ever (axios' own timeout stops at the headers)
    let n = 0;
    const sockets = new Set<net.Socket>();
    const server = http.createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        if (++n > 1) {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end('{}');
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        const timer = setInterval(() => res.write(' '), 200);
        res.on('close', () => clearInterval(timer));
      });
    });
    server.on('connection', (c) => {
      sockets.add(c);
      c.on('close', () => sockets.delete(c));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const started = Date.now();
      const s = await runSync({
        warehouse: wh,
        schema: 'lifecycle',
        to: 'rudderstack',
        endpoint: `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`,
        writeKey: 'wk',
        fullResync: true,
        concurrency: 1,
        timeoutMs: 500,
        retry: { baseDelayMs: 20, maxDelayMs: 50 },
      });
      expect(s).toMatchObject({ sent: 3, failed: 0 });
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const c of sockets) c.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('measures an identify as the SDK sends it, so one under 32 KB on the wire is sent', async () => {
    const cdp = await startFakeCdp();
    try {
      // traits sized so that the event is a few hundred bytes under the limit on the wire
      await writeUserLifecycle(wh, 'lc_size', [
        {
          user_id: 'big',
          lifecycle_status: 'active',
          status_since: '2024-06-01',
          previous_status: null,
          subscription_status: 'x'.repeat(16_050),
        },
      ]);
      const s = await runSync({
        warehouse: wh,
        schema: 'lc_size',
        to: 'rudderstack',
        endpoint: cdp.url,
        writeKey: 'wk',
        traits: { plan: 'subscription_status' },
      });
      expect(s).toMatchObject({ sent: 1, invalid: 0 });
      const [event] = cdp.acked();
      const wire = Buffer.byteLength(JSON.stringify(event));
      expect(wire).toBeLessThanOrEqual(32_768);
      expect(wire).toBeGreaterThan(32_768 - 400);
      const logged = await wh.query<{ n: number }>(
        `select count(*) as n from lc_size.sync_log where status = 'sent'`,
      );
      expect(logged).toEqual([{ n: 1 }]);
    } finally {
      await cdp.close();
    }
  });
});
