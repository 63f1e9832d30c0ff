import Analytics = require('@rudderstack/rudder-sdk-node');
import { errorMessage } from '../errors';
import {
  absoluteLocation,
  classify,
  describeNetworkError,
  networkOutcome,
  RUDDERSTACK_LIMITS,
  RUDDERSTACK_SIZER,
  type IdentifyMessage,
  type Limits,
  type Outcome,
  type RequestGate,
  type Transport,
} from './transport';
import { describeError } from './segment';

type IdentifyParams = Parameters<Analytics['identify']>[0];
/** What the SDK really passes to an event callback (its typings say `() => void`). */
type EventCallback = (err?: unknown) => void;

interface AxiosLikeError {
  code?: string;
  message?: string;
  cause?: { hostname?: string };
  response?: { status: number; headers?: Record<string, unknown>; data?: unknown };
}

/**
 * Sends through `@rudderstack/rudder-sdk-node` (v3), driven one batch at a time so that every batch is
 * acknowledged before its state is written:
 *
 * - The SDK batches on its own: `enqueue` flushes when the queue holds `flushAt` events or `maxQueueSize`
 *   characters, and the very first event of a client is flushed alone. Each `flush()` posts at most `flushAt`
 *   events and resolves when that request is answered. We enqueue exactly one batch cut to the limits
 *   (≤ `flushAt` events, ≤ 4 MB), then flush until the SDK queue is empty; batches are never mixed because a
 *   client gets its next batch only after every callback of this one fired. Requests in flight at once each
 *   have their own client.
 * - Acknowledgement is per event: the SDK calls each event's callback with the request's error (an axios
 *   error carrying the HTTP status, headers and body) or nothing on success.
 * - The SDK's own retry (axios-retry: network errors, 5xx, 429, exponential delay) is switched off
 *   (`retryCount: 0`): it does not retry timeouts, and its retries are invisible to us. The shared delivery
 *   loop retries instead, honouring Retry-After with jittered backoff, and bisects a batch refused with a
 *   4xx, which the SDK cannot do.
 * - `errorHandler` is always set: without it a failed flush throws from inside the SDK's own timers.
 * - Before it leaves, every request the SDK posts waits for the run's Retry-After hold (the delivery loop's
 *   gate, asked in an axios request interceptor): a batch's later requests leave after answers, another
 *   client's 429 among them, that came back while this send was under way.
 */
export class RudderStackTransport implements Transport {
  readonly target = 'rudderstack' as const;
  readonly limits: Limits;
  // One SDK client per request in flight: a client's queue must only ever hold one batch, so concurrency
  // comes from several clients, never from sharing one.
  private readonly idle: Analytics[] = [];
  private readonly all: Analytics[] = [];
  /** The send each busy client is making, as its request interceptor needs it. */
  private readonly sending = new Map<Analytics, { signal?: AbortSignal; gate?: RequestGate }>();

  constructor(
    readonly host: string,
    writeKey: string,
    private readonly timeoutMs: number,
    limits: Partial<Limits> = {},
    concurrency = 1,
  ) {
    this.limits = { ...RUDDERSTACK_LIMITS, ...limits };
    for (let i = 0; i < Math.max(1, concurrency); i++) {
      const c = this.createClient(writeKey, timeoutMs);
      this.idle.push(c);
      this.all.push(c);
    }
  }

  private createClient(writeKey: string, timeoutMs: number): Analytics {
    const client = new Analytics(writeKey, {
      dataPlaneUrl: this.host,
      flushAt: this.limits.maxBatchEvents,
      // Measured by the SDK in JSON characters of its queue; our batches are cut below this in bytes first.
      maxQueueSize: this.limits.maxBatchBytes,
      maxInternalQueueSize: Math.max(20000, this.limits.maxBatchEvents * 2),
      // We flush explicitly; the timer only matters if something is left behind.
      flushInterval: 60 * 60 * 1000,
      retryCount: 0,
      gzip: true,
      logLevel: 'none',
      // a redirect is reported, not followed (see classify)
      axiosConfig: { timeout: timeoutMs, maxRedirects: 0 },
      errorHandler: () => undefined,
    });
    const http = (client as unknown as { axiosInstance?: AxiosLike }).axiosInstance;
    http?.interceptors?.request.use(async (config) => {
      // Every request the SDK posts, not only those our flush loop starts (enqueue flushes on its own at
      // maxQueueSize), waits for a Retry-After another request's answer set while this send was under way.
      const { signal, gate } = this.sending.get(client) ?? {};
      const hold = await gate?.();
      if (hold)
        throw new NotSent({ kind: 'retry', retryAfterMs: hold.waitMs, message: hold.message, notSent: true });
      if (signal?.aborted)
        throw new NotSent({ kind: 'retry', message: 'not sent: the sync was interrupted', notSent: true });
      // axios' timeout only bounds the wait for the response to start: a server that then sends a byte now and
      // then would hold the request for ever. A deadline of its own per request bounds the whole of it (set
      // here, after the hold, which is no part of the request's time).
      return { ...config, signal: AbortSignal.timeout(timeoutMs) };
    });
    return client;
  }

  eventBytes(msg: IdentifyMessage): number {
    return RUDDERSTACK_SIZER.eventBytes(msg);
  }

  batchOverheadBytes(events: number): number {
    return RUDDERSTACK_SIZER.batchOverheadBytes(events);
  }

  async send(msgs: readonly IdentifyMessage[], signal?: AbortSignal, gate?: RequestGate): Promise<Outcome[]> {
    const client = this.idle.pop();
    // The delivery loop never has more requests in flight than clients; this guards that contract.
    if (!client) throw new Error('RudderStackTransport: more concurrent sends than SDK clients');
    this.sending.set(client, { signal, gate });
    try {
      return await this.sendWith(client, msgs, signal);
    } finally {
      this.sending.delete(client);
      this.idle.push(client);
    }
  }

