/**
 * Event shaping: the one place where a Segment or RudderStack spec event becomes a landing row of SPEC §3.
 * The collector, `load`, `demo` and the destination's actions all go through these functions, so the rules
 * (timestamp, slug, traits merge, messageId) cannot drift between entry points.
 */
import { randomUUID } from 'node:crypto';
import type { InsertValue } from '../src/warehouse/types';
import type { RawTableName } from '../src/warehouse/raw-tables';

export const CALL_TYPES = ['track', 'identify', 'page', 'screen', 'alias', 'group'] as const;
export type CallType = (typeof CALL_TYPES)[number];

export function isCallType(value: unknown): value is CallType {
  return typeof value === 'string' && (CALL_TYPES as readonly string[]).includes(value);
}

/** The landing table of each call type (Segment's warehouse naming). */
export const TABLE_FOR_TYPE: Readonly<Record<CallType, Exclude<RawTableName, 'rejected_events'>>> = {
  track: 'tracks',
  identify: 'identifies',
  page: 'pages',
  screen: 'screens',
  alias: 'aliases',
  group: 'groups',
};

export type JsonObject = Record<string, unknown>;

/** A plain object as parsed from JSON (not null, not an array). */
export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Segment's warehouse convention for event names: snake_case, camelCase split, anything that is not a
 * letter, a digit or their mark becomes one underscore ("Order Completed" and "orderCompleted" both give
 * `order_completed`). Letters outside ASCII are kept (lower-cased) so that non-Latin names stay distinct, with
 * their combining marks (a Devanagari vowel sign, a Thai or Hebrew vowel, an accent): `खरीदा` and `खरीदी` are
 * two slugs. The name is read in NFC, so a composed and a decomposed accent (`Café`, `Cafe\u0301`) give one slug.
 * Lower-casing is Unicode's, the same in every locale: `İ` becomes `i` with its dot above (U+0307), so that
 * `İstanbul` and `Istanbul` stay apart as the letters are apart in Turkish.
 */
export function slugify(name: string): string {
  let slug = slugCache.get(name);
  if (slug === undefined) {
    slug = computeSlug(name);
    // Event names repeat endlessly; a bounded cache saves the regex and normalisation passes per event.
    if (slugCache.size >= 10_000) slugCache.clear();
    slugCache.set(name, slug);
  }
  return slug;
}

const slugCache = new Map<string, string>();

// A mark that belongs to the letter or digit before it. Variation selectors (an emoji's U+FE0F) and enclosing
// marks (a keycap's U+20E3) only dress a symbol: they separate words as the symbol does.
const OWN_MARK = String.raw`(?:(?!\p{Variation_Selector})[\p{Mn}\p{Mc}])`;
const CAMEL_LOWER_UPPER = new RegExp(String.raw`([\p{Ll}\p{N}]${OWN_MARK}*)(\p{Lu})`, 'gu');
const CAMEL_ACRONYM = new RegExp(String.raw`(\p{Lu}${OWN_MARK}*)(\p{Lu}${OWN_MARK}*\p{Ll})`, 'gu');
// A word: letters and digits, each with its own marks; a mark after anything else (or first) is not part of one.
const SLUG_WORD = new RegExp(String.raw`(?:[\p{L}\p{N}]${OWN_MARK}*)+`, 'gu');

function computeSlug(name: string): string {
  const nfc = name.normalize('NFC');
  const lower = nfc
    .replace(CAMEL_LOWER_UPPER, '$1_$2')
    .replace(CAMEL_ACRONYM, '$1_$2')
    .toLowerCase()
    // Unicode does not promise that lower-casing keeps a text in NFC
    .normalize('NFC');
  const slug = (lower.match(SLUG_WORD) ?? []).join('_');
  if (slug !== '') return slug;
  // A name of symbols alone (an emoji, "!!!") has no letter to keep: its code points spelt out, so that two
  // such names keep two slugs instead of sharing the empty one (the validator refuses a blank name).
  return Array.from(nfc.trim(), (c) => `u${(c.codePointAt(0) ?? 0).toString(16)}`).join('_');
}

/** Generated when a call has no messageId (SPEC §7); a UUID like the SDKs generate. */
export function generateMessageId(): string {
  return randomUUID();
}

// ISO-8601 calendar date, optionally with a time (`T` or space), fractions and a zone. A value without a
// zone is taken as UTC, which is what every CDP does with a zone-less warehouse timestamp.
const ISO_RE =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?(Z|z|[+-]\d{2}(?::?\d{2})?)?)?$/;

