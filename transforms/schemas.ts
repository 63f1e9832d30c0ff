/**
 * JSON Schemas of the six call types (SPEC §7), compiled once with ajv and used by every entry point
 * (collector, `load`, `demo`). Validation answers with one short reason per problem, every problem of the
 * event in one text: the reason is stored in
 * `rejected_events.reason`, returned to the sender, and grouped in the `load` summary, so it names the rule
 * and never echoes the offending value.
 */
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import {
  CALL_TYPES,
  isCallType,
  isJsonObject,
  LANDED_JSON,
  isStorableInstant,
  isBlank,
  NOT_BLANK,
  parseIsoTimestamp,
  type CallType,
} from './events';

export const DEFAULT_MAX_EVENT_BYTES = 32 * 1024;
export const MAX_MESSAGE_ID_LENGTH = 100;
/** Deeper payloads are refused: they blow the stack of JSON.stringify and of the mapping engine. */
export const MAX_NESTING_DEPTH = 64;

// A numeric id beyond 2^53 is rounded by every JSON parser: two users would land as one, so it is refused.
const safeNumber = { maximum: Number.MAX_SAFE_INTEGER, minimum: -Number.MAX_SAFE_INTEGER } as const;
// An id of spaces only names nobody: counted as absent, like an empty one (it would land as a user "  " and be
// synced back to the CDP). So does one of NULs (and spaces) only, which lands as NULL once NULs are removed.
const notBlank = NOT_BLANK.source;
const id = { type: ['string', 'number'], minLength: 1, pattern: notBlank, ...safeNumber } as const;
// analytics.js sends `userId: null` for anonymous calls, so null is allowed here and the identity rule
// below decides.
const optionalId = { type: ['string', 'number', 'null'], ...safeNumber } as const;
// null is an absent value here, as for the ids: a server-side sender that serialises an unset field as null
// gets a generated messageId and a derived timestamp instead of a rejected event (normalizeEvent drops it).
const timestamp = { type: ['string', 'null'], format: 'iso8601' } as const;
const object = { type: ['object', 'null'] } as const;

const common = {
  type: { type: 'string' },
  messageId: { type: ['string', 'null'], maxLength: MAX_MESSAGE_ID_LENGTH },
  userId: optionalId,
  anonymousId: optionalId,
  timestamp,
  originalTimestamp: timestamp,
  sentAt: timestamp,
  receivedAt: timestamp,
  context: object,
  integrations: object,
};

const needsIdentity = {
  anyOf: [
    { required: ['userId'], properties: { userId: id } },
    { required: ['anonymousId'], properties: { anonymousId: id } },
  ],
};

export const EVENT_SCHEMAS: Readonly<Record<CallType, Record<string, unknown>>> = {
  track: {
    type: 'object',
    required: ['event'],
    properties: { ...common, event: { type: 'string', minLength: 1, pattern: notBlank }, properties: object },
    ...needsIdentity,
  },
  identify: {
    type: 'object',
    properties: { ...common, traits: object },
    ...needsIdentity,
  },
  page: {
    type: 'object',
    properties: { ...common, name: { type: ['string', 'null'] }, properties: object },
    ...needsIdentity,
  },
  screen: {
    type: 'object',
    properties: { ...common, name: { type: ['string', 'null'] }, properties: object },
    ...needsIdentity,
  },
  alias: {
    type: 'object',
    // Segment's alias spec: `previousId` is merged into `userId`; both are required.
    required: ['previousId', 'userId'],
    properties: { ...common, previousId: id, userId: id },
  },
  group: {
    type: 'object',
    required: ['groupId'],
    properties: { ...common, groupId: id, traits: object },
    ...needsIdentity,
  },
};

/**
 * Why a timestamp's text cannot land (after "<field> "), or undefined when it can: an offset can move a
 * valid text out of the years both warehouses store (`0001-01-01T00:00:00+01:00` is in the year 0).
 */
export function timestampProblem(text: string): string | undefined {
  const ms = parseIsoTimestamp(text);
  if (Number.isNaN(ms)) return 'is not an ISO-8601 timestamp';
  return isStorableInstant(ms) ? undefined : 'is before the year 0001 or after 9999 once in UTC';
}

