import { createHash } from 'node:crypto';
import { describeEachWarehouse } from '../helpers/warehouses';
import type { Warehouse } from '../../src/warehouse';
import { UsageError } from '../../src/errors';
import { parseTraitsOption, runSync, messageIdFor } from '../../src/sync';
import { backoffMs, DEFAULT_RETRY, RateLimiter } from '../../src/sync/delivery';
import { classify, describeNetworkError, parseRetryAfter } from '../../src/sync/transport';
import { writeUserLifecycle } from './helpers/lifecycle-fixture';

describe('--traits parsing', () => {
  it('accepts pairs, bare names and JSON', () => {
    expect(parseTraitsOption('lifecycle_status=lifecycle_status, rfm=rfm_segment')).toEqual({
      lifecycle_status: 'lifecycle_status',
      rfm: 'rfm_segment',
    });
    expect(parseTraitsOption('rfm_segment')).toEqual({ rfm_segment: 'rfm_segment' });
    expect(parseTraitsOption('{"stage":"lifecycle_status"}')).toEqual({ stage: 'lifecycle_status' });
  });
  it('refuses malformed input with a usage error naming the problem', () => {
    expect(() => parseTraitsOption('')).toThrow(UsageError);
    expect(() => parseTraitsOption('{"a":')).toThrow(/not valid JSON/);
    expect(() => parseTraitsOption('[1]')).toThrow(/must be an object/);
    expect(() => parseTraitsOption('{"a":1}')).toThrow(/non-string value/);
    expect(() => parseTraitsOption('a=x,a=y')).toThrow(/names the trait "a" twice/);
    // JSON.parse keeps the last of a repeated key; the keys are read from the text, however spaced or escaped,
    // and commas, quotes and brackets inside values are no keys
    expect(() => parseTraitsOption('{"a":"x","b":"y","a":"z"}')).toThrow(
      /^--traits names the trait "a" twice: give each trait once\.$/,
    );
    expect(() => parseTraitsOption('{ "b" : "y" , "\\u0062":"z"}')).toThrow(/names the trait "b" twice/);
    expect(parseTraitsOption('{"a":"x,\\"a\\":","b":"[{"}')).toEqual({ a: 'x,"a":', b: '[{' });
    expect(() => parseTraitsOption('bad-name=x')).toThrow(/trait name "bad-name" in --traits is not valid/);
  });
});

