/**
 * The HTTP collector (`cdp-lifecycle serve`): the Segment HTTP Tracking API and the RudderStack data-plane
 * API (`/v1/batch`, `/v1/track`…), plus `/webhook` for the Segment and RudderStack webhook destinations.
 * Plain node:http: the surface is eight routes, and owning the body stream lets an oversized request be cut
 * off at the limit instead of buffered.
 */
import * as http from 'node:http';
import { randomUUID } from 'node:crypto';
import { constants as zlibConstants, createGunzip, createInflate, gunzipSync, inflateSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import pino, { type Logger } from 'pino';
import { Ingestor, type IngestMeta, type IngestResult } from './ingest';
import { maskWriteKeys, stripWriteKey } from './mask';
import type { Warehouse } from '../warehouse';
import { arrayElementTexts } from './json-slices';
import { WarehouseUnavailableError, errorMessage } from '../errors';
import { isJsonObject, type CallType } from '../../transforms/events';
import {
  DEFAULT_MAX_EVENT_BYTES,
  jsonSizeUpperBound,
  MAX_NESTING_DEPTH,
  TOO_DEEP,
} from '../../transforms/schemas';

export const DEFAULT_MAX_REQUEST_BYTES = 4 * 1024 * 1024;
/**
 * Events one request may carry. SDKs send tens to hundreds; 4 MB of the smallest valid events is some 80,000,
 * each validated and written while the event loop serves no one else (/health included).
 */
export const DEFAULT_MAX_BATCH_EVENTS = 10_000;
/**
 * Event requests handled at once. Each holds up to a request limit of body, its parsed events and their
 * expansion; past this many a request is answered 503 with Retry-After before its body is read, so a burst
 * (a fleet of SDKs flushing after an outage) slows down instead of exhausting the collector's memory.
 */
export const DEFAULT_MAX_CONCURRENT_REQUESTS = 64;
export const DEFAULT_BODY_STALL_MS = 10_000;
export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
/** A batch with its batch-level context given to each event may be this many request limits (16 MB). */
const EXPANDED_BATCH_FACTOR = 4;

export interface CollectorOptions {
  warehouse: Warehouse;
  rawSchema: string;
  port: number;
  host: string;
  /** Accepted write keys. Empty: no authentication (a warning is logged at start). */
  writeKeys: string[];
  maxRequestBytes?: number;
  maxEventBytes?: number;
  /** Events one request may carry (413 above it; default DEFAULT_MAX_BATCH_EVENTS). */
  maxBatchEvents?: number;
  /** Event requests handled at once (503 with Retry-After above it; default DEFAULT_MAX_CONCURRENT_REQUESTS). */
  maxConcurrentRequests?: number;
  logger?: Logger;
  /** A request whose body sends nothing for this long is answered 408 and closed (default 10 s). */
  bodyStallMs?: number;
  /** A request not received whole within this long is answered 408 by Node (default 60 s). */
  requestTimeoutMs?: number;
  /** How long `close()` waits for in-flight requests before cutting connections (default 30 s). */
  drainTimeoutMs?: number;
  /**
   * Every this often, one info record sums up the requests since the last one (default 60 s; none when
   * nothing came): a collector's health at a glance without a line per request (those are debug records).
   */
  activityLogMs?: number;
}

export interface Collector {
  url: string;
  port: number;
  /** Graceful drain: stop accepting, finish in-flight requests, flush the ingestor. Leaves the warehouse open. */
  close(): Promise<void>;
}

const TYPED_ROUTES: Record<string, CallType> = {
  '/v1/track': 'track',
  '/v1/identify': 'identify',
  '/v1/page': 'page',
  '/v1/screen': 'screen',
  '/v1/alias': 'alias',
  '/v1/group': 'group',
  // analytics.js (Segment's browser SDK) posts each call type to its one-letter path, writeKey in the body
  '/v1/t': 'track',
  '/v1/i': 'identify',
  '/v1/p': 'page',
  '/v1/s': 'screen',
  '/v1/a': 'alias',
  '/v1/g': 'group',
};

/** The batch endpoints: `/v1/b` is analytics.js's batching path. */
const BATCH_ROUTES = new Set(['/v1/batch', '/v1/import', '/v1/b']);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    /** The body was left unread: the connection closes after the answer instead of draining it. */
    readonly bodyUnread = status === 413 || status === 408,
  ) {
    super(message);
  }
}

