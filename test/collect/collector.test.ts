import { deflateSync, gzipSync } from 'node:zlib';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import pino from 'pino';
import { describeEachWarehouse } from '../helpers/warehouses';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFiles, startCollector, type Collector } from '../../src/collector';
import { maskWriteKeys } from '../../src/collector/mask';
import { ensureRawTables, type Warehouse } from '../../src/warehouse';
import * as net from 'node:net';
import { basic, batchHead, post, postJson, rawConnection } from './helpers';

const KEY = 'wk_test_1';
const quiet = pino({ level: 'silent' });

describeEachWarehouse('collector over HTTP', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;

  beforeAll(async () => {
    wh = await tw().open();
    collector = await startCollector({
      warehouse: wh,
      rawSchema: 'cdp',
      port: 0,
      host: '127.0.0.1',
      writeKeys: [KEY, 'wk_other'],
      logger: quiet,
    });
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  /** A collector of the test's own (one it may stop), on the suite's warehouse and key. */
  const startOwn = (extra: Partial<Parameters<typeof startCollector>[0]> = {}): Promise<Collector> =>
    startCollector({
      warehouse: wh,
      rawSchema: 'cdp',
      port: 0,
      host: '127.0.0.1',
      writeKeys: [KEY],
      logger: quiet,
      ...extra,
    });

  const count = async (table: string, where = 'true', params: string[] = []): Promise<number> => {
    const [r] = await wh.query<{ n: number }>(
      `select count(*) as n from cdp.${table} where ${where}`,
      params,
    );
    return r.n;
  };

  it('lands track, identify, page, screen and alias calls from @segment/analytics-node exactly once', async () => {
    const analytics = new SegmentAnalytics({ writeKey: KEY, host: collector.url, flushAt: 7, maxRetries: 2 });
    const errors: unknown[] = [];
    analytics.on('error', (e) => errors.push(e));
    for (let i = 0; i < 20; i++) {
      analytics.track({
        userId: `seg-u${i % 4}`,
        event: 'Order Completed',
        properties: { seq: i, revenue: i + 0.5 },
      });
    }
    analytics.identify({ userId: 'seg-u1', traits: { plan: 'pro', email: 'u1@example.com' } });
    analytics.page({ anonymousId: 'seg-a1', name: 'Pricing', properties: { path: '/pricing' } });
    analytics.screen({ userId: 'seg-u2', name: 'Home' });
    analytics.alias({ userId: 'seg-u1', previousId: 'seg-a1' });
    await analytics.closeAndFlush({ timeout: 20000 });
    expect(errors).toEqual([]);

    const rows = await wh.query<{ seq: number; n: number; ids: number }>(
      `select cast(properties->>'seq' as integer) as seq, count(*) as n, count(distinct id) as ids
         from cdp.tracks where user_id like 'seg-%' group by 1 order by 1`,
    );
    expect(rows).toEqual(Array.from({ length: 20 }, (_, i) => ({ seq: i, n: 1, ids: 1 })));
    const [t] = await wh.query<{ event: string; event_text: string; lib: string }>(
      `select event, event_text, context->'library'->>'name' as lib from cdp.tracks where user_id = 'seg-u1' limit 1`,
    );
    expect(t).toEqual({
      event: 'order_completed',
      event_text: 'Order Completed',
      lib: '@segment/analytics-node',
    });
    expect(
      await wh.query(`select user_id, traits->>'plan' as plan from cdp.identifies where user_id = 'seg-u1'`),
    ).toEqual([{ user_id: 'seg-u1', plan: 'pro' }]);
    expect(await wh.query(`select anonymous_id, name from cdp.pages where anonymous_id = 'seg-a1'`)).toEqual([
      { anonymous_id: 'seg-a1', name: 'Pricing' },
    ]);
    expect(await count('screens', `user_id = 'seg-u2'`)).toBe(1);
    expect(await wh.query(`select previous_id, user_id from cdp.aliases where user_id = 'seg-u1'`)).toEqual([
      { previous_id: 'seg-a1', user_id: 'seg-u1' },
    ]);
    // analytics-node sets timestamp itself, so the stored timestamp is the one it sent (not receivedAt).
    const [ts] = await wh.query<{ ok: boolean }>(
      `select bool_and(timestamp <= received_at) as ok from cdp.tracks where user_id like 'seg-%'`,
    );
    expect(ts.ok).toBe(true);
  });

  it('lands calls from @rudderstack/rudder-sdk-node (gzip, Basic auth, context.traits) exactly once', async () => {
    const client = new RudderAnalytics(KEY, {
      dataPlaneUrl: collector.url,
      flushAt: 5,
      flushInterval: 100000,
    });
    const flushed = (): Promise<void> =>
      new Promise((resolve, reject) => client.flush((err?: Error) => (err ? reject(err) : resolve())));
    for (let i = 0; i < 12; i++) {
      client.track({ userId: `rs-u${i % 3}`, event: 'Song Played', properties: { seq: i } });
    }
    client.identify({ userId: 'rs-u1', traits: { plan: 'enterprise', name: 'Bo' } });
    client.page({ anonymousId: 'rs-a1', name: 'Docs', properties: { path: '/docs' } });
    client.screen({ userId: 'rs-u2', name: 'Player' });
    client.alias({ userId: 'rs-u1', previousId: 'rs-a1' });
    await flushed();
    await flushed();
    await flushed();
    const rows = await wh.query<{ n: number; ids: number; seqs: number }>(
      `select count(*) as n, count(distinct id) as ids, count(distinct properties->>'seq') as seqs
         from cdp.tracks where user_id like 'rs-%'`,
    );
    expect(rows).toEqual([{ n: 12, ids: 12, seqs: 12 }]);
    // The RudderStack SDK copies identify traits into context.traits too; they land once, merged.
    const [ident] = await wh.query<{ traits: Record<string, unknown>; ct: Record<string, unknown> }>(
      `select traits, context->'traits' as ct from cdp.identifies where user_id = 'rs-u1'`,
    );
    expect(ident).toEqual({
      traits: { plan: 'enterprise', name: 'Bo' },
      ct: { plan: 'enterprise', name: 'Bo' },
    });
    // No timestamp from this SDK: the rule receivedAt - (sentAt - originalTimestamp) applies.
    const [t] = await wh.query<{ ts: Date; ot: Date; sa: Date; ra: Date }>(
      `select timestamp as ts, original_timestamp as ot, sent_at as sa, received_at as ra
         from cdp.tracks where user_id = 'rs-u0' limit 1`,
    );
    expect(t.ts.getTime()).toBe(t.ra.getTime() - (t.sa.getTime() - t.ot.getTime()));
    expect(await count('pages', `anonymous_id = 'rs-a1'`)).toBe(1);
    expect(await count('screens', `user_id = 'rs-u2'`)).toBe(1);
    expect(await count('aliases', `previous_id = 'rs-a1'`)).toBe(1);
  });

  it('redelivering a batch (same messageIds) does not change what the models see', async () => {
    const batch = Array.from({ length: 5 }, (_, i) => ({
      type: 'track',
      messageId: `redeliver-${i}`,
      userId: 'redeliver-user',
      event: 'Item Added',
      properties: { i },
      timestamp: `2024-06-01T00:00:0${i}.000Z`,
    }));
    // What the models see: one row per id, the first received (SPEC §3).
    const firstReceived = (): Promise<unknown[]> =>
      wh.query(
        `select id, user_id, event, timestamp, received_at, properties from (
           select *, row_number() over (partition by id order by received_at) as rn
             from cdp.tracks where user_id = 'redeliver-user') d
         where rn = 1 order by id`,
      );
    expect((await postJson(collector.url, '/v1/batch', { batch }, KEY)).status).toBe(200);
    const before = await firstReceived();
    expect(before).toHaveLength(5);
    expect((await postJson(collector.url, '/v1/batch', { batch }, KEY)).status).toBe(200);
    expect(await count('tracks', `user_id = 'redeliver-user'`)).toBe(10);
    expect(await firstReceived()).toEqual(before);
  });

  it('authenticates with Basic auth or writeKey in the body; a missing or wrong key is 401 and lands nothing', async () => {
    const ev = (id: string) => ({ type: 'track', messageId: id, userId: 'auth-user', event: 'X' });
    const none = await post(collector.url, '/v1/track', JSON.stringify(ev('auth-1')));
    expect(none.status).toBe(401);
    expect(none.body).toEqual({ success: false, error: 'The write key is missing or wrong.' });
    // without a header, a body that does not parse cannot carry the key either: 401, not 400
    const garbled = await post(collector.url, '/v1/track', '{bad');
    expect(garbled.status).toBe(401);
    expect((await postJson(collector.url, '/v1/track', ev('auth-2'), 'nope')).status).toBe(401);
    expect(
      (await postJson(collector.url, '/v1/batch', { writeKey: 'nope', batch: [ev('auth-3')] })).status,
    ).toBe(401);
    expect(
      (await postJson(collector.url, '/v1/batch', { writeKey: 'wk_other', batch: [ev('auth-4')] })).status,
    ).toBe(200);
    expect((await postJson(collector.url, '/v1/track', ev('auth-5'), KEY)).status).toBe(200);
    // Another scheme than Basic (a gateway's own token) leaves the key to the body: 200 with it, 401 without.
    const bearer = { headers: { authorization: 'Bearer gateway-token' } };
    expect(
      (await post(collector.url, '/v1/track', JSON.stringify({ ...ev('auth-7'), writeKey: KEY }), bearer))
        .status,
    ).toBe(200);
    expect((await post(collector.url, '/v1/track', JSON.stringify(ev('auth-8')), bearer)).status).toBe(401);
    expect((await post(collector.url, '/v1/track', '{bad', bearer)).status).toBe(401);
    // A write key in the body authenticates but never lands, not even in a rejected payload.
    const rej = await postJson(collector.url, '/v1/track', {
      writeKey: KEY,
      userId: 'auth-user',
      messageId: 'auth-6',
    });
    expect(rej.body).toEqual({
      success: true,
      landed: 0,
      rejected: [{ index: 0, messageId: 'auth-6', reason: 'track call without event' }],
    });
    const [payload] = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%auth-6%'`,
    );
    // the event as sent (no type: the endpoint gave it one), its key masked
    expect(JSON.parse(payload.payload)).toEqual({
      writeKey: '***',
      userId: 'auth-user',
      messageId: 'auth-6',
    });
    expect(await wh.query(`select id from cdp.tracks where user_id = 'auth-user' order by id`)).toEqual([
      { id: 'auth-4' },
      { id: 'auth-5' },
      { id: 'auth-7' },
    ]);
  });

  it('reads a null messageId or timestamp as absent: a generated id, the timestamp derived from receivedAt', async () => {
    const res = await postJson(
      collector.url,
      '/v1/track',
      { userId: 'null-fields-u', event: 'Nulls', messageId: null, timestamp: null, sentAt: null },
      KEY,
    );
    expect(res.body).toEqual({ success: true, landed: 1, rejected: [] });
    const rows = await wh.query<{ id: string; same: boolean }>(
      `select id, timestamp = received_at as same from cdp.tracks where user_id = 'null-fields-u'`,
    );
    expect(rows).toHaveLength(1);
    expect(rows[0].id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(rows[0].same).toBe(true);
  });

  it('lands an event whose derived timestamp falls outside the years 0001-9999 at its receivedAt, on every warehouse', async () => {
    const track = (id: string, originalTimestamp: string, sentAt: string): Record<string, unknown> => ({
      type: 'track',
      userId: 'zero-clock-u',
      event: 'Z',
      messageId: id,
      originalTimestamp,
      sentAt,
    });
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          // a zeroed device clock (.NET's default) with sentAt from a clock an hour ahead: derived, year 0
          track('zero-clock-1', '0001-01-01T00:00:00Z', new Date(Date.now() + 3_600_000).toISOString()),
          // past the year 9999
          track('zero-clock-2', '9999-12-31T00:00:00Z', '0001-01-01T00:00:00Z'),
          // a derivation inside the range is kept, however odd its inputs: an hour before receivedAt
          track('zero-clock-3', '0001-01-01T00:00:00Z', '0001-01-01T01:00:00Z'),
          // a given instant before the year 0001 (its text is in it): quarantined on every warehouse alike
          track('zero-clock-4', '0001-01-01T00:00:00+01:00', '2024-01-01T00:00:00Z'),
        ],
      },
      KEY,
    );
    expect(res.body).toEqual({
      success: true,
      landed: 3,
      rejected: [
        {
          index: 3,
          messageId: 'zero-clock-4',
          reason: 'originalTimestamp is before the year 0001 or after 9999 once in UTC',
        },
      ],
    });
    const rows = await wh.query<{ id: string; skew: number }>(
      `select id, cast(extract(epoch from received_at) - extract(epoch from timestamp) as integer) as skew
       from cdp.tracks where user_id = 'zero-clock-u' order by id`,
    );
    expect(rows).toEqual([
      { id: 'zero-clock-1', skew: 0 },
      { id: 'zero-clock-2', skew: 0 },
      { id: 'zero-clock-3', skew: 3600 },
    ]);
  });

  it('generates an id for a messageId of spaces only, so that two such events do not dedup as one', async () => {
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'blank-mid-u', event: 'One', messageId: ' ' },
          { type: 'track', userId: 'blank-mid-u', event: 'Two', messageId: ' \t ' },
        ],
      },
      KEY,
    );
    expect(res.body).toEqual({ success: true, landed: 2, rejected: [] });
    const rows = await wh.query<{ id: string }>(
      `select id from cdp.tracks where user_id = 'blank-mid-u' order by event_text`,
    );
    expect(rows).toHaveLength(2);
    for (const r of rows)
      expect(r.id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(rows[0].id).not.toBe(rows[1].id);
  });

  it("keeps an event rejected on a single-call route as sent: its own type and layout, not the endpoint's type", async () => {
    const sent = '{ "type": "identify",\n  "userId": "typed-route-u", "messageId": "typed-route-1" }';
    const res = await post(collector.url, '/v1/track', sent, { key: KEY });
    expect(res.body).toEqual({
      success: true,
      landed: 0,
      rejected: [{ index: 0, messageId: 'typed-route-1', reason: 'track call without event' }],
    });
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%typed-route-1%'`,
    );
    expect(kept).toEqual([{ payload: sent }]);
  });

  it('keeps an event rejected from a batch or a webhook array as sent: its layout, a large number as written', async () => {
    const bad =
      '{ "type": "track",\n    "userId": "slice-u", "messageId": "slice-bad",\n    "properties": { "order": 12345678901234567890 } }';
    const ok = '{"type":"track","userId":"slice-u","event":"Fine","messageId":"slice-ok"}';
    const res = await post(collector.url, '/v1/batch', `{"batch": [\n  ${ok},\n  ${bad}\n]}`, { key: KEY });
    expect(res.body).toMatchObject({
      landed: 1,
      rejected: [{ index: 1, reason: 'track call without event' }],
    });
    const hookBad = '{"type": "track", "userId": "slice-u", "messageId": "slice-hook", "writeKey": "sekrit"}';
    const hook = await post(
      collector.url,
      '/webhook',
      `[${ok.replace('slice-ok', 'slice-ok2')}, ${hookBad}]`,
      {
        key: KEY,
      },
    );
    expect(hook.body).toMatchObject({ landed: 1, rejected: [{ index: 1 }] });
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%slice-bad%' or payload like '%slice-hook%'`,
    );
    expect(kept.map((k) => k.payload).sort()).toEqual([bad, hookBad.replace('"sekrit"', '"***"')].sort());
  });

  it('answers 400 on invalid JSON, lands no event and keeps the body in rejected_events', async () => {
    // SDKs drop a batch answered with 400: the kept body is the only copy left
    const broken = '{"batch": [{"type": "track", "userId": "json-broken", "writeKey": "sekrit",';
    const res = await post(collector.url, '/v1/batch', broken, { key: KEY });
    expect(res.status).toBe(400);
    expect(String(res.body.error)).toMatch(
      /^The request body is not valid JSON: .+\. The body was kept in rejected_events\.$/,
    );
    // a long id and a number beyond a double, which a parse and re-serialisation would change
    const notBatchText =
      '{"events": [{"userId": "no-batch", "properties": {"order_id": 12345678901234567890, "x": 1E400}}]}';
    const notBatch = await post(collector.url, '/v1/batch', notBatchText, { key: KEY });
    expect(notBatch.status).toBe(400);
    expect(notBatch.body.error).toBe(
      'The body of /v1/batch must be an object with a "batch" array of events. The body was kept in rejected_events.',
    );
    const kept = await wh.query<{ reason: string; payload: string }>(
      `select reason, payload from cdp.rejected_events where payload like '%json-broken%' or payload like '%no-batch%' order by reason`,
    );
    expect(kept).toHaveLength(2);
    // a fixed reason: the parser's message quotes the body and its positions vary
    expect(kept[0].reason).toBe('request body is not valid JSON');
    // the text as sent, but for the write key, a credential
    expect(kept[0].payload).toBe(broken.replace('"sekrit"', '"***"'));
    expect(kept[1].reason).toBe('request body of /v1/batch has no "batch" array');
    expect(kept[1].payload).toBe(notBatchText);
    expect(await wh.query(`select id from cdp.tracks where user_id in ('json-broken', 'no-batch')`)).toEqual(
      [],
    );
  });

  it('masks every write key a kept body shows', async () => {
    // cut off inside the key, form-encoded, and inside the elements of an array posted to /v1/batch
    const cut = '{"batch": [{"userId": "mask-cut"}], "writeKey": "sekrit-cut';
    expect((await post(collector.url, '/v1/batch', cut, { key: KEY })).status).toBe(400);
    const form = 'userId=mask-form&writeKey=sekrit-form';
    expect((await post(collector.url, '/v1/batch', form, { key: KEY })).status).toBe(400);
    const array = [{ userId: 'mask-array', writeKey: 'sekrit-array' }];
    expect((await postJson(collector.url, '/v1/batch', array, KEY)).status).toBe(400);
    // an escaped letter makes the same member for JSON.parse, which authorises the request with it
    const escaped = '{"userId":"mask-escaped","write\\u004bey":"' + KEY + '","event":""}';
    expect((await post(collector.url, '/v1/track', escaped, {})).status).toBe(200);
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%mask-%' order by payload`,
    );
    expect(kept.map((k) => k.payload)).toEqual(
      [
        '{"batch": [{"userId": "mask-cut"}], "writeKey": "***"',
        'userId=mask-form&writeKey=***',
        '[{"userId":"mask-array","writeKey":"***"}]',
        '{"userId":"mask-escaped","write\\u004bey":"***","event":""}',
      ].sort(),
    );
  });

  it('keeps no body of an unauthenticated request', async () => {
    const res = await post(collector.url, '/v1/batch', '{"batch": [{"userId": "anon-broken"', {});
    expect(res.status).toBe(401);
    expect(
      await wh.query(`select reason from cdp.rejected_events where payload like '%anon-broken%'`),
    ).toEqual([]);
  });

  it('answers 413 over 4 MB with a JSON error and lands nothing of the request', async () => {
    const big = 'x'.repeat(20_000);
    const batch = Array.from({ length: 220 }, (_, i) => ({
      type: 'track',
      userId: 'big-user',
      event: 'Big',
      messageId: `big-${i}`,
      properties: { big },
    }));
    const body = JSON.stringify({ batch });
    expect(body.length).toBeGreaterThan(4 * 1024 * 1024);
    const res = await post(collector.url, '/v1/batch', body, { key: KEY });
    expect(res.status).toBe(413);
    expect(res.body).toEqual({ success: false, error: 'The request body is larger than 4194304 bytes.' });
    // Same body without a content-length (chunked): cut off while reading.
    const chunked = await post(collector.url, '/v1/batch', body, {
      key: KEY,
      headers: { 'transfer-encoding': 'chunked' },
    });
    expect(chunked.status).toBe(413);
    expect(await count('tracks', `user_id = 'big-user'`)).toBe(0);
    expect(await count('rejected_events', `payload like '%big-user%'`)).toBe(0);
  });

  it("answers 413 to a client that reads only once it sent its whole body and asked to close (Python's urllib)", async () => {
    const body = JSON.stringify({
      batch: [
        { type: 'track', userId: 'late-reader', event: 'Big', properties: { x: 'y'.repeat(5_000_000) } },
      ],
    });
    const { socket, answer, errors } = await rawConnection(collector.port);
    // the whole request first: a write into a connection the server reset fails with EPIPE or ECONNRESET
    await new Promise<void>((resolve) =>
      socket.end(
        batchHead(KEY, 'Connection: close', `Content-Length: ${Buffer.byteLength(body)}`) + body,
        () => resolve(),
      ),
    );
    const text = await answer;
    expect(errors).toEqual([]);
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    expect(text).toContain('{"success":false,"error":"The request body is larger than 4194304 bytes."}');
    expect(await count('tracks', `user_id = 'late-reader'`)).toBe(0);
  });

  it('cuts a refused body that keeps coming past four times the request limit', async () => {
    const { socket, answer } = await rawConnection(collector.port);
    socket.write(batchHead(KEY, 'Transfer-Encoding: chunked'));
    const chunk = 'x'.repeat(1024 * 1024);
    let sent = 0;
    let open = true;
    const closed = answer.then(() => (open = false));
    // a body without end, written as fast as the server takes it
    while (open && sent < 64 * 1024 * 1024) {
      const flushed = socket.write(`${chunk.length.toString(16)}\r\n${chunk}\r\n`);
      sent += chunk.length;
      if (!flushed) await Promise.race([new Promise((r) => socket.once('drain', r)), closed]);
    }
    expect(sent).toBeLessThan(64 * 1024 * 1024);
    expect(await answer).toMatch(/^HTTP\/1\.1 413 /);
  });

  it('answers a declared length past the drain bound at once, and a stop does not wait for a drain', async () => {
    const own = await startOwn();
    const open = async (length: number): Promise<{ answer: Promise<string>; socket: net.Socket }> => {
      const conn = await rawConnection(own.port);
      // the headers and a few bytes, then silence: a slow client
      conn.socket.write(batchHead(KEY, `Content-Length: ${length}`) + '{"batch":[');
      return conn;
    };
    try {
      // 100 MB declared: cut after the 413 without waiting for a body that would be cut anyway
      let started = Date.now();
      const hopeless = await open(100 * 1024 * 1024);
      expect(await hopeless.answer).toMatch(/^HTTP\/1\.1 413 /);
      expect(Date.now() - started).toBeLessThan(5000);
      // 6 MB declared: drained (it would wait 10 s for the rest), until the collector stops
      const slow = await open(6 * 1024 * 1024);
      await new Promise((resolve) => setTimeout(resolve, 200));
      started = Date.now();
      await own.close();
      expect(Date.now() - started).toBeLessThan(5000);
      slow.socket.destroy();
    } finally {
      await own.close();
    }
  });

  it('reads a body that starts with a UTF-8 byte order mark', async () => {
    const body = Buffer.concat([
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from(
        JSON.stringify({ batch: [{ type: 'track', userId: 'bom-u', event: 'Bom', messageId: 'bom-1' }] }),
      ),
    ]);
    const res = await post(collector.url, '/v1/batch', body, { key: KEY });
    expect(res.body).toEqual({ success: true, landed: 1, rejected: [] });
    expect(await count('tracks', `id = 'bom-1' and user_id = 'bom-u'`)).toBe(1);
  });

  it('accepts gzip bodies', async () => {
    const res = await post(
      collector.url,
      '/v1/batch',
      JSON.stringify({ batch: [{ type: 'track', userId: 'gzip-user', event: 'Zipped', messageId: 'gz-1' }] }),
      { key: KEY, gzip: true },
    );
    expect(res.status).toBe(200);
    expect(await count('tracks', `user_id = 'gzip-user'`)).toBe(1);
  });

  it('answers 400 on a body that does not decompress and keeps what can be read of it, its write keys masked, for an authenticated sender', async () => {
    const kept = async (reason: string) =>
      (
        await wh.query<{ payload: string }>(`select payload from cdp.rejected_events where reason = $1`, [
          `request body could not be decompressed (gzip); the payload is ${reason}`,
        ])
      ).map((r) => r.payload);
    const secret = 'OTHER-SOURCE-KEY-42';
    const json = JSON.stringify({
      writeKey: secret,
      batch: [{ type: 'track', userId: 'gz-cut', event: 'Cut', messageId: 'gz-cut-1' }],
    });
    const zipped = gzipSync(json);
    const send = async (bytes: Buffer) => {
      const res = await post(collector.url, '/v1/batch', bytes, {
        key: KEY,
        headers: { 'content-encoding': 'gzip' },
      });
      expect(res.status).toBe(400);
      expect(String(res.body.error)).toMatch(
        /^The request body could not be decompressed \(gzip\): .+\. The body was kept in rejected_events\.$/,
      );
    };
    // plain JSON sent with a gzip header: its text
    await send(Buffer.from(json));
    expect(await kept('the body as received, as text, its write keys masked')).toEqual([
      json.replace(secret, '***'),
    ]);
    // a gzip stream cut short (the error comes at its end): what decompresses of it
    await send(zipped.subarray(0, zipped.length - 12));
    const partial = await kept('the part of it that decompresses, its write keys masked');
    expect(partial).toHaveLength(1);
    expect(partial[0]).toContain('"writeKey":"***"');
    expect(json.replace(secret, '***').startsWith(partial[0]!)).toBe(true);
    // bytes that are neither: base64, with a key spelt out among them masked
    const binary = Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from(`{"writeKey":"${secret}"}`)]);
    await send(binary);
    const raw = (await kept('the body as received, in base64, its write keys masked')).map((p) =>
      Buffer.from(p, 'base64'),
    );
    expect(raw).toEqual([
      Buffer.concat([Buffer.from([0xff, 0xfe, 0x00]), Buffer.from('{"writeKey":"***"}')]),
    ]);
    // the key never landed
    expect(
      await wh.query(`select count(*) as n from cdp.rejected_events where payload like $1`, [`%${secret}%`]),
    ).toEqual([{ n: 0 }]);
    // without a header the key could only be in the body, which cannot be read: nothing is kept
    const before = (await wh.query<{ n: number }>(`select count(*) as n from cdp.rejected_events`))[0]!.n;
    const anonymous = await post(collector.url, '/v1/batch', Buffer.from('still not gzip'), {
      headers: { 'content-encoding': 'gzip' },
    });
    expect(anonymous.status).toBe(400);
    expect((await wh.query<{ n: number }>(`select count(*) as n from cdp.rejected_events`))[0]!.n).toBe(
      before,
    );
    expect(await count('tracks', `user_id = 'gz-cut'`)).toBe(0);
  });

  it('accepts deflate bodies, and answers 415 naming every encoding it takes for another', async () => {
    const body = JSON.stringify({
      batch: [{ type: 'track', userId: 'deflate-user', event: 'Deflated', messageId: 'df-1' }],
    });
    const res = await post(collector.url, '/v1/batch', deflateSync(Buffer.from(body)), {
      key: KEY,
      headers: { 'content-encoding': 'deflate' },
    });
    expect(res.status).toBe(200);
    expect(await count('tracks', `user_id = 'deflate-user'`)).toBe(1);
    const br = await post(collector.url, '/v1/batch', body, {
      key: KEY,
      headers: { 'content-encoding': 'br' },
    });
    expect(br.status).toBe(415);
    expect(JSON.stringify(br.body)).toMatch(
      /Content-Encoding \\"br\\" is not supported: send gzip, deflate or no encoding/,
    );
  });

  it('lands ISO-8601 forms the warehouse would not read (hour-only offset, comma, leap second, nanoseconds) as the same instant', async () => {
    // Each passed validation but failed the write before, taking the valid events of the request with it (500).
    const cases: Array<[string, string]> = [
      ['iso-hour-offset', '2024-03-10T07:30:00+01'],
      ['iso-comma', '2024-03-10T06:30:00,5Z'],
      ['iso-leap', '2016-12-31T23:59:60Z'],
      ['iso-nanos', '2024-03-10T06:30:00.123456789Z'],
    ];
    const batch = [
      { type: 'track', userId: 'iso-user', event: 'Plain', messageId: 'iso-plain' },
      ...cases.map(([id, timestamp]) => ({
        type: 'track',
        userId: 'iso-user',
        event: 'Odd',
        messageId: id,
        timestamp,
      })),
    ];
    const res = await post(collector.url, '/v1/batch', JSON.stringify({ batch }), { key: KEY });
    expect(res.status).toBe(200);
    const rows = await wh.query<{ id: string; ms: number }>(
      `select id, round(extract(epoch from timestamp) * 1000) as ms from cdp.tracks where user_id = 'iso-user' and id <> 'iso-plain' order by id`,
    );
    expect(Object.fromEntries(rows.map((r) => [r.id, Number(r.ms)]))).toEqual({
      'iso-hour-offset': Date.UTC(2024, 2, 10, 6, 30),
      'iso-comma': Date.UTC(2024, 2, 10, 6, 30, 0, 500),
      'iso-leap': Date.UTC(2017, 0, 1),
      'iso-nanos': Date.UTC(2024, 2, 10, 6, 30, 0, 123),
    });
    expect(await count('tracks', `id = 'iso-plain'`)).toBe(1);
  });

  it('gives a batch-level context to the events without one after validation: it counts toward no event size and stays out of a rejected payload', async () => {
    const context = { library: { name: 'http-api' }, padding: 'c'.repeat(20_000) };
    const big = {
      type: 'track',
      userId: 'bctx-user',
      event: 'Big',
      messageId: 'bctx-big',
      properties: { p: 'p'.repeat(15_000) },
    };
    const own = {
      type: 'track',
      userId: 'bctx-user',
      event: 'Own',
      messageId: 'bctx-own',
      context: { library: { name: 'own' } },
    };
    const bad = { type: 'track', userId: 'bctx-user', messageId: 'bctx-bad' };
    const res = await post(collector.url, '/v1/batch', JSON.stringify({ batch: [big, own, bad], context }), {
      key: KEY,
    });
    expect(res.status).toBe(200);
    expect((res.body as { rejected: Array<{ messageId: string }> }).rejected.map((r) => r.messageId)).toEqual(
      ['bctx-bad'],
    );
    const rows = await wh.query<{ id: string; lib: string }>(
      `select id, context->'library'->>'name' as lib from cdp.tracks where user_id = 'bctx-user' order by id`,
    );
    expect(rows).toEqual([
      { id: 'bctx-big', lib: 'http-api' },
      { id: 'bctx-own', lib: 'own' },
    ]);
    const [rej] = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%bctx-bad%'`,
    );
    expect(JSON.parse(rej.payload)).toEqual(bad);
  });

  it('bounds a batch-level context like an event, and the batch it makes, keeping what it refuses', async () => {
    // 1 MB of context on 5,000 tiny events was 5 GB to write: the collector ran out of memory and died
    const tiny = (n: number, prefix: string) =>
      Array.from({ length: n }, (_, i) => ({
        type: 'track',
        userId: 'amp-user',
        event: 'Tiny',
        messageId: `${prefix}-${i}`,
      }));
    const big = await post(
      collector.url,
      '/v1/batch',
      JSON.stringify({ batch: tiny(5, 'amp-big'), context: { padding: 'c'.repeat(40_000) } }),
      { key: KEY },
    );
    expect(big.status).toBe(400);
    expect((big.body as { error: string }).error).toBe(
      `The batch's "context" is larger than 32768 bytes, the limit of an event it is given to. The body was kept in rejected_events.`,
    );
    // 30 KB on each of 600 events is 18 MB to write, over four request limits (16 MB)
    const context = { padding: 'c'.repeat(30_000) };
    const many = await post(
      collector.url,
      '/v1/batch',
      JSON.stringify({ batch: tiny(600, 'amp'), context }),
      {
        key: KEY,
      },
    );
    expect(many.status).toBe(413);
    expect((many.body as { error: string }).error).toMatch(
      /^The batch's context \(30014 bytes\), given to each of its 600 events without one, makes \d+ bytes to write, over 16777216: send smaller batches, or the context on each event\. The body was kept in rejected_events\.$/,
    );
    expect(await count('tracks', `user_id = 'amp-user'`)).toBe(0);
    expect(await count('rejected_events', `payload like '%amp-big-0%' or payload like '%"amp-599"%'`)).toBe(
      2,
    );
    // within the limits it is given to each event without one; events with their own keep theirs
    const fine = await post(
      collector.url,
      '/v1/batch',
      JSON.stringify({
        batch: [...tiny(400, 'amp-ok'), { ...tiny(1, 'amp-own')[0], context: { own: 1 } }],
        context,
      }),
      { key: KEY },
    );
    expect(fine.status).toBe(200);
    expect(await count('tracks', `user_id = 'amp-user' and (context->>'padding') is not null`)).toBe(400);
    expect(await count('tracks', `user_id = 'amp-user' and (context->>'own') = '1'`)).toBe(1);
  });

  it('answers 400 on a batch-level context nested deeper than an event may be, and keeps the body', async () => {
    // 20,000 levels overflowed the stack: a 500 on every retry, the batch's valid events never landed
    let context: Record<string, unknown> = { leaf: true };
    for (let i = 0; i < 20_000; i++) context = { c: context };
    const batch = [{ type: 'track', userId: 'deep-ctx-user', event: 'E', messageId: 'deep-ctx-0' }];
    const body = `{"batch":${JSON.stringify(batch)},"context":${'{"c":'.repeat(20_000)}{"leaf":true}${'}'.repeat(20_000)}}`;
    const res = await post(collector.url, '/v1/batch', body, { key: KEY });
    expect(res.status).toBe(400);
    expect((res.body as { error: string }).error).toBe(
      `The batch's "context" is nested deeper than 64 levels. The body was kept in rejected_events.`,
    );
    expect(await count('tracks', `user_id = 'deep-ctx-user'`)).toBe(0);
    expect(
      await count('rejected_events', `reason = $1 and payload like '%deep-ctx-0%'`, [
        "the batch's context is nested deeper than 64 levels",
      ]),
    ).toBe(1);
  });

  it('rejects an event holding a number beyond a double, naming where, and keeps its text; the rest lands', async () => {
    // JSON.parse reads 1E400 as Infinity, which JSON.stringify writes as null: the event landed with the value lost
    const body =
      '{"batch": [' +
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-0", "properties": {"e": 1E400}},' +
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-1", "properties": {"items": [{"price": 1}, {"price": -1e999}]}},' +
      '{"type": "identify", "userId": "inf-user", "messageId": "inf-2", "traits": {"odd key": 2e308}},' +
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-3", "properties": {"e": 1.7976931348623157e308}},' +
      // where nothing lands (integrations, a track's traits), it loses nothing: the event lands
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-4", "properties": {"r": 1}, "integrations": {"A": {"s": 1e400}}, "traits": {"t": 1e400}},' +
      // too large as well: refused for its size, found before any path is looked for
      `{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-5", "properties": {"a": [${'1,'.repeat(20_000)}1e400]}}` +
      ']}';
    const res = await post(collector.url, '/v1/batch', body, { key: KEY });
    expect(res.status).toBe(200);
    const why = (path: string): string =>
      `${path} is a number beyond the range of a double, which would land as null: send it as a string`;
    expect(res.body).toEqual({
      success: true,
      landed: 2,
      rejected: [
        { index: 0, messageId: 'inf-0', reason: why('properties.e') },
        { index: 1, messageId: 'inf-1', reason: why('properties.items[1].price') },
        { index: 2, messageId: 'inf-2', reason: why('traits["odd key"]') },
        { index: 5, messageId: 'inf-5', reason: 'event is larger than 32768 bytes' },
      ],
    });
    // the largest double is a number like any other
    expect(await count('tracks', `user_id = 'inf-user' and id = 'inf-3'`)).toBe(1);
    expect(await count('tracks', `user_id = 'inf-user' and id = 'inf-4' and (properties->>'r') = '1'`)).toBe(
      1,
    );
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%"inf-%' and payload not like '%inf-5%' order by payload`,
    );
    expect(kept.map((k) => k.payload)).toEqual([
      '{"type": "identify", "userId": "inf-user", "messageId": "inf-2", "traits": {"odd key": 2e308}}',
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-0", "properties": {"e": 1E400}}',
      '{"type": "track", "userId": "inf-user", "event": "Big", "messageId": "inf-1", "properties": {"items": [{"price": 1}, {"price": -1e999}]}}',
    ]);
    // a batch-level context is shared by the events without one: refused whole, as when nested too deep
    const shared =
      '{"batch": [{"type": "track", "userId": "inf-ctx", "event": "E", "messageId": "inf-ctx-0"}], "context": {"n": 1e400}}';
    const refused = await post(collector.url, '/v1/batch', shared, { key: KEY });
    expect(refused.status).toBe(400);
    expect((refused.body as { error: string }).error).toBe(
      `The batch's "context" holds a number beyond the range of a double, which would land as null: send it as a string. The body was kept in rejected_events.`,
    );
    expect(await count('tracks', `user_id = 'inf-ctx'`)).toBe(0);
    expect(
      await wh.query(`select reason, payload from cdp.rejected_events where payload like '%inf-ctx-0%'`),
    ).toEqual([
      { reason: "the batch's context holds a number beyond the range of a double", payload: shared },
    ]);
  });

  it('answers 413 on more than 10,000 events in one request, a batch or a webhook array, lands none and keeps the body', async () => {
    // two million one-byte invalid events in 4 MB held the event loop for 11 s (/health included)
    const events = Array.from({ length: 10_001 }, (_, i) => ({
      type: 'track',
      userId: 'many-user',
      event: 'E',
      messageId: `many-${i}`,
    }));
    const message =
      'The request carries 10001 events, more than the 10000 one request may: send smaller batches. The body was kept in rejected_events.';
    const batch = await post(collector.url, '/v1/batch', JSON.stringify({ batch: events }), { key: KEY });
    expect(batch.status).toBe(413);
    expect(batch.body).toEqual({ success: false, error: message });
    const webhook = await post(collector.url, '/webhook', JSON.stringify(events), { key: KEY });
    expect(webhook.status).toBe(413);
    expect(webhook.body).toEqual({ success: false, error: message });
    expect(await count('tracks', `user_id = 'many-user'`)).toBe(0);
    // kept, as an unreadable body is: both requests, whole
    expect(await count('rejected_events', `payload like '%"many-10000"%'`)).toBe(2);
    const fits = await post(collector.url, '/v1/batch', JSON.stringify({ batch: events.slice(1) }), {
      key: KEY,
    });
    expect(fits.status).toBe(200);
    expect(await count('tracks', `user_id = 'many-user'`)).toBe(10_000);
  });

  it('rejects an event over 32 KB once decoded, however small its request: bytes that are not UTF-8, numbers in exponent form, as load does', async () => {
    // exactly 32,768 bytes on the wire: 0xFF is not UTF-8 and becomes U+FFFD (three bytes), so ~98 KB of
    // properties; and 25 KB of `1E20`, each printed as 21 digits, make 110 KB
    const head = Buffer.from('{"userId":"big-u","event":"E","messageId":"big-ff","properties":{"x":"');
    const tail = Buffer.from('"}}');
    const ff = Buffer.concat([head, Buffer.alloc(32_768 - head.length - tail.length, 0xff), tail]);
    const numbers = Buffer.from(
      `{"userId":"big-u","event":"E","messageId":"big-num","properties":{"x":[${Array(5000).fill('1E20').join(',')}]}}`,
    );
    expect(ff.length).toBe(32_768);
    expect(numbers.length).toBeLessThan(32_768);
    for (const [body, messageId] of [
      [ff, 'big-ff'],
      [numbers, 'big-num'],
    ] as const) {
      const res = await post(collector.url, '/v1/track', body, { key: KEY });
      expect(res.body).toEqual({
        success: true,
        landed: 0,
        rejected: [{ index: 0, messageId, reason: 'event is larger than 32768 bytes' }],
      });
    }
    expect(await count('tracks', `user_id = 'big-u'`)).toBe(0);
    // load measures the same events alike (its lines carry their type, which the endpoint set above)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-big-'));
    try {
      const file = path.join(dir, 'big.ndjson');
      const typed = (b: Buffer): Buffer => Buffer.concat([Buffer.from('{"type":"track",'), b.subarray(1)]);
      fs.writeFileSync(
        file,
        Buffer.concat([typed(ff), Buffer.from('\n'), typed(numbers), Buffer.from('\n')]),
      );
      const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] });
      expect(summary).toMatchObject({
        landed: 0,
        rejected: 2,
        rejectedByReason: { 'event is larger than 32768 bytes': 2 },
      });
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(await count('tracks', `user_id = 'big-u'`)).toBe(0);
  });

  it('lands NUL and half an emoji alike on both warehouses: NUL removed, a lone surrogate as U+FFFD', async () => {
    // PostgreSQL refused a lone surrogate in jsonb (the event went to rejected_events) and dropped NUL from text,
    // which DuckDB kept: the same event differed per warehouse
    const body =
      '{"userId":"nul-\\u0000user","event":"Cut \\ud83c","messageId":"nul-\\u0000id",' +
      '"properties":{"s":"\\udc00x","k\\u0000":"a\\u0000b","whole":"\\ud83c\\udf89"}}';
    const res = await post(collector.url, '/v1/track', body, { key: KEY });
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ landed: 1, rejected: [] });
    expect(
      await wh.query(`select id, user_id, event_text, properties from cdp.tracks where user_id like 'nul-%'`),
    ).toEqual([
      {
        id: 'nul-id',
        user_id: 'nul-user',
        event_text: 'Cut \uFFFD',
        properties: { s: '\uFFFDx', k: 'ab', whole: '🎉' },
      },
    ]);
    // an id of NULs only is none: the anonymous id is the event's only id
    const onlyNul = '{"userId":"\\u0000","anonymousId":"nul-anon","event":"E","messageId":"nul-only"}';
    expect((await post(collector.url, '/v1/track', onlyNul, { key: KEY })).status).toBe(200);
    expect(await wh.query(`select user_id, anonymous_id from cdp.tracks where id = 'nul-only'`)).toEqual([
      { user_id: null, anonymous_id: 'nul-anon' },
    ]);
  });

  it('lands the valid events of a batch, stores each invalid one verbatim with its reason, and lists them', async () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 200; i++) deep = { d: deep };
    const valid = (i: number, extra: Record<string, unknown> = {}) => ({
      type: 'track',
      userId: 'mixed-user',
      event: 'Valid',
      messageId: `mixed-ok-${i}`,
      ...extra,
    });
    const batch = [
      valid(0),
      { type: 'track', event: 'No Id', messageId: 'bad-noid' },
      valid(1, {
        event: "Robert'); DROP TABLE cdp.tracks; --",
        properties: { q: "1' OR '1'='1", s: '$1 ; select 1' },
      }),
      { type: 'track', userId: 'mixed-user', messageId: 'bad-noevent' },
      { type: 'track', userId: 'mixed-user', event: 'T', messageId: 'bad-ts', timestamp: 'last tuesday' },
      { type: 'track', userId: 'mixed-user', event: 'T', messageId: 'm'.repeat(101) },
      { type: 'purchase', userId: 'mixed-user', messageId: 'bad-type' },
      {
        type: 'track',
        userId: 'mixed-user',
        event: 'T',
        messageId: 'bad-big',
        properties: { s: 'y'.repeat(33_000) },
      },
      { type: 'track', userId: 'mixed-user', event: 'T', messageId: 'bad-deep', properties: { deep } },
      valid(2, {
        event: 'Commande passée ✓ 注文',
        properties: { emoji: '🎉', rtl: 'مرحبا', nul: 'a\u0000b' },
      }),
      { type: 'identify', anonymousId: 'mixed-anon', messageId: 'mixed-ok-3', traits: { name: 'Zoë' } },
    ];
    const res = await postJson(collector.url, '/v1/batch', { batch }, KEY);
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      landed: 4,
      rejected: [
        { index: 1, messageId: 'bad-noid', reason: 'track call has neither userId nor anonymousId' },
        { index: 3, messageId: 'bad-noevent', reason: 'track call without event' },
        { index: 4, messageId: 'bad-ts', reason: 'timestamp is not an ISO-8601 timestamp' },
        { index: 5, reason: 'messageId is longer than 100 characters' },
        {
          index: 6,
          messageId: 'bad-type',
          reason: 'unknown type "purchase" (expected one of track, identify, page, screen, alias, group)',
        },
        { index: 7, messageId: 'bad-big', reason: 'event is larger than 32768 bytes' },
        { index: 8, messageId: 'bad-deep', reason: 'event is nested deeper than 64 levels' },
      ],
    });
    const landed = await wh.query<{ id: string; event: string; event_text: string; properties: unknown }>(
      `select id, event, event_text, properties from cdp.tracks where user_id = 'mixed-user' order by id`,
    );
    expect(landed).toEqual([
      { id: 'mixed-ok-0', event: 'valid', event_text: 'Valid', properties: null },
      {
        id: 'mixed-ok-1',
        event: 'robert_drop_table_cdp_tracks',
        event_text: "Robert'); DROP TABLE cdp.tracks; --",
        properties: { q: "1' OR '1'='1", s: '$1 ; select 1' },
      },
      {
        id: 'mixed-ok-2',
        event: 'commande_passée_注文',
        event_text: 'Commande passée ✓ 注文',
        properties: { emoji: '🎉', rtl: 'مرحبا', nul: 'ab' },
      },
    ]);
    expect(await wh.query(`select traits from cdp.identifies where id = 'mixed-ok-3'`)).toEqual([
      { traits: { name: 'Zoë' } },
    ]);
    const rejected = await wh.query<{ reason: string; payload: string }>(
      `select reason, payload from cdp.rejected_events where payload like '%mixed-user%' or payload like '%No Id%'`,
    );
    expect(rejected).toHaveLength(7);
    // The payload is the event exactly as sent: it parses back to the same value.
    const byReason = new Map(rejected.map((r) => [r.reason, JSON.parse(r.payload) as unknown]));
    expect(byReason.get('track call has neither userId nor anonymousId')).toEqual(batch[1]);
    expect(byReason.get('event is nested deeper than 64 levels')).toEqual(batch[8]);
    expect(byReason.get('event is larger than 32768 bytes')).toEqual(batch[7]);
    const [rj] = await wh.query<{ ra: Date }>(`select max(received_at) as ra from cdp.rejected_events`);
    expect(rj.ra).toBeInstanceOf(Date);
  });

  it('slugs event names with their combining marks, composed and decomposed alike', async () => {
    // the marks were dropped: खरीदा and खरीदी both landed as खर_द, Cafe\u0301 as cafe
    const names = ['खरीदा', 'खरीदी', 'साइन अप', 'สมัครสมาชิก', 'Cafe\u0301', 'Caf\u00E9', 'İstanbul', '🎉'];
    const batch = names.map((event, i) => ({
      type: 'track',
      userId: 'marks-u',
      event,
      messageId: `marks-${i}`,
    }));
    const res = await postJson(collector.url, '/v1/batch', { batch }, KEY);
    expect(res.body).toEqual({ success: true, landed: names.length, rejected: [] });
    const rows = await wh.query<{ event: string; event_text: string }>(
      `select event, event_text from cdp.tracks where user_id = 'marks-u' order by id`,
    );
    expect(rows).toEqual([
      { event: 'खरीदा', event_text: 'खरीदा' },
      { event: 'खरीदी', event_text: 'खरीदी' },
      { event: 'साइन_अप', event_text: 'साइन अप' },
      { event: 'สมัครสมาชิก', event_text: 'สมัครสมาชิก' },
      // one slug, the name as sent
      { event: 'caf\u00E9', event_text: 'Cafe\u0301' },
      { event: 'caf\u00E9', event_text: 'Caf\u00E9' },
      { event: 'i\u0307stanbul', event_text: 'İstanbul' },
      { event: 'u1f389', event_text: '🎉' },
    ]);
  });

  it('counts an id of spaces only as absent: quarantined alone, anonymous beside an anonymousId', async () => {
    const batch = [
      { type: 'track', userId: '  ', event: 'Blank', messageId: 'blank-1' },
      { type: 'track', userId: ' \t', anonymousId: 'blank-anon', event: 'Blank', messageId: 'blank-2' },
    ];
    const res = await postJson(collector.url, '/v1/batch', { batch }, KEY);
    expect(res.body).toEqual({
      success: true,
      landed: 1,
      rejected: [
        {
          index: 0,
          messageId: 'blank-1',
          reason: 'track call has neither userId nor anonymousId (userId is blank)',
        },
      ],
    });
    expect(
      await wh.query(`select id, user_id, anonymous_id from cdp.tracks where id like 'blank-%' order by id`),
    ).toEqual([{ id: 'blank-2', user_id: null, anonymous_id: 'blank-anon' }]);
  });

  it('quarantines a value of NULs only (or NULs and spaces) as a blank one, instead of landing it as NULL', async () => {
    // U+0000 is removed before landing: these four landed as a track without identity, an alias without
    // previous_id, a group without group_id and a track named ''
    const batch = [
      { type: 'track', messageId: 'nulonly-1', userId: '\u0000', event: 'E' },
      { type: 'alias', messageId: 'nulonly-2', userId: 'nulonly-u9', previousId: '\u0000\u0000' },
      { type: 'group', messageId: 'nulonly-3', userId: 'nulonly-u9', groupId: '\u0000' },
      { type: 'track', messageId: 'nulonly-4', userId: 'nulonly-u9', event: '\u0000' },
      { type: 'identify', messageId: 'nulonly-5', anonymousId: ' \u0000\t' },
      // beside the other id, it is no id, as a blank one is
      { type: 'track', messageId: 'nulonly-6', userId: '\u0000 ', anonymousId: 'nulonly-anon', event: 'E' },
    ];
    const res = await postJson(collector.url, '/v1/batch', { batch }, KEY);
    expect(res.status).toBe(200);
    const reasons = [
      'track call has neither userId nor anonymousId (userId is blank)',
      'previousId is blank',
      'groupId is blank',
      'event is blank',
      'identify call has neither userId nor anonymousId (anonymousId is blank)',
    ];
    expect(res.body).toEqual({
      success: true,
      landed: 1,
      rejected: reasons.map((reason, index) => ({ index, messageId: `nulonly-${index + 1}`, reason })),
    });
    for (const table of ['tracks', 'aliases', 'groups', 'identifies']) {
      expect(await count(table, `id like 'nulonly-%' and id <> 'nulonly-6'`)).toBe(0);
    }
    expect(await wh.query(`select user_id, anonymous_id from cdp.tracks where id = 'nulonly-6'`)).toEqual([
      { user_id: null, anonymous_id: 'nulonly-anon' },
    ]);
    // quarantined as every rejection is: the event as sent, NULs included
    const rejected = await wh.query<{ reason: string; payload: string }>(
      `select reason, payload from cdp.rejected_events where payload like '%nulonly-%'`,
    );
    const kept = rejected.map((r) => ({
      reason: r.reason,
      event: JSON.parse(r.payload) as { messageId: string },
    }));
    kept.sort((a, b) => a.event.messageId.localeCompare(b.event.messageId));
    expect(kept).toEqual(reasons.map((reason, i) => ({ reason, event: batch[i] })));
  });

  /** A track without sentAt of its own (it takes the batch's) for the batch-sentAt tests. */
  const sentAtEvent =
    (userId: string) =>
    (messageId: string, extra: Record<string, unknown> = {}) => ({
      type: 'track',
      userId,
      event: 'Sent',
      messageId,
      originalTimestamp: '2024-01-01T00:00:00Z',
      ...extra,
    });

  /** A batch with `sentAt`: its event `<id>-a` takes it and is quarantined with `reason`, `<id>-b` has its own. */
  async function expectBatchSentAtRefused(
    event: ReturnType<typeof sentAtEvent>,
    id: string,
    sentAt: unknown,
    reason: unknown,
  ): Promise<void> {
    const res = await postJson(
      collector.url,
      '/v1/batch',
      { sentAt, batch: [event(`${id}-a`), event(`${id}-b`, { sentAt: '2024-01-01T00:00:05Z' })] },
      KEY,
    );
    expect(res.status).toBe(200);
    expect(res.body).toEqual({
      success: true,
      landed: 1,
      rejected: [{ index: 0, messageId: `${id}-a`, reason }],
    });
  }

  it("quarantines the events that take a batch's sentAt that is not ISO-8601, and lands the others", async () => {
    const event = sentAtEvent('batch-sent-u');
    for (const [n, sentAt] of [
      [1, 'garbage'],
      [2, '1704067200'],
      [3, '2024-02-30T00:00:00Z'],
      [4, 'Jan 1 2024 10:00'],
    ] as const) {
      await expectBatchSentAtRefused(
        event,
        `bs-${n}`,
        sentAt,
        expect.stringMatching(/batch's sentAt .* is not an ISO-8601 timestamp/),
      );
    }
    // the event with its own sentAt landed with it; the others wait in quarantine, as sent
    expect(await count('tracks', `id like 'bs-%-b' and sent_at is not null`)).toBe(4);
    expect(await count('tracks', `id like 'bs-%-a'`)).toBe(0);
    const [q] = await wh.query<{ reason: string; payload: string }>(
      `select reason, payload from cdp.rejected_events where payload like '%bs-1-a%'`,
    );
    expect(q.reason).toBe(
      `the batch's sentAt ("garbage"), which this event takes as it has none, is not an ISO-8601 timestamp`,
    );
    expect(JSON.parse(q.payload)).toEqual(event('bs-1-a'));
    // a valid one still corrects the device clock: receivedAt - (sentAt - originalTimestamp)
    const before = Date.now();
    await postJson(
      collector.url,
      '/v1/batch',
      { sentAt: '2024-01-01 00:00:10', batch: [event('bs-5-a')] },
      KEY,
    );
    const [t] = await wh.query<{ ts: Date; ra: Date }>(
      `select timestamp as ts, received_at as ra from cdp.tracks where id = 'bs-5-a'`,
    );
    expect(t.ra.getTime() - t.ts.getTime()).toBe(10_000);
    expect(t.ra.getTime()).toBeGreaterThanOrEqual(before - 1000);
  });

  it("quarantines the events that take a batch's sentAt that is not a string (epoch milliseconds), as one that is not ISO-8601", async () => {
    const event = sentAtEvent('batch-sent-num-u');
    for (const [n, sentAt, kind] of [
      [1, 1704067200000, 'a number'],
      [2, true, 'a boolean'],
      [3, { at: '2024-01-01T00:00:10Z' }, 'an object'],
      [4, ['2024-01-01T00:00:10Z'], 'an array'],
    ] as const) {
      await expectBatchSentAtRefused(
        event,
        `bsn-${n}`,
        sentAt,
        `the batch's sentAt (${JSON.stringify(sentAt)}), which this event takes as it has none, is not an ISO-8601 timestamp: it is ${kind}, not a string`,
      );
    }
    // the events with a sentAt of their own land with it; the others are kept as sent
    expect(await count('tracks', `id like 'bsn-%-b' and sent_at is not null`)).toBe(4);
    expect(await count('tracks', `id like 'bsn-%-a'`)).toBe(0);
    const [q] = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%bsn-1-a%'`,
    );
    expect(JSON.parse(q.payload)).toEqual(event('bsn-1-a'));
    // a null one is absent: the event lands, without a sentAt
    const none = await postJson(
      collector.url,
      '/v1/batch',
      { sentAt: null, batch: [event('bsn-null')] },
      KEY,
    );
    expect(none.body).toEqual({ success: true, landed: 1, rejected: [] });
    expect(await count('tracks', `id = 'bsn-null' and sent_at is null`)).toBe(1);
    // as /webhook and load refuse an event's own sentAt of epoch milliseconds (each event there is its own)
    const hook = await postJson(
      collector.url,
      '/webhook',
      [event('bsn-hook', { sentAt: 1704067200000 })],
      KEY,
    );
    expect((hook.body as { rejected: Array<{ reason: string }> }).rejected).toEqual([
      expect.objectContaining({ reason: 'sentAt must be string or null' }),
    ]);
  });

  it("gives an event whose sentAt and context are null the batch's, as one without them (null is absent)", async () => {
    const event = (messageId: string, extra: Record<string, unknown> = {}) => ({
      type: 'track',
      userId: 'null-sent-u',
      event: 'Sent',
      messageId,
      originalTimestamp: '2024-01-01T00:00:00Z',
      ...extra,
    });
    const before = Date.now();
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        sentAt: '2024-01-01T00:00:10Z',
        context: { library: { name: 'batch-lib' } },
        batch: [event('ns-absent'), event('ns-null', { sentAt: null, context: null })],
      },
      KEY,
    );
    expect(res.body).toEqual({ success: true, landed: 2, rejected: [] });
    const rows = await wh.query<{ id: string; sent: Date | null; lib: string | null; ts: Date; ra: Date }>(
      `select id, sent_at as sent, context->'library'->>'name' as lib, timestamp as ts, received_at as ra
       from cdp.tracks where user_id = 'null-sent-u' order by id`,
    );
    expect(rows.map((r) => [r.id, r.sent?.toISOString() ?? null, r.lib])).toEqual([
      ['ns-absent', '2024-01-01T00:00:10.000Z', 'batch-lib'],
      ['ns-null', '2024-01-01T00:00:10.000Z', 'batch-lib'],
    ]);
    // both corrected for the device clock: receivedAt - (sentAt - originalTimestamp)
    for (const r of rows) {
      expect(r.ra.getTime() - r.ts.getTime()).toBe(10_000);
      expect(r.ra.getTime()).toBeGreaterThanOrEqual(before - 1000);
    }
    // and a batch sentAt that is not a timestamp quarantines the null one as it does the absent one
    const bad = await postJson(
      collector.url,
      '/v1/batch',
      { sentAt: 'garbage', batch: [event('ns-bad-null', { sentAt: null })] },
      KEY,
    );
    expect((bad.body as { rejected: Array<{ reason: string }> }).rejected).toEqual([
      expect.objectContaining({ reason: expect.stringMatching(/batch's sentAt/) as unknown }),
    ]);
    expect(await count('tracks', `id = 'ns-bad-null'`)).toBe(0);
  });

  it("gives the batch's context to an event whose context is null when every event of the batch has one", async () => {
    // no event lacks the member: only the null one takes the batch's context, which must still be handed over
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        context: { library: { name: 'batch-lib' } },
        batch: [
          { type: 'track', userId: 'null-ctx-u', event: 'E', messageId: 'nc-null', context: null },
          {
            type: 'track',
            userId: 'null-ctx-u',
            event: 'E',
            messageId: 'nc-own',
            context: { library: { name: 'own-lib' } },
          },
        ],
      },
      KEY,
    );
    expect(res.body).toEqual({ success: true, landed: 2, rejected: [] });
    expect(
      await wh.query(
        `select id, context->'library'->>'name' as lib from cdp.tracks where user_id = 'null-ctx-u' order by id`,
      ),
    ).toEqual([
      { id: 'nc-null', lib: 'batch-lib' },
      { id: 'nc-own', lib: 'own-lib' },
    ]);
    // and it is bounded as for an event without one: a context over the event limit refuses the batch
    const big = await postJson(
      collector.url,
      '/v1/batch',
      {
        context: { pad: 'x'.repeat(40_000) },
        batch: [{ type: 'track', userId: 'null-ctx-u', event: 'E', messageId: 'nc-big', context: null }],
      },
      KEY,
    );
    expect(big.status).toBe(400);
    expect(await count('tracks', `id = 'nc-big'`)).toBe(0);
  });

  it('takes single calls on /v1/<type> (the endpoint sets the type) and arrays or objects on /webhook', async () => {
    expect(
      (await postJson(collector.url, '/v1/identify', { userId: 'single-u', traits: { a: 1 } }, KEY)).status,
    ).toBe(200);
    expect(await count('identifies', `user_id = 'single-u'`)).toBe(1);
    const hook = [
      {
        type: 'track',
        userId: 'hook-u',
        event: 'Hooked',
        messageId: 'hook-1',
        receivedAt: '2024-01-02T03:04:05.000Z',
        originalTimestamp: '2024-01-02T03:04:00.000Z',
        sentAt: '2024-01-02T03:04:01.000Z',
        rudderId: 'r-1',
        channel: 'web',
      },
      { type: 'group', userId: 'hook-u', groupId: 'acme', messageId: 'hook-2', traits: { seats: 3 } },
    ];
    const res = await postJson(collector.url, '/webhook', hook, KEY);
    expect(res.body).toEqual({ success: true, landed: 2, rejected: [] });
    expect((await postJson(collector.url, '/webhook', { ...hook[0], messageId: 'hook-3' }, KEY)).status).toBe(
      200,
    );
    // A webhook relays events the CDP already received: their receivedAt is kept, and the timestamp rule
    // applies to it.
    const [t] = await wh.query<{ ra: Date; ts: Date }>(
      `select received_at as ra, timestamp as ts from cdp.tracks where id = 'hook-1'`,
    );
    expect(t.ra.toISOString()).toBe('2024-01-02T03:04:05.000Z');
    expect(t.ts.toISOString()).toBe('2024-01-02T03:04:04.000Z');
    expect(await wh.query(`select group_id, traits from cdp.groups where id = 'hook-2'`)).toEqual([
      { group_id: 'acme', traits: { seats: 3 } },
    ]);
    expect(await count('tracks', `id = 'hook-3'`)).toBe(1);
    // the key in the events of an array, as in a single event's body; a wrong one in any of them is refused
    const keyed = [
      { ...hook[0], messageId: 'hook-4', writeKey: KEY },
      { ...hook[0], messageId: 'hook-5', writeKey: KEY },
    ];
    expect((await postJson(collector.url, '/webhook', keyed)).body).toEqual({
      success: true,
      landed: 2,
      rejected: [],
    });
    expect(
      (await postJson(collector.url, '/webhook', [keyed[0], { ...keyed[1], writeKey: 'nope' }])).status,
    ).toBe(401);
    expect((await postJson(collector.url, '/webhook', [{ ...hook[0], messageId: 'hook-6' }])).status).toBe(
      401,
    );
    expect(await count('tracks', `id in ('hook-4', 'hook-5', 'hook-6')`)).toBe(2);
  });

  it('forgets a client that disconnects mid-body: nothing lands and a drain does not wait for it', async () => {
    const own = await startOwn({ drainTimeoutMs: 120_000 });
    await ensureRawTables(wh, 'cdp');
    const body = JSON.stringify({ batch: [{ type: 'track', userId: 'gone-user', event: 'Gone' }] });
    const { socket } = await rawConnection(own.port);
    socket.write(batchHead(KEY, `Content-Length: ${body.length}`) + body.slice(0, 20));
    await new Promise((resolve) => setTimeout(resolve, 200));
    socket.destroy();
    // With the request still counted as in flight, close() would wait the whole drain timeout.
    const started = Date.now();
    await own.close();
    expect(Date.now() - started).toBeLessThan(60_000);
    expect(await count('tracks', `user_id = 'gone-user'`)).toBe(0);
  });

  it('serves browser SDKs: CORS preflight and headers, and analytics.js one-letter and batching paths', async () => {
    // RudderStack's JS SDK sends Basic auth from the site's origin: the browser asks first
    const pre = await fetch(`${collector.url}/v1/batch`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://shop.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    expect(pre.status).toBe(204);
    expect(pre.headers.get('access-control-allow-origin')).toBe('*');
    expect(pre.headers.get('access-control-allow-methods')).toBe('POST, OPTIONS');
    expect(pre.headers.get('access-control-allow-headers')).toBe('authorization,content-type');
    // analytics.js posts text/plain (no preflight) with the write key in the body
    const ev = { type: 'track', userId: 'browser-user', event: 'Clicked', messageId: 'br-1', writeKey: KEY };
    const one = await fetch(`${collector.url}/v1/t`, {
      method: 'POST',
      headers: { origin: 'https://shop.example', 'content-type': 'text/plain' },
      body: JSON.stringify(ev),
    });
    expect(one.status).toBe(200);
    expect(one.headers.get('access-control-allow-origin')).toBe('*');
    const batch = await fetch(`${collector.url}/v1/b`, {
      method: 'POST',
      headers: { 'content-type': 'text/plain' },
      body: JSON.stringify({
        writeKey: KEY,
        batch: [
          { ...ev, messageId: 'br-2', writeKey: undefined },
          { type: 'identify', userId: 'browser-user', messageId: 'br-3' },
        ],
      }),
    });
    expect(batch.status).toBe(200);
    expect(await count('tracks', `user_id = 'browser-user'`)).toBe(2);
    expect(await count('identifies', `user_id = 'browser-user'`)).toBe(1);
    // a wrong key from a browser is still 401, readable by the page
    const wrong = await fetch(`${collector.url}/v1/i`, {
      method: 'POST',
      body: JSON.stringify({ ...ev, writeKey: 'nope' }),
    });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('access-control-allow-origin')).toBe('*');
  });

  it('echoes x-request-id, answers /health, 404 and 405', async () => {
    const res = await post(collector.url, '/v1/track', JSON.stringify({ userId: 'rid', event: 'E' }), {
      key: KEY,
      headers: { 'x-request-id': 'req-abc' },
    });
    expect(res.headers['x-request-id']).toBe('req-abc');
    // anyone may probe it; only a write key's holder learns where the warehouse is
    const health = await fetch(`${collector.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
    expect(health.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    const wrongKey = await fetch(`${collector.url}/health`, { headers: { authorization: basic('nope') } });
    expect(await wrongKey.json()).toEqual({ status: 'ok' });
    expect(health.headers.get('cache-control')).toBe('no-store');
    const detailed = await fetch(`${collector.url}/health`, { headers: { authorization: basic(KEY) } });
    expect(await detailed.json()).toEqual({
      status: 'ok',
      warehouse: expect.stringMatching(/^(duckdb|postgres):/),
    });
    // a collector without write keys has no key holder to tell
    const open = await startCollector({
      warehouse: wh,
      rawSchema: 'cdp',
      port: 0,
      host: '127.0.0.1',
      writeKeys: [],
      logger: quiet,
    });
    try {
      const anyone = await fetch(`${open.url}/health`, { headers: { authorization: basic(KEY) } });
      expect(await anyone.json()).toEqual({ status: 'ok' });
    } finally {
      await open.close();
    }
    expect((await fetch(`${collector.url}/v1/nope`, { method: 'POST' })).status).toBe(404);
    const wrongMethod = await fetch(`${collector.url}/v1/batch`);
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('POST, OPTIONS');
  });
});

function total(records: Array<Record<string, unknown>>): Record<string, number> {
  const out: Record<string, number> = { requests: 0, landed: 0, rejected: 0, refused: 0, failed: 0 };
  for (const r of records) for (const k of Object.keys(out)) out[k] += Number(r[k]);
  return out;
}

describeEachWarehouse('collector activity log', ({ tw }) => {
  /** A collector on its own warehouse whose log records are kept, parsed, in `records`. */
  const startLogged = async (rawSchema: string, activityLogMs: number) => {
    const wh = await tw().open();
    const records: Array<Record<string, unknown>> = [];
    const logger = pino(
      { level: 'info' },
      { write: (line: string) => void records.push(JSON.parse(line) as Record<string, unknown>) },
    );
    const collector = await startCollector({
      warehouse: wh,
      rawSchema,
      port: 0,
      host: '127.0.0.1',
      writeKeys: [KEY],
      logger,
      activityLogMs,
    });
    return { wh, records, collector };
  };

  it('logs a client that goes away mid-body as a refused request, not a server error', async () => {
    const { wh, records, collector } = await startLogged('cdp_aborted', 60_000);
    try {
      const { socket } = await rawConnection(Number(new URL(collector.url).port));
      socket.write(batchHead(KEY, 'Content-Length: 100') + '{"batch":');
      await new Promise((resolve) => setTimeout(resolve, 200));
      socket.destroy();
      await new Promise((resolve) => setTimeout(resolve, 300));
    } finally {
      await collector.close();
      await wh.exec('drop schema if exists cdp_aborted cascade');
      await wh.close();
    }
    expect(records.filter((r) => Number(r.level) >= 50)).toEqual([]);
    expect(records.find((r) => r.msg === 'request refused')).toMatchObject({
      status: 400,
      error: 'The client closed the connection before the body ended.',
    });
    expect(total(records.filter((r) => r.msg === 'collector activity'))).toMatchObject({
      requests: 1,
      refused: 1,
      failed: 0,
    });
  });

  it('sums up the requests of each interval in one info record, and the rest when it stops', async () => {
    const { wh, records, collector } = await startLogged('cdp_activity', 300);
    try {
      // where a local client reaches it, and what it is bound to
      const port = new URL(collector.url).port;
      expect(records.find((r) => r.msg === 'collector listening')).toMatchObject({
        url: `http://127.0.0.1:${port}`,
        listen: `127.0.0.1:${port}`,
      });
      const batch = [
        { type: 'track', userId: 'act-user', event: 'Fine', messageId: 'act-1' },
        { type: 'track', userId: 'act-user', messageId: 'act-bad' },
      ];
      expect((await postJson(collector.url, '/v1/batch', { batch }, KEY)).status).toBe(200);
      expect((await postJson(collector.url, '/v1/batch', { batch: [] }, 'wrong-key')).status).toBe(401);
      // a sender with a wrong key loses every event it sends: a warning, which alerting on warnings sees
      expect(records.find((r) => r.msg === 'request refused' && r.status === 401)).toMatchObject({
        level: 40,
      });
      await new Promise((resolve) => setTimeout(resolve, 700));
      // the intervals with requests (one, or two if a tick fell between them); quiet ones write none
      const sums = records.filter((r) => r.msg === 'collector activity');
      expect(sums.length).toBeGreaterThanOrEqual(1);
      expect(sums.length).toBeLessThanOrEqual(2);
      expect(total(sums)).toEqual({ requests: 2, landed: 1, rejected: 1, refused: 1, failed: 0 });
      expect(await postJson(collector.url, '/v1/track', batch[0], KEY)).toMatchObject({ status: 200 });
    } finally {
      await collector.close();
      await wh.close();
    }
    // what came after the last tick is summed up when the collector stops
    expect(total(records.filter((r) => r.msg === 'collector activity'))).toEqual({
      requests: 3,
      landed: 2,
      rejected: 1,
      refused: 1,
      failed: 0,
    });
  });
});

