import {
  slugify,
  resolveTimestamp,
  canonicalTimestamp,
  mergeTraits,
  landingRow,
  normalizeEvent,
  parseIsoTimestamp,
  jsonColumn,
} from '../../transforms/events';
import { jsonSizeUpperBound, validateEvent } from '../../transforms/schemas';
import { serializeEvent } from '../../src/collector/ingest';
import { RAW_TABLES } from '../../src/warehouse/raw-tables';

describe('slugify (Segment warehouse event names)', () => {
  it.each([
    ['Order Completed', 'order_completed'],
    ['orderCompleted', 'order_completed'],
    ['Signed Up (v2)', 'signed_up_v2'],
    ['  API-Key  Created!! ', 'api_key_created'],
    ['HTMLPage Viewed', 'html_page_viewed'],
    ['already_snake', 'already_snake'],
    ["x'); drop table cdp.tracks; --", 'x_drop_table_cdp_tracks'],
    ['Café Ouvert', 'café_ouvert'],
    // no letter or digit: the code points, so that two such names do not share the empty slug
    ['😀', 'u1f600'],
    ['🎉', 'u1f389'],
    [' !! ', 'u21_u21'],
    ['Order 🎉', 'order'],
    // combining marks are part of their letter: Devanagari vowel signs, Thai and Hebrew vowels, accents
    ['खरीदा', 'खरीदा'],
    ['खरीदी', 'खरीदी'],
    ['साइन अप', 'साइन_अप'],
    ['สมัครสมาชิก', 'สมัครสมาชิก'],
    // (Hebrew points in NFC's canonical order: qamats before the shin dot)
    ['\u05E9\u05C1\u05B8\u05DC\u05D5\u05B9\u05DD', '\u05E9\u05B8\u05C1\u05DC\u05D5\u05B9\u05DD'],
    // read in NFC: a decomposed accent is the composed one, also between camelCase words
    ['Cafe\u0301', 'café'],
    ['cafe\u0301Ouvert', 'café_ouvert'],
    ['=\u0338', 'u2260'],
    // Unicode lower-casing, in every locale: İ is i with its dot above, apart from I
    ['İstanbul', 'i\u0307stanbul'],
    ['Istanbul', 'istanbul'],
    // an emoji's variation selector or a keycap's enclosing mark is no letter's mark
    ['❤️', 'u2764_ufe0f'],
    ['Liked ❤️', 'liked'],
    ['1️⃣ Clicked', '1_clicked'],
  ])('%s -> %s', (name, slug) => {
    expect(slugify(name)).toBe(slug);
  });

  it('keeps names that differ by a combining mark apart, and canonically equal names together', () => {
    // dropping the marks gave खर_द to both, स_इन_अप, and cafe to Cafe\u0301 (café when composed)
    expect(slugify('खरीदा')).not.toBe(slugify('खरीदी'));
    expect(slugify('Cafe\u0301')).not.toBe(slugify('Cafe'));
    expect(slugify('Cafe\u0301')).toBe(slugify('Caf\u00E9'));
  });
});