/** 400 Gregorian years, exactly: the calendar repeats after them. */
const GREGORIAN_CYCLE_MS = 146_097 * 86_400_000;

/**
 * Date.UTC, but for every year: Date.UTC reads years 0-99 as 1900-1999 (`0001-01-01T00:00:00` without a zone,
 * .NET's DateTime.MinValue, became 1901), so those are computed 400 years on and moved back.
 */
function utcMs(year: number, monthIndex: number, day: number, h = 0, mi = 0, s = 0, ms = 0): number {
  return year >= 0 && year < 100
    ? Date.UTC(year + 400, monthIndex, day, h, mi, s, ms) - GREGORIAN_CYCLE_MS
    : Date.UTC(year, monthIndex, day, h, mi, s, ms);
}

/**
 * Parses an ISO-8601 timestamp into epoch milliseconds, or NaN when it is not one (or names an impossible
 * date such as February 30th, which Date.parse would silently roll over).
 */
export function parseIsoTimestamp(value: string): number {
  const m = ISO_RE.exec(value);
  if (!m) return NaN;
  const [, y, mo, d, h = '00', mi = '00', s = '00', frac = '', zone = 'Z'] = m;
  const year = Number(y);
  const month = Number(mo);
  const day = Number(d);
  // Year 0 (1 BC) is no year PostgreSQL takes in this form, while DuckDB does: one event would land on one
  // warehouse and fail on the other, so it is no timestamp here.
  if (year < 1) return NaN;
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(s) > 60) {
    return NaN;
  }
  const probe = new Date(utcMs(year, month - 1, day));
  if (probe.getUTCMonth() !== month - 1) return NaN;
  let offsetMin = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const sign = zone[0] === '-' ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = Number(digits.slice(2, 4) || '0');
    // +99:99 is no zone: reading it would land a wrong instant
    if (oh > 23 || om > 59) return NaN;
    offsetMin = sign * (oh * 60 + om);
  }
  const ms = Number((frac + '000').slice(0, 3));
  return utcMs(year, month - 1, day, Number(h), Number(mi), Number(s), ms) - offsetMin * 60000;
}

// The instants of the years 0001 to 9999 in UTC, the range PostgreSQL and DuckDB both store and print alike:
// every timestamp the validator accepts is in it (an offset can move a text of the year 0001 out of it).
const FIRST_STORABLE_MS = utcMs(1, 0, 1);
const LAST_STORABLE_MS = utcMs(10000, 0, 1) - 1;

/** Whether epoch milliseconds (NaN included) fall in the years both warehouses store. */
export function isStorableInstant(ms: number): boolean {
  return ms >= FIRST_STORABLE_MS && ms <= LAST_STORABLE_MS;
}

// The one form every warehouse and the DuckDB appender read alike: UTC, `T`, seconds below 60, at most
// microseconds.
const CANONICAL_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:[0-5]\d(?:\.\d{1,6})?Z$/;

/**
 * Canonical form for storage. ISO-8601 allows more than the warehouses read: an hour-only offset (`+01`), a
 * comma before the fraction, a leap second (`:60`), nanoseconds. Such a value passed validation but failed the
 * write, and with it every valid event of its request; it is rewritten as the same instant in UTC (a leap
 * second as the next second, as every warehouse stores it), keeping microseconds. A value without a zone is
 * read as UTC, so no layer ever takes it as local time. Text that is not a timestamp stays as it is, for the
 * validator to reject.
 */
export function canonicalTimestamp(value: string): string {
  // Fast path for what SDKs send (`2024-03-10T07:30:00.123Z`).
  if (CANONICAL_RE.test(value)) return value;
  const ms = parseIsoTimestamp(value);
  if (Number.isNaN(ms)) return value;
  const iso = new Date(ms).toISOString();
  const micros = microDigits(value);
  return micros ? `${iso.slice(0, -1)}${micros.padEnd(3, '0')}Z` : iso;
}

/** The fraction's digits after the milliseconds (at most 3; '' when there are none), which a Date drops. */
function microDigits(value: string): string {
  return (ISO_RE.exec(value)?.[7] ?? '').slice(3, 6);
}

