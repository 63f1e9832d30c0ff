import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describeEachWarehouse } from '../helpers/warehouses';
import { LoadReadFailed, loadFiles, type LoadCommitted } from '../../src/collector';
import { UserError } from '../../src/errors';
import type { Warehouse } from '../../src/warehouse';
import type { Progress } from '../../src/util/progress';

describeEachWarehouse('load NDJSON files', ({ tw }) => {
  let wh: Warehouse;
  let dir: string;
  beforeAll(async () => {
    wh = await tw().open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-load-'));
  });
  afterAll(async () => {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lands valid lines, quarantines bad ones with their line numbers, and summarises by reason', async () => {
    const lines = [
      JSON.stringify({
        type: 'track',
        userId: 'f-u1',
        event: 'Order Completed',
        messageId: 'f-1',
        properties: { revenue: 10 },
        receivedAt: '2024-02-01T10:00:00.000Z',
        timestamp: '2024-02-01T09:59:00.000Z',
      }),
      '',
      '{"type": "track", "userId": "f-u1", "event": ',
      JSON.stringify({ type: 'identify', userId: 'f-u1', messageId: 'f-2', traits: { plan: 'pro' } }),
      JSON.stringify({ type: 'track', userId: 'f-u2', messageId: 'f-3' }),
      JSON.stringify({
        type: 'page',
        anonymousId: 'f-a1',
        messageId: 'f-4',
        timestamp: '2024-02-30T00:00:00Z',
      }),
      JSON.stringify({ type: 'screen', anonymousId: 'f-a1', messageId: 'f-5', name: 'Home' }),
    ];
    const file = path.join(dir, 'events.ndjson');
    fs.writeFileSync(file, lines.join('\n') + '\n');
    const calls: string[] = [];
    const progress: Progress = {
      start: (total, label) => calls.push(`start ${label} ${String(total)}`),
      update: () => undefined,
      increment: () => undefined,
      stop: (summary) => calls.push(`stop ${String(summary)}`),
    };
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [file],
      progress,
      batchLines: 2,
    });
    expect(summary).toEqual({
      files: 1,
      lines: 6,
      landed: 3,
      rejected: 3,
      rejectedByReason: {
        'line is not valid JSON': 1,
        'track call without event': 1,
        'timestamp is not an ISO-8601 timestamp': 1,
      },
      badLines: [
        { file, line: 3, reason: 'line is not valid JSON' },
        { file, line: 5, reason: 'track call without event' },
        { file, line: 6, reason: 'timestamp is not an ISO-8601 timestamp' },
      ],
    });
    expect(calls).toEqual([
      `start load ${fs.statSync(file).size}`,
      'stop loaded 3 events from 1 file, 3 rejected (see cdp.rejected_events)',
    ]);
    const [t] = await wh.query<{ ra: Date; ts: Date }>(
      `select received_at as ra, timestamp as ts from cdp.tracks where id = 'f-1'`,
    );
    // A file replays events the CDP received earlier: their receivedAt is kept.
    expect(t.ra.toISOString()).toBe('2024-02-01T10:00:00.000Z');
    expect(t.ts.toISOString()).toBe('2024-02-01T09:59:00.000Z');
    const rejected = await wh.query<{ reason: string; payload: string }>(
      'select reason, payload from cdp.rejected_events order by reason',
    );
    expect(rejected).toEqual([
      { reason: 'line is not valid JSON', payload: lines[2] },
      { reason: 'timestamp is not an ISO-8601 timestamp', payload: lines[5] },
      { reason: 'track call without event', payload: lines[4] },
    ]);
  });

  it("names a page or screen from properties.name when it has no name, as RudderStack's loader does", async () => {
    const file = path.join(dir, 'screens.ndjson');
    const lines = [
      // RudderStack's Android SDK: the screen's name in event and properties.name only
      { type: 'screen', userId: 'n-u1', messageId: 'n-1', event: 'Main', properties: { name: 'Main' } },
      { type: 'screen', userId: 'n-u1', messageId: 'n-2', name: 'Own', properties: { name: 'Other' } },
      { type: 'page', userId: 'n-u1', messageId: 'n-3', properties: { name: 'Pricing', path: '/pricing' } },
      { type: 'page', userId: 'n-u1', messageId: 'n-4', properties: { name: { nested: true } } },
      { type: 'page', userId: 'n-u1', messageId: 'n-5', name: '', properties: { name: 7 } },
    ];
    fs.writeFileSync(file, lines.map((l) => JSON.stringify(l)).join('\n'));
    expect(await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] })).toMatchObject({ landed: 5 });
    const names = await wh.query<{ id: string; name: string | null }>(
      `select id, name from cdp.screens where id like 'n-%' union all select id, name from cdp.pages where id like 'n-%' order by id`,
    );
    expect(names).toEqual([
      { id: 'n-1', name: 'Main' },
      { id: 'n-2', name: 'Own' },
      { id: 'n-3', name: 'Pricing' },
      { id: 'n-4', name: null },
      { id: 'n-5', name: '7' },
    ]);
  });

  it('masks the write key of every line it keeps in rejected_events, as the collector does', async () => {
    const file = path.join(dir, 'keys.ndjson');
    fs.writeFileSync(
      file,
      [
        // an invalid event (no user), an unparsable line, a key spelled with an escape
        '{"type":"track","event":"E","writeKey":"TOPSECRET1","messageId":"wk-1"}',
        '{"writeKey":"TOPSECRET2", broken',
        '{"type":"track","event":"E","write\\u004bey":"TOPSECRET3","messageId":"wk-3"}',
        '{"type":"track","userId":"wk-u","event":"E","writeKey":"TOPSECRET4","messageId":"wk-4"}',
      ].join('\n'),
    );
    const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] });
    expect(summary).toMatchObject({ landed: 1, rejected: 3 });
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%wk-1%' or payload like '%broken%' or payload like '%wk-3%'`,
    );
    expect(kept).toHaveLength(3);
    for (const { payload } of kept) {
      expect(payload).not.toMatch(/TOPSECRET/);
      expect(payload).toContain('"***"');
    }
    // nothing else of the line changes
    expect(kept.map((k) => k.payload)).toContain(
      '{"type":"track","event":"E","writeKey":"***","messageId":"wk-1"}',
    );
    const landed = await wh.query<{ n: number }>(`select count(*) as n from cdp.tracks where id = 'wk-4'`);
    expect(Number(landed[0].n)).toBe(1);
  });

  it('reads a gzipped file (a storage export) as its lines, and names a corrupt one', async () => {
    const lines = Array.from({ length: 30 }, (_, i) =>
      JSON.stringify({ type: 'track', userId: 'gz-u', event: 'Zipped', messageId: `gz-${i}` }),
    );
    const file = path.join(dir, 'export.json.gz');
    fs.writeFileSync(file, gzipSync(lines.join('\n') + '\n'));
    const states: LoadCommitted[] = [];
    expect(
      await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file], onCommitted: (c) => states.push(c) }),
    ).toMatchObject({
      lines: 30,
      landed: 30,
      rejected: 0,
    });
    // so that an interrupted load's resume command decompresses before counting lines
    expect(states.at(-1)).toMatchObject({ file, gzipped: true, throughLine: 30 });
    expect(await wh.query(`select count(*) as n from cdp.tracks where user_id = 'gz-u'`)).toEqual([
      { n: 30 },
    ]);
    // cut short: the gzip stream fails, and nothing of it is kept as lines of binary
    const cut = path.join(dir, 'cut.gz');
    const whole = gzipSync(Buffer.from(lines.join('\n').replace(/gz-/g, 'cut-')));
    fs.writeFileSync(cut, whole.subarray(0, whole.length - 12));
    const cutStates: LoadCommitted[] = [];
    const err = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [cut],
      onCommitted: (c) => cutStates.push(c),
    }).then(
      () => new Error('loaded'),
      (e: unknown) => e as Error,
    );
    expect(err).toBeInstanceOf(LoadReadFailed);
    const m = /^Reading .*cut\.gz failed after line (\d+): .*(unexpected end of file|incorrect)/i.exec(
      err.message,
    );
    expect(m).not.toBeNull();
    // the lines read whole before the cut landed (a storage export cut short keeps its first part), and the
    // last committed state says so, for the line the rest starts at
    const read = Number(m![1]);
    expect(read).toBeGreaterThan(20);
    expect(await wh.query(`select count(*) as n from cdp.tracks where id like 'cut-%'`)).toEqual([
      { n: read },
    ]);
    expect(cutStates.at(-1)).toMatchObject({ throughLine: read, landed: read });
    expect(
      await wh.query(`select count(*) as n from cdp.rejected_events where payload like '%\uFFFD%'`),
    ).toEqual([{ n: 0 }]);
  });

  it('lists the bad lines in reading order, whatever order their batches finish in', async () => {
    const a = path.join(dir, 'order-a.ndjson');
    const b = path.join(dir, 'order-b.ndjson');
    const invalid = (i: number) => JSON.stringify({ type: 'track', event: 'No User', messageId: `ord-${i}` });
    // each batch of 3 holds an invalid event before an unparsable line
    fs.writeFileSync(a, [invalid(1), '{oops', '{}', invalid(4), 'nope', '{"type":"track"}'].join('\n'));
    fs.writeFileSync(b, [invalid(7), '[1'].join('\n'));
    const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [a, b], batchLines: 3 });
    expect(summary.badLines.map((x) => `${path.basename(x.file)}:${x.line}`)).toEqual([
      'order-a.ndjson:1',
      'order-a.ndjson:2',
      'order-a.ndjson:3',
      'order-a.ndjson:4',
      'order-a.ndjson:5',
      'order-a.ndjson:6',
      'order-b.ndjson:1',
      'order-b.ndjson:2',
    ]);
  });

  it('writes a file of nothing but bad lines batch by batch, not all at its end', async () => {
    const file = path.join(dir, 'all-bad.csv');
    fs.writeFileSync(
      file,
      ['id,event', '1,Signed Up', '2,Order Completed', '3,Logged In', '4,Logged Out'].join('\n'),
    );
    const through: number[] = [];
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [file],
      batchLines: 2,
      onCommitted: (s) => through.push(s.throughLine),
    });
    expect(summary).toMatchObject({ lines: 5, landed: 0, rejected: 5 });
    // each commit covers one more batch of two lines
    expect(through).toEqual([2, 4, 5]);
    const kept = await wh.query<{ n: number | bigint }>(
      `select count(*) as n from cdp.rejected_events where payload in ('id,event', '4,Logged Out')`,
    );
    expect(Number(kept[0].n)).toBe(2);
  });

  it('hands a batch over early once its lines hold batchChars characters', async () => {
    const file = path.join(dir, 'wide.ndjson');
    const line = (i: number) =>
      JSON.stringify({ type: 'track', userId: 'wide-u', event: 'Viewed', messageId: `wide-${i}` });
    fs.writeFileSync(file, [1, 2, 3, 4, 5].map(line).join('\n'));
    const through: number[] = [];
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [file],
      batchLines: 1000,
      // two lines reach it
      batchChars: line(1).length + 1,
      onCommitted: (s) => through.push(s.throughLine),
    });
    expect(summary).toMatchObject({ landed: 5, rejected: 0 });
    expect(through).toEqual([2, 4, 5]);
  });

  it('rejects a line longer than any spelling of an event under the limit without parsing it, and keeps the whole line', async () => {
    const file = path.join(dir, 'long-lines.ndjson');
    const event = (i: number) => ({
      type: 'track',
      userId: 'long-u',
      event: 'Viewed',
      messageId: `long-${i}`,
    });
    // a JSON file of events on one line, and a huge line cut short (neither is one event)
    // (over 8 x 4096 bytes: no event of at most 4096 bytes as compact JSON is spelt that long)
    const array = JSON.stringify(Array.from({ length: 600 }, (_, i) => event(i)));
    const cut = JSON.stringify({ ...event(900), properties: { blob: 'x'.repeat(40_000) } }).slice(0, -3);
    const ok = JSON.stringify(event(901));
    fs.writeFileSync(file, [array, cut, ok].join('\n'));
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [file],
      maxEventBytes: 4096,
    });
    const arrayReason =
      'line is larger than 32768 bytes and starts with "[": load takes NDJSON, one event object per line (e.g. jq -c ".[]")';
    const cutReason = 'line is larger than 32768 bytes, which no event of at most 4096 bytes spells';
    expect(summary).toMatchObject({
      landed: 1,
      rejected: 2,
      badLines: [
        { file, line: 1, reason: arrayReason },
        { file, line: 2, reason: cutReason },
      ],
    });
    const kept = await wh.query<{ reason: string; payload: string }>(
      `select reason, payload from cdp.rejected_events where payload like '%long-0%' or payload like '%long-900%' order by reason desc`,
    );
    expect(kept).toEqual([
      { reason: cutReason, payload: cut },
      { reason: arrayReason, payload: array },
    ]);
  });

  it('measures an event as compact JSON, as the collector does, not as the line spells it', async () => {
    const file = path.join(dir, 'escaped.ndjson');
    // Python's json.dumps escapes every non-ASCII character (\u65e5, six bytes for three) and spaces its
    // separators: this line is about 45 kB for an event of about 22.6 kB
    const escaped = (id: string, repeat: number) =>
      JSON.stringify({
        type: 'track',
        userId: 'esc-u',
        event: 'Big',
        messageId: id,
        properties: { text: '日本語'.repeat(repeat) },
      })
        .replace(/[^\x00-\x7f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
        .replace(/":/g, '": ')
        .replace(/,"/g, ', "');
    const fits = escaped('esc-1', 2500);
    const over = escaped('esc-2', 3700);
    expect(Buffer.byteLength(fits)).toBeGreaterThan(32768);
    fs.writeFileSync(file, [fits, over].join('\n') + '\n');
    const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] });
    expect(summary).toMatchObject({
      landed: 1,
      rejected: 1,
      badLines: [{ file, line: 2, reason: 'event is larger than 32768 bytes' }],
    });
    const [row] = await wh.query<{ n: number }>(
      `select length(cast(properties->>'text' as varchar)) as n from cdp.tracks where id = 'esc-1'`,
    );
    expect(Number(row.n)).toBe(7500);
  });

  it('measures an event without its writeKey, as the collector strips it before measuring', async () => {
    const file = path.join(dir, 'sized-keys.ndjson');
    // the event as compact JSON, `bytes` long without its key; the key is a member the collector removes
    // (with the request's other write keys) before it validates, so it never counts toward the 32 KB
    const sized = (id: string, bytes: number) => {
      const event = { type: 'track', userId: 'wk-size', event: 'Big', messageId: id, properties: { t: '' } };
      event.properties.t = 'x'.repeat(bytes - Buffer.byteLength(JSON.stringify(event)));
      expect(Buffer.byteLength(JSON.stringify(event))).toBe(bytes);
      return JSON.stringify({ ...event, writeKey: 'wk-secret' });
    };
    fs.writeFileSync(file, [sized('wk-size-1', 32758), sized('wk-size-2', 32769)].join('\n') + '\n');
    const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] });
    expect(summary).toMatchObject({
      landed: 1,
      rejected: 1,
      badLines: [{ file, line: 2, reason: 'event is larger than 32768 bytes' }],
    });
    const landed = await wh.query<{ id: string }>(`select id from cdp.tracks where user_id = 'wk-size'`);
    expect(landed).toEqual([{ id: 'wk-size-1' }]);
    // the refused line is kept whole, as the collector keeps an event's text, with its key masked
    const [kept] = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where payload like '%wk-size-2%'`,
    );
    expect(kept.payload).toBe(sized('wk-size-2', 32769).replace('"wk-secret"', '"***"'));
  });

  it('keeps a line longer than it holds cut, and still lands the lines around it', async () => {
    const file = path.join(dir, 'huge-line.ndjson');
    const event = (i: number) =>
      JSON.stringify({ type: 'track', userId: 'huge-u', event: 'Viewed', messageId: `huge-${i}` });
    // a whole export on one line: past the most load holds of a line (here 10,000 characters)
    const array = `[${Array.from({ length: 300 }, (_, i) => event(100 + i)).join(',')}]`;
    fs.writeFileSync(file, [event(1), array, event(2)].join('\r\n') + '\n');
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: [file],
      maxEventBytes: 4096,
      maxLineChars: 10_000,
    });
    const reason = `line is larger than the 10000 characters load holds of a line: its first 10000 characters are kept as its payload; it starts with "[": load takes NDJSON, one event object per line (e.g. jq -c ".[]")`;
    expect(summary).toMatchObject({ landed: 2, rejected: 1, badLines: [{ file, line: 2, reason }] });
    expect(
      await wh.query<{ id: string }>(`select id from cdp.tracks where user_id = 'huge-u' order by id`),
    ).toEqual([{ id: 'huge-1' }, { id: 'huge-2' }]);
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where reason like 'line is larger than the 10000 characters%'`,
    );
    expect(kept).toEqual([{ payload: array.slice(0, 10_000) }]);
  });

  it('reads standard input for "-" and several files in order', async () => {
    const stdin = new PassThrough();
    const f2 = path.join(dir, 'more.ndjson');
    fs.writeFileSync(
      f2,
      JSON.stringify({ type: 'alias', userId: 'f-u9', previousId: 'f-a9', messageId: 'f-9' }),
    );
    stdin.end(
      Array.from({ length: 25 }, (_, i) =>
        JSON.stringify({ type: 'track', userId: 'stdin-user', event: 'Piped', messageId: `p-${i}` }),
      ).join('\r\n'),
    );
    let said = '';
    const summary = await loadFiles({
      warehouse: wh,
      rawSchema: 'cdp',
      files: ['-', f2],
      stdin,
      batchLines: 10,
      progress: {
        start: () => undefined,
        update: () => undefined,
        increment: () => undefined,
        stop: (t) => (said = String(t)),
      },
    });
    expect(summary).toMatchObject({ files: 2, lines: 26, landed: 26, rejected: 0, badLines: [] });
    // standard input is not a file
    expect(said).toBe('loaded 26 events from standard input and 1 file, 0 rejected');
    expect(await wh.query(`select count(*) as n from cdp.tracks where user_id = 'stdin-user'`)).toEqual([
      { n: 25 },
    ]);
    expect(await wh.query(`select previous_id from cdp.aliases where id = 'f-9'`)).toEqual([
      { previous_id: 'f-a9' },
    ]);
  });

  it('numbers lines as tail does: a lone carriage return does not end a line, and the rejection says so', async () => {
    const ev = (id: string): string =>
      JSON.stringify({ type: 'track', userId: 'cr-user', event: 'CR', messageId: id });
    const file = path.join(dir, 'old-mac.ndjson');
    // line 2 is two events joined by a CR alone (an old Mac line end)
    fs.writeFileSync(file, `${ev('cr-1')}\r\n${ev('cr-2')}\r${ev('cr-3')}\r\n${ev('cr-4')}\n`);
    const summary = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] });
    const reason =
      'line is not valid JSON and holds a carriage return not followed by a line feed: end lines with \\n or \\r\\n';
    expect(summary).toMatchObject({
      lines: 3,
      landed: 2,
      rejected: 1,
      badLines: [{ file, line: 2, reason }],
    });
    expect(await wh.query(`select id from cdp.tracks where user_id = 'cr-user' order by id`)).toEqual([
      { id: 'cr-1' },
      { id: 'cr-4' },
    ]);
    // the whole line is kept, both events in it
    const kept = await wh.query<{ payload: string }>(
      `select payload from cdp.rejected_events where reason = '${reason.replace(/'/g, "''")}'`,
    );
    expect(kept).toHaveLength(1);
    expect(kept[0].payload).toContain('cr-2');
    expect(kept[0].payload).toContain('cr-3');
    // a whole file of old Mac line ends is one line over the event limit: the reason still says why
    const mac = path.join(dir, 'old-mac-whole.ndjson');
    fs.writeFileSync(mac, Array.from({ length: 1000 }, (_, i) => ev(`mac-${i}`)).join('\r') + '\r');
    const whole = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [mac] });
    expect(whole).toMatchObject({
      lines: 1,
      landed: 0,
      badLines: [
        {
          file: mac,
          line: 1,
          reason:
            'line is not valid JSON and holds a carriage return not followed by a line feed: end lines with \\n or \\r\\n',
        },
      ],
    });
  });

  it('refuses a raw schema of views or foreign tables before writing anything, and creates nothing there', async () => {
    const file = path.join(dir, 'one.ndjson');
    fs.writeFileSync(
      file,
      JSON.stringify({ type: 'track', userId: 'v-u1', event: 'A', messageId: 'v-1' }) + '\n',
    );
    const relations = async (schema: string): Promise<string[]> =>
      (
        await wh.query<{ n: string }>(
          'select table_name as n from information_schema.tables where table_schema = $1 order by 1',
          [schema],
        )
      ).map((r) => r.n);
    // the views of docs/warehouse-destinations.md over a destination's tables
    await wh.exec('create schema seg_views');
    await wh.exec('create table seg_views.src (id text, event text)');
    await wh.exec('create view seg_views.tracks as select id, event from seg_views.src');
    await expect(loadFiles({ warehouse: wh, rawSchema: 'seg_views', files: [file] })).rejects.toThrow(
      'The raw schema seg_views holds views (tracks), and events land in tables: collect or load into another raw schema (--raw-schema) and union it into those views (docs/warehouse-destinations.md).',
    );
    expect(await relations('seg_views')).toEqual(['src', 'tracks']);
    // a destination's own tables, flattened
    await wh.exec('create schema seg_tables');
    await wh.exec('create table seg_tables.identifies (id text, user_id text, email text)');
    await expect(loadFiles({ warehouse: wh, rawSchema: 'seg_tables', files: [file] })).rejects.toThrow(
      /^The raw schema seg_tables holds tables of another shape \(identifies has no anonymous_id, timestamp, original_timestamp, sent_at, received_at, traits, context\): collect or load into a schema of your own/,
    );
    expect(await relations('seg_tables')).toEqual(['identifies']);
  });

  it('refuses a missing file with a clear error before loading anything', async () => {
    const missing = path.join(dir, 'nope.ndjson');
    await expect(loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [missing] })).rejects.toThrow(UserError);
    await expect(loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [missing] })).rejects.toThrow(
      `The file ${missing} does not exist: check the path.`,
    );
  });

  it('names a file that fails before its first line (a socket: no line number 0)', async () => {
    const sock = path.join(dir, 'events.sock');
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(sock, resolve));
    try {
      await expect(loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [sock] })).rejects.toThrow(
        new RegExp(
          `^Reading ${sock.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} failed before its first line: .*ENXIO`,
        ),
      );
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