describe('timestamp rule (SPEC §3)', () => {
  it('keeps a given timestamp', () => {
    expect(
      resolveTimestamp({
        timestamp: '2024-03-10T07:30:00.000Z',
        originalTimestamp: '2024-03-10T07:00:00.000Z',
        sentAt: '2024-03-10T07:00:05.000Z',
        receivedAt: '2024-03-10T08:00:00.000Z',
      }),
    ).toBe('2024-03-10T07:30:00.000Z');
  });
  it('corrects the device clock by the send skew when timestamp is missing', () => {
    // The device clock is 1 hour behind: it sent at 07:00:05 device time, the call arrived at 08:00:10.
    expect(
      resolveTimestamp({
        originalTimestamp: '2024-03-10T07:00:00.000Z',
        sentAt: '2024-03-10T07:00:05.000Z',
        receivedAt: '2024-03-10T08:00:10.000Z',
      }),
    ).toBe('2024-03-10T08:00:05.000Z');
  });
  it('keeps the microseconds of the derivation, as stored timestamps keep theirs', () => {
    // 08:00:10.000002 - (07:00:05.000001 - 07:00:00.123456) = 08:00:05.123457
    expect(
      resolveTimestamp({
        originalTimestamp: '2024-03-10T07:00:00.123456Z',
        sentAt: '2024-03-10T07:00:05.000001Z',
        receivedAt: '2024-03-10T08:00:10.000002Z',
      }),
    ).toBe('2024-03-10T08:00:05.123457Z');
    // borrowing across the millisecond and the second: 08:00:00.000 - (07:00:00.000001 - 07:00:00) = 07:59:59.999999
    expect(
      resolveTimestamp({
        originalTimestamp: '2024-03-10T07:00:00Z',
        sentAt: '2024-03-10T07:00:00.000001Z',
        receivedAt: '2024-03-10T08:00:00.000Z',
      }),
    ).toBe('2024-03-10T07:59:59.999999Z');
  });
  it('understands offsets', () => {
    expect(
      resolveTimestamp({
        originalTimestamp: '2024-03-10T09:00:00+02:00',
        sentAt: '2024-03-10T07:00:01Z',
        receivedAt: '2024-03-10T07:00:02Z',
      }),
    ).toBe('2024-03-10T07:00:01.000Z');
  });
  it('takes receivedAt when the derivation leaves the years 0001-9999, and keeps it up to their edges', () => {
    const at = (originalTimestamp: string, sentAt: string, receivedAt: string): string =>
      resolveTimestamp({ originalTimestamp, sentAt, receivedAt });
    expect(at('0001-01-01T00:00:00Z', '2024-03-10T08:00:00Z', '2024-03-10T08:00:00Z')).toBe(
      '0001-01-01T00:00:00.000Z',
    );
    expect(at('0001-01-01T00:00:00Z', '2024-03-10T08:00:00.000001Z', '2024-03-10T08:00:00Z')).toBe(
      '2024-03-10T08:00:00Z',
    );
    expect(at('9999-12-31T23:59:59.999999Z', '2024-03-10T08:00:00Z', '2024-03-10T08:00:00Z')).toBe(
      '9999-12-31T23:59:59.999999Z',
    );
    expect(at('9999-12-31T23:59:59.999999Z', '2024-03-10T07:59:59Z', '2024-03-10T08:00:00Z')).toBe(
      '2024-03-10T08:00:00Z',
    );
  });
  it('falls back to receivedAt', () => {
    expect(resolveTimestamp({ receivedAt: '2024-03-10T08:00:00.000Z' })).toBe('2024-03-10T08:00:00.000Z');
    expect(resolveTimestamp({ sentAt: '2024-03-10T07:00:05Z', receivedAt: '2024-03-10T08:00:00.000Z' })).toBe(
      '2024-03-10T08:00:00.000Z',
    );
  });
  it('stores every accepted form as UTC with at most microseconds, which every warehouse reads', () => {
    expect(canonicalTimestamp('2024-03-10T07:30:00.123Z')).toBe('2024-03-10T07:30:00.123Z');
    expect(canonicalTimestamp('2024-03-10T07:30:00Z')).toBe('2024-03-10T07:30:00Z');
    expect(canonicalTimestamp('2024-03-10T07:30:00.123456+01:00')).toBe('2024-03-10T06:30:00.123456Z');
    expect(canonicalTimestamp('2024-03-10T07:30:00+01')).toBe('2024-03-10T06:30:00.000Z');
    expect(canonicalTimestamp('2024-03-10 07:30:00,25')).toBe('2024-03-10T07:30:00.250Z');
    expect(canonicalTimestamp('2016-12-31T23:59:60Z')).toBe('2017-01-01T00:00:00.000Z');
    expect(canonicalTimestamp('2024-03-10T07:30:00.1234567Z')).toBe('2024-03-10T07:30:00.123456Z');
    expect(canonicalTimestamp('2024-03-10T07:30:00.1234+00:00')).toBe('2024-03-10T07:30:00.123400Z');
    expect(canonicalTimestamp('2024-03-10')).toBe('2024-03-10T00:00:00.000Z');
    expect(canonicalTimestamp('yesterday')).toBe('yesterday');
    // years 0-99 stay themselves however they are written (Date.UTC would read them as 1900-1999)
    expect(canonicalTimestamp('0001-01-01T00:00:00')).toBe('0001-01-01T00:00:00.000Z');
    expect(canonicalTimestamp('0001-01-01T00:00:00+00:00')).toBe('0001-01-01T00:00:00.000Z');
    expect(canonicalTimestamp('0099-12-31 23:59:59,5')).toBe('0099-12-31T23:59:59.500Z');
  });
  it('parses years 0-99 as themselves, with their leap days', () => {
    // Date.parse reads the ECMAScript form (4-digit year, a zone) on the proleptic Gregorian calendar
    expect(parseIsoTimestamp('0001-01-01T00:00:00')).toBe(Date.parse('0001-01-01T00:00:00.000Z'));
    expect(parseIsoTimestamp('0050-06-15T12:30:00+02:00')).toBe(Date.parse('0050-06-15T10:30:00.000Z'));
    // year 0 is refused: PostgreSQL does not take it, DuckDB would (as 1 BC)
    expect(parseIsoTimestamp('0000-06-01T00:00:00')).toBeNaN();
    expect(parseIsoTimestamp('0000-02-29T00:00:00Z')).toBeNaN();
    expect(parseIsoTimestamp('0004-02-29')).toBe(Date.parse('0004-02-29T00:00:00.000Z'));
    expect(parseIsoTimestamp('0001-02-29')).toBeNaN();
    expect(parseIsoTimestamp('0100-02-29')).toBeNaN();
  });
  it('parses ISO-8601 strictly', () => {
    expect(parseIsoTimestamp('2024-02-29T12:00:00Z')).toBe(Date.UTC(2024, 1, 29, 12));
    expect(parseIsoTimestamp('2024-03-10')).toBe(Date.UTC(2024, 2, 10));
    expect(parseIsoTimestamp('2024-03-10T01:02:03.456789-01:30')).toBe(Date.UTC(2024, 2, 10, 2, 32, 3, 456));
    for (const bad of [
      '2023-02-29T00:00:00Z',
      'yesterday',
      '10/03/2024',
      '2024-13-01',
      '1710000000',
      '',
      '2024-05-01T11:00:00+99:99',
      '2024-05-01T11:00:00+24:00',
      '2024-05-01T11:00:00-05:60',
    ]) {
      expect(parseIsoTimestamp(bad)).toBeNaN();
    }
  });
});