/**
 * Microseconds since the epoch, or undefined when `value` is not a timestamp: a bigint, as a double holds
 * microseconds exactly only between the years 1685 and 2255, and a derived timestamp keeps the microseconds
 * its inputs carry, as every stored one does.
 */
function parseIsoMicros(value: string): bigint | undefined {
  const ms = parseIsoTimestamp(value);
  if (Number.isNaN(ms)) return undefined;
  return BigInt(ms) * 1000n + BigInt(Number(microDigits(value).padEnd(3, '0')));
}

function isoFromMicros(us: bigint): string {
  // floor division, so an instant before 1970 keeps a positive fraction
  let ms = us / 1000n;
  if (ms * 1000n > us) ms -= 1n;
  const rest = Number(us - ms * 1000n);
  const iso = new Date(Number(ms)).toISOString();
  return rest === 0 ? iso : `${iso.slice(0, -1)}${String(rest).padStart(3, '0')}Z`;
}

export interface TimestampFields {
  timestamp?: string | null;
  originalTimestamp?: string | null;
  sentAt?: string | null;
  receivedAt: string;
}

// Derived instants stay in the storable years too (see isStorableInstant), to the microsecond.
const FIRST_MICROS = BigInt(FIRST_STORABLE_MS) * 1000n;
const LAST_MICROS = BigInt(LAST_STORABLE_MS) * 1000n + 999n;

/**
 * SPEC §3: `timestamp` as given; else `receivedAt - (sentAt - originalTimestamp)` (the device clock corrected
 * by the skew between when it said it sent the call and when it arrived); else `receivedAt`. Returns ISO UTC.
 * A derived instant outside the years 0001-9999 (a zeroed device clock, `0001-01-01`, with a `sentAt` from
 * another clock) says the clocks disagree, not when the event happened: it is `receivedAt` then, as when the
 * pair is missing. PostgreSQL refused such an instant (so the event was quarantined) where DuckDB stored it.
 */
export function resolveTimestamp(f: TimestampFields): string {
  if (f.timestamp) return canonicalTimestamp(f.timestamp);
  if (f.sentAt && f.originalTimestamp) {
    const sent = parseIsoMicros(f.sentAt);
    const original = parseIsoMicros(f.originalTimestamp);
    const received = parseIsoMicros(f.receivedAt);
    if (sent !== undefined && original !== undefined && received !== undefined) {
      const derived = received - (sent - original);
      if (derived >= FIRST_MICROS && derived <= LAST_MICROS) return isoFromMicros(derived);
    }
  }
  return canonicalTimestamp(f.receivedAt);
}

/** Identify/group traits: top-level `traits` merged over `context.traits` (top level wins). */
export function mergeTraits(traits: unknown, context: unknown): JsonObject | null {
  const ctxTraits = isJsonObject(context) && isJsonObject(context.traits) ? context.traits : undefined;
  const top = isJsonObject(traits) ? traits : undefined;
  if (!ctxTraits) return top ?? null;
  if (!top) return ctxTraits;
  return { ...ctxTraits, ...top };
}

/**
 * What a value needs to name something: a character that is neither whitespace nor U+0000. `\s` leaves NUL
 * out, and clean removes NULs after validation, so a value of NULs (and spaces) alone would land as '' or
 * NULL: it is blank, like one of spaces only. The schemas take it as their `pattern`.
 */
export const NOT_BLANK = /[^\s\u0000]/u;

