import * as http from 'node:http';
import * as readline from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import pino from 'pino';
import { describeEachWarehouse, PG_ADMIN_URL } from '../helpers/warehouses';
import { spawnTs } from '../helpers/cli';
import { openWarehouse, RAW_TABLES, type Warehouse } from '../../src/warehouse';
import { createTableSql } from '../../src/warehouse/raw-tables';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadFiles, startCollector, type Collector, type CollectorOptions } from '../../src/collector';
import { WarehouseUnavailableError } from '../../src/errors';
import { basic, postJson, TcpProxy } from './helpers';

const KEY = 'wk_res';

/**
 * Sends the headers and the first part of a body now; `finish()` sends the rest and resolves the response.
 * `key` null: no Authorization header (the key, if any, is in the body).
 */
function partialPost(
  url: string,
  path: string,
  value: unknown,
  key: string | null = KEY,
): {
  finish(): Promise<{ status: number; body: Record<string, unknown> }>;
  /** the answer, for a body never finished */
  answer: Promise<{ status: number; body: Record<string, unknown> }>;
} {
  const data = Buffer.from(JSON.stringify(value));
  const cut = Math.floor(data.length / 2);
  let settle: (r: { status: number; body: Record<string, unknown> }) => void = () => undefined;
  let fail: (e: unknown) => void = () => undefined;
  const done = new Promise<{ status: number; body: Record<string, unknown> }>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  const req = http.request(
    new URL(path, url),
    {
      method: 'POST',
      agent: false,
      headers: {
        'content-type': 'application/json',
        'content-length': data.length,
        ...(key === null ? {} : { authorization: basic(key) }),
      },
    },
    (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () =>
        settle({ status: res.statusCode ?? 0, body: JSON.parse(text) as Record<string, unknown> }),
      );
    },
  );
  req.on('error', fail);
  req.write(data.subarray(0, cut));
  return {
    answer: done,
    finish: () => {
      req.end(data.subarray(cut));
      return done;
    },
  };
}

const batchOf = (prefix: string, n: number) => ({
  batch: Array.from({ length: n }, (_, i) => ({
    type: 'track',
    userId: `${prefix}-user`,
    event: 'Resilience',
    messageId: `${prefix}-${i}`,
  })),
});

/** A PostgreSQL URL that reaches the server through a proxy the test can cut, as a network failure would. */
async function throughProxy(pgUrl: string): Promise<{ proxy: TcpProxy; url: string }> {
  const target = new URL(PG_ADMIN_URL);
  const proxy = new TcpProxy(target.hostname, Number(target.port || 5432));
  await proxy.start();
  const u = new URL(pgUrl);
  u.port = String(proxy.port);
  return { proxy, url: u.toString() };
}

describeEachWarehouse(
  'collector when PostgreSQL goes away',
  ({ tw }) => {
    let proxy: TcpProxy;
    let wh: Warehouse;
    let direct: Warehouse;
    let collector: Collector;
    const logs: Array<{ msg: string }> = [];

    beforeAll(async () => {
      let url: string;
      ({ proxy, url } = await throughProxy(tw().url));
      wh = await openWarehouse(url);
      direct = await tw().open();
      collector = await startCollector({
        warehouse: wh,
        rawSchema: 'cdp',
        port: 0,
        host: '127.0.0.1',
        writeKeys: [KEY],
        logger: pino({ level: 'info' }, { write: (line: string) => void logs.push(JSON.parse(line)) }),
      });
    });
    afterAll(async () => {
      await collector.close();
      await wh.close();
      await direct.close();
      await proxy.cut();
    });

    const landed = async (prefix: string): Promise<number> => {
      const [r] = await direct.query<{ n: number }>(
        'select count(*) as n from cdp.tracks where user_id = $1',
        [`${prefix}-user`],
      );
      return r.n;
    };

    it('answers 503 while it is gone (nothing of the request lands), then recovers', async () => {
      expect((await postJson(collector.url, '/v1/batch', batchOf('before', 3), KEY)).status).toBe(200);
      expect(await landed('before')).toBe(3);

      // The warehouse goes away in the middle of a request: half of its body is already in.
      const inFlight = partialPost(collector.url, '/v1/batch', batchOf('during', 50));
      await proxy.cut();
      const during = await inFlight.finish();
      expect(during).toEqual({
        status: 503,
        body: { success: false, error: 'The warehouse is unavailable; nothing was stored, retry later.' },
      });
      const health = await fetch(`${collector.url}/health`);
      expect(health.status).toBe(503);
      expect(await health.json()).toEqual({ status: 'unavailable' });
      const detailed = await fetch(`${collector.url}/health`, { headers: { authorization: basic(KEY) } });
      expect(detailed.status).toBe(503);
      expect(await detailed.json()).toEqual({ status: 'unavailable', error: expect.stringMatching(/\S/) });
      // the operator learns why from the log, once however often the probe asks
      expect(logs.filter((l) => l.msg === 'health check: warehouse unavailable')).toHaveLength(1);
      // a request while it stays gone: the SDK is told when to come back, as for too many requests
      const meanwhile = await postJson(collector.url, '/v1/batch', batchOf('meanwhile', 2), KEY);
      expect(meanwhile.status).toBe(503);
      expect(meanwhile.headers['retry-after']).toBe('5');

      await proxy.restore();
      const after = await postJson(collector.url, '/v1/batch', batchOf('during', 50), KEY);
      expect(after.status).toBe(200);
      expect(await landed('during')).toBe(50);
      expect((await fetch(`${collector.url}/health`)).status).toBe(200);
      expect(logs.filter((l) => l.msg === 'health check: warehouse available again')).toHaveLength(1);
    }, 60000);

    it('makes `load` fail with WarehouseUnavailableError (a one-sentence error) when it is gone', async () => {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-res-'));
      const file = path.join(dir, 'e.ndjson');
      fs.writeFileSync(
        file,
        batchOf('load', 30)
          .batch.map((e) => JSON.stringify(e))
          .join('\n'),
      );
      try {
        await proxy.cut();
        await expect(
          loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file], batchLines: 10 }),
        ).rejects.toThrow(WarehouseUnavailableError);
        await proxy.restore();
        const s = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file], batchLines: 10 });
        expect(s).toMatchObject({ landed: 30, rejected: 0 });
        expect(await landed('load')).toBe(30);
      } finally {
        fs.rmSync(dir, { recursive: true, force: true });
      }
    }, 60000);
  },
  ['postgres'],
);