/** A compressed body that does not decompress (400), with its bytes as received, to keep them. */
class UndecodableBodyError extends HttpError {
  constructor(
    message: string,
    readonly encoding: string,
    readonly raw: Buffer,
  ) {
    super(400, message);
  }
}

/**
 * What rejected_events keeps of a body that does not decompress, without the write keys it may hold (a key
 * must never land): the body's text when it is text (sent plain with a gzip header), else what decompresses of
 * it (a stream cut short), else its bytes in base64 with any key spelt out in them masked.
 */
export function keptUndecodable(
  raw: Buffer,
  encoding: string,
  limit: number,
): { reason: string; payload: string } {
  const head = `request body could not be decompressed (${encoding}); the payload is`;
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
    return {
      reason: `${head} the body as received, as text, its write keys masked`,
      payload: maskWriteKeys(text),
    };
  } catch {
    // not text: compressed bytes, read below
  }
  try {
    const options = { finishFlush: zlibConstants.Z_SYNC_FLUSH, maxOutputLength: limit };
    const partial = encoding === 'deflate' ? inflateSync(raw, options) : gunzipSync(raw, options);
    if (partial.length > 0)
      return {
        reason: `${head} the part of it that decompresses, its write keys masked`,
        payload: maskWriteKeys(partial.toString('utf8')),
      };
  } catch {
    // corrupt from the start, or more than the limit once decompressed: its bytes, below
  }
  return {
    reason: `${head} the body as received, in base64, its write keys masked`,
    payload: Buffer.from(maskWriteKeys(raw.toString('latin1')), 'latin1').toString('base64'),
  };
}

function send(
  res: http.ServerResponse,
  status: number,
  body: unknown,
  headers: http.OutgoingHttpHeaders = {},
): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
    ...headers,
  });
  res.end(text);
}

/**
 * Reads the body, decompressing gzip/deflate, and stops at `limit` bytes (compressed or not, so a small
 * gzip bomb is refused too): the rest is not kept, only read and dropped before the answer (discardRest).
 */
function readBody(req: http.IncomingMessage, limit: number, stallMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > limit) {
      reject(new HttpError(413, `The request body is larger than ${limit} bytes.`));
      return;
    }
    const encoding = String(req.headers['content-encoding'] ?? 'identity').toLowerCase();
    let stream: Readable = req;
    if (encoding === 'gzip' || encoding === 'x-gzip') stream = req.pipe(createGunzip());
    else if (encoding === 'deflate') stream = req.pipe(createInflate());
    else if (encoding !== 'identity') {
      reject(
        new HttpError(
          415,
          `Content-Encoding "${encoding}" is not supported: send gzip, deflate or no encoding.`,
        ),
      );
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let rawSize = 0;
    let done = false;
    // A sender whose body stops coming holds one of the places of its pool (a trickle of bytes would hold it
    // for as long as the server's request timeout): nothing for stallMs ends the request.
    let stall: NodeJS.Timeout | undefined;
    const fail = (err: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(stall);
      if (stream !== req) req.unpipe();
      req.pause();
      reject(err);
    };
    const watch = (): void => {
      clearTimeout(stall);
      if (done) return;
      stall = setTimeout(
        () =>
          fail(
            new HttpError(408, `The request body stopped arriving: nothing came for ${stallMs / 1000} s.`),
          ),
        stallMs,
      );
      stall.unref();
    };
    watch();
    req.on('data', watch);
    req.on('end', () => clearTimeout(stall));
    const rawChunks: Buffer[] = [];
    let undecodable: string | undefined;
    if (stream !== req) {
      req.on('data', (c: Buffer) => {
        rawSize += c.length;
        if (rawSize > limit) fail(new HttpError(413, `The request body is larger than ${limit} bytes.`));
        else rawChunks.push(c);
      });
      // after a decompression error the rest of the body is still read, so that all of it can be kept
      req.on('end', () => {
        if (undecodable === undefined || done) return;
        done = true;
        reject(new UndecodableBodyError(undecodable, encoding, Buffer.concat(rawChunks, rawSize)));
      });
    }
    stream.on('data', (c: Buffer) => {
      if (done) return;
      size += c.length;
      if (size > limit) {
        fail(new HttpError(413, `The request body is larger than ${limit} bytes.`));
        return;
      }
      chunks.push(c);
    });
    stream.on('error', (err) => {
      if (stream === req) {
        // a client that goes away mid-body ("aborted") is the client's doing, not a server error to alert on
        fail(
          (err as NodeJS.ErrnoException).code === 'ECONNRESET' && !req.complete
            ? new HttpError(400, 'The client closed the connection before the body ended.')
            : err,
        );
        return;
      }
      if (done || undecodable !== undefined) return;
      undecodable = `The request body could not be decompressed (${encoding}): ${errorMessage(err)}.`;
      req.unpipe();
      if (req.complete) {
        done = true;
        reject(new UndecodableBodyError(undecodable, encoding, Buffer.concat(rawChunks, rawSize)));
      } else req.resume();
    });
    // A client that disconnects mid-body must not leave the request pending (it would hold up a drain).
    req.on('close', () => {
      if (!done && !req.complete)
        fail(new HttpError(400, 'The client closed the connection before the body ended.'));
    });
    stream.on('end', () => {
      if (done) return;
      done = true;
      resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks, size));
    });
  });
}