/** Empty, or whitespace and NULs alone (see NOT_BLANK). */
export function isBlank(text: string): boolean {
  return !NOT_BLANK.test(text);
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/**
 * Text as both warehouses can hold it alike: PostgreSQL holds no U+0000 (in text or jsonb) and refuses a lone
 * UTF-16 surrogate in jsonb (an emoji cut in half by a client), which DuckDB would keep. NULs are removed and
 * lone surrogates become U+FFFD, as undecodable UTF-8 in a body already does, on every warehouse.
 */
function clean(s: string): string {
  return (s.includes('\u0000') ? s.replace(/\u0000/g, '') : s).replace(LONE_SURROGATE, '\uFFFD');
}

function cleaned(value: unknown): unknown {
  if (typeof value === 'string') return clean(value);
  if (Array.isArray(value)) return value.map(cleaned);
  if (isJsonObject(value)) {
    const out: JsonObject = {};
    for (const [k, v] of Object.entries(value)) out[clean(k)] = cleaned(v);
    return out;
  }
  return value;
}

/**
 * Serialises a JSON column, its strings and keys cleaned (see clean); every other character, SQL-looking
 * text included, is stored verbatim.
 */
export function jsonColumn(value: unknown): string | null {
  if (value === undefined || value === null) return null;
  const s = JSON.stringify(value);
  // Cheap test first: JSON.stringify escapes NUL as \u0000 and a lone surrogate as \udXXX (a well-formed
  // pair stays raw); the literal text "\u0000" also matches, and is left as it is.
  return /\\u(?:0000|d[89a-f])/i.test(s) ? JSON.stringify(cleaned(value)) : s;
}

/** An id as it lands: spaces only are no id (see `id` in schemas.ts), whichever path it came by. */
function idStr(value: unknown): string | null {
  const text = str(value);
  return text !== null && text.trim() === '' ? null : text;
}

function str(value: unknown): string | null {
  if (value === undefined || value === null || value === '') return null;
  // a value of NULs only is no value (PostgreSQL would have stored '', a user id sync would send)
  const text = clean(typeof value === 'string' ? value : String(value));
  return text === '' ? null : text;
}

/**
 * A timestamp as an action maps it: ISO-8601 text (the action fields are strings, so actions-core turns a
 * number from a custom mapping into its digits, which the validator refuses as it refuses them anywhere).
 */
export type TimeValue = string | null | undefined;

function timeText(v: TimeValue): string | null {
  if (v === undefined || v === null || v === '') return null;
  return canonicalTimestamp(v);
}

/** The fields the actions map out of an event (their `@path` defaults); shared by every call type. */
export interface ShapedFields {
  messageId?: string;
  userId?: string | null;
  anonymousId?: string | null;
  event?: string;
  name?: string | null;
  previousId?: string;
  groupId?: string;
  properties?: JsonObject | null;
  traits?: JsonObject | null;
  context?: JsonObject | null;
  timestamp?: TimeValue;
  originalTimestamp?: TimeValue;
  sentAt?: TimeValue;
  receivedAt?: TimeValue;
}

/**
 * The fields of a neutral event of `type`: nothing of any caller's in it but `dates`. The collector and the
 * destination write one (then roll it back) to tell events a raw table refuses from a table that refuses any
 * row; dated like the refused events, it probes a table partitioned by time where they would go.
 */
export function probeFields(
  type: CallType,
  dates: Pick<ShapedFields, 'timestamp' | 'originalTimestamp' | 'sentAt' | 'receivedAt'>,
): ShapedFields {
  const id = 'cdp-lifecycle-probe';
  return {
    // a message id of its own, so that concurrent probes never wait on each other in a unique index
    messageId: `${id}-${randomUUID()}`,
    userId: id,
    ...dates,
    ...(type === 'track' ? { event: 'cdp-lifecycle probe' } : {}),
    ...(type === 'alias' ? { previousId: `${id}-previous` } : {}),
    ...(type === 'group' ? { groupId: id } : {}),
  };
}

/** Where a payload lands in time: its resolved timestamp and its receipt time, as `landingRow` writes them. */
export function landingTimes(f: ShapedFields): { ts: string; received: string } {
  // receivedAt is always set by the Ingestor; a direct action call without one lands "now".
  const received = timeText(f.receivedAt) ?? new Date().toISOString();
  const ts = resolveTimestamp({
    timestamp: timeText(f.timestamp),
    originalTimestamp: timeText(f.originalTimestamp),
    sentAt: timeText(f.sentAt),
    receivedAt: received,
  });
  return { ts, received };
}

const optTime = timeText;

/**
 * A page's or screen's name as RudderStack's warehouse loader takes it: `name`, else `properties.name`
 * (RudderStack's mobile SDKs send a screen's name only there, beside `event`). A name that is an object
 * is no name.
 */
function pageName(f: ShapedFields): string | null {
  const own = str(f.name);
  if (own !== null) return own;
  const fromProps = f.properties?.name;
  return typeof fromProps === 'string' || typeof fromProps === 'number' ? str(fromProps) : null;
}

/**
 * The members of each call type that landingRow stores as JSON columns (an identify's traits merged with
 * context.traits); the others (integrations, _metadata, a track's traits) are not stored.
 */
export const LANDED_JSON: Readonly<Record<CallType, readonly string[]>> = {
  track: ['properties', 'context'],
  page: ['properties', 'context'],
  screen: ['properties', 'context'],
  identify: ['traits', 'context'],
  group: ['traits', 'context'],
  alias: ['context'],
};

/** One landing row, values in the column order of RAW_TABLES[TABLE_FOR_TYPE[type]]. */
export function landingRow(type: CallType, f: ShapedFields): InsertValue[] {
  // spaces or NULs only are no id either: two such events would dedup as one
  const id = idStr(f.messageId) ?? generateMessageId();
  const { ts, received } = landingTimes(f);
  switch (type) {
    case 'track': {
      const event = clean(f.event ?? '');
      return [
        id,
        idStr(f.userId),
        idStr(f.anonymousId),
        slugify(event),
        event,
        ts,
        optTime(f.originalTimestamp),
        optTime(f.sentAt),
        received,
        jsonColumn(f.properties),
        jsonColumn(f.context),
      ];
    }
    case 'identify':
      return [
        id,
        idStr(f.userId),
        idStr(f.anonymousId),
        ts,
        optTime(f.originalTimestamp),
        optTime(f.sentAt),
        received,
        jsonColumn(mergeTraits(f.traits, f.context)),
        jsonColumn(f.context),
      ];
    case 'page':
    case 'screen':
      return [
        id,
        idStr(f.userId),
        idStr(f.anonymousId),
        pageName(f),
        ts,
        optTime(f.originalTimestamp),
        optTime(f.sentAt),
        received,
        jsonColumn(f.properties),
        jsonColumn(f.context),
      ];
    case 'alias':
      return [id, idStr(f.previousId), idStr(f.userId), ts, received, jsonColumn(f.context)];
    case 'group':
      return [
        id,
        idStr(f.userId),
        idStr(f.anonymousId),
        idStr(f.groupId),
        ts,
        received,
        // the group's own traits: context.traits describe the user (SPEC 3 merges them for identifies only)
        jsonColumn(f.traits),
        jsonColumn(f.context),
      ];
  }
}

/** Options of `normalizeEvent`, decided by the entry point. */
export interface NormalizeOptions {
  /** When the collector received the call (ISO UTC). */
  receivedAt: string;
  /**
   * Keep a `receivedAt` the event already carries (events relayed by a Segment/RudderStack webhook destination
   * or replayed from a file were received by the CDP earlier); the HTTP tracking API always stamps its own.
   */
  keepReceivedAt: boolean;
  /** `sentAt` of the enclosing batch, which SDKs set once per request rather than per event. */
  batchSentAt?: string;
  /**
   * `context` of the enclosing batch (Segment HTTP API), for events that carry none. Applied here, after
   * validation, so that it neither counts toward an event's size limit nor lands in a rejected event's payload.
   */
  batchContext?: JsonObject;
}

export const TIME_KEYS = ['timestamp', 'originalTimestamp', 'sentAt', 'receivedAt'] as const;

/**
 * Fills in what the SDKs leave out and brings RudderStack's variants onto the Segment spec, in place, on an
 * event that already passed validation: generated messageId, receivedAt, batch-level sentAt, ids as strings,
 * zone-less timestamps made explicit UTC. RudderStack-only fields (rudderId, channel…) are left untouched:
 * no landing column of SPEC §3 takes them, and a rejected event keeps them in its payload.
 */
export function normalizeEvent(event: JsonObject, opts: NormalizeOptions): void {
  if (typeof event.messageId !== 'string' || event.messageId.trim() === '')
    event.messageId = generateMessageId();
  if (typeof event.userId === 'number') event.userId = String(event.userId);
  if (typeof event.anonymousId === 'number') event.anonymousId = String(event.anonymousId);
  if (!(opts.keepReceivedAt && typeof event.receivedAt === 'string')) event.receivedAt = opts.receivedAt;
  // null means absent (see schemas.ts), so a null sentAt or context takes the batch's as a missing one does
  if (event.sentAt == null && opts.batchSentAt !== undefined) event.sentAt = opts.batchSentAt;
  if (event.context == null && opts.batchContext !== undefined) event.context = opts.batchContext;
  // actions-core destructures these with defaults, which a null does not take: null means absent.
  if (event.context === null) delete event.context;
  if (event.properties === null) delete event.properties;
  if (event.traits === null) delete event.traits;
  for (const k of TIME_KEYS) {
    const v = event[k];
    if (typeof v === 'string') event[k] = canonicalTimestamp(v);
    else if (v === null) delete event[k];
  }
}