describeEachWarehouse(
  'collector when its DuckDB file can no longer be written',
  ({ tw }) => {
    it('answers 503 (nothing stored, the SDK retries) while its write-ahead log cannot be written, then lands the resend', async () => {
      const wh = await tw().open();
      const collector = await startCollector({
        warehouse: wh,
        rawSchema: 'cdp',
        port: 0,
        host: '127.0.0.1',
        writeKeys: [KEY],
        logger: pino({ level: 'silent' }),
      });
      const wal = `${tw().url.replace(/^duckdb:\/\//, '')}.wal`;
      try {
        expect((await postJson(collector.url, '/v1/batch', batchOf('io-before', 2), KEY)).status).toBe(200);
        // The log is folded into the file and removed; a directory where DuckDB makes it again fails the next
        // commit as a full disk or a read-only folder does (DuckDB's "Cannot open file …": a real I/O error,
        // whoever runs the test, without mounting anything)
        await wh.exec('checkpoint');
        expect(fs.existsSync(wal)).toBe(false);
        fs.mkdirSync(wal);
        const res = await postJson(collector.url, '/v1/batch', batchOf('io-during', 3), KEY);
        expect(res).toMatchObject({
          status: 503,
          body: { success: false, error: 'The warehouse is unavailable; nothing was stored, retry later.' },
        });
        // /health asks the warehouse a query, which it still answers: it checks the connection, not writes
        expect((await fetch(`${collector.url}/health`)).status).toBe(200);
        fs.rmdirSync(wal);
        expect((await postJson(collector.url, '/v1/batch', batchOf('io-during', 3), KEY)).status).toBe(200);
        expect(await wh.query(`select user_id, count(*) as n from cdp.tracks group by 1 order by 1`)).toEqual(
          [
            { user_id: 'io-before-user', n: 2 },
            { user_id: 'io-during-user', n: 3 },
          ],
        );
        expect(await wh.query(`select reason from cdp.rejected_events`)).toEqual([]);
      } finally {
        if (fs.existsSync(wal) && fs.statSync(wal).isDirectory()) fs.rmdirSync(wal);
        await collector.close();
        await wh.close();
      }
    });

    it('makes the write fail with WarehouseUnavailableError, naming the file, and `load` with it', async () => {
      const wh = await tw().open();
      const wal = `${tw().url.replace(/^duckdb:\/\//, '')}.wal`;
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-io-'));
      try {
        await wh.exec('checkpoint');
        fs.mkdirSync(wal);
        const file = path.join(dir, 'e.ndjson');
        fs.writeFileSync(file, JSON.stringify(batchOf('io-load', 1).batch[0]));
        const failed = await loadFiles({ warehouse: wh, rawSchema: 'cdp', files: [file] }).catch(
          (e: unknown) => e,
        );
        expect(failed).toBeInstanceOf(WarehouseUnavailableError);
        expect((failed as Error).message).toMatch(
          /The DuckDB file .* cannot be written \(.*Cannot open file/,
        );
      } finally {
        if (fs.existsSync(wal)) fs.rmdirSync(wal);
        fs.rmSync(dir, { recursive: true, force: true });
        await wh.close();
      }
    });
  },
  ['duckdb'],
);

function waitForLine(child: ChildProcess, test: (line: string) => boolean): Promise<string> {
  return new Promise((resolve, reject) => {
    const rl = readline.createInterface({ input: child.stdout as NodeJS.ReadableStream });
    const onExit = (code: number | null) => reject(new Error(`collector exited early with ${String(code)}`));
    child.once('exit', onExit);
    rl.on('line', (line) => {
      if (test(line)) {
        child.off('exit', onExit);
        rl.close();
        resolve(line);
      }
    });
  });
}

describeEachWarehouse('collector process on SIGTERM', ({ tw }) => {
  it('stops accepting, drains the in-flight request, flushes, closes the warehouse and exits 0', async () => {
    const child = spawnTs('test/collect/fixtures/collector-main.ts', [tw().url, KEY]);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const ready = await waitForLine(child, (l) => l.startsWith('{"ready"'));
      const url = (JSON.parse(ready) as { ready: string }).ready;
      const received = waitForLine(child, (l) => l.includes('"request received"'));
      const inFlight = partialPost(url, '/v1/batch', batchOf('drain', 200));
      await received;
      child.kill('SIGTERM');
      await waitForLine(child, (l) => l.includes('shutting down'));
      // New connections are refused once it is draining.
      await expect(fetch(`${url}/health`)).rejects.toThrow();
      const res = await inFlight.finish();
      expect(res).toEqual({ status: 200, body: { success: true, landed: 200, rejected: [] } });
      expect(await exited).toBe(0);
    } finally {
      child.kill('SIGKILL');
    }
    expect(stderr).toBe('');
    const wh = await tw().open();
    try {
      expect(await wh.query(`select count(*) as n from cdp.tracks where user_id = 'drain-user'`)).toEqual([
        { n: 200 },
      ]);
    } finally {
      await wh.close();
    }
  }, 60000);
});