/** How long a refused body is read and dropped (see discardRest) before its connection is cut anyway. */
const DISCARD_MS = 10_000;

/**
 * Reads and drops the rest of a refused request's body, so that its answer can be read: resolves true once
 * the body ended, false when it was still coming after `maxBytes` more or DISCARD_MS (a client streaming
 * without end holds nothing for long), or when the collector is stopping.
 */
function discardRest(req: http.IncomingMessage, maxBytes: number, stop: AbortSignal): Promise<boolean> {
  return new Promise((resolve) => {
    let left = maxBytes;
    // a shutdown does not wait for a body nobody wants
    const onStop = (): void => settle(false);
    const settle = (ended: boolean): void => {
      clearTimeout(timer);
      stop.removeEventListener('abort', onStop);
      req.pause();
      resolve(ended);
    };
    if (stop.aborted) {
      resolve(false);
      return;
    }
    stop.addEventListener('abort', onStop);
    const timer = setTimeout(() => settle(false), DISCARD_MS);
    timer.unref();
    // what readBody listened with (it keeps a compressed body's bytes) stops here
    req.removeAllListeners('data');
    req.unpipe();
    req.on('data', (c: Buffer) => {
      left -= c.length;
      if (left < 0) settle(false);
    });
    req.on('end', () => settle(true));
    req.on('close', () => settle(req.complete));
    req.resume();
  });
}

/**
 * The write key is a credential: it never lands, neither in an event nor in a kept body. Removed from the body
 * and from each element of its events array (a batch, or a webhook's array), before validation (see
 * stripWriteKey, which `load` applies to each line).
 */
function stripWriteKeys(parsed: unknown): void {
  stripWriteKey(parsed);
  const list = Array.isArray(parsed) ? parsed : isJsonObject(parsed) ? parsed.batch : undefined;
  if (Array.isArray(list)) for (const e of list) stripWriteKey(e);
}

/**
 * The user name of an HTTP Basic `Authorization` header, or undefined when there is none. Another scheme
 * (`Bearer …`, which a proxy or an API gateway in front may add for itself) says nothing about the write key,
 * so the key in the body still counts then.
 */
function basicAuthUser(header: string | undefined): string | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+(.+)$/i.exec(header.trim());
  if (!m) return undefined;
  const decoded = Buffer.from(m[1], 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? decoded : decoded.slice(0, colon);
}

