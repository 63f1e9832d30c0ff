import type { LongHold } from './delivery';
import type { TraitValue } from './traits';
import { UsageError } from '../errors';
import { redact } from '../warehouse/index';

/** The identify as cdp-lifecycle builds it; each transport adds its envelope fields on the wire. */
export interface IdentifyMessage {
  type: 'identify';
  userId: string;
  messageId: string;
  timestamp: string;
  traits: Record<string, TraitValue>;
  context: Record<string, unknown>;
  integrations: Record<string, unknown>;
}

/**
 * Asked before a request leaves: resolves once the run's Retry-After hold is over (at once when the sync is
 * interrupted), or without waiting with a hold longer than a run waits, before whose end nothing may leave.
 */
export type RequestGate = () => Promise<LongHold | undefined>;

/** What the CDP said about one event of a request. */
export type Outcome =
  | { kind: 'ok' }
  /**
   * 429, 5xx, 408, network error or timeout: the same events may be sent again later. `notSent`: they never
   * left (held back after an earlier request of their batch failed, or the run was interrupted), so the CDP
   * cannot have them.
   */
  | { kind: 'retry'; status?: number; retryAfterMs?: number; message: string; notSent?: true }
  /** Another 4xx: something in the request is refused; bisecting finds which event. */
  | { kind: 'reject'; status: number; message: string }
  /** 401/403/404, or an endpoint fetch will never connect to: no event can succeed, so the run stops. */
  | { kind: 'fatal'; status?: number; message: string };

export interface Limits {
  /** Largest single event, in bytes of JSON as it travels (SPEC §6: 32 KB). */
  maxEventBytes: number;
  /** Largest request body before compression. */
  maxBatchBytes: number;
  maxBatchEvents: number;
}

export interface Transport {
  readonly target: 'segment' | 'rudderstack';
  /** The host the events go to, for the destination id and messages. */
  readonly host: string;
  readonly limits: Limits;
  /** Bytes this event takes in a request body (including what the transport or SDK adds to it). */
  eventBytes(msg: IdentifyMessage): number;
  /** Bytes of a request around its events (envelope, separators). */
  batchOverheadBytes(events: number): number;
  /**
   * Sends one request's worth of events; resolves with one outcome per event, never rejects. Once `signal`
   * aborts, nothing more of them leaves (the SDK may cut one batch into several requests). The caller let the
   * first request go; every further one waits for `gate`, since an answer meanwhile may hold the run.
   */
  send(msgs: readonly IdentifyMessage[], signal?: AbortSignal, gate?: RequestGate): Promise<Outcome[]>;
  close(): Promise<void>;
}

export const SEGMENT_HOSTS = {
  us: 'https://api.segment.io',
  eu: 'https://events.eu1.segmentapis.com',
} as const;

// Segment: 32 KB per call, 500 KB and 2,500 calls per batch request, in bytes (the API measures bytes and
// rejects the whole request when over); an event of exactly 32 KB is within the limit (SPEC 6: <= 32 KB).
export const SEGMENT_LIMITS: Limits = {
  maxEventBytes: 32 * 1024,
  maxBatchBytes: 500 * 1000,
  maxBatchEvents: 2500,
};
// RudderStack data plane: 4 MB per request, 32 KB per event.
export const RUDDERSTACK_LIMITS: Limits = {
  maxEventBytes: 32 * 1024,
  maxBatchBytes: 4 * 1000 * 1000,
  maxBatchEvents: 2500,
};