describe('traits merge', () => {
  it('puts top-level traits over context.traits', () => {
    expect(mergeTraits({ plan: 'pro', email: 'a@b.c' }, { traits: { plan: 'free', name: 'Ann' } })).toEqual({
      plan: 'pro',
      email: 'a@b.c',
      name: 'Ann',
    });
    expect(mergeTraits(undefined, { traits: { plan: 'free' } })).toEqual({ plan: 'free' });
    expect(mergeTraits({ plan: 'pro' }, undefined)).toEqual({ plan: 'pro' });
    expect(mergeTraits(undefined, {})).toBeNull();
  });
});

describe('normalizeEvent and landingRow', () => {
  const receivedAt = '2024-03-10T08:00:00.000Z';
  it('generates a messageId when missing, and keeps a given one', () => {
    const a: Record<string, unknown> = { type: 'track', event: 'A', userId: 'u' };
    const b: Record<string, unknown> = { type: 'track', event: 'A', userId: 'u' };
    normalizeEvent(a, { receivedAt, keepReceivedAt: false });
    normalizeEvent(b, { receivedAt, keepReceivedAt: false });
    expect(a.messageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.messageId).not.toBe(b.messageId);
    const c: Record<string, unknown> = { type: 'track', event: 'A', userId: 'u', messageId: 'given' };
    normalizeEvent(c, { receivedAt, keepReceivedAt: false });
    expect(c.messageId).toBe('given');
  });
  it('stamps receivedAt unless told to keep it, and copies the batch sentAt', () => {
    const e: Record<string, unknown> = {
      type: 'track',
      event: 'A',
      userId: 7,
      receivedAt: '2020-01-01T00:00:00Z',
    };
    normalizeEvent(e, { receivedAt, keepReceivedAt: false, batchSentAt: '2024-03-10T07:59:59Z' });
    expect(e).toMatchObject({ receivedAt, userId: '7', sentAt: '2024-03-10T07:59:59Z' });
    const w: Record<string, unknown> = {
      type: 'track',
      event: 'A',
      userId: 'u',
      receivedAt: '2020-01-01T00:00:00',
    };
    normalizeEvent(w, { receivedAt, keepReceivedAt: true });
    expect(w.receivedAt).toBe('2020-01-01T00:00:00.000Z');
  });
  it('builds a tracks row in the column order of RAW_TABLES', () => {
    const row = landingRow('track', {
      messageId: 'm1',
      userId: 'u1',
      event: 'Order Completed',
      properties: { revenue: 9.5 },
      context: { ip: '1.2.3.4' },
      originalTimestamp: '2024-03-10T07:00:00.000Z',
      sentAt: '2024-03-10T07:00:05.000Z',
      receivedAt: '2024-03-10T08:00:10.000Z',
    });
    const byCol = Object.fromEntries(RAW_TABLES.tracks.columns.map((c, i) => [c.name, row[i]]));
    expect(byCol).toEqual({
      id: 'm1',
      user_id: 'u1',
      anonymous_id: null,
      event: 'order_completed',
      event_text: 'Order Completed',
      timestamp: '2024-03-10T08:00:05.000Z',
      original_timestamp: '2024-03-10T07:00:00.000Z',
      sent_at: '2024-03-10T07:00:05.000Z',
      received_at: '2024-03-10T08:00:10.000Z',
      properties: '{"revenue":9.5}',
      context: '{"ip":"1.2.3.4"}',
    });
  });
  it('builds identify rows with merged traits, and alias rows', () => {
    const row = landingRow('identify', {
      messageId: 'm2',
      anonymousId: 'a1',
      traits: { plan: 'pro' },
      context: { traits: { plan: 'free', name: 'Ann' } },
      receivedAt,
    });
    expect(row[RAW_TABLES.identifies.columns.findIndex((c) => c.name === 'traits')]).toBe(
      '{"plan":"pro","name":"Ann"}',
    );
    expect(landingRow('alias', { messageId: 'm3', previousId: 'a1', userId: 'u1', receivedAt })).toEqual([
      'm3',
      'a1',
      'u1',
      receivedAt,
      receivedAt,
      null,
    ]);
  });
  it('removes NUL characters from JSON (PostgreSQL jsonb cannot hold them) and keeps everything else', () => {
    expect(jsonColumn({ 'k\u0000': 'a\u0000b', s: "'; drop table x; --", u: '日本語 🎉' })).toBe(
      '{"k":"ab","s":"\'; drop table x; --","u":"日本語 🎉"}',
    );
  });
  it('replaces lone surrogates (half an emoji) with U+FFFD in JSON and keeps whole pairs and the text "\\u0000"', () => {
    expect(jsonColumn({ 'k\ud800': 'a\udc00b', pair: '🎉', cut: '🎉'.slice(0, 1), text: '\\u0000' })).toBe(
      '{"k\uFFFD":"a\uFFFDb","pair":"🎉","cut":"\uFFFD","text":"\\\\u0000"}',
    );
  });
});