/**
 * A collector over a fresh raw schema whose tracks table is the landing shape as `change` alters it (what a
 * DBA added), after which `extra` statements run.
 */
async function collectorOverTracks(
  wh: Warehouse,
  schema: string,
  change: (ddl: string) => string,
  extra: string[] = [],
  logger = pino({ level: 'silent' }),
): Promise<Collector> {
  await wh.exec(`drop schema if exists ${schema} cascade`);
  await wh.exec(`create schema ${schema}`);
  await wh.exec(change(createTableSql(wh.dialect, schema, RAW_TABLES.tracks)));
  for (const sql of extra) await wh.exec(sql);
  return startCollector({
    warehouse: wh,
    rawSchema: schema,
    port: 0,
    host: '127.0.0.1',
    writeKeys: [KEY],
    logger,
  });
}

describeEachWarehouse('collector when the warehouse refuses some valid events', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_refusing';
  // the collector's warnings and errors, shown when a request is not answered as expected
  const logged: string[] = [];
  const expectStatus = (res: { status: number; body: unknown }, status: number): void => {
    if (res.status !== status) {
      throw new Error(
        `answered ${res.status} ${JSON.stringify(res.body)}; collector log:\n${logged.join('\n')}`,
      );
    }
  };

  beforeAll(async () => {
    wh = await tw().open();
    // A raw table of the landing shape with a constraint a DBA added: it refuses rows the validator passes.
    collector = await collectorOverTracks(
      wh,
      schema,
      (ddl) => ddl.replace(/\)$/, `, constraint no_blocked check (event_text <> 'Blocked'))`),
      [],
      pino({ level: 'warn' }, { write: (line: string) => void logged.push(line.trim()) }),
    );
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  it('lands the valid events of the request and quarantines the refused ones with the warehouse message', async () => {
    const events = Array.from({ length: 7 }, (_, i) => ({
      type: 'track',
      userId: 'refused-user',
      event: i === 2 || i === 5 ? 'Blocked' : 'Fine',
      messageId: `refused-${i}`,
    }));
    // one invalid event too, rejected by the validator before any write
    const batch = [...events, { type: 'track', userId: 'refused-user', messageId: 'refused-noevent' }];
    const res = await postJson(collector.url, '/v1/batch', { batch }, KEY);
    expect(res.status).toBe(200);
    const body = res.body as { landed: number; rejected: Array<{ index: number; reason: string }> };
    expect(body.landed).toBe(5);
    expect(body.rejected.map((r) => r.index)).toEqual([2, 5, 7]);
    expect(body.rejected[0].reason).toMatch(
      /^the warehouse refused it: .*no_blocked|^the warehouse refused it: .*CHECK/i,
    );
    expect(body.rejected[2].reason).toBe('track call without event');
    const landed = await wh.query<{ id: string }>(
      `select id from ${schema}.tracks where user_id = 'refused-user' order by id`,
    );
    expect(landed.map((r) => r.id)).toEqual([
      'refused-0',
      'refused-1',
      'refused-3',
      'refused-4',
      'refused-6',
    ]);
    const quarantined = await wh.query<{ payload: string }>(
      `select payload from ${schema}.rejected_events order by payload`,
    );
    expect(quarantined.map((r) => (JSON.parse(r.payload) as { messageId: string }).messageId).sort()).toEqual(
      ['refused-2', 'refused-5', 'refused-noevent'],
    );
    // each as sent (the batch's element text), not as the collector normalised it (receivedAt added…)
    expect(quarantined.map((r) => r.payload).sort()).toEqual(
      batch
        .filter((_, i) => [2, 5, 7].includes(i))
        .map((e) => JSON.stringify(e))
        .sort(),
    );
  });

  it('quarantines a lone refused event (as analytics.js sends them) instead of failing it for the SDK to resend forever', async () => {
    const res = await postJson(
      collector.url,
      '/v1/track',
      { userId: 'lone-user', event: 'Blocked', messageId: 'lone-blocked' },
      KEY,
    );
    expectStatus(res, 200);
    const body = res.body as { landed: number; rejected: Array<{ index: number; reason: string }> };
    expect(body.landed).toBe(0);
    expect(body.rejected.map((r) => r.index)).toEqual([0]);
    expect(body.rejected[0].reason).toMatch(/^the warehouse refused it: .*(no_blocked|CHECK)/i);
    // every event of a batch refused: all quarantined, none resent
    const all = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'lone-user', event: 'Blocked', messageId: 'all-blocked-0' },
          { type: 'track', userId: 'lone-user', event: 'Blocked', messageId: 'all-blocked-1' },
        ],
      },
      KEY,
    );
    expectStatus(all, 200);
    expect((all.body as { rejected: Array<{ index: number }> }).rejected.map((r) => r.index)).toEqual([0, 1]);
    const quarantined = await wh.query<{ payload: string }>(
      `select payload from ${schema}.rejected_events where payload like '%-blocked%'`,
    );
    expect(quarantined.map((r) => (JSON.parse(r.payload) as { messageId: string }).messageId).sort()).toEqual(
      ['all-blocked-0', 'all-blocked-1', 'lone-blocked'],
    );
    // the neutral event that told the table's health apart was rolled back
    const probes = await wh.query(
      `select id from ${schema}.tracks where user_id = 'cdp-lifecycle-probe' or user_id = 'lone-user'`,
    );
    expect(probes).toEqual([]);
  });
});