describe('retry policy', () => {
  it('reads Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('3')).toBe(3000);
    expect(parseRetryAfter('0.5')).toBe(500);
    expect(
      parseRetryAfter('Wed, 21 Oct 2015 07:28:10 GMT', Date.parse('Wed, 21 Oct 2015 07:28:00 GMT')),
    ).toBe(10000);
    expect(parseRetryAfter('soon')).toBeUndefined();
    expect(parseRetryAfter(null)).toBeUndefined();
  });
  it('backs off exponentially with jitter, never before Retry-After, capped', () => {
    const p = { ...DEFAULT_RETRY, baseDelayMs: 100, maxDelayMs: 1000, maxRetryAfterMs: 5000 };
    expect(backoffMs(p, 1, undefined, () => 0)).toBe(50);
    expect(backoffMs(p, 1, undefined, () => 1)).toBe(100);
    expect(backoffMs(p, 3, undefined, () => 1)).toBe(400);
    expect(backoffMs(p, 10, undefined, () => 1)).toBe(1000);
    expect(backoffMs(p, 1, 2000, () => 1)).toBe(2000);
    expect(backoffMs(p, 1, 60_000, () => 1)).toBe(5000);
  });
  it('holds a waiting request for a longer Retry-After, and gives it back at once when too long to wait for', async () => {
    const limiter = new RateLimiter(undefined);
    limiter.holdUntil(Date.now() + 300, 'HTTP 429: short');
    const t0 = Date.now();
    expect(await limiter.take(1, { maxHoldMs: 1000 })).toBeUndefined();
    expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
    // waiting out a 10 s backoff when another answer asks the run to wait 10 minutes: told at once, not after
    const waiting = limiter.take(1, { notBefore: Date.now() + 10_000, maxHoldMs: 1000 });
    const t1 = Date.now();
    limiter.holdUntil(Date.now() + 600_000, 'HTTP 429: long');
    const hold = await waiting;
    expect(Date.now() - t1).toBeLessThan(1000);
    expect(hold?.message).toBe('HTTP 429: long');
    expect(hold?.waitMs).toBeGreaterThan(599_000);
  });
  it('classifies answers: retry 429/5xx/network, stop on 401/404, bisect other 4xx', () => {
    expect(classify(429, 'x', '2')).toEqual({ kind: 'retry', status: 429, retryAfterMs: 2000, message: 'x' });
    expect(classify(503, 'x').kind).toBe('retry');
    expect(classify(undefined, 'ECONNRESET').kind).toBe('retry');
    expect(classify(401, 'x').kind).toBe('fatal');
    expect(classify(404, 'x').kind).toBe('fatal');
    expect(classify(400, 'x').kind).toBe('reject');
    expect(classify(413, 'x').kind).toBe('reject');
  });
  it('words a host DNS does not know apart from a DNS lookup that failed for now', () => {
    // A real EAI_AGAIN needs a failing resolver; the ENOTFOUND path runs over the network in segment.test.ts.
    const url = 'https://api.example.test/v1/batch';
    expect(describeNetworkError(url, 'getaddrinfo ENOTFOUND api.example.test', 'ENOTFOUND')).toBe(
      `${url}: the host api.example.test does not resolve (ENOTFOUND): check the host name of the endpoint`,
    );
    expect(describeNetworkError(url, 'getaddrinfo EAI_AGAIN proxy.corp', 'EAI_AGAIN', 'proxy.corp')).toBe(
      `${url}: the DNS lookup of proxy.corp failed for now (EAI_AGAIN): check this machine's DNS and network, and the host name of the endpoint`,
    );
    expect(describeNetworkError(url, 'read ECONNRESET', 'ECONNRESET')).toBe(
      `${url}: read ECONNRESET (ECONNRESET)`,
    );
  });

  it('messageIds are deterministic and at most 100 characters', () => {
    const a = messageIdFor('segment:api.segment.io:abc', 'user-1', 'h1');
    expect(a).toBe(messageIdFor('segment:api.segment.io:abc', 'user-1', 'h1'));
    expect(a).not.toBe(messageIdFor('segment:api.segment.io:abc', 'user-1', 'h2'));
    expect(a).not.toBe(messageIdFor('segment:api.segment.io:abd', 'user-1', 'h1'));
    expect(a.length).toBeLessThanOrEqual(100);
  });
});