/** Parses Retry-After (delta-seconds or an HTTP date) into milliseconds from now. */
export function parseRetryAfter(value: string | null | undefined, now = Date.now()): number | undefined {
  if (value === null || value === undefined || value.trim() === '') return undefined;
  const v = value.trim();
  if (/^\d+(\.\d+)?$/.test(v)) return Math.round(Number(v) * 1000);
  const at = Date.parse(v);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/** A redirect's Location as an absolute URL (a relative one is read against the request's), or as it came. */
export function absoluteLocation(location: string | null | undefined, requestUrl: string): string | null {
  if (!location) return null;
  try {
    return new URL(location, requestUrl).toString();
  } catch {
    return location;
  }
}

/**
 * A request that got no answer, as both targets word it: the URL, then the cause. Node's words for a host that
 * does not resolve (`getaddrinfo ENOTFOUND …`, or fetch's bare `fetch failed`) do not say that the endpoint
 * holds a host name DNS does not know, most often a typo, nor that EAI_AGAIN is a DNS failure that may pass.
 * `hostname`: the name looked up (a proxy's, when one is used), else the URL's.
 */
export function describeNetworkError(url: string, detail: string, code?: string, hostname?: string): string {
  const host = hostname ?? new URL(url).hostname;
  if (code === 'ENOTFOUND') {
    return `${url}: the host ${host} does not resolve (${code}): check the host name of the endpoint`;
  }
  if (code === 'EAI_AGAIN') {
    // A lookup that timed out or whose DNS server failed: the name may be right, and a later run may succeed.
    return `${url}: the DNS lookup of ${host} failed for now (${code}): check this machine's DNS and network, and the host name of the endpoint`;
  }
  return `${url}: ${detail}${code ? ` (${code})` : ''}`;
}

/**
 * Network errors raised before a connection existed, so before a byte of the request left: a run stopped
 * while such a request waits for its retry has sent nothing of it, and records nothing for its rows.
 */
const NEVER_CONNECTED = new Set([
  'ECONNREFUSED',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

/** A request that got no answer: retried, and flagged notSent when it never connected (NEVER_CONNECTED). */
export function networkOutcome(message: string, code?: string): Exclude<Outcome, { kind: 'ok' }> {
  const o = classify(undefined, message);
  return o.kind === 'retry' && code !== undefined && NEVER_CONNECTED.has(code) ? { ...o, notSent: true } : o;
}

/**
 * Maps an HTTP status (or none, for a network error) to what the delivery loop should do. `location` is a
 * redirect's Location header, made absolute (absoluteLocation).
 */
export function classify(
  status: number | undefined,
  message: string,
  retryAfter?: string | null,
  location?: string | null,
  to: 'segment' | 'rudderstack' = 'rudderstack',
): Exclude<Outcome, { kind: 'ok' }> {
  if (status === undefined) return { kind: 'retry', message };
  // describeError's text starts with the status already; the fatal messages below name it themselves.
  const detail = message.replace(new RegExp(`^HTTP ${status}(: )?`), '');
  if (status >= 300 && status < 400) {
    // Never followed: a 301/302 turns the POST into a GET without its events, and a 200 to that GET would
    // read as delivered (SPEC §6 writes state only once the CDP acknowledged the batch).
    const to = location ? ` to ${redact(location)}` : '';
    return {
      kind: 'fatal',
      status,
      message: `the endpoint redirects (HTTP ${status}${to}), which the sync does not follow: pass the final base URL as --endpoint`,
    };
  }
  if (status === 429 || status === 408 || status >= 500) {
    return { kind: 'retry', status, retryAfterMs: parseRetryAfter(retryAfter), message };
  }
  if (status === 401 || status === 403) {
    return {
      kind: 'fatal',
      status,
      message: `the write key was refused (HTTP ${status})${detail ? `: ${detail}` : ''}`,
    };
  }
  if (status === 404 && /source is disabled/i.test(detail)) {
    // RudderStack's data plane answers a disabled source's write key so; Segment's API never does, so there
    // the endpoint is a RudderStack data plane given to --to segment
    return {
      kind: 'fatal',
      status,
      message:
        to === 'rudderstack'
          ? `the source of this write key is disabled (HTTP 404: ${detail}): enable it in RudderStack, or pass the write key of an enabled source`
          : `the endpoint answers as a RudderStack data plane whose source of this write key is disabled (HTTP 404: ${detail}): to sync to RudderStack, pass --to rudderstack and the write key of an enabled source`,
    };
  }
  if (status === 404 || status === 405) {
    return {
      kind: 'fatal',
      status,
      message: `the endpoint has no batch API (HTTP ${status}): check --endpoint${detail ? ` (${detail})` : ''}`,
    };
  }
  return { kind: 'reject', status, message };
}

/** `https://host[:port]` without a trailing slash; throws a plain Error the caller turns into a UsageError. */
export function normaliseHost(url: string): string {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new Error(`unsupported protocol ${u.protocol}`);
  return `${u.protocol}//${u.host}${u.pathname.replace(/\/+$/, '')}`;
}

/**
 * --endpoint as the sync uses it (a base URL: the client appends /v1/batch), or a usage error in one sentence.
 * A URL copied with the API path (…/v1/batch, …/v1/identify, …/v1) would be posted to …/v1/batch/v1/batch,
 * which a proxy or a catch-all endpoint may well answer with 200. `from`: where a value not given as --endpoint
 * was set (`the environment variable LIFECYCLE_SYNC_ENDPOINT`), which is not in front of the user.
 */
export function checkEndpoint(raw: string, to: 'segment' | 'rudderstack' = 'segment', from?: string): string {
  // a password in the URL is never printed back
  const shown = redact(raw);
  const named = from === undefined ? `--endpoint "${shown}"` : `The sync endpoint "${shown}" (from ${from})`;
  const give = from === undefined ? 'pass' : 'set it to';
  let host: string;
  try {
    host = normaliseHost(raw);
  } catch {
    const example =
      to === 'segment' ? 'https://api.segment.io' : 'https://<your-data-plane>.dataplane.rudderstack.com';
    throw new UsageError(`${named} is not an http(s) URL: ${give} e.g. ${example}.`);
  }
  const u = new URL(raw);
  // an `@` anywhere (`https://us/er:pw@host` reads as a path) is credentials that went astray
  if (u.username !== '' || u.password !== '' || raw.includes('@')) {
    // dropped, a proxy that needs them would answer 401, which reads as a refused write key
    throw new UsageError(
      `${named} carries a user name or password, which the sync does not send (it authenticates with --write-key): remove them from the URL.`,
    );
  }
  const apiPath = /\/v1(\/[a-z]+)?$/i.exec(host);
  if (apiPath) {
    throw new UsageError(
      `${named} ends with the API path ${apiPath[0]}: ${give} the base URL, ${host.slice(0, apiPath.index) || host}, and the sync adds /v1/batch itself.`,
    );
  }
  return host;
}

export type Sizer = Pick<Transport, 'eventBytes' | 'batchOverheadBytes'>;

/** Segment: the identify as we build it, inside `{"batch":[…],"sentAt":"…"}`. */
export const SEGMENT_SIZER: Sizer = {
  eventBytes: (msg) => Buffer.byteLength(JSON.stringify(msg), 'utf8'),
  batchOverheadBytes: (events) => 64 + Math.max(0, events - 1),
};

// What the RudderStack SDK puts around each event on the wire (see its `enqueue`): `context.traits` (a copy of
// `traits`), its own `context.library` in place of ours, `channel`, `_metadata.nodeVersion`,
// `originalTimestamp` and `sentAt`. The version is padded to 16 characters, so the measure never falls short.
const RUDDER_SDK_LIBRARY = { name: 'analytics-node', version: '0'.repeat(16) };
const ISO_TIMESTAMP = '2000-01-01T00:00:00.000Z';

/** RudderStack through its Node SDK: what the SDK puts on the wire, inside `{"batch":[…],"timestamp","sentAt"}`. */
export const RUDDERSTACK_SIZER: Sizer = {
  eventBytes: (msg) =>
    Buffer.byteLength(
      JSON.stringify({
        ...msg,
        context: { ...msg.context, traits: msg.traits, library: RUDDER_SDK_LIBRARY },
        channel: 'server',
        _metadata: { nodeVersion: process.versions.node },
        originalTimestamp: ISO_TIMESTAMP,
        sentAt: ISO_TIMESTAMP,
      }),
      'utf8',
    ),
  batchOverheadBytes: (events) => 128 + Math.max(0, events - 1),
};

/**
 * `t` with the write key, and the Basic credentials made of it, replaced by `***` in every outcome's message:
 * an endpoint that echoes what it was sent (a proxy's error page, "invalid writeKey …") would otherwise put the
 * key in the terminal, `sync_log` and `sync_state.last_error`.
 */
export function maskingTransport(t: Transport, writeKey: string): Transport {
  const b64 = [Buffer.from(`${writeKey}:`).toString('base64'), Buffer.from(writeKey).toString('base64')];
  const secrets = [
    writeKey,
    encodeURIComponent(writeKey),
    ...b64,
    // base64 without its padding, as some servers print a header back
    ...b64.map((b) => b.replace(/=+$/, '')),
  ]
    // a one- or two-character key would mask ordinary words
    .filter((s) => s.length >= 4)
    .sort((a, b) => b.length - a.length);
  const whole = (text: string): string => secrets.reduce((out, s) => out.split(s).join('***'), text);
  // A message cut short (describeError keeps 300 characters, then `…`) can end inside a secret: the part
  // before the cut is masked too, or most of the key would print.
  const mask = (text: string): string =>
    whole(text)
      .split('…')
      .map((part, i, parts) => {
        if (i === parts.length - 1) return part;
        let cut = 0;
        for (const s of secrets) {
          for (let n = Math.min(s.length - 1, part.length); n >= 4 && n > cut; n--) {
            if (part.endsWith(s.slice(0, n))) {
              cut = n;
              break;
            }
          }
        }
        return cut > 0 ? part.slice(0, part.length - cut) + '***' : part;
      })
      .join('…');
  return {
    target: t.target,
    host: t.host,
    limits: t.limits,
    eventBytes: (msg) => t.eventBytes(msg),
    batchOverheadBytes: (events) => t.batchOverheadBytes(events),
    send: async (msgs, signal, gate) =>
      (await t.send(msgs, signal, gate)).map((o) =>
        o.kind === 'ok' ? o : { ...o, message: mask(o.message) },
      ),
    close: () => t.close(),
  };
}