describeEachWarehouse('collector when a raw table refuses every row', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_refusing_all';

  beforeAll(async () => {
    wh = await tw().open();
    // A column the collector does not fill, which a DBA made NOT NULL: no row can land until it is fixed.
    collector = await collectorOverTracks(wh, schema, (ddl) => ddl.replace(/\)$/, `, tenant text not null)`));
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  it('fails a batch whose other call types land (500) and stores nothing of it', async () => {
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'identify', userId: 'u-tenant', messageId: 'tenant-0' },
          { type: 'track', userId: 'u-tenant', event: 'Fine', messageId: 'tenant-1' },
        ],
      },
      KEY,
    );
    expect(res.status).toBe(500);
    expect(await wh.query(`select id from ${schema}.identifies`)).toEqual([]);
    expect(await wh.query(`select id from ${schema}.tracks`)).toEqual([]);
    expect(await wh.query(`select reason from ${schema}.rejected_events`)).toEqual([]);
  });

  it('fails the request (the SDK retries it once the table is fixed) and quarantines nothing', async () => {
    const res = await postJson(
      collector.url,
      '/v1/track',
      { userId: 'u-all', event: 'Fine', messageId: 'refused-all-0' },
      KEY,
    );
    expect(res.status).toBe(500);
    expect(await wh.query(`select id from ${schema}.tracks`)).toEqual([]);
    expect(await wh.query(`select payload from ${schema}.rejected_events`)).toEqual([]);
    // fixed by the DBA: the same event, resent, lands
    await wh.exec(`alter table ${schema}.tracks drop column tenant`);
    const again = await postJson(
      collector.url,
      '/v1/track',
      { userId: 'u-all', event: 'Fine', messageId: 'refused-all-0' },
      KEY,
    );
    expect(again.status).toBe(200);
    expect(await wh.query<{ id: string }>(`select id from ${schema}.tracks`)).toEqual([
      { id: 'refused-all-0' },
    ]);
  });
});

