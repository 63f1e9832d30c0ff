import { describeEachWarehouse } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { UsageError } from '../../src/errors';
import { runSync, type SyncOptions } from '../../src/sync';
import { startFakeCdp, type FakeCdp } from './helpers/fake-cdp';
import { makeUsers, setStatus, writeUserLifecycle } from './helpers/lifecycle-fixture';
import { loadRudderStackTransformation, type Event } from '../helpers/rudderstack-transformation';

const KEY = 'rudder_wk_2Xa';

describeEachWarehouse('sync to RudderStack through rudder-sdk-node', ({ tw }) => {
  let wh: Warehouse;
  let cdp: FakeCdp;
  const base = (): SyncOptions => ({
    warehouse: wh,
    schema: 'lifecycle',
    to: 'rudderstack',
    endpoint: cdp.url,
    writeKey: KEY,
    retry: { baseDelayMs: 20, maxDelayMs: 100 },
  });

  beforeAll(async () => {
    wh = await tw().open();
    cdp = await startFakeCdp();
    await writeUserLifecycle(wh, 'lifecycle', makeUsers(45));
  });
  afterAll(async () => {
    await cdp.close();
    await wh.close();
  });
  beforeEach(() => {
    cdp.requests.length = 0;
    cdp.setHandler(() => ({ status: 200 }));
  });

  it('sends every changed user as an SDK identify, gzipped, with the write key as Basic user', async () => {
    const s = await runSync({ ...base(), batchSize: 20 });
    expect(s).toMatchObject({ considered: 45, changed: 45, sent: 45, failed: 0, status: 'success' });
    for (const r of cdp.requests) {
      expect(r.path).toBe('/v1/batch');
      expect(r.headers.authorization).toBe('Basic ' + Buffer.from(`${KEY}:`).toString('base64'));
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(r.body.batch.length).toBeLessThanOrEqual(20);
    }
    const events = cdp.requests.flatMap((r) => r.body.batch);
    expect(events).toHaveLength(45);
    expect(new Set(events.map((e) => e.userId)).size).toBe(45);
    const u7 = events.find((e) => e.userId === 'u00007');
    expect(u7).toMatchObject({
      type: 'identify',
      traits: {
        lifecycle_status: 'new',
        lifecycle_status_since: '2024-06-08',
        lifecycle_previous_status: 'active',
        rfm_segment: null,
      },
      integrations: { All: true },
      context: { cdp_lifecycle: { run_id: s.runId } },
    });
    expect(String(u7?.messageId)).toMatch(/^cdpl-[0-9a-f]{64}$/);
    const [st] = await wh.query(`select count(*) as n from lifecycle.sync_state where status = 'delivered'`);
    expect(st.n).toBe(45);

    expect(await runSync(base())).toMatchObject({ changed: 0, sent: 0 });
    expect(cdp.requests.flatMap((r) => r.body.batch)).toHaveLength(45);
    // the shipped transformation recognises every call as the sync's own, should the source feed the collector
    const transformEvent = loadRudderStackTransformation();
    const kept = events.filter((e) => transformEvent(JSON.parse(JSON.stringify(e)) as Event, () => ({})));
    expect(kept).toEqual([]);
  });

  it("keeps requests under RudderStack's 4 MB, counting the traits the SDK copies into context", async () => {
    const users = makeUsers(200, 'big').map((u, i) => ({
      ...u,
      subscription_status: 'p'.repeat(14_000) + i,
    }));
    await writeUserLifecycle(wh, 'big', users);
    const s = await runSync({
      ...base(),
      schema: 'big',
      batchSize: 200,
      traits: { lifecycle_status: 'lifecycle_status', plan: 'subscription_status' },
    });
    expect(s).toMatchObject({ sent: 200, invalid: 0, failed: 0 });
    const total = cdp.requests.reduce((n, r) => n + r.bodyBytes, 0);
    expect(total).toBeGreaterThan(5_000_000);
    for (const r of cdp.requests) {
      expect(r.bodyBytes).toBeLessThanOrEqual(4_000_000);
      // Each event is under 32 KB as sent, with context.traits repeating the 14 KB trait.
      for (const e of r.body.batch) expect(Buffer.byteLength(JSON.stringify(e))).toBeLessThan(32 * 1024);
    }
    expect((cdp.requests[1].body.batch[0].context as { traits?: unknown }).traits).toBeDefined();
  });

  it('measures events as the SDK sends them, also in a dry run', async () => {
    // 20 KB of traits: under Segment's 32 KB, over it once the SDK repeats them in context.traits.
    const users = makeUsers(3, 'h').map((u) => ({ ...u, subscription_status: 'q'.repeat(20_000) }));
    await writeUserLifecycle(wh, 'huge', users);
    const traits = { plan: 'subscription_status' };
    const rs = await runSync({ ...base(), schema: 'huge', traits, dryRun: true });
    expect(rs).toMatchObject({ changed: 3, invalid: 3 });
    expect(rs.errors[0].error).toMatch(/over the 32768-byte event limit/);
    const seg = await runSync({ ...base(), to: 'segment', schema: 'huge', traits, dryRun: true });
    expect(seg).toMatchObject({ changed: 3, invalid: 0 });
    expect(cdp.requests).toHaveLength(0);
  });

  it('keeps each request under the byte limit it is given', async () => {
    const s = await runSync({ ...base(), fullResync: true, limits: { maxBatchBytes: 8000 } });
    expect(s.sent).toBe(45);
    expect(cdp.requests.length).toBeGreaterThan(3);
    for (const r of cdp.requests) expect(r.bodyBytes).toBeLessThanOrEqual(8000);
  });

  it('isolates a row refused with 400 and retries 500 / 429 with Retry-After', async () => {
    for (const id of ['u00001', 'u00002', 'u00003', 'u00004']) {
      await setStatus(wh, 'lifecycle', id, 'churned', '2024-06-30', 'dormant');
    }
    let n = 0;
    cdp.setHandler((r) => {
      n++;
      if (n === 1) return { status: 500, body: 'upstream down' };
      if (n === 2) return { status: 429, headers: { 'retry-after': '1' }, body: 'rate limited' };
      if (r.body.batch.some((e) => e.userId === 'u00002'))
        return { status: 400, body: 'Invalid userId u00002' };
      return { status: 200 };
    });
    const s = await runSync(base());
    expect(s).toMatchObject({ changed: 4, sent: 3, failed: 1, exitCode: 1 });
    expect(s.errors).toEqual([
      { userId: 'u00002', status: 'failed', error: 'HTTP 400: Invalid userId u00002' },
    ]);
    expect(cdp.requests[2].receivedAt - cdp.requests[1].receivedAt).toBeGreaterThanOrEqual(990);
    expect(new Set(cdp.acked().map((e) => e.userId))).toEqual(new Set(['u00001', 'u00003', 'u00004']));
    // Every attempt of a user carried the same messageId.
    const ids = new Map<unknown, Set<unknown>>();
    for (const e of cdp.requests.flatMap((r) => r.body.batch)) {
      ids.set(e.userId, (ids.get(e.userId) ?? new Set()).add(e.messageId));
    }
    for (const set of ids.values()) expect(set.size).toBe(1);

    cdp.requests.length = 0;
    cdp.setHandler(() => ({ status: 200 }));
    expect(await runSync(base())).toMatchObject({ changed: 1, sent: 1 });
    expect(cdp.acked().map((e) => e.userId)).toEqual(['u00002']);
  });

  it("holds the rest of another client's batch, which the SDK sends as a request of its own, while a Retry-After runs", async () => {
    const schema = 'rs_hold';
    await writeUserLifecycle(wh, schema, makeUsers(20, 'h'));
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    let throttledAt = 0;
    const throttle = (retryAfter: string): void =>
      cdp.setHandler(async (r) => {
        if (r.n === 1) {
          // answered once the other client's first event (which the SDK sends alone) is in flight too
          for (let t = 0; cdp.requests.length < 2 && t < 100; t++) await pause(20);
          throttledAt = Date.now();
          return { status: 429, headers: { 'retry-after': retryAfter }, body: 'slow down' };
        }
        // acknowledged well within the hold: the rest of that client's batch would follow at once
        if (r.n === 2) await pause(300);
        return { status: 200 };
      });
    const sync = (): ReturnType<typeof runSync> =>
      runSync({ ...base(), schema, batchSize: 10, concurrency: 2, fullResync: true });

    throttle('2');
    const s = await sync();
    expect(s).toMatchObject({ sent: 20, failed: 0 });
    expect(cdp.requests.slice(0, 2).map((r) => r.status)).toEqual([429, 200]);
    // the other client's batch went as two requests, the second after its first was acknowledged
    const other = new Set(cdp.requests[1].body.batch.map((e) => e.userId));
    expect(cdp.requests.slice(2).some((r) => r.body.batch.some((e) => !other.has(e.userId)))).toBe(true);
    // the hold ends 2 s after the 429 reached the sync, which is after the fake answered it (a 100 ms margin
    // for the clock's resolution); without the hold the rest left about 300 ms after
    const early = cdp.requests.slice(2).filter((r) => r.receivedAt < throttledAt + 1900);
    expect(early.map((r) => r.n)).toEqual([]);

    // a hold longer than a run waits: the rest of that batch is not sent at all, and its rows fail with the wait
    cdp.requests.length = 0;
    throttle('600');
    const long = await sync();
    expect(cdp.requests.map((r) => r.status)).toEqual([429, 200]);
    expect(long).toMatchObject({ sent: 1, failed: 19, status: 'failed' });
    expect(long.problemGroups).toEqual([
      {
        status: 'failed',
        error:
          'the endpoint asked to wait 600 s (Retry-After), longer than a run waits (120 s): HTTP 429: slow down',
        count: 19,
        userIds: expect.any(Array) as unknown,
      },
    ]);
  });

  it('records nothing for the rows a Retry-After hold kept back when the run is interrupted during it', async () => {
    const schema = 'rs_hold_interrupted';
    await writeUserLifecycle(wh, schema, makeUsers(20, 'k'));
    const pause = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
    const stop = new AbortController();
    cdp.setHandler(async (r) => {
      if (r.n === 1) {
        for (let t = 0; cdp.requests.length < 2 && t < 100; t++) await pause(20);
        return { status: 429, headers: { 'retry-after': '3' }, body: 'slow down' };
      }
      if (r.n === 2) {
        await pause(300);
        // the rest of this client's batch now waits for the hold: interrupted while it does
        setTimeout(() => stop.abort(), 500);
      }
      return { status: 200 };
    });
    const s = await runSync({
      ...base(),
      schema,
      batchSize: 10,
      concurrency: 2,
      signal: stop.signal,
    });
    expect(s.status).toBe('interrupted');
    // the 429 and the acknowledged first event of the other batch: the rest was never sent
    expect(cdp.requests.map((r) => r.status)).toEqual([429, 200]);
    const acked = cdp.requests[1].body.batch.map((e) => String(e.userId));
    expect(s).toMatchObject({ sent: acked.length, failed: 0 });
    const logged = await wh.query<{ user_id: string; status: string }>(
      `select user_id, status from ${schema}.sync_log where run_id = $1 order by user_id`,
      [s.runId],
    );
    expect(logged).toEqual(acked.sort().map((user_id) => ({ user_id, status: 'sent' })));
  });

  it('needs a data plane URL unless it is a dry run', async () => {
    await expect(runSync({ ...base(), endpoint: undefined })).rejects.toThrow(UsageError);
    await expect(runSync({ ...base(), endpoint: undefined })).rejects.toThrow(/data plane URL/);
    await setStatus(wh, 'lifecycle', 'u00005', 'power', '2024-06-30', 'active');
    const dry = await runSync({ ...base(), endpoint: undefined, writeKey: undefined, dryRun: true });
    // Without a key or host, the dry run diffs against the one RudderStack destination synced so far.
    expect(dry).toMatchObject({
      destination: expect.stringMatching(/^rudderstack:127\.0\.0\.1:/),
      changed: 1,
    });
    // with the key but no host: that key's destination, wherever it was synced (not "rudderstack:null:…")
    const keyed = await runSync({ ...base(), endpoint: undefined, dryRun: true });
    expect(keyed).toMatchObject({ destination: dry.destination, changed: 1 });
    expect(cdp.requests).toHaveLength(0);
  });

  it("says that the endpoint's host does not resolve, as the Segment target does, and retries it", async () => {
    // a schema of its own: the failed rows would be resent by the other tests' syncs
    await writeUserLifecycle(wh, 'lifecycle_dns', makeUsers(3));
    // .invalid never resolves (RFC 6761); a resolver without network may answer EAI_AGAIN instead
    const s = await runSync({
      ...base(),
      schema: 'lifecycle_dns',
      endpoint: 'http://nohost.invalid',
      retry: { baseDelayMs: 20, maxDelayMs: 20, maxAttempts: 2 },
    });
    expect(s).toMatchObject({ status: 'failed', sent: 0, failed: 3 });
    expect(s.errors[0].error).toMatch(
      /^gave up after 2 attempts: http:\/\/nohost\.invalid\/v1\/batch: (the host nohost\.invalid does not resolve \(ENOTFOUND\): check|the DNS lookup of nohost\.invalid failed for now \(EAI_AGAIN\): check this machine's DNS and network, and) the host name of the endpoint$/,
    );
  });
});