describe('maskWriteKeys', () => {
  it('masks the value of every member whose name decodes to writeKey, and nothing else', () => {
    expect(maskWriteKeys('{"a":"\\u0041","writeKey":"k2","b":{"write\\u004Bey" : "k3"},"c":"d"}')).toBe(
      '{"a":"\\u0041","writeKey":"***","b":{"write\\u004Bey" : "***"},"c":"d"}',
    );
    // a string value that spells the name is no member name; a cut-off value is masked to the end
    expect(maskWriteKeys('{"x":"write\\u004bey","y":1}')).toBe('{"x":"write\\u004bey","y":1}');
    expect(maskWriteKeys('{"e":"\\u00e9","write\\u004bey":"cut-off')).toBe(
      '{"e":"\\u00e9","write\\u004bey":"***"',
    );
    // names with bad escapes are passed over (not parsed), and a fully escaped writeKey still masked
    const spelled = '"\\u0077\\u0072\\u0069\\u0074\\u0065\\u004b\\u0065\\u0079"';
    expect(maskWriteKeys(`{"\\u":1,"\\x":2,${spelled}:"k5"}`)).toBe(`{"\\u":1,"\\x":2,${spelled}:"***"}`);
    // escaped quotes inside strings keep the reading in step
    expect(maskWriteKeys('{"q":"a\\"writeKey\\":\\"no","write\\u004bey":"k4"}')).toBe(
      '{"q":"a\\"writeKey\\":\\"no","write\\u004bey":"***"}',
    );
  });
});