describeEachWarehouse('collector when a raw table refuses what a neutral event lacks too', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_refusing_neutral';
  const stored = async (): Promise<unknown[]> => [
    ...(await wh.query(`select 'tracks' as t, id from ${schema}.tracks`)),
    ...(await wh.query(`select 'identifies' as t, id from ${schema}.identifies`)),
    ...(await wh.query(`select 'rejected' as t, reason from ${schema}.rejected_events`)),
  ];

  beforeAll(async () => {
    wh = await tw().open();
    // A NOT NULL a DBA put on anonymous_id, which a valid event (and the neutral one) may lack
    collector = await collectorOverTracks(wh, schema, (ddl) =>
      ddl.replace(/"anonymous_id" (text|varchar)/, '"anonymous_id" $1 not null'),
    );
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  it('fails a batch in which some events land (500) and stores nothing of it, lone or mixed alike', async () => {
    const lone = await postJson(
      collector.url,
      '/v1/track',
      { userId: 'u-nn', event: 'Fine', messageId: 'nn-lone' },
      KEY,
    );
    expect(lone.status).toBe(500);
    // the first event would land, the second is refused for lacking what the neutral event lacks too
    const batch = {
      batch: [
        { type: 'track', userId: 'u-nn', anonymousId: 'a-nn', event: 'Fine', messageId: 'nn-0' },
        { type: 'track', userId: 'u-nn', event: 'Fine', messageId: 'nn-1' },
        { type: 'identify', userId: 'u-nn', messageId: 'nn-2' },
        { type: 'track', userId: 'u-nn', messageId: 'nn-invalid' },
      ],
    };
    const mixed = await postJson(collector.url, '/v1/batch', batch, KEY);
    expect(mixed.status).toBe(500);
    // neither the events that would land, nor the refused one, nor the invalid one: the SDK resends them all
    expect(await stored()).toEqual([]);
    // fixed by the DBA: the same batch, resent, lands once
    await wh.exec(`alter table ${schema}.tracks alter column anonymous_id drop not null`);
    const again = await postJson(collector.url, '/v1/batch', batch, KEY);
    expect(again.body).toMatchObject({ landed: 3, rejected: [{ index: 3 }] });
    expect(await wh.query(`select id from ${schema}.tracks order by id`)).toEqual([
      { id: 'nn-0' },
      { id: 'nn-1' },
    ]);
  });
});

describeEachWarehouse('collector over a raw table with a unique id', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_unique_id';

  beforeAll(async () => {
    wh = await tw().open();
    collector = await collectorOverTracks(wh, schema, (ddl) => ddl.replace(/\)$/, `, unique (id))`));
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  it('lands the first of two events with the same id in one request and quarantines the second', async () => {
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'u-dup', event: 'A', messageId: 'dup-0' },
          { type: 'track', userId: 'u-dup', event: 'B', messageId: 'dup-1' },
          { type: 'track', userId: 'u-dup', event: 'C', messageId: 'dup-1' },
        ],
      },
      KEY,
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ landed: 2, rejected: [{ index: 2 }] });
    expect(await wh.query(`select id, event_text from ${schema}.tracks order by id`)).toEqual([
      { id: 'dup-0', event_text: 'A' },
      { id: 'dup-1', event_text: 'B' },
    ]);
    expect(
      (await wh.query<{ payload: string }>(`select payload from ${schema}.rejected_events`)).map(
        (r) => (JSON.parse(r.payload) as { event: string }).event,
      ),
    ).toEqual(['C']);
  });
  it('quarantines an event whose id a stored row already holds, and lands the rest', async () => {
    const first = await postJson(
      collector.url,
      '/v1/track',
      { type: 'track', userId: 'u-stored', event: 'Stored', messageId: 'stored-0' },
      KEY,
    );
    expect(first.status).toBe(200);
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'u-stored', event: 'New', messageId: 'stored-1' },
          { type: 'track', userId: 'u-stored', event: 'Again', messageId: 'stored-0' },
        ],
      },
      KEY,
    );
    // not a 500 the SDK would resend forever: the unique index refuses this event, not the table every row
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ landed: 1, rejected: [{ index: 1 }] });
    expect((res.body as { rejected: Array<{ reason: string }> }).rejected[0].reason).toMatch(
      /^the warehouse refused it: .*(duplicate key|unique)/i,
    );
    expect(
      await wh.query(`select id, event_text from ${schema}.tracks where user_id = 'u-stored' order by id`),
    ).toEqual([
      { id: 'stored-0', event_text: 'Stored' },
      { id: 'stored-1', event_text: 'New' },
    ]);
  });

  it('reads a refused id that quotes words of a disk error as the refusal it is, not as an unavailable warehouse', async () => {
    const id = 'Cannot open file "q';
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'u-quoted', event: 'A', messageId: 'quoted-0' },
          { type: 'track', userId: 'u-quoted', event: 'B', messageId: id },
          { type: 'track', userId: 'u-quoted', event: 'C', messageId: id },
        ],
      },
      KEY,
    );
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ landed: 2, rejected: [{ index: 2 }] });
    expect(
      await wh.query(`select id, event_text from ${schema}.tracks where user_id = 'u-quoted' order by id`),
    ).toEqual([
      { id, event_text: 'B' },
      { id: 'quoted-0', event_text: 'A' },
    ]);
  });
});