  private async sendWith(
    client: Analytics,
    msgs: readonly IdentifyMessage[],
    signal?: AbortSignal,
  ): Promise<Outcome[]> {
    const outcomes: Array<Outcome | undefined> = new Array(msgs.length);
    let pending = msgs.length;
    let allDone: () => void = () => undefined;
    const done = new Promise<void>((resolve) => (allDone = resolve));
    msgs.forEach((m, i) => {
      const callback: EventCallback = (err) => {
        if (outcomes[i] !== undefined) return;
        outcomes[i] = err ? outcomeOf(err, `${this.host}/v1/batch`) : { kind: 'ok' };
        if (--pending === 0) allDone();
      };
      const params = {
        userId: m.userId,
        messageId: m.messageId,
        timestamp: new Date(m.timestamp),
        traits: m.traits,
        context: m.context,
        integrations: m.integrations,
      } as unknown as IdentifyParams;
      try {
        client.identify(params, callback as () => void);
      } catch (err) {
        // The SDK validates synchronously (e.g. userId type); such an event can never be sent as is.
        callback({ response: { status: 400, data: errorMessage(err) } });
      }
    });
    // One flush sends at most flushAt events (and a client's first event goes alone): flush until the SDK's
    // queue is empty, then once more, which waits for the request still in flight; callbacks fire on the next
    // turn, hence the bounded wait. The rest of the batch stays unsent once a request was answered with a
    // retry or a refusal of the configuration (the delivery loop retries or stops them all together) or the
    // run is interrupted: they are taken out of the SDK's queue, which would send them with the next batch.
    let held: Outcome | undefined;
    const stopAt = (): Outcome | undefined => {
      if (signal?.aborted)
        return { kind: 'retry', message: 'not sent: the sync was interrupted', notSent: true };
      const stop = outcomes.find((o) => o !== undefined && (o.kind === 'retry' || o.kind === 'fatal'));
      if (!stop) return undefined;
      const message = `not sent, as a request before it in its batch failed: ${stop.message}`;
      return stop.kind === 'retry' ? { ...stop, message, notSent: true } : { ...stop, message };
    };
    for (;;) {
      // the request in flight (the first event's, which the SDK sends as it is queued, or the last flush's)
      // answered, and its callbacks run (on the next turn), before anything more leaves
      await inFlight(client);
      await new Promise((resolve) => setImmediate(resolve));
      held = stopAt();
      if (held || queueLength(client) === 0) break;
      await client.flush();
    }
    if (held) {
      // their callbacks will never fire: not waited for
      pending -= clearQueue(client);
      if (pending <= 0) allDone();
    }
    await client.flush();
    if (pending > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([done, new Promise<void>((r) => (timer = setTimeout(r, this.timeoutMs + 5000)))]);
      clearTimeout(timer);
    }
    // Array.from visits the holes of events that got no callback, which map would skip
    return Array.from(
      outcomes,
      (o) =>
        o ?? held ?? { kind: 'retry', message: 'the RudderStack SDK dropped the event without an answer' },
    );
  }

  async close(): Promise<void> {
    await Promise.all(this.all.map((c) => c.flush()));
  }
}

function queueLength(client: Analytics): number {
  // The SDK exposes no accessor; its queue is a plain array field since v1.
  const q = (client as unknown as { queue?: unknown }).queue;
  return Array.isArray(q) ? q.length : 0;
}

async function inFlight(client: Analytics): Promise<void> {
  // the SDK keeps the promise of its last request (it rejects only without an errorHandler, which we set)
  const pending = (client as unknown as { pendingFlush?: Promise<unknown> | null }).pendingFlush;
  if (pending) await pending.catch(() => undefined);
}

/** Empties the SDK's queue; how many events it held. */
function clearQueue(client: Analytics): number {
  const q = (client as unknown as { queue?: unknown }).queue;
  return Array.isArray(q) ? q.splice(0).length : 0;
}

/** The part of the SDK's axios instance used here (axios is the SDK's dependency, not ours). */
interface AxiosLike {
  interceptors?: {
    request: {
      use(fn: (config: Record<string, unknown>) => Promise<Record<string, unknown>>): unknown;
    };
  };
}

/** Thrown by the request interceptor to keep a request from leaving; the SDK hands it to the events' callbacks. */
class NotSent extends Error {
  constructor(readonly outcome: Exclude<Outcome, { kind: 'ok' }>) {
    super(outcome.message);
    this.name = 'NotSent';
  }
}

/** `requestUrl`: where the SDK posts, to read a relative redirect against. */
function outcomeOf(err: unknown, requestUrl: string): Exclude<Outcome, { kind: 'ok' }> {
  if (err instanceof NotSent) return err.outcome;
  const e = err as AxiosLikeError;
  if (e && e.response && typeof e.response.status === 'number') {
    const data = e.response.data;
    const body = typeof data === 'string' ? data : data === undefined ? '' : JSON.stringify(data);
    const ra = e.response.headers?.['retry-after'];
    const location = e.response.headers?.location;
    return classify(
      e.response.status,
      describeError(e.response.status, body),
      typeof ra === 'string' ? ra : null,
      absoluteLocation(typeof location === 'string' ? location : null, requestUrl),
    );
  }
  const msg =
    e?.code === 'ECONNABORTED' || e?.code === 'ERR_CANCELED'
      ? `timeout (${e.code === 'ERR_CANCELED' ? 'no whole answer within the request timeout' : (e.message ?? '')})`
      : describeNetworkError(requestUrl, e?.message ?? String(err), e?.code, e?.cause?.hostname);
  return networkOutcome(msg, e?.code);
}