describeEachWarehouse('traits hash', ({ tw }) => {
  let wh: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
  });
  afterAll(async () => wh.close());

  it('is md5 of the documented canonical text, so DuckDB and PostgreSQL agree', async () => {
    await writeUserLifecycle(wh, 'lifecycle', [
      {
        user_id: 'a',
        lifecycle_status: 'active',
        status_since: '2024-05-01',
        previous_status: null,
        monetary: 12.5,
      },
    ]);
    const s = await runSync({
      warehouse: wh,
      schema: 'lifecycle',
      to: 'segment',
      dryRun: true,
      traits: 'status=lifecycle_status,since=status_since,prev=previous_status,m=monetary,d=days_inactive',
    });
    const [row] = await wh.query(`select traits_hash, traits from lifecycle.sync_log where run_id = $1`, [
      s.runId,
    ]);
    const US = '\u001f';
    const text = [
      'status=lifecycle_status,since=status_since,prev=previous_status,m=monetary,d=days_inactive',
      'active',
      '2024-05-01',
      '\u001e',
      '12.5',
      '1',
    ].join(US);
    expect(row.traits_hash).toBe(createHash('md5').update(text, 'utf8').digest('hex'));
    expect(row.traits).toEqual({ status: 'active', since: '2024-05-01', prev: null, m: 12.5, d: 1 });
  });

  it('hashes decimals without trailing zeros and integral doubles as integers, alike on both warehouses', async () => {
    const users = [
      ['n1', 100, 100],
      ['n2', 0, 0.1],
      ['n3', 12.5, 1e-7],
      ['n4', 1234567.1, 1e20],
      ['n5', -0.5, -42],
      // epoch microseconds as a double: where DuckDB and PostgreSQL print differently
      ['n6', 7, 1.7e15],
    ] as const;
    await writeUserLifecycle(
      wh,
      'lc_numbers',
      users.map(([user_id, monetary]) => ({
        user_id,
        lifecycle_status: 'active',
        status_since: '2024-05-01',
        previous_status: null,
        monetary,
      })),
    );
    await wh.exec('alter table lc_numbers.user_lifecycle add column score double precision');
    for (const [id, , score] of users) {
      await wh.query(
        'update lc_numbers.user_lifecycle set score = cast(cast($2 as varchar) as double precision) where user_id = $1',
        [id, String(score)],
      );
    }
    try {
      const s = await runSync({
        warehouse: wh,
        schema: 'lc_numbers',
        to: 'segment',
        dryRun: true,
        traits: 'm=monetary,x=score',
      });
      const rows = await wh.query<{ user_id: string; traits_hash: string }>(
        `select user_id, traits_hash from lc_numbers.sync_log where run_id = $1 order by user_id`,
        [s.runId],
      );
      // the canonical text of each: a decimal's digits without trailing zeros; a double's integer below 10^18,
      // else its shortest form with a two-digit exponent
      const texts: Record<string, [string, string]> = {
        n1: ['100', '100'],
        n2: ['0', '0.1'],
        n3: ['12.5', '1e-07'],
        n4: ['1234567.1', '1e+20'],
        n5: ['-0.5', '-42'],
        n6: ['7', '1700000000000000'],
      };
      expect(rows).toEqual(
        Object.entries(texts).map(([user_id, [m, x]]) => ({
          user_id,
          traits_hash: createHash('md5')
            .update(['m=monetary,x=score', m, x].join('\u001f'), 'utf8')
            .digest('hex'),
        })),
      );
    } finally {
      await wh.exec('drop schema lc_numbers cascade');
    }
  });

  it('hashes timestamps as epoch microseconds and sends them as ISO-8601', async () => {
    await wh.exec('alter table lifecycle.user_lifecycle add column last_event_at timestamptz');
    await wh.query(`update lifecycle.user_lifecycle set last_event_at = cast($1 as timestamptz)`, [
      '2024-05-01T12:30:00.123Z',
    ]);
    const s = await runSync({
      warehouse: wh,
      schema: 'lifecycle',
      to: 'segment',
      dryRun: true,
      traits: 'at=last_event_at',
    });
    const [row] = await wh.query(`select traits_hash, traits from lifecycle.sync_log where run_id = $1`, [
      s.runId,
    ]);
    const micros = String(Date.UTC(2024, 4, 1, 12, 30, 0, 123) * 1000);
    expect(row.traits_hash).toBe(
      createHash('md5').update(`at=last_event_at\u001f${micros}`, 'utf8').digest('hex'),
    );
    expect(row.traits).toEqual({ at: '2024-05-01T12:30:00.123Z' });
  });

  it('says to build the models when user_lifecycle is missing', async () => {
    await expect(runSync({ warehouse: wh, schema: 'nowhere', to: 'segment', dryRun: true })).rejects.toThrow(
      /nowhere\.user_lifecycle does not exist .*cdp-lifecycle build/,
    );
  });
});

describeEachWarehouse(
  'DuckDB memory cap during the sync',
  ({ tw }) => {
    it('never fails a sync (an out-of-memory step reruns with more) and restores the settings', async () => {
      const wh = await tw().open();
      try {
        await writeUserLifecycle(
          wh,
          'lifecycle',
          Array.from({ length: 3000 }, (_, i) => ({
            user_id: `m${i}`,
            lifecycle_status: 'active',
            status_since: '2024-05-01',
            previous_status: 'x'.repeat(200) + i,
          })),
        );
        await wh.exec("set memory_limit = '1GB'");
        const [before] = await wh.query(
          "select current_setting('memory_limit') as m, current_setting('threads') as t",
        );
        const s = await runSync({
          warehouse: wh,
          schema: 'lifecycle',
          to: 'segment',
          dryRun: true,
          duckdbMemoryLimit: '1MB',
        });
        expect(s).toMatchObject({ considered: 3000, changed: 3000, invalid: 0 });
        const [after] = await wh.query(
          "select current_setting('memory_limit') as m, current_setting('threads') as t",
        );
        expect(after.t).toBe(before.t);
        // DuckDB reports the limit rounded to 0.1 MiB, so it comes back within that rounding.
        const mib = (v: unknown): number => Number(/^([\d.]+) MiB$/.exec(String(v))?.[1]);
        expect(Math.abs(mib(after.m) - mib(before.m))).toBeLessThanOrEqual(0.11);
      } finally {
        await wh.close();
      }
    });
  },
  ['duckdb'],
);