describeEachWarehouse('collector over a raw table a DBA reshaped', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_reshaped';

  beforeAll(async () => {
    wh = await tw().open();
    // the columns of SPEC 3 in another order, and one more that the collector does not fill
    const reversed = { ...RAW_TABLES.tracks, columns: [...RAW_TABLES.tracks.columns].reverse() };
    collector = await collectorOverTracks(wh, schema, () => createTableSql(wh.dialect, schema, reversed), [
      `alter table ${schema}.tracks add column loaded_at timestamptz default current_timestamp`,
    ]);
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  it('lands each value in the column of its name, and the extra column takes its default', async () => {
    const res = await postJson(
      collector.url,
      '/v1/batch',
      {
        batch: [
          { type: 'track', userId: 'u-1', anonymousId: 'a-1', event: 'Order Completed', messageId: 'r-1' },
          { type: 'track', userId: 'u-2', anonymousId: 'a-2', event: 'Signed Up', messageId: 'r-2' },
        ],
      },
      KEY,
    );
    expect(res).toMatchObject({ status: 200, body: { landed: 2, rejected: [] } });
    expect(
      await wh.query(
        `select id, user_id, anonymous_id, event, event_text, loaded_at is not null as stamped
           from ${schema}.tracks order by id`,
      ),
    ).toEqual([
      {
        id: 'r-1',
        user_id: 'u-1',
        anonymous_id: 'a-1',
        event: 'order_completed',
        event_text: 'Order Completed',
        stamped: true,
      },
      {
        id: 'r-2',
        user_id: 'u-2',
        anonymous_id: 'a-2',
        event: 'signed_up',
        event_text: 'Signed Up',
        stamped: true,
      },
    ]);
  });
});

describeEachWarehouse(
  'collector over a raw table partitioned by time that lacks the partition of the events',
  ({ tw }) => {
    it('fails the request (a replay of old events is retried, not quarantined)', async () => {
      const wh = await tw().open();
      const schema = 'cdp_partitioned';
      const year = new Date().getUTCFullYear();
      // partitions for 2024 and for the years around now, none for 2023
      const collector = await collectorOverTracks(
        wh,
        schema,
        (ddl) => `${ddl} partition by range ("timestamp")`,
        [
          `create table ${schema}.tracks_2024 partition of ${schema}.tracks for values from ('2024-01-01') to ('2025-01-01')`,
          `create table ${schema}.tracks_now partition of ${schema}.tracks for values from ('${year - 1}-01-01') to ('${year + 2}-01-01')`,
        ],
      );
      try {
        const old = {
          userId: 'u-old',
          event: 'Replayed',
          messageId: 'old-1',
          timestamp: '2023-06-01T10:00:00Z',
        };
        expect((await postJson(collector.url, '/v1/track', old, KEY)).status).toBe(500);
        expect(await wh.query(`select payload from ${schema}.rejected_events`)).toEqual([]);
        const fine = { ...old, messageId: 'new-1', timestamp: '2024-06-01T10:00:00Z' };
        expect((await postJson(collector.url, '/v1/track', fine, KEY)).status).toBe(200);
        expect(await wh.query(`select id from ${schema}.tracks`)).toEqual([{ id: 'new-1' }]);
      } finally {
        await collector.close();
        await wh.exec(`drop schema ${schema} cascade`);
        await wh.close();
      }
    });
  },
  ['postgres'],
);

describeEachWarehouse(
  'collector when a write fails for a reason of the warehouse, not of the events',
  ({ tw }) => {
    let wh: Warehouse;
    let collector: Collector;
    const schema = 'cdp_transient';

    beforeAll(async () => {
      wh = await tw().open();
      // a deadlock on the first insert only (a sequence, which the failed transaction does not roll back): what
      // a retry a moment later gets past
      collector = await collectorOverTracks(wh, schema, (ddl) => ddl, [
        `create sequence ${schema}.fired`,
        `create function ${schema}.deadlock_once() returns trigger language plpgsql as $$
        begin
          if nextval('${schema}.fired') = 1 then
            raise exception 'deadlock detected (simulated)' using errcode = '40P01';
          end if;
          return new;
        end $$`,
        `create trigger deadlock_once before insert on ${schema}.tracks for each row execute function ${schema}.deadlock_once()`,
      ]);
    });
    afterAll(async () => {
      await collector.close();
      await wh.close();
    });

    it('fails the request (500) instead of quarantining its events, and the resend lands', async () => {
      const event = { userId: 'u-transient', event: 'Fine', messageId: 'transient-0' };
      const res = await postJson(collector.url, '/v1/track', event, KEY);
      expect(res.status).toBe(500);
      expect(await wh.query(`select payload from ${schema}.rejected_events`)).toEqual([]);
      const again = await postJson(collector.url, '/v1/track', event, KEY);
      expect(again.status).toBe(200);
      expect(await wh.query(`select id from ${schema}.tracks`)).toEqual([{ id: 'transient-0' }]);
    });

    it('judges a table whose deferred constraint refuses every row as broken (500), not the events', async () => {
      await wh.exec(`create table ${schema}.tenants (id text primary key)`);
      await wh.exec(
        `alter table ${schema}.tracks add column tenant text references ${schema}.tenants (id) deferrable initially deferred`,
      );
      await wh.exec(`alter table ${schema}.tracks alter column tenant set default 'none'`);
      const res = await postJson(
        collector.url,
        '/v1/track',
        { userId: 'u-deferred', event: 'Fine', messageId: 'deferred-0' },
        KEY,
      );
      expect(res.status).toBe(500);
      expect(await wh.query(`select payload from ${schema}.rejected_events`)).toEqual([]);
      expect(await wh.query(`select id from ${schema}.tracks where id = 'deferred-0'`)).toEqual([]);
    });
  },
  ['postgres'],
);

describeEachWarehouse('collector when its raw tables are dropped while it runs', ({ tw }) => {
  let wh: Warehouse;
  let collector: Collector;
  const schema = 'cdp_dropped';

  beforeAll(async () => {
    wh = await tw().open();
    collector = await collectorOverTracks(wh, schema, (ddl) => ddl);
  });
  afterAll(async () => {
    await collector.close();
    await wh.close();
  });

  const track = (id: string) =>
    postJson(collector.url, '/v1/track', { userId: 'u-drop', event: 'E', messageId: id }, KEY);
  const group = (id: string) =>
    postJson(collector.url, '/v1/group', { userId: 'u-drop', groupId: 'g', messageId: id }, KEY);

  it('creates a dropped table again and lands the event, instead of answering 500 until a restart', async () => {
    expect((await track('before-drop')).status).toBe(200);
    await wh.exec(`drop table ${schema}.groups`);
    expect((await group('after-table-drop')).status).toBe(200);
    expect(await wh.query(`select id from ${schema}.groups`)).toEqual([{ id: 'after-table-drop' }]);
  });

  it('lands every one of many requests that meet the dropped schema together', async () => {
    await wh.exec(`drop schema ${schema} cascade`);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => track(`together-${i}`)));
    expect(answers.map((a) => a.status)).toEqual(Array.from({ length: 20 }, () => 200));
    expect(await wh.query(`select count(*) as n from ${schema}.tracks where id like 'together-%'`)).toEqual([
      { n: 20 },
    ]);
  });

  it('creates a dropped schema again with every raw table', async () => {
    await wh.exec(`drop schema ${schema} cascade`);
    expect((await track('after-schema-drop')).status).toBe(200);
    expect(await wh.query(`select id from ${schema}.tracks`)).toEqual([{ id: 'after-schema-drop' }]);
    for (const t of Object.values(RAW_TABLES)) expect(await wh.tableExists(schema, t.name)).toBe(true);
  });
});