let compiled: Record<CallType, ValidateFunction> | undefined;

function validators(): Record<CallType, ValidateFunction> {
  if (compiled) return compiled;
  // every problem of an event at once: a sender fixing one at a time would need as many round trips
  const ajv = new Ajv({ allErrors: true, strict: true, allowUnionTypes: true });
  ajv.addFormat('iso8601', {
    type: 'string',
    validate: (s: string) => isStorableInstant(parseIsoTimestamp(s)),
  });
  const out = {} as Record<CallType, ValidateFunction>;
  for (const t of CALL_TYPES) out[t] = ajv.compile(EVENT_SCHEMAS[t]);
  compiled = out;
  return out;
}

function field(e: ErrorObject): string {
  return e.instancePath.replace(/^\//, '').replace(/\//g, '.');
}

function describeOne(type: CallType, e: ErrorObject, event: Record<string, unknown>): string | null {
  const f = field(e);
  switch (e.keyword) {
    case 'anyOf': {
      // an id of the wrong type or empty is that id's problem, not a missing identity (the wrong type is
      // reported by the id's own rule)
      for (const key of ['userId', 'anonymousId']) {
        const v = event[key];
        if (v === '') return `${type} call has neither userId nor anonymousId (${key} is empty)`;
        if (typeof v === 'string' && isBlank(v))
          return `${type} call has neither userId nor anonymousId (${key} is blank)`;
        if (v !== undefined && v !== null && typeof v !== 'string' && typeof v !== 'number') return null;
        if (typeof v === 'number' && Math.abs(v) > Number.MAX_SAFE_INTEGER) return null;
      }
      return `${type} call has neither userId nor anonymousId`;
    }
    case 'required':
      return `${type} call without ${String((e.params as { missingProperty: string }).missingProperty)}`;
    case 'maxLength':
      return `${f} is longer than ${String((e.params as { limit: number }).limit)} characters`;
    case 'minLength':
      return `${f} is empty`;
    // a name of spaces (or NULs) only would land as the empty slug, which no var can name
    case 'pattern':
      return `${f} is blank`;
    case 'format': {
      const v = event[f];
      return `${f} ${(typeof v === 'string' && timestampProblem(v)) || 'is not an ISO-8601 timestamp'}`;
    }
    case 'maximum':
    case 'minimum':
      return `${f} is a number too large to keep exactly: send it as a string`;
    case 'type':
      return `${f || 'event'} must be ${String((e.params as { type: string | string[] }).type).replace(/,/g, ' or ')}`;
    default:
      return `${f || 'event'} ${e.message ?? 'is invalid'}`;
  }
}

/** Every problem of the event, in schema order, each once ("event must be string; timestamp is not …"). */
function describe(
  type: CallType,
  errors: ErrorObject[] | null | undefined,
  event: Record<string, unknown>,
): string {
  // The identity rule fails as a whole (anyOf) after its branches report; its own reason stands for them.
  const own = (errors ?? []).filter((e) => !e.schemaPath.includes('/anyOf/'));
  if (own.length === 0) return `invalid ${type} call`;
  // one reason per field: an empty name also fails the blank-name rule
  const seen = new Set<string>();
  const first = own.filter((e) => {
    const key =
      e.keyword === 'required'
        ? `#required:${String((e.params as { missingProperty: string }).missingProperty)}`
        : e.keyword === 'anyOf'
          ? '#anyOf'
          : e.instancePath;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
  const reasons = new Set(first.map((e) => describeOne(type, e, event)).filter((r) => r !== null));
  return reasons.size > 0 ? [...reasons].join('; ') : `invalid ${type} call`;
}

/** jsonSizeUpperBound's answer for a value nested deeper than its maxDepth. */
export const TOO_DEEP = -1;

/**
 * An upper bound of the UTF-8 size of `value` serialised as JSON, or TOO_DEEP when it nests objects/arrays
 * deeper than `maxDepth` (which JSON.stringify could not even serialise). One cheap walk replaces serialising
 * every event just to measure it: each UTF-16 unit of a string counts 6 bytes (the longest escape), numbers 25
 * (the longest a double prints: `-0.0000012345678901234567`). `seen.nonFinite` is set when the walk meets a
 * number JSON.parse read as ±Infinity (`1E400`), which JSON.stringify writes as null: the caller then looks for
 * it where it would land (landedOutOfRange), only then, so that the common walk stays one pass.
 */
export function jsonSizeUpperBound(value: unknown, maxDepth: number, seen?: { nonFinite: boolean }): number {
  switch (typeof value) {
    case 'string':
      return 6 * value.length + 2;
    case 'number':
      if (seen && !Number.isFinite(value)) seen.nonFinite = true;
      return 25;
    case 'boolean':
      return 5;
    case 'object': {
      if (value === null) return 4;
      if (maxDepth <= 0) return TOO_DEEP;
      let n = 2;
      if (Array.isArray(value)) {
        for (const v of value) {
          const c = jsonSizeUpperBound(v, maxDepth - 1, seen);
          if (c < 0) return c;
          n += c + 1;
        }
        return n;
      }
      for (const k in value) {
        const c = jsonSizeUpperBound((value as Record<string, unknown>)[k], maxDepth - 1, seen);
        if (c < 0) return c;
        n += c + 6 * k.length + 4;
      }
      return n;
    }
    default:
      return 0;
  }
}

/** The path of the first number beyond a double under `value` (`[2].price`), built only on the way back. */
function nonFinitePath(value: unknown): string | null {
  if (typeof value === 'number') return Number.isFinite(value) ? null : '';
  if (value === null || typeof value !== 'object') return null;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const below = nonFinitePath(value[i]);
      if (below !== null) return `[${i}]${below}`;
    }
    return null;
  }
  for (const k in value) {
    const below = nonFinitePath((value as Record<string, unknown>)[k]);
    if (below !== null) return `${/^[A-Za-z_$][\w$]*$/.test(k) ? `.${k}` : `[${JSON.stringify(k)}]`}${below}`;
  }
  return null;
}

/**
 * Where a number beyond a double sits in what would land of an event of this type (`properties.items[1].price`),
 * or null: one in a member that is not stored (`integrations`, `_metadata`) loses nothing.
 */
export function landedOutOfRange(type: CallType, event: Record<string, unknown>): string | null {
  for (const member of LANDED_JSON[type]) {
    const below = nonFinitePath(event[member]);
    if (below !== null) return `${member}${below}`;
  }
  return null;
}

export interface SizeLimit {
  /**
   * Events larger than this many bytes, serialised as compact JSON, are invalid: measured on the event, not
   * on the text it came in, so that escapes (`\u65e5`) or spaces in a file do not count against it.
   */
  maxBytes: number;
}

/**
 * Validates one event. `impliedType` is the call type implied by the endpoint (`/v1/track`) when the event
 * has none. Returns the call type when valid, else the reason.
 */
export function validateEvent(
  event: unknown,
  impliedType?: CallType,
  size?: SizeLimit,
): { type: CallType } | { reason: string } {
  if (!isJsonObject(event)) return { reason: 'event is not a JSON object' };
  const seen = { nonFinite: false };
  const bound = jsonSizeUpperBound(event, MAX_NESTING_DEPTH, seen);
  if (bound === TOO_DEEP) return { reason: `event is nested deeper than ${MAX_NESTING_DEPTH} levels` };
  if (size && bound > size.maxBytes) {
    const bytes = Buffer.byteLength(JSON.stringify(event));
    if (bytes > size.maxBytes) return { reason: `event is larger than ${size.maxBytes} bytes` };
  }
  const t = event.type ?? impliedType;
  if (t === undefined) return { reason: 'event has no type' };
  if (!isCallType(t)) {
    return {
      reason:
        typeof t === 'string'
          ? `unknown type ${JSON.stringify(t.slice(0, 40))} (expected one of ${CALL_TYPES.join(', ')})`
          : 'type must be a string',
    };
  }
  const v = validators()[t];
  if (!v(event)) return { reason: describe(t, v.errors, event) };
  if (seen.nonFinite) {
    const where = landedOutOfRange(t, event);
    if (where !== null) {
      return {
        reason: `${where} is a number beyond the range of a double, which would land as null: send it as a string`,
      };
    }
  }
  return { type: t };
}