/** Starts the collector. Resolves once it listens; `port: 0` picks a free port (see `port` of the result). */
export async function startCollector(opts: CollectorOptions): Promise<Collector> {
  const logger = opts.logger ?? pino({ level: process.env.LOG_LEVEL ?? 'info' });
  const maxRequestBytes = opts.maxRequestBytes ?? DEFAULT_MAX_REQUEST_BYTES;
  const maxEventBytes = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  const maxBatchEvents = opts.maxBatchEvents ?? DEFAULT_MAX_BATCH_EVENTS;
  const maxConcurrent = opts.maxConcurrentRequests ?? DEFAULT_MAX_CONCURRENT_REQUESTS;
  const bodyStallMs = opts.bodyStallMs ?? DEFAULT_BODY_STALL_MS;
  // Two pools: requests whose Basic-auth key checked out before their body is read (what the SDKs send), and
  // the rest (a key in the body, or no keys configured). Requests that have not shown a key yet, left open
  // without their body, then fill only their own pool and never lock the SDKs out.
  const inUse = { keyed: 0, other: 0 };
  const ingestor = new Ingestor({
    warehouse: opts.warehouse,
    rawSchema: opts.rawSchema,
    maxEventBytes,
    logger,
  });
  const keys = new Set(opts.writeKeys.filter((k) => k !== ''));
  if (keys.size === 0) {
    logger.warn(
      'no write key configured: the collector accepts every request (set --write-key to require one)',
    );
  }
  let inFlight = 0;
  let closing = false;
  // aborted when the collector stops: the refused bodies being read and dropped are cut (see discardRest)
  const stopDrains = new AbortController();
  let healthFailing = false;
  let drained: (() => void) | undefined;
  const activity = { requests: 0, landed: 0, rejected: 0, refused: 0, failed: 0 };
  let activitySince = Date.now();
  const logActivity = (): void => {
    const now = Date.now();
    if (activity.requests > 0) {
      logger.info({ ...activity, seconds: Math.round((now - activitySince) / 1000) }, 'collector activity');
    }
    for (const k of Object.keys(activity) as Array<keyof typeof activity>) activity[k] = 0;
    activitySince = now;
  };

  /** `basicUser`: a configured key given by Basic auth (a wrong one was refused before the body was read). */
  const authorised = (basicUser: string | undefined, body: unknown): boolean => {
    if (keys.size === 0 || basicUser !== undefined) return true;
    const hasKey = (o: unknown) => isJsonObject(o) && typeof o.writeKey === 'string' && keys.has(o.writeKey);
    if (!Array.isArray(body)) return hasKey(body);
    // A /webhook array whose events carry the key (as a single event may): one configured key, no other.
    return body.some(hasKey) && body.every((o) => !isJsonObject(o) || o.writeKey === undefined || hasKey(o));
  };

  async function handleEvents(
    req: http.IncomingMessage,
    res: http.ServerResponse,
    path: string,
    log: Logger,
    basicUser: string | undefined,
  ): Promise<void> {
    // An unavailable warehouse answers 503, so that the SDK retries.
    const ingestOr503 = async (events: unknown[], meta: IngestMeta): Promise<IngestResult> => {
      try {
        return await ingestor.ingest(events, meta);
      } catch (err) {
        if (err instanceof WarehouseUnavailableError) {
          log.warn({ err: errorMessage(err) }, 'warehouse unavailable');
          throw new HttpError(503, 'The warehouse is unavailable; nothing was stored, retry later.');
        }
        throw err;
      }
    };
    /**
     * A body refused as a whole (400, or 413 for what it would make) from an authenticated sender is kept in
     * rejected_events, as its text: SDKs drop a batch answered with 4xx, so this copy is the only one left.
     */
    const refuseBody = async (
      reason: string,
      message: string,
      payload: string,
      status = 400,
    ): Promise<never> => {
      await ingestOr503([], {
        receivedAt: new Date(),
        // PostgreSQL text cannot hold NUL
        extraRejections: [{ reason, payload: payload.replace(/\u0000/g, '') }],
      });
      activity.rejected += 1;
      throw new HttpError(status, `${message} The body was kept in rejected_events.`);
    };
    let body: Buffer;
    try {
      body = await readBody(req, maxRequestBytes, bodyStallMs);
    } catch (err) {
      // Kept when the sender is known by its header (the body cannot be read for a key): its bytes in base64.
      if (err instanceof UndecodableBodyError && (keys.size === 0 || basicUser !== undefined)) {
        const kept = keptUndecodable(err.raw, err.encoding, maxRequestBytes);
        return refuseBody(kept.reason, err.message, kept.payload);
      }
      throw err;
    }
    // A byte order mark (some Windows tools and .NET clients write one) is not part of the JSON text: RFC 8259
    // lets a parser ignore it, and JSON.parse does not.
    const decoded = body.toString('utf8');
    const text = decoded.charCodeAt(0) === 0xfeff ? decoded.slice(1) : decoded;
    // the body as its text, its write keys masked
    const refuseText = (reason: string, message: string, status?: number): Promise<never> =>
      refuseBody(reason, message, maskWriteKeys(text), status);
    // more events than one request may carry: refused whole, and kept like a body that cannot be read
    const tooMany = (n: number): Promise<never> =>
      refuseText(
        `the request carries ${n} events, more than the ${maxBatchEvents} one request may`,
        `The request carries ${n} events, more than the ${maxBatchEvents} one request may: send smaller batches.`,
        413,
      );
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      // Without a header the key could only be in the body: a body that does not parse authorises nothing.
      if (keys.size > 0 && basicUser === undefined)
        throw new HttpError(401, 'The write key is missing or wrong.');
      return refuseText(
        // the parser's message quotes the body (which may hold the key) and its positions vary: the stored
        // reason is fixed, so that the rows group, and the detail goes back to the sender only
        'request body is not valid JSON',
        `The request body is not valid JSON: ${errorMessage(err)}.`,
      );
    }
    if (!authorised(basicUser, parsed)) throw new HttpError(401, 'The write key is missing or wrong.');
    stripWriteKeys(parsed);

    let events: unknown[];
    const meta: IngestMeta = { receivedAt: new Date() };
    // A rejected event of an array is kept as sent: the body is scanned for its elements' text only then.
    let elementTexts: Array<string | undefined> | undefined;
    const elementText = (key: string | null) => (i: number) => {
      if (elementTexts === undefined) {
        const found = arrayElementTexts(text, key);
        elementTexts = found !== null && found.length === events.length ? found.map(maskWriteKeys) : [];
      }
      return elementTexts[i];
    };
    if (BATCH_ROUTES.has(path)) {
      if (!isJsonObject(parsed) || !Array.isArray(parsed.batch)) {
        // the text as sent: re-serialising the parsed body would round long numbers and fold repeated keys
        return refuseText(
          'request body of /v1/batch has no "batch" array',
          'The body of /v1/batch must be an object with a "batch" array of events.',
        );
      }
      events = parsed.batch;
      if (events.length > maxBatchEvents) return tooMany(events.length);
      meta.payloadText = elementText('batch');
      // as sent, whatever its type: one that is not a timestamp string rejects the events that would take it
      meta.batchSentAt = parsed.sentAt;
      // Batch-level context (Segment HTTP API) applies to the events that carry none, once they are valid (so
      // it counts toward no event's size). It lands with each of them, so it is bounded like an event (32 KB,
      // 64 levels), and the batch with it repeated must stay within four request limits: 1 MB of context on
      // 5,000 tiny events was 5 GB to write, and the collector ran out of memory. Refused batches are kept.
      if (isJsonObject(parsed.context)) {
        // null is absent (normalizeEvent gives such an event the batch's context too): counted, or a batch
        // whose events all carry `"context": null` would never hand its context over
        const takers = events.filter((e) => isJsonObject(e) && e.context == null).length;
        if (takers > 0) {
          const seen = { nonFinite: false };
          const bound = jsonSizeUpperBound(parsed.context, MAX_NESTING_DEPTH - 1, seen);
          if (bound === TOO_DEEP) {
            return refuseText(
              `the batch's context is nested deeper than ${MAX_NESTING_DEPTH} levels`,
              `The batch's "context" is nested deeper than ${MAX_NESTING_DEPTH} levels.`,
            );
          }
          if (seen.nonFinite) {
            return refuseText(
              "the batch's context holds a number beyond the range of a double",
              `The batch's "context" holds a number beyond the range of a double, which would land as null: send it as a string.`,
            );
          }
          const contextBytes = Buffer.byteLength(JSON.stringify(parsed.context));
          if (contextBytes > maxEventBytes) {
            return refuseText(
              `the batch's context is larger than ${maxEventBytes} bytes`,
              `The batch's "context" is larger than ${maxEventBytes} bytes, the limit of an event it is given to.`,
            );
          }
          const expanded = body.length + contextBytes * takers;
          if (expanded > EXPANDED_BATCH_FACTOR * maxRequestBytes) {
            return refuseText(
              `the batch's context, given to each of its ${takers} events without one, makes ${expanded} bytes`,
              `The batch's context (${contextBytes} bytes), given to each of its ${takers} events without one, makes ${expanded} bytes to write, over ${EXPANDED_BATCH_FACTOR * maxRequestBytes}: send smaller batches, or the context on each event.`,
              413,
            );
          }
          meta.batchContext = parsed.context;
        }
      }
    } else if (path === '/webhook') {
      events = Array.isArray(parsed) ? parsed : [parsed];
      if (events.length > maxBatchEvents) return tooMany(events.length);
      meta.keepReceivedAt = true;
      meta.payloadText = Array.isArray(parsed) ? elementText(null) : () => maskWriteKeys(text);
    } else {
      events = [parsed];
      meta.impliedType = TYPED_ROUTES[path];
      // The body is the event: a rejected one is kept as sent (with its own type, before the endpoint's
      // replaces it below), write keys masked.
      meta.payloadText = () => maskWriteKeys(text);
      // As on Segment's API, the endpoint decides the call type.
      if (isJsonObject(parsed)) parsed.type = meta.impliedType;
    }
    const result = await ingestOr503(events, meta);
    activity.requests++;
    activity.landed += result.landed;
    activity.rejected += result.rejected.length;
    if (result.rejected.length > 0) {
      log.info({ landed: result.landed, rejected: result.rejected.length }, 'events rejected');
    }
    send(res, 200, { success: true, landed: result.landed, rejected: result.rejected });
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const requestId = (req.headers['x-request-id'] as string | undefined)?.slice(0, 200) || randomUUID();
    res.setHeader('x-request-id', requestId);
    const log = logger.child({ requestId });
    const path = (req.url ?? '/').split('?')[0].replace(/\/+$/, '') || '/';
    const started = Date.now();
    log.debug({ method: req.method, path }, 'request received');
    try {
      if (path === '/health' && (req.method === 'GET' || req.method === 'HEAD')) {
        // A collector faces the internet: only a caller with a configured write key (Basic auth) learns the
        // warehouse's address and why it fails; a load balancer's probe needs the status code alone, and the log
        // says why. The answer depends on the caller, so no shared cache may keep it.
        const user = basicAuthUser(req.headers.authorization);
        const detailed = user !== undefined && keys.has(user);
        res.setHeader('cache-control', 'no-store');
        try {
          await opts.warehouse.ping();
          if (healthFailing) log.info('health check: warehouse available again');
          healthFailing = false;
          send(
            res,
            200,
            detailed ? { status: 'ok', warehouse: opts.warehouse.displayUrl } : { status: 'ok' },
          );
        } catch (err) {
          const error = errorMessage(err);
          // once per outage, not once per probe (the message may vary while it lasts)
          if (!healthFailing) log.warn({ err: error }, 'health check: warehouse unavailable');
          healthFailing = true;
          send(res, 503, detailed ? { status: 'unavailable', error } : { status: 'unavailable' });
        }
        return;
      }
      const isEventRoute = BATCH_ROUTES.has(path) || path === '/webhook' || path in TYPED_ROUTES;
      if (!isEventRoute) throw new HttpError(404, `There is no endpoint ${path}.`);
      // Browser SDKs call from the site's origin: every answer allows any origin (the write key, not the
      // origin, authenticates), and a preflight (RudderStack's JS SDK sends Basic auth) is answered here.
      res.setHeader('access-control-allow-origin', '*');
      if (req.method === 'OPTIONS') {
        res.writeHead(204, {
          'access-control-allow-methods': 'POST, OPTIONS',
          'access-control-allow-headers':
            (req.headers['access-control-request-headers'] as string | undefined)?.slice(0, 1000) ||
            'authorization, content-type, content-encoding',
          'access-control-max-age': '86400',
        });
        res.end();
        return;
      }
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST, OPTIONS'); // required with a 405 (RFC 9110)
        throw new HttpError(405, `${path} accepts POST only.`);
      }
      if (closing) throw new HttpError(503, 'The collector is shutting down; retry later.');
      // Checked before reading the body when a header is present, so a wrong key costs no parsing (nor a place).
      // (Basic auth only: another scheme leaves the key to the body.)
      const basicUser = keys.size > 0 ? basicAuthUser(req.headers.authorization) : undefined;
      if (basicUser !== undefined && !keys.has(basicUser))
        throw new HttpError(401, 'The write key is missing or wrong.');
      const pool = basicUser !== undefined ? 'keyed' : 'other';
      if (inUse[pool] >= maxConcurrent) {
        res.setHeader('retry-after', '1');
        throw new HttpError(
          503,
          `The collector is handling ${maxConcurrent} requests already; nothing was stored, retry later.`,
          true,
        );
      }
      inUse[pool]++;
      try {
        await handleEvents(req, res, path, log, basicUser);
      } finally {
        inUse[pool]--;
      }
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      const message =
        err instanceof HttpError ? err.message : 'Internal error; nothing was stored, retry later.';
      if (status >= 500) log.error({ err: errorMessage(err), status }, 'request failed');
      // a wrong write key loses everything its sender sends: a warning, which alerting on warnings sees
      else if (status === 401) log.warn({ status, error: message }, 'request refused');
      else log.info({ status, error: message }, 'request refused');
      activity.requests++;
      if (status >= 500) activity.failed++;
      else activity.refused++;
      // After 413 (or a 503 for too many requests) the rest of the body is not wanted, but it is read and
      // dropped (up to a bound) before the answer: a socket closed with unread bytes is reset, and a client
      // that reads the answer only once it sent its whole body (Python's urllib and requests, which also ask
      // the server to close) then reports "connection reset" or "broken pipe" instead of the 413 and its
      // message. Past the bound the connection is closed after the answer, as before.
      const unread = err instanceof HttpError && err.bodyUnread && !req.complete;
      // a declared length past the bound, or a body that stopped coming, is cut anyway: answered at once
      const declared = Number(req.headers['content-length']);
      const hopeless =
        (Number.isFinite(declared) && declared > 5 * maxRequestBytes) ||
        (err instanceof HttpError && err.status === 408);
      const drained =
        unread && !hopeless ? await discardRest(req, 4 * maxRequestBytes, stopDrains.signal) : !unread;
      // an unavailable warehouse or a collector shutting down: a hint for SDKs and proxies that read it (the
      // too-many-requests answer sets its own, shorter one)
      if (status === 503 && !res.hasHeader('retry-after')) res.setHeader('retry-after', '5');
      send(res, status, { success: false, error: message }, drained ? {} : { connection: 'close' });
      if (!drained) res.on('finish', () => req.destroy());
    } finally {
      log.debug({ method: req.method, path, status: res.statusCode, ms: Date.now() - started }, 'request');
    }
  }

  const server = http.createServer((req, res) => {
    inFlight++;
    handle(req, res)
      .catch((err: unknown) => logger.error({ err: errorMessage(err) }, 'unhandled request error'))
      .finally(() => {
        inFlight--;
        if (closing && inFlight === 0) drained?.();
      });
  });
  server.keepAliveTimeout = 65_000;
  // Node's default (300 s) let a sender trickling its body hold a place for five minutes; a batch of the
  // largest size takes seconds even on a slow link
  server.requestTimeout = opts.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // started once listening: a collector that cannot start leaves no timer behind
  activitySince = Date.now();
  const activityTimer = setInterval(logActivity, opts.activityLogMs ?? 60_000);
  activityTimer.unref();
  const port = (server.address() as AddressInfo).port;
  const hostForUrl = opts.host.includes(':') ? `[${opts.host}]` : opts.host;
  const url = `http://${hostForUrl === '0.0.0.0' ? '127.0.0.1' : hostForUrl}:${port}`;
  // `url` is where a client on this machine reaches it; `listen` is what it is bound to (0.0.0.0: every interface)
  logger.info(
    { url, listen: `${hostForUrl}:${port}`, warehouse: opts.warehouse.displayUrl, rawSchema: opts.rawSchema },
    'collector listening',
  );

  let closePromise: Promise<void> | undefined;
  const close = (): Promise<void> => {
    closePromise ??= (async () => {
      closing = true;
      stopDrains.abort();
      const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      if (inFlight > 0) {
        const timeout = opts.drainTimeoutMs ?? 30_000;
        await Promise.race([
          new Promise<void>((resolve) => (drained = resolve)),
          new Promise<void>((resolve) => setTimeout(resolve, timeout).unref()),
        ]);
      }
      server.closeAllConnections();
      await stopped;
      try {
        await ingestor.close();
      } finally {
        clearInterval(activityTimer);
        logActivity();
      }
      logger.info('collector stopped');
    })();
    return closePromise;
  };
  return { url, port, close };
}

/**
 * For `cdp-lifecycle serve`: on SIGTERM or SIGINT, drain the collector, run `cleanup` (close the warehouse),
 * and exit 0 (1 when draining failed). Returns a function that removes the handlers.
 */
export function installShutdownHandlers(
  collector: Collector,
  opts: { cleanup?: () => Promise<void>; logger?: Logger; exit?: (code: number) => void } = {},
): () => void {
  const exit = opts.exit ?? ((code: number) => process.exit(code));
  let started = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (started) return;
    started = true;
    opts.logger?.info({ signal }, 'shutting down: draining in-flight requests');
    collector
      .close()
      .then(() => opts.cleanup?.())
      .then(
        () => exit(0),
        (err: unknown) => {
          opts.logger?.error({ err: errorMessage(err) }, 'shutdown failed');
          exit(1);
        },
      );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  return () => {
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
  };
}