describeEachWarehouse(
  'collector under a burst of requests',
  ({ tw }) => {
    const start = (wh: Warehouse, limits: Partial<CollectorOptions>) =>
      startCollector({
        warehouse: wh,
        rawSchema: 'cdp',
        port: 0,
        host: '127.0.0.1',
        writeKeys: [KEY],
        logger: pino({ level: 'silent' }),
        ...limits,
      });
    it('answers 503 with Retry-After past its concurrent requests, before reading the body, and lands each request once when retried', async () => {
      const wh = await tw().open();
      const collector = await start(wh, { maxConcurrentRequests: 2 });
      const landed = async (prefix: string): Promise<number> => {
        const [r] = await wh.query<{ n: number }>('select count(*) as n from cdp.tracks where user_id = $1', [
          `${prefix}-user`,
        ]);
        return r.n;
      };
      try {
        // two requests whose bodies are still coming in hold both places
        const a = partialPost(collector.url, '/v1/batch', batchOf('burst-a', 5));
        const b = partialPost(collector.url, '/v1/batch', batchOf('burst-b', 5));
        await new Promise((resolve) => setTimeout(resolve, 300));
        const third = await fetch(`${collector.url}/v1/batch`, {
          method: 'POST',
          headers: { authorization: basic(KEY), 'content-type': 'application/json' },
          body: JSON.stringify(batchOf('burst-c', 5)),
        });
        expect(third.status).toBe(503);
        expect(third.headers.get('retry-after')).toBe('1');
        expect(await third.json()).toEqual({
          success: false,
          error: 'The collector is handling 2 requests already; nothing was stored, retry later.',
        });
        // the probe is not an event request: it is still answered
        expect((await fetch(`${collector.url}/health`)).status).toBe(200);
        expect((await a.finish()).status).toBe(200);
        expect((await b.finish()).status).toBe(200);
        expect(await landed('burst-c')).toBe(0);
        // what an SDK does after the 503: the same batch again, which lands once the places are free
        expect((await postJson(collector.url, '/v1/batch', batchOf('burst-c', 5), KEY)).status).toBe(200);
        expect([await landed('burst-a'), await landed('burst-b'), await landed('burst-c')]).toEqual([
          5, 5, 5,
        ]);

        // Requests that have not shown a key before their body (left open here, without it) fill a pool of
        // their own: the SDKs, whose Basic-auth key checks out first, still get through.
        const withKeyInBody = (prefix: string) => ({ ...batchOf(prefix, 3), writeKey: KEY });
        const open1 = partialPost(collector.url, '/v1/batch', withKeyInBody('burst-d'), null);
        const open2 = partialPost(collector.url, '/v1/batch', withKeyInBody('burst-e'), null);
        await new Promise((resolve) => setTimeout(resolve, 300));
        expect((await postJson(collector.url, '/v1/batch', batchOf('burst-f', 5), KEY)).status).toBe(200);
        const refused = await fetch(`${collector.url}/v1/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify(withKeyInBody('burst-g')),
        });
        expect(refused.status).toBe(503);
        // a wrong key in the header is refused before it takes a place or its body is read
        expect((await postJson(collector.url, '/v1/batch', batchOf('burst-h', 1), 'wrong')).status).toBe(401);
        expect((await open1.finish()).status).toBe(200);
        expect((await open2.finish()).status).toBe(200);
        expect([await landed('burst-d'), await landed('burst-f'), await landed('burst-g')]).toEqual([
          3, 5, 0,
        ]);
      } finally {
        await collector.close();
        await wh.close();
      }
    }, 30000);

    it('answers 408 to a body that stops arriving and frees its place, so a stalled sender cannot lock others out', async () => {
      const wh = await tw().open();
      const collector = await start(wh, { maxConcurrentRequests: 1, bodyStallMs: 500 });
      try {
        // a sender without a key in its header (analytics.js puts it in the body) that sends half and stops
        const stalled = partialPost(
          collector.url,
          '/v1/batch',
          { ...batchOf('stall-a', 2), writeKey: KEY },
          null,
        );
        stalled.answer.catch(() => undefined);
        await new Promise((resolve) => setTimeout(resolve, 150));
        const send = () =>
          fetch(`${collector.url}/v1/batch`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ ...batchOf('stall-b', 2), writeKey: KEY }),
          });
        expect((await send()).status).toBe(503);
        const answer = await stalled.answer;
        expect(answer).toEqual({
          status: 408,
          body: { success: false, error: 'The request body stopped arriving: nothing came for 0.5 s.' },
        });
        expect((await send()).status).toBe(200);
        const [r] = await wh.query<{ n: number }>(
          `select count(*) as n from cdp.tracks where user_id in ('stall-a-user', 'stall-b-user')`,
        );
        expect(r.n).toBe(2);
      } finally {
        await collector.close();
        await wh.close();
      }
    }, 30000);
  },
  ['duckdb'],
);

/**
 * `load` that loses PostgreSQL after a batch committed: the error says how many events landed and where the
 * rest starts, as an interruption does, so that a rerun does not land the first batch twice.
 */
describeEachWarehouse(
  'a load that loses PostgreSQL on the way',
  ({ tw }) => {
    it('says how many events landed and the line the rest starts at', async () => {
      const { proxy, url } = await throughProxy(tw().url);
      const direct = await tw().open();
      try {
        const child = spawnTs('src/cli/run.ts', ['load', '-', '--warehouse', url]);
        let stderr = '';
        child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
        const closed = new Promise<number | null>((resolve) => child.on('close', resolve));
        const lines = (from: number, n: number) =>
          Array.from({ length: n }, (_, i) =>
            JSON.stringify({ type: 'track', userId: 'lost-u', event: 'Lost', messageId: `lost-${from + i}` }),
          ).join('\n') + '\n';
        // one whole batch (2,000 lines), committed before the warehouse goes
        child.stdin?.write(lines(0, 2000));
        const count = async (): Promise<number> => {
          try {
            const [r] = await direct.query<{ n: number }>(
              `select count(*) as n from cdp.tracks where user_id = 'lost-u'`,
            );
            return Number(r.n);
          } catch {
            return 0;
          }
        };
        // the child compiles TypeScript on start, which takes many seconds on a loaded CI machine
        const deadline = Date.now() + 60_000;
        while (Date.now() < deadline && (await count()) < 2000) await new Promise((r) => setTimeout(r, 50));
        expect(await count()).toBe(2000);
        await proxy.cut();
        child.stdin?.end(lines(2000, 10));
        expect(await closed).toBe(1);
        expect(stderr).toMatch(
          /^error: .*\. 2,000 events had landed, from stdin up to line 2,000; nothing after it was written\. To land the rest only, load from line 2,001 of standard input: /m,
        );
        expect(await count()).toBe(2000);
      } finally {
        await direct.close();
        await proxy.cut();
      }
    }, 120_000);
  },
  ['postgres'],
);