describe('event schemas', () => {
  const ok = { userId: 'u' };
  it.each([
    [{ ...ok, type: 'track', event: 'A' }, null],
    [{ anonymousId: 'a', type: 'page' }, null],
    [{ userId: null, anonymousId: 'a', type: 'identify' }, null],
    [{ type: 'track', event: 'A' }, 'track call has neither userId nor anonymousId'],
    [{ type: 'identify', userId: '' }, 'identify call has neither userId nor anonymousId (userId is empty)'],
    // spaces only name nobody either
    [
      { type: 'identify', userId: ' \t' },
      'identify call has neither userId nor anonymousId (userId is blank)',
    ],
    [{ type: 'alias', userId: 'u', previousId: '  ' }, 'previousId is blank'],
    [{ type: 'page', userId: '  ', anonymousId: 'a' }, null],
    // NULs only, or NULs and spaces, too: U+0000 is not whitespace to a regex, and is removed before landing, so
    // such a value landed as NULL (an event without identity, an alias without previous_id) or as ''
    [
      { type: 'track', event: 'E', userId: '\u0000' },
      'track call has neither userId nor anonymousId (userId is blank)',
    ],
    [
      { type: 'identify', anonymousId: ' \u0000\t' },
      'identify call has neither userId nor anonymousId (anonymousId is blank)',
    ],
    [{ type: 'alias', userId: 'u9', previousId: '\u0000\u0000' }, 'previousId is blank'],
    [{ type: 'alias', userId: '\u0000 ', previousId: 'p' }, 'userId is blank'],
    [{ type: 'group', userId: 'u9', groupId: '\u0000' }, 'groupId is blank'],
    [{ type: 'track', userId: 'u9', event: '\u0000' }, 'event is blank'],
    [{ type: 'track', userId: 'u9', event: '\u0000 \u0000' }, 'event is blank'],
    [{ type: 'page', userId: '\u0000', anonymousId: 'a' }, null],
    [{ type: 'track', userId: 'u9', event: 'A\u0000' }, null],
    // an id of the wrong type is that id's problem, not a missing identity
    [{ type: 'track', event: 'A', userId: { a: 1 } }, 'userId must be string or number or null'],
    [
      { type: 'track', event: 'A', userId: true, anonymousId: 'a' },
      'userId must be string or number or null',
    ],
    // every problem at once, in the schema's order, so a sender fixes them in one round trip
    [
      { type: 'track', userId: 123, event: ['a'], timestamp: 'yesterday' },
      'timestamp is not an ISO-8601 timestamp; event must be string',
    ],
    [{ type: 'alias' }, 'alias call without previousId; alias call without userId'],
    // JSON parsers round a number beyond 2^53: 12345678901234567890 and ...891 would land as one user
    [
      { type: 'identify', userId: 12345678901234567890 },
      'userId is a number too large to keep exactly: send it as a string',
    ],
    [{ type: 'identify', userId: 9007199254740991 }, null],
    [
      { type: 'alias', userId: 'u', previousId: -1e300 },
      'previousId is a number too large to keep exactly: send it as a string',
    ],
    [{ ...ok, type: 'track' }, 'track call without event'],
    [{ ...ok, type: 'track', event: '' }, 'event is empty'],
    [{ ...ok, type: 'track', event: ' \t ' }, 'event is blank'],
    [{ ...ok, type: 'track', event: ' A ' }, null],
    [{ ...ok, type: 'track', event: 'A', timestamp: 'yesterday' }, 'timestamp is not an ISO-8601 timestamp'],
    // valid texts whose instant leaves the years both warehouses store (PostgreSQL refused them, DuckDB kept
    // them as BC dates), and the edges, which land
    [
      { ...ok, type: 'track', event: 'A', originalTimestamp: '0001-01-01T00:00:00+01:00' },
      'originalTimestamp is before the year 0001 or after 9999 once in UTC',
    ],
    [
      { ...ok, type: 'track', event: 'A', timestamp: '9999-12-31T23:30:00-01:00' },
      'timestamp is before the year 0001 or after 9999 once in UTC',
    ],
    [{ ...ok, type: 'track', event: 'A', sentAt: '0001-01-01T00:00:00Z' }, null],
    [{ ...ok, type: 'track', event: 'A', timestamp: '9999-12-31T23:59:59.999999Z' }, null],
    [{ ...ok, type: 'track', event: 'A', sentAt: 1710000000 }, 'sentAt must be string or null'],
    // null is absent: a messageId is generated and the timestamp derived (SPEC 7)
    [{ ...ok, type: 'track', event: 'A', messageId: null, timestamp: null, sentAt: null }, null],
    [{ ...ok, type: 'track', event: 'A', messageId: 42 }, 'messageId must be string or null'],
    [
      { ...ok, type: 'track', event: 'A', messageId: 'x'.repeat(101) },
      'messageId is longer than 100 characters',
    ],
    [{ ...ok, type: 'track', event: 'A', messageId: 'x'.repeat(100) }, null],
    [
      { ...ok, type: 'purchase' },
      'unknown type "purchase" (expected one of track, identify, page, screen, alias, group)',
    ],
    [{ ...ok }, 'event has no type'],
    [{ type: 'alias', userId: 'u' }, 'alias call without previousId'],
    [{ type: 'group', userId: 'u' }, 'group call without groupId'],
    [{ ...ok, type: 'track', event: 'A', properties: 'x' }, 'properties must be object or null'],
    [[1, 2], 'event is not a JSON object'],
  ])('%j', (event, reason) => {
    const r = validateEvent(event);
    if (reason === null) expect(r).not.toHaveProperty('reason');
    else expect(r).toEqual({ reason });
  });
  it('refuses deep nesting', () => {
    let deep: unknown = 1;
    for (let i = 0; i < 100; i++) deep = { d: deep };
    expect(validateEvent({ ...ok, type: 'track', event: 'A', properties: deep })).toEqual({
      reason: 'event is nested deeper than 64 levels',
    });
  });
});

