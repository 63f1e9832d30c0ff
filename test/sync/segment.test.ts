import { createHash } from 'node:crypto';
import { describeEachWarehouse } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { UsageError, UserError } from '../../src/errors';
import { runSync, formatSyncSummary, type SyncOptions } from '../../src/sync';
import { startFakeCdp, type FakeCdp } from './helpers/fake-cdp';
import { makeUsers, setStatus, writeUserLifecycle } from './helpers/lifecycle-fixture';

const KEY = 'seg_write_key_123';
const FAST_RETRY = { baseDelayMs: 20, maxDelayMs: 100 };

describeEachWarehouse('sync to Segment', ({ tw }) => {
  let wh: Warehouse;
  let cdp: FakeCdp;
  const base = (): SyncOptions => ({
    warehouse: wh,
    schema: 'lifecycle',
    to: 'segment',
    endpoint: cdp.url,
    writeKey: KEY,
    retry: FAST_RETRY,
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

  it('sends one identify per user with the default traits, Basic auth and gzip', async () => {
    const s = await runSync({ ...base(), batchSize: 12 });
    expect(s).toMatchObject({
      considered: 30,
      changed: 30,
      sent: 30,
      failed: 0,
      invalid: 0,
      status: 'success',
    });
    expect(s.exitCode).toBe(0);
    // two requests are in flight at a time (the default concurrency), so they may arrive in either order
    expect(cdp.requests.map((r) => r.body.batch.length).sort((a, b) => b - a)).toEqual([12, 12, 6]);
    for (const r of cdp.requests) {
      expect(r.method).toBe('POST');
      expect(r.path).toBe('/v1/batch');
      expect(r.headers.authorization).toBe('Basic ' + Buffer.from('seg_write_key_123:').toString('base64'));
      expect(r.headers['content-encoding']).toBe('gzip');
      expect(r.wireBytes).toBeLessThan(r.bodyBytes);
    }
    const events = cdp.requests.flatMap((r) => r.body.batch);
    expect(new Set(events.map((e) => e.userId)).size).toBe(30);
    const u7 = events.find((e) => e.userId === 'u00007');
    // makeUsers(30): i = 7 -> statuses[0] 'new', since 2024-06-08, previous statuses[1] 'active', no RFM.
    expect(u7).toMatchObject({
      type: 'identify',
      userId: 'u00007',
      traits: {
        lifecycle_status: 'new',
        lifecycle_status_since: '2024-06-08',
        lifecycle_previous_status: 'active',
        rfm_segment: null,
      },
      integrations: { All: true },
      context: { library: { name: 'cdp-lifecycle' } },
    });
    expect(Object.keys(u7?.traits as object).sort()).toEqual([
      'lifecycle_previous_status',
      'lifecycle_status',
      'lifecycle_status_since',
      'rfm_segment',
    ]);
    expect(events.find((e) => e.userId === 'u00000')?.traits).toMatchObject({
      lifecycle_previous_status: null,
      rfm_segment: 'champions',
    });
    for (const e of events) {
      expect(typeof e.messageId).toBe('string');
      expect((e.messageId as string).length).toBeLessThanOrEqual(100);
    }
    const state = await wh.query(
      `select user_id, status, traits, attempts, message_id from lifecycle.sync_state where user_id = 'u00007'`,
    );
    expect(state).toEqual([
      {
        user_id: 'u00007',
        status: 'delivered',
        attempts: 1,
        message_id: u7?.messageId,
        traits: {
          lifecycle_status: 'new',
          lifecycle_status_since: '2024-06-08',
          lifecycle_previous_status: 'active',
          rfm_segment: null,
        },
      },
    ]);
    const [run] = await wh.query(`select * from lifecycle.sync_runs where run_id = $1`, [s.runId]);
    expect(run).toMatchObject({
      status: 'success',
      dry_run: false,
      considered: 30,
      changed: 30,
      sent: 30,
      failed: 0,
    });
    expect(run.finished_at).toBeInstanceOf(Date);
    // makeUsers(30) gives 'new' to i % 7 == 0 (u00000, 07, 14, 21, 28): never synced before, not the status new
    const transitions: Record<string, number> =
      typeof run.transitions === 'string' ? JSON.parse(run.transitions) : run.transitions;
    expect(transitions['(not synced) -> new']).toBe(5);
    expect(formatSyncSummary(s)).toMatch(/^ {4}\(not synced\) -> new +5$/m);
  });

  it('sends nothing when nothing changed, and a changed status exactly once', async () => {
    const again = await runSync(base());
    expect(again).toMatchObject({ considered: 30, changed: 0, sent: 0 });
    expect(cdp.requests).toHaveLength(0);

    await setStatus(wh, 'lifecycle', 'u00007', 'at_risk', '2024-06-30', 'new');
    const s = await runSync(base());
    expect(s).toMatchObject({ changed: 1, sent: 1 });
    expect(s.transitions).toEqual([{ from: 'new', to: 'at_risk', count: 1 }]);
    expect(cdp.requests).toHaveLength(1);
    expect(cdp.requests[0].body.batch).toHaveLength(1);
    expect(cdp.requests[0].body.batch[0]).toMatchObject({
      userId: 'u00007',
      traits: {
        lifecycle_status: 'at_risk',
        lifecycle_status_since: '2024-06-30',
        lifecycle_previous_status: 'new',
      },
    });
    expect(formatSyncSummary(s)).toMatch(/new -> at_risk\s+1/);

    const third = await runSync(base());
    expect(third.changed).toBe(0);
    expect(cdp.requests).toHaveLength(1);
  });

  it('gives a value that comes back (A -> B -> A) a new messageId, which the CDP would otherwise drop as a duplicate', async () => {
    const before = await wh.query<{
      lifecycle_status: string;
      status_since: unknown;
      previous_status: string | null;
    }>(
      `select lifecycle_status, cast(status_since as varchar) as status_since, previous_status from lifecycle.user_lifecycle where user_id = 'u00011'`,
    );
    const ids: string[] = [];
    for (const [status, since, prev] of [
      ['dormant', '2024-06-20', 'at_risk'],
      ['at_risk', '2024-06-10', 'active'],
      ['dormant', '2024-06-20', 'at_risk'],
    ] as const) {
      cdp.requests.length = 0;
      await setStatus(wh, 'lifecycle', 'u00011', status, since, prev);
      expect(await runSync(base())).toMatchObject({ changed: 1, sent: 1 });
      ids.push(String(cdp.requests[0].body.batch[0].messageId));
    }
    expect(new Set(ids).size).toBe(3);
    // a replay of the last change from the state before it was acknowledged (a crash before the state write,
    // or a failed attempt: both keep the previously delivered change's id) sends the same id again
    await wh.query(
      `update lifecycle.sync_state set status = 'failed', message_id = $1 where user_id = 'u00011' and destination like 'segment:%'`,
      [ids[1]],
    );
    cdp.requests.length = 0;
    await runSync(base());
    expect(cdp.requests[0].body.batch[0].messageId).toBe(ids[2]);
    const b = before[0];
    await setStatus(wh, 'lifecycle', 'u00011', b.lifecycle_status, String(b.status_since), b.previous_status);
    await runSync(base());
  });

  it('dry run logs the diff per transition and sends nothing, without a write key', async () => {
    await setStatus(wh, 'lifecycle', 'u00008', 'dormant', '2024-06-30', 'active');
    await setStatus(wh, 'lifecycle', 'u00009', 'dormant', '2024-06-30', 'power');
    const { writeKey: _k, ...noKey } = base();
    const dry = await runSync({ ...noKey, dryRun: true });
    expect(cdp.requests).toHaveLength(0);
    expect(dry).toMatchObject({ dryRun: true, changed: 2, sent: 0, status: 'success' });
    // equal counts in the order of their statuses, whatever order the warehouse returned the rows in
    expect(dry.transitions).toEqual([
      { from: 'active', to: 'dormant', count: 1 },
      { from: 'power', to: 'dormant', count: 1 },
    ]);
    // u00008: i=8 -> 'active'; u00009: i=9 -> 'power' (as last delivered).
    expect(dry.transitions).toEqual(
      expect.arrayContaining([
        { from: 'active', to: 'dormant', count: 1 },
        { from: 'power', to: 'dormant', count: 1 },
      ]),
    );
    const log = await wh.query(
      `select user_id, status, from_status, to_status from lifecycle.sync_log where run_id = $1 order by user_id`,
      [dry.runId],
    );
    expect(log).toEqual([
      { user_id: 'u00008', status: 'dry_run', from_status: 'active', to_status: 'dormant' },
      { user_id: 'u00009', status: 'dry_run', from_status: 'power', to_status: 'dormant' },
    ]);
    const [run] = await wh.query(`select dry_run, changed, sent from lifecycle.sync_runs where run_id = $1`, [
      dry.runId,
    ]);
    expect(run).toEqual({ dry_run: true, changed: 2, sent: 0 });
    expect(formatSyncSummary(dry)).toMatch(/would send\s+2/);

    const real = await runSync(base());
    expect(real).toMatchObject({ changed: 2, sent: 2 });
    expect(cdp.requests.flatMap((r) => r.body.batch.map((e) => e.userId)).sort()).toEqual([
      'u00008',
      'u00009',
    ]);

    // without --endpoint either: the destination synced (here on another host than api.segment.io, as the EU
    // endpoint would be), not an empty one where every user is new
    const { endpoint: _e, ...noKeyNoHost } = noKey;
    await expect(runSync({ ...noKeyNoHost, dryRun: true })).resolves.toMatchObject({
      destination: real.destination,
      changed: 0,
    });
    // once a second write key has been synced to the same host, a keyless dry run cannot tell which to preview
    const second = await runSync({ ...base(), writeKey: 'wk_second' });
    await expect(runSync({ ...noKey, dryRun: true })).rejects.toThrow(
      /^2 destinations have been synced to segment at (\S+) \(\1 \(key sha256 [0-9a-f]{12}…\), \1 \(key sha256 [0-9a-f]{12}…\)\): pass the --write-key of the one this dry run should compare with\.$/,
    );
    await expect(runSync({ ...base(), dryRun: true })).resolves.toMatchObject({ changed: 0 });
    // a dry run takes no lock, so it can run beside a real one: it leaves that run's row alone
    await wh.query(
      `insert into lifecycle.sync_runs (run_id, destination, target, started_at, status, dry_run, full_resync,
         considered, changed, sent, failed, invalid)
       select 'live-run', destination, target, started_at, 'running', false, false, 0, 0, 0, 0, 0
       from lifecycle.sync_runs where run_id = $1`,
      [real.runId],
    );
    await runSync({ ...base(), dryRun: true });
    expect(await wh.query(`select status from lifecycle.sync_runs where run_id = 'live-run'`)).toEqual([
      { status: 'running' },
    ]);
    await wh.query(`delete from lifecycle.sync_runs where run_id = 'live-run'`);
    // the later tests look at one destination's state
    await wh.query(
      `delete from lifecycle.sync_state where destination = (select destination from lifecycle.sync_runs where run_id = $1)`,
      [second.runId],
    );
    // the same key synced to a second host (Segment's US and EU endpoints): only --endpoint tells them apart
    const eu = await startFakeCdp();
    try {
      const other = await runSync({ ...base(), endpoint: eu.url });
      const euHost = new URL(eu.url).host;
      const thrown = await runSync({ ...noKeyNoHost, dryRun: true }).catch((e: unknown) => e);
      expect(thrown).toBeInstanceOf(UsageError);
      expect((thrown as Error).message).toMatch(
        /^2 destinations have been synced to segment \(.*\): pass the --endpoint of the one this dry run should compare with\.$/,
      );
      expect((thrown as Error).message).toContain(`${euHost} (key sha256 `);
      for (const t of ['sync_state', 'sync_log', 'sync_runs']) {
        const where =
          t === 'sync_state'
            ? 'destination = (select destination from lifecycle.sync_runs where run_id = $1)'
            : 'run_id = $1';
        await wh.query(`delete from lifecycle.${t} where ${where}`, [other.runId]);
      }
    } finally {
      await eu.close();
    }
  });

  it('names the destinations a keyless dry run cannot choose between, and the flags that pick one', async () => {
    // a schema of its own: the other tests look at one destination's state
    await writeUserLifecycle(wh, 'lc_ambiguous', makeUsers(3));
    const eu = await startFakeCdp();
    try {
      const at = (writeKey: string, endpoint = eu.url): SyncOptions => ({
        ...base(),
        schema: 'lc_ambiguous',
        writeKey,
        endpoint,
      });
      await runSync(at('wk_a'));
      await runSync(at('wk_b'));
      const euHost = new URL(eu.url).host;
      const keyless = (endpoint?: string) =>
        runSync({
          warehouse: wh,
          schema: 'lc_ambiguous',
          to: 'segment',
          dryRun: true,
          ...(endpoint ? { endpoint } : {}),
        }).then(
          () => new Error('the dry run did not stop'),
          (e: unknown) => e as Error,
        );
      const sha = (k: string) => createHash('sha256').update(k).digest('hex').slice(0, 12);
      // two keys on a host that is not Segment's default: a key alone would preview api.segment.io
      const noHost = await keyless();
      expect(noHost).toBeInstanceOf(UsageError);
      expect(noHost.message).toBe(
        `2 destinations have been synced to segment (${euHost} (key sha256 ${[sha('wk_a'), sha('wk_b')].sort()[0]}…), ` +
          `${euHost} (key sha256 ${[sha('wk_a'), sha('wk_b')].sort()[1]}…)): ` +
          'pass the --endpoint and --write-key of the one this dry run should compare with.',
      );
      // with the host given, the key is enough
      expect((await keyless(eu.url)).message).toMatch(/: pass the --write-key of the one/);
      // a destination named through the API is listed as it is
      await runSync({ ...at('wk_c'), name: 'segment:prod' });
      const named = await keyless();
      expect(named.message).toMatch(
        /^3 destinations have been synced to segment \(.*, "segment:prod"\): pass the --endpoint and --write-key \(or the API's name\) of the one/,
      );
    } finally {
      await eu.close();
    }
  });

  it("drops a killed dry run's pending table after a day, and leaves a running one's alone", async () => {
    const now = Math.floor(Date.now() / 1000);
    const orphan = `sync_pending_dry_${now - 2 * 86400}_0123456789abcdef`;
    const live = `sync_pending_dry_${now - 60}_fedcba9876543210`;
    // a dry run's table under the name used before the start time was in it: a hash that is no destination's
    const legacy = `sync_pending_${createHash('sha256').update('segment:x\ndry-run:y').digest('hex').slice(0, 16)}`;
    // a real run's table (named after its destination): the next run of that destination replaces it
    const [{ d }] = await wh.query<{ d: string }>(`select min(destination) as d from lifecycle.sync_runs`);
    const real = `sync_pending_${createHash('sha256').update(d).digest('hex').slice(0, 16)}`;
    for (const t of [orphan, live, legacy, real]) {
      await wh.exec(`create table lifecycle.${t} (user_id varchar)`);
    }
    const { writeKey: _k, ...noKey } = base();
    await runSync({ ...noKey, dryRun: true });
    const left = await wh.query<{ name: string }>(
      `select table_name as name from information_schema.tables
       where table_schema = 'lifecycle' and table_name like 'sync_pending%' order by 1`,
    );
    // the dry run's own table is gone too
    expect(left.map((r) => r.name)).toEqual([live, real].sort());
    for (const t of [live, real]) await wh.exec(`drop table lifecycle.${t}`);
  });

  it('isolates a poisoned row refused with 400, delivers the rest, and retries it next run', async () => {
    for (const id of ['u00001', 'u00002', 'u00003', 'u00004', 'u00005']) {
      await setStatus(wh, 'lifecycle', id, 'churned', '2024-06-30', 'dormant');
    }
    cdp.setHandler((r) =>
      r.body.batch.some((e) => e.userId === 'u00003')
        ? { status: 400, body: { success: false, message: 'userId u00003 is blocked' } }
        : { status: 200 },
    );
    const s = await runSync(base());
    expect(s).toMatchObject({ changed: 5, sent: 4, failed: 1, status: 'failed', exitCode: 1 });
    expect(s.errors).toEqual([
      { userId: 'u00003', status: 'failed', error: 'HTTP 400: userId u00003 is blocked' },
    ]);
    expect(new Set(cdp.acked().map((e) => e.userId))).toEqual(
      new Set(['u00001', 'u00002', 'u00004', 'u00005']),
    );
    const [st] = await wh.query(
      `select status, last_error, attempts from lifecycle.sync_state where user_id = 'u00003'`,
    );
    expect(st).toEqual({ status: 'failed', last_error: 'HTTP 400: userId u00003 is blocked', attempts: 1 });
    expect(formatSyncSummary(s)).toMatch(/1 row\(s\) failed/);

    // Nothing changed for u00003, but it failed: the next run sends it again, and only it.
    cdp.requests.length = 0;
    cdp.setHandler(() => ({ status: 200 }));
    const next = await runSync(base());
    expect(next).toMatchObject({ changed: 1, sent: 1, failed: 0 });
    expect(cdp.requests.flatMap((r) => r.body.batch.map((e) => e.userId))).toEqual(['u00003']);
    const [st2] = await wh.query(
      `select status, last_error, attempts from lifecycle.sync_state where user_id = 'u00003'`,
    );
    expect(st2).toEqual({ status: 'delivered', last_error: null, attempts: 2 });
  });

  it('masks the write key an endpoint echoes back, in the summary, sync_log and sync_state', async () => {
    await setStatus(wh, 'lifecycle', 'u00012', 'at_risk', '2024-06-30', 'active');
    cdp.setHandler((r) => ({
      status: 400,
      body: {
        success: false,
        // the key, the Authorization header, and the key's base64 without its padding
        message: `invalid writeKey ${KEY}; got ${String(r.headers.authorization)} (${Buffer.from(KEY).toString('base64').replace(/=+$/, '')})`,
      },
    }));
    try {
      const s = await runSync(base());
      expect(s).toMatchObject({ failed: 1 });
      expect(s.errors).toEqual([
        { userId: 'u00012', status: 'failed', error: 'HTTP 400: invalid writeKey ***; got Basic *** (***)' },
      ]);
      const [st] = await wh.query<{ last_error: string }>(
        `select last_error from lifecycle.sync_state where user_id = 'u00012'`,
      );
      expect(st.last_error).toBe('HTTP 400: invalid writeKey ***; got Basic *** (***)');
      const logged = await wh.query<{ error: string }>(
        `select error from lifecycle.sync_log where run_id = $1 and user_id = 'u00012'`,
        [s.runId],
      );
      expect(logged).toEqual([{ error: 'HTTP 400: invalid writeKey ***; got Basic *** (***)' }]);
      expect(formatSyncSummary(s)).not.toContain(KEY);

      // an echo cut short inside the credentials (the CDP's words keep 300 characters): the part before the
      // cut is masked too
      await setStatus(wh, 'lifecycle', 'u00012', 'active', '2024-06-30', 'at_risk');
      const header = `Basic ${Buffer.from(`${KEY}:`).toString('base64')}`;
      cdp.setHandler(() => ({ status: 400, body: `${'x'.repeat(300 - header.length + 6)}${header}` }));
      const cut = await runSync(base());
      expect(cut).toMatchObject({ failed: 1 });
      const error = cut.errors[0].error;
      expect(error).toMatch(/xBasic \*\*\*…$/);
      const echoed = Buffer.from(header.slice(6, -6), 'base64').toString('latin1');
      expect(echoed.length).toBeGreaterThan(10);
      expect(error).not.toContain(header.slice(6, -6));
      expect(error).not.toContain(echoed.slice(0, 8));
    } finally {
      // delivered, so that the tests after this one see no failed row
      cdp.setHandler(() => ({ status: 200 }));
      await runSync(base());
    }
  });

  it('retries 429 after Retry-After and 500 with backoff, under the same messageIds', async () => {
    await setStatus(wh, 'lifecycle', 'u00010', 'power', '2024-06-30', 'active');
    let n = 0;
    cdp.setHandler(() => {
      n++;
      if (n === 1) return { status: 429, headers: { 'retry-after': '1' }, body: { message: 'slow down' } };
      if (n === 2) return { status: 500, body: { message: 'oops' } };
      return { status: 200 };
    });
    const s = await runSync(base());
    expect(s).toMatchObject({ sent: 1, failed: 0 });
    expect(cdp.requests).toHaveLength(3);
    expect(cdp.requests[1].receivedAt - cdp.requests[0].receivedAt).toBeGreaterThanOrEqual(990);
    const ids = cdp.requests.map((r) => r.body.batch[0].messageId);
    expect(new Set(ids).size).toBe(1);
  });

  it('gives up after the configured attempts, marks the rows failed and stops the run', async () => {
    await setStatus(wh, 'lifecycle', 'u00011', 'dormant', '2024-06-30', 'power');
    cdp.setHandler(() => ({ status: 503 }));
    const s = await runSync({ ...base(), retry: { ...FAST_RETRY, maxAttempts: 3 } });
    expect(cdp.requests).toHaveLength(3);
    expect(s).toMatchObject({ sent: 0, failed: 1, status: 'failed' });
    expect(s.aborted).toMatch(/kept failing/);
    expect(formatSyncSummary(s)).toMatch(/stopped early: the CDP kept failing/);
    expect(s.errors[0].error).toMatch(/gave up after 3 attempts: HTTP 503/);
    cdp.setHandler(() => ({ status: 200 }));
    expect(await runSync(base())).toMatchObject({ changed: 1, sent: 1 });
  });

  it('stops with a clear error when the write key is refused', async () => {
    await setStatus(wh, 'lifecycle', 'u00012', 'dormant', '2024-06-30', 'active');
    cdp.setHandler(() => ({ status: 401, body: { success: false, message: 'Invalid write key' } }));
    await expect(runSync(base())).rejects.toThrow(UserError);
    await expect(runSync(base())).rejects.toThrow(
      /refused the sync: the write key was refused \(HTTP 401\): Invalid write key; nothing more was sent/,
    );
    const runs = await wh.query(`select status, error from lifecycle.sync_runs where status = 'error'`);
    expect(runs.length).toBe(2);
    expect(String(runs[0].error)).toMatch(/Invalid write key/);
    // Not acknowledged, so not recorded: the user is still pending for the next run.
    const [st] = await wh.query(`select status from lifecycle.sync_state where user_id = 'u00012'`);
    expect(st.status).toBe('delivered');
    cdp.setHandler(() => ({ status: 200 }));
    expect(await runSync(base())).toMatchObject({ changed: 1, sent: 1 });
  });

  it('stops at once on an endpoint port fetch never connects to, saying so', async () => {
    await setStatus(wh, 'lifecycle', 'u00013', 'dormant', '2024-06-30', 'active');
    const t0 = Date.now();
    // Port 1 is on fetch's blocked-port list: no retry can succeed, so none is made.
    const slowRetry = { baseDelayMs: 5000, maxDelayMs: 5000, maxAttempts: 2 };
    await expect(runSync({ ...base(), endpoint: 'http://127.0.0.1:1', retry: slowRetry })).rejects.toThrow(
      /Segment at http:\/\/127\.0\.0\.1:1 cannot be reached: .*port 1, one of the ports browsers block: serve the batch API on another port/,
    );
    // A retry would have waited 5 s first.
    expect(Date.now() - t0).toBeLessThan(4000);
  });

  it('says that the endpoint\'s host does not resolve, where fetch says only "fetch failed", and retries it', async () => {
    // a schema of its own: the failed rows would be resent by the other tests' syncs
    await writeUserLifecycle(wh, 'lifecycle_dns', makeUsers(3));
    // .invalid never resolves (RFC 6761); a resolver without network may answer EAI_AGAIN instead
    const s = await runSync({
      ...base(),
      schema: 'lifecycle_dns',
      endpoint: 'http://nohost.invalid',
      retry: { ...FAST_RETRY, maxAttempts: 2 },
    });
    expect(s).toMatchObject({ status: 'failed', sent: 0, failed: 3 });
    expect(s.errors[0].error).toMatch(
      /^gave up after 2 attempts: http:\/\/nohost\.invalid\/v1\/batch: (the host nohost\.invalid does not resolve \(ENOTFOUND\): check|the DNS lookup of nohost\.invalid failed for now \(EAI_AGAIN\): check this machine's DNS and network, and) the host name of the endpoint$/,
    );
  });

  it('full resync resends everyone', async () => {
    const s = await runSync({ ...base(), fullResync: true });
    expect(s).toMatchObject({ considered: 30, changed: 30, sent: 30 });
    expect(cdp.requests.flatMap((r) => r.body.batch)).toHaveLength(30);
    // resent users whose status did not move are not shown as a change of status
    const summary = formatSyncSummary(s);
    expect(summary).toMatch(/^ {4}\w+ \(status unchanged\)\s+\d+$/m);
    expect(summary).not.toMatch(/(\w+) -> \1\b/);
  });

  it('uses a custom trait mapping and refuses unknown columns or bad trait names', async () => {
    const s = await runSync({
      ...base(),
      name: 'custom-mapping',
      traits: 'stage=lifecycle_status,rfm=rfm_segment',
    });
    expect(s.sent).toBe(30);
    const e = cdp.requests.flatMap((r) => r.body.batch).find((x) => x.userId === 'u00000');
    expect(e?.traits).toEqual({ stage: 'new', rfm: 'champions' });
    await expect(runSync({ ...base(), traits: 'stage=lifecycle_stat' })).rejects.toThrow(UsageError);
    await expect(runSync({ ...base(), traits: 'stage=lifecycle_stat' })).rejects.toThrow(
      /"lifecycle_stat", which is not a column of lifecycle\.user_lifecycle: did you mean lifecycle_status\?/,
    );
    // too far for an edit, but part of some names: those
    await expect(runSync({ ...base(), traits: 'stage=status' })).rejects.toThrow(
      /"status", which is not a column of lifecycle\.user_lifecycle: did you mean one of lifecycle_status, previous_status, status_since, subscription_status\?/,
    );
    // nothing near: every column is listed
    await expect(runSync({ ...base(), traits: 'stage=zzzzzzzzzz' })).rejects.toThrow(
      /"zzzzzzzzzz", which is not a column of lifecycle\.user_lifecycle: use one of .*lifecycle_status/,
    );
    await expect(runSync({ ...base(), traits: '{"bad name":"rfm_segment"}' })).rejects.toThrow(
      /trait name "bad name" in --traits is not valid/,
    );
    await expect(runSync({ ...base(), writeKey: undefined })).rejects.toThrow(/needs a source write key/);
    await expect(runSync({ ...base(), endpoint: 'ftp://x' })).rejects.toThrow(UsageError);
    // a fraction floored to no slot at all waited for ever
    for (const concurrency of [0.5, 1.5, 0]) {
      await expect(runSync({ ...base(), concurrency })).rejects.toThrow(
        `concurrency must be a whole number of 1 or more, got ${concurrency}.`,
      );
    }
  });
});

describeEachWarehouse('sync limits and invalid rows', ({ tw }) => {
  let wh: Warehouse;
  let cdp: FakeCdp;
  beforeAll(async () => {
    wh = await tw().open();
    cdp = await startFakeCdp();
  });
  afterAll(async () => {
    await cdp.close();
    await wh.close();
  });

  it('names an invalid user with a 40,000-character id by its start and length, and does not fail the run', async () => {
    const longId = 'z'.repeat(40_000);
    await writeUserLifecycle(wh, 'lc_long', [{ ...makeUsers(1)[0], user_id: longId }]);
    const s = await runSync({
      warehouse: wh,
      schema: 'lc_long',
      to: 'segment',
      endpoint: cdp.url,
      writeKey: 'k',
    });
    expect(s).toMatchObject({ changed: 1, sent: 0, invalid: 1, failed: 0, exitCode: 0 });
    const text = formatSyncSummary(s);
    expect(text).toContain(`invalid 1 (${'z'.repeat(48)}… (40,000 characters)): the identify is `);
    expect(text.length).toBeLessThan(1_000);
    await wh.exec('drop schema lc_long cascade');
  });

  it('groups problems by reason, oversized identifies as one, and shows the reasons with the most rows wherever they came up', async () => {
    // Read in this order: 24 identifies over 32 KB, each of another size; 22 users the CDP refuses each with a
    // message of its own; then 30 it refuses for one reason, the most common.
    const users = [
      ...makeUsers(24, 'a').map((u, i) => ({ ...u, subscription_status: 'x'.repeat(33_000 + 10 * i) })),
      ...makeUsers(22, 'b').map((u, i) => ({ ...u, user_id: `b-${String.fromCharCode(97 + i)}` })),
      ...makeUsers(30, 'c'),
    ];
    await writeUserLifecycle(wh, 'lc_groups', users);
    cdp.setHandler((r) => {
      const id = String(r.body.batch[0]?.userId);
      if (id.startsWith('b-')) return { status: 400, body: { message: `userId ${id} is blocked` } };
      if (id.startsWith('c')) return { status: 400, body: { message: 'quota exceeded' } };
      return { status: 200 };
    });
    try {
      const s = await runSync({
        warehouse: wh,
        schema: 'lc_groups',
        to: 'segment',
        endpoint: cdp.url,
        writeKey: 'k',
        batchSize: 1,
        traits: { lifecycle_status: 'lifecycle_status', plan: 'subscription_status' },
      });
      expect(s).toMatchObject({ changed: 76, invalid: 24, failed: 52, sent: 0 });
      expect(s.problemGroups).toHaveLength(20);
      expect(s.problemGroups[0]).toMatchObject({
        status: 'failed',
        error: 'HTTP 400: quota exceeded',
        count: 30,
      });
      expect(s.problemGroups[1]).toMatchObject({
        status: 'invalid',
        error: 'the identify is over the 32768-byte event limit',
        count: 24,
      });
      // 22 reasons of one row each, 18 of them shown: ties by text
      expect(s.problemGroups.slice(2).map((g) => g.error)).toEqual(
        Array.from({ length: 18 }, (_, i) => `HTTP 400: userId b-${String.fromCharCode(97 + i)} is blocked`),
      );
      expect(s.otherProblems).toBe(4);
      const text = formatSyncSummary(s);
      // two requests are in flight at a time, so which users answer first varies
      expect(text).toMatch(
        /\n {4}failed 30 \(c\d{5}, c\d{5}, c\d{5} and 27 more\): HTTP 400: quota exceeded\n/,
      );
      expect(text).toContain('… 4 more with other reasons');
      // sync_log keeps each oversized row's own size
      const sizes = await wh.query<{ error: string }>(
        `select error from lc_groups.sync_log where run_id = $1 and status = 'invalid'`,
        [s.runId],
      );
      expect(new Set(sizes.map((r) => r.error.match(/is (\d+) bytes/)?.[1])).size).toBe(24);
    } finally {
      cdp.setHandler(() => ({ status: 200 }));
      cdp.requests.length = 0;
      await wh.exec('drop schema lc_groups cascade');
    }
  });

  it('never exceeds 500 KB or the batch size per request, and records oversized or null-id rows as invalid', async () => {
    const users = makeUsers(70, 'big').map((u, i) => ({
      ...u,
      // ~20 KB of traits each: 70 of them cannot fit one 500 KB Segment request.
      subscription_status: 'x'.repeat(20_000) + i,
    }));
    users.push({ ...users[0], user_id: 'huge', subscription_status: 'y'.repeat(40_000) });
    users.push({ ...users[1], user_id: null });
    // spaces only: a user_id the collector no longer lands, but a destination's own table may hold
    users.push({ ...users[2], user_id: '  ' });
    await writeUserLifecycle(wh, 'lc', users);
    const s = await runSync({
      warehouse: wh,
      schema: 'lc',
      to: 'segment',
      endpoint: cdp.url,
      writeKey: 'k',
      traits: { lifecycle_status: 'lifecycle_status', plan: 'subscription_status' },
    });
    expect(s).toMatchObject({ considered: 73, changed: 73, sent: 70, invalid: 3, failed: 0 });
    expect(s.exitCode).toBe(0);
    expect(cdp.requests.length).toBeGreaterThanOrEqual(3);
    for (const r of cdp.requests) expect(r.bodyBytes).toBeLessThanOrEqual(500_000);
    const sent = cdp.requests.flatMap((r) => r.body.batch.map((e) => e.userId));
    expect(sent).toHaveLength(70);
    expect(sent).not.toContain('huge');
    const invalid = await wh.query(
      `select user_id, error from lc.sync_log where run_id = $1 and status = 'invalid' order by user_id`,
      [s.runId],
    );
    expect(invalid).toHaveLength(3);
    expect(invalid[0]).toEqual({ user_id: '  ', error: 'user_id is null, empty or blank' });
    expect(invalid[1]).toMatchObject({ user_id: 'huge' });
    expect(String(invalid[1].error)).toMatch(/over the 32768-byte event limit/);
    expect(invalid[2]).toEqual({ user_id: null, error: 'user_id is null, empty or blank' });

    // A user_id twice in user_lifecycle (its unique test fails): neither row is sent, both are logged.
    await wh.query(
      `insert into lc.user_lifecycle (user_id, lifecycle_status) values ('dup', 'new'), ('dup', 'power')`,
    );
    cdp.requests.length = 0;
    const dup = await runSync({
      warehouse: wh,
      schema: 'lc',
      to: 'segment',
      endpoint: cdp.url,
      writeKey: 'k',
      traits: { lifecycle_status: 'lifecycle_status', plan: 'subscription_status' },
    });
    expect(dup).toMatchObject({ changed: 5, sent: 0, invalid: 5 });
    expect(cdp.requests).toHaveLength(0);
    const dupLog = await wh.query(
      `select user_id, error from lc.sync_log where run_id = $1 and user_id = 'dup'`,
      [dup.runId],
    );
    expect(dupLog).toEqual([
      { user_id: 'dup', error: 'user_id appears more than once in lc.user_lifecycle' },
      { user_id: 'dup', error: 'user_id appears more than once in lc.user_lifecycle' },
    ]);

    cdp.requests.length = 0;
    const small = await runSync({
      warehouse: wh,
      schema: 'lc',
      to: 'segment',
      endpoint: cdp.url,
      writeKey: 'k',
      fullResync: true,
      batchSize: 7,
    });
    // The default mapping leaves out subscription_status, so "huge" is small now; the null and blank ids and
    // the two "dup" rows stay invalid.
    expect(small).toMatchObject({ sent: 71, invalid: 4 });
    for (const r of cdp.requests) expect(r.body.batch.length).toBeLessThanOrEqual(7);
  });
  it("prints user ids and the CDP's error texts with their control characters spelt out, not sent to the terminal", async () => {
    // a user id anyone can send with a public browser write key: clears the screen and forges a log line
    const evil = 'x\u001b[2J\u001b[1;31mHACKED\nFAKE LOG LINE\u202e';
    await writeUserLifecycle(wh, 'lc_esc', [{ ...makeUsers(1)[0]!, user_id: evil }]);
    cdp.setHandler(() => ({ status: 400, body: 'bad \u001b[2J\r\nevent' }));
    try {
      const s = await runSync({
        warehouse: wh,
        schema: 'lc_esc',
        to: 'segment',
        endpoint: cdp.url,
        writeKey: 'k',
        fullResync: true,
        retry: FAST_RETRY,
      });
      expect(s).toMatchObject({ failed: 1 });
      const text = formatSyncSummary(s);
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202e]/);
      expect(text).toContain('x\\u001b[2J\\u001b[1;31mHACKED\\u000aFAKE LOG LINE\\u202e');
      expect(text).toContain('bad \\u001b[2J\\u000d\\u000aevent');
      // the row itself keeps the id as it is
      expect(
        await wh.query(`select count(*) as n from lc_esc.sync_log where run_id = $1 and user_id = $2`, [
          s.runId,
          evil,
        ]),
      ).toEqual([{ n: 1 }]);
    } finally {
      cdp.setHandler(() => ({ status: 200 }));
    }
  });
});