describe('event size and depth limits', () => {
  const limit = { maxBytes: 32 * 1024 };
  it('measures UTF-8 bytes, not characters', () => {
    // '€' is 3 bytes in UTF-8: 10,000 of them fit in 32 KB, 11,000 do not.
    const small = { type: 'track', userId: 'u', event: 'E', properties: { s: '€'.repeat(10_000) } };
    const big = { type: 'track', userId: 'u', event: 'E', properties: { s: '€'.repeat(11_000) } };
    expect(validateEvent(small, undefined, limit)).toEqual({ type: 'track' });
    expect(validateEvent(big, undefined, limit)).toEqual({ reason: 'event is larger than 32768 bytes' });
    expect(validateEvent(big)).toEqual({ type: 'track' });
  });
  it('bounds the serialised size from above', () => {
    for (const v of [
      { a: [1, 'x', null, true, { b: 'é"\n' }] },
      'plain',
      12345.678,
      [],
      // the longest a double prints, and its exponent forms
      -0.0000012345678901234567,
      -1.2345678901234567e-7,
      -1.2345678901234567e-308,
      [-0.0000012345678901234567, -0.0000012345678901234567],
    ]) {
      expect(jsonSizeUpperBound(v, 10)).toBeGreaterThanOrEqual(Buffer.byteLength(JSON.stringify(v)));
    }
    expect(jsonSizeUpperBound({ a: { b: { c: 1 } } }, 2)).toBe(-1);
  });
  it('refuses nesting too deep for JSON.stringify and still keeps its exact text', () => {
    let deep: unknown = 'bottom';
    for (let i = 0; i < 20_000; i++) deep = [deep];
    const event = { type: 'track', userId: 'u', event: 'E', properties: { deep } };
    expect(() => JSON.stringify(event)).toThrow(RangeError);
    expect(validateEvent(event, undefined, limit)).toEqual({
      reason: 'event is nested deeper than 64 levels',
    });
    const text = serializeEvent(event);
    expect(text.startsWith('{"type":"track","userId":"u","event":"E","properties":{"deep":[[[[')).toBe(true);
    expect(text.endsWith('"bottom"' + ']'.repeat(20_000) + '}}')).toBe(true);
    expect(serializeEvent({ a: [1, undefined, 'x'], b: undefined, c: { d: null } })).toBe(
      JSON.stringify({ a: [1, undefined, 'x'], b: undefined, c: { d: null } }),
    );
  });
});
