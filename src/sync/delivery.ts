import type { IdentifyMessage, Outcome, Transport } from './transport';

export interface RetryPolicy {
  /** Sends of the same events before they are marked failed (first try included). */
  maxAttempts: number;
  /** First backoff; doubles each attempt, with jitter, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * The longest Retry-After a run waits for. A longer one is not cut short (that would resend before the CDP
   * asked): it holds every request of the run, the rows of any request that would have to wait for it are
   * marked failed and the run stops, so one answer cannot park a scheduled run for hours.
   */
  maxRetryAfterMs: number;
}

export const DEFAULT_RETRY: RetryPolicy = {
  maxAttempts: 6,
  baseDelayMs: 500,
  maxDelayMs: 30_000,
  maxRetryAfterMs: 120_000,
};

/** The backoff before attempt `attempt + 1`: "equal jitter" exponential, never sooner than Retry-After. */
export function backoffMs(
  policy: RetryPolicy,
  attempt: number,
  retryAfterMs?: number,
  random = Math.random,
): number {
  const exp = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  const jittered = exp / 2 + random() * (exp / 2);
  if (retryAfterMs === undefined) return Math.round(jittered);
  return Math.round(Math.max(Math.min(retryAfterMs, policy.maxRetryAfterMs), jittered));
}

/** A hold too long for a request to wait for: how long it still runs, and what the CDP said with it. */
export interface LongHold {
  waitMs: number;
  message: string;
}

/**
 * Spaces requests so that on average at most `perSecond` events leave; the first request goes at once. Also
 * holds every request while the CDP's last Retry-After runs: it throttles the source, not one request.
 */
export class RateLimiter {
  private next = 0;
  private heldUntil = 0;
  private heldBy = '';
  /** Requests waiting in take(): woken when the hold is extended, so that one too long is seen at once. */
  private readonly waiters = new Set<() => void>();
  constructor(private readonly perSecond: number | undefined) {}
  /** No request leaves before `at` (ms since the epoch); `message` is the CDP's answer that asked for it. */
  holdUntil(at: number, message = ''): void {
    if (at <= this.heldUntil) return;
    this.heldUntil = at;
    this.heldBy = message;
    for (const wake of this.waiters) wake();
  }
  /**
   * Waits until a request of `events` events may leave: not before `notBefore` (its backoff), nor while a
   * Retry-After holds the run, nor sooner than the rate allows. Resolves with nothing once it may (or at once
   * when `signal` aborts); without waiting, with the hold when that runs longer than `maxHoldMs`: sending
   * sooner would come before the CDP asked, and waiting would park the run longer than it waits.
   */
  async take(
    events: number,
    opts: { signal?: AbortSignal; notBefore?: number; maxHoldMs?: number } = {},
  ): Promise<LongHold | undefined> {
    return this.wait(events, opts);
  }
  /**
   * Waits out the Retry-After hold only, as take() does, without taking a turn of the rate: for a further
   * request of a send whose events take() counted already (the RudderStack SDK cuts a batch into several).
   */
  async awaitHold(opts: { signal?: AbortSignal; maxHoldMs?: number } = {}): Promise<LongHold | undefined> {
    return this.wait(undefined, opts);
  }
  /** `events` undefined: the rate is not asked. */
  private async wait(
    events: number | undefined,
    opts: { signal?: AbortSignal; notBefore?: number; maxHoldMs?: number },
  ): Promise<LongHold | undefined> {
    const { signal, notBefore = 0, maxHoldMs = Infinity } = opts;
    let slot: number | undefined;
    for (;;) {
      if (signal?.aborted) return undefined;
      const now = Date.now();
      // checked on every wake-up: another request's answer may extend the hold while this one waits
      if (this.heldUntil - now > maxHoldMs) return { waitMs: this.heldUntil - now, message: this.heldBy };
      // the rate's turn is taken once the backoff and the hold are over, as the request is about to leave
      if (slot === undefined && this.heldUntil <= now && notBefore <= now) {
        if (!this.perSecond || events === undefined) return undefined;
        this.next = Math.max(this.next, now);
        slot = this.next;
        this.next += (events * 1000) / this.perSecond;
      }
      const until = Math.max(this.heldUntil, notBefore, slot ?? 0);
      if (until <= now) return undefined;
      await this.pause(until - now, signal);
    }
  }
  /** sleep(), cut short when `signal` aborts or the hold is extended. */
  private async pause(ms: number, signal?: AbortSignal): Promise<void> {
    const woken = new AbortController();
    const wake = (): void => woken.abort();
    this.waiters.add(wake);
    signal?.addEventListener('abort', wake, { once: true });
    if (signal?.aborted) wake();
    try {
      await sleep(ms, woken.signal);
    } finally {
      this.waiters.delete(wake);
      signal?.removeEventListener('abort', wake);
    }
  }
}

/** Resolves after `ms`, or at once when `signal` aborts (an interrupted sync does not wait out a backoff). */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  if (signal?.aborted) return Promise.resolve();
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
  });
}

/** A configuration the CDP refuses outright (bad write key, wrong endpoint): no event can succeed. */
export class FatalDeliveryError extends Error {
  constructor(
    message: string,
    /** Undefined when no request reached the CDP (an endpoint fetch refuses). */
    readonly status?: number,
  ) {
    super(message);
    this.name = 'FatalDeliveryError';
  }
}

/**
 * When the run stops (interrupted, or a request refused outright) before an event has its answer:
 * `unrecorded` when the CDP cannot hold it (never sent, or every send answered as not processed, e.g. a 429):
 * not recorded, the user stays changed and the next run sends it. `inDoubt` when a send of it may have reached
 * the CDP without an answer: recorded failed, so that the next run resends it whatever the warehouse then
 * holds (a value gone back meanwhile would otherwise look unchanged; markInDoubt in state.ts does the same for
 * a killed run).
 */
export type EventResult = { ok: true } | { ok: false; error: string; unrecorded?: true; inDoubt?: true };

/**
 * An answer that leaves open whether the CDP took the events: none at all (a timeout, a reset connection), or a
 * 5xx, which a gateway may return after passing the request on. A 429 or 408 says it was not processed.
 */
function mayHaveReached(o: Extract<Outcome, { kind: 'retry' }>): boolean {
  return !o.notSent && (o.status === undefined || o.status >= 500);
}

export interface BatchResult {
  results: EventResult[];
  /** Some events failed because retries ran out: the CDP is down or throttling hard, so stop the run. */
  exhausted: boolean;
  /** Why the run should stop when not because attempts ran out (a Retry-After longer than a run waits). */
  stopReason?: string;
  /**
   * The CDP refused the configuration (401/403/404, a redirect): the run stops with this error. `results` still
   * says what it acknowledged (or refused for good) before, in earlier requests of the batch, to be recorded.
   */
  fatal?: FatalDeliveryError;
  requests: number;
}

/**
 * Delivers one batch: transient failures (429, 5xx, network, timeout) are retried with backoff, the same
 * events under the same messageIds; a batch refused with another 4xx is bisected until the refused events
 * stand alone, and only those are marked failed with the CDP's message while the rest are delivered.
 */
export async function deliverBatch(
  transport: Transport,
  msgs: readonly IdentifyMessage[],
  policy: RetryPolicy,
  limiter: RateLimiter,
  onRetry?: (info: { attempt: number; delayMs: number; outcome: Outcome; events: number }) => void,
  signal?: AbortSignal,
  /**
   * Shared by the batches of one run: a refusal outright in any of them stops the others' sends too (the
   * retries and bisections of batches in flight), as no event of the run can succeed.
   */
  run: { fatal?: FatalDeliveryError } = {},
): Promise<BatchResult> {
  const results: Array<EventResult | undefined> = new Array(msgs.length);
  // rows a send of which may have reached the CDP with no answer saying whether it did
  const maybeReceived = new Array<boolean>(msgs.length).fill(false);
  let exhausted = false;
  let stopReason: string | undefined;
  let requests = 0;

  /** The rows of `indices` fail: the CDP asked to wait `waitMs`, longer than a run waits; the run stops. */
  function waitTooLong(indices: readonly number[], waitMs: number, message: string): void {
    exhausted = true;
    const wait = `${Math.ceil(waitMs / 1000)} s`;
    stopReason ??= `the CDP asked to wait ${wait} (Retry-After); the rest is left for the next run`;
    for (const i of indices) {
      results[i] = {
        ok: false,
        error: `the endpoint asked to wait ${wait} (Retry-After), longer than a run waits (${Math.round(policy.maxRetryAfterMs / 1000)} s): ${message}`,
      };
    }
  }

  /** Sends `indices` (attempt `n`), not before `notBefore` (ms since the epoch: the backoff of a retry). */
  async function attempt(indices: number[], n: number, notBefore = 0): Promise<void> {
    // refused outright by an earlier request of the batch (a bisection half, an SDK's split request) or of
    // another batch of the run: no event can succeed, so nothing more leaves; the rows are left without a
    // result, hence unrecorded
    if (run.fatal) return;
    const hold = await limiter.take(indices.length, {
      signal,
      notBefore,
      maxHoldMs: policy.maxRetryAfterMs,
    });
    // interrupted (before the first send, during a backoff or a Retry-After): nothing more leaves, and the
    // rows are left without a result (see the end)
    if (signal?.aborted) return;
    if (hold) {
      // held by a Retry-After (another request's, or this one's) longer than a run waits: sent now, the rows
      // would reach the CDP before the time it asked for, so they fail as the throttled request's do
      waitTooLong(indices, hold.waitMs, hold.message);
      return;
    }
    // refused outright by another batch of the run while this one waited out its backoff
    if (run.fatal) return;
    requests++;
    const outcomes = await transport.send(
      indices.map((i) => msgs[i]),
      signal,
      // a transport that sends the events as several requests (the RudderStack SDK) sends the later ones after
      // answers, another request's 429 among them, that may have set a hold since take() above
      () => limiter.awaitHold({ signal, maxHoldMs: policy.maxRetryAfterMs }),
    );
    const retry: number[] = [];
    const reject: number[] = [];
    let retried: Extract<Outcome, { kind: 'retry' }> | undefined;
    let lastReject: Extract<Outcome, { kind: 'reject' }> | undefined;
    outcomes.forEach((o, k) => {
      const i = indices[k];
      switch (o.kind) {
        case 'ok':
          results[i] = { ok: true };
          break;
        case 'fatal':
          // Not thrown: the results of the batch's earlier requests (and this request's events the CDP did
          // acknowledge) would be lost with it, and the CDP would hold traits sync_state does not know of.
          run.fatal ??= new FatalDeliveryError(o.message, o.status);
          break;
        case 'retry':
          if (mayHaveReached(o)) maybeReceived[i] = true;
          retry.push(i);
          // the one asking for the longest Retry-After: one request's 429 must not be lost to another's 503
          if (retried === undefined || (o.retryAfterMs ?? -1) > (retried.retryAfterMs ?? -1)) retried = o;
          break;
        case 'reject':
          reject.push(i);
          lastReject = o;
          break;
      }
    });
    if (run.fatal) {
      // An event refused alone is the CDP's last word on it, recorded as in any run; events to retry or bisect
      // are not sent again: in doubt when a send of them may have reached the CDP, else unrecorded.
      if (reject.length === 1 && lastReject) results[reject[0]] = { ok: false, error: lastReject.message };
      return;
    }
    if (retry.length > 0 && retried) {
      const asked = retried.retryAfterMs;
      // It throttles the source: every request of the run is held, also when these rows are not sent again
      // (their last attempt, or a wait longer than a run waits).
      if (asked !== undefined) limiter.holdUntil(Date.now() + asked, retried.message);
      if (asked !== undefined && asked > policy.maxRetryAfterMs) {
        waitTooLong(retry, asked, retried.message);
      } else if (n >= policy.maxAttempts) {
        exhausted = true;
        for (const i of retry) {
          results[i] = { ok: false, error: `gave up after ${n} attempts: ${retried.message}` };
        }
      } else {
        const delayMs = backoffMs(policy, n, retried.retryAfterMs);
        onRetry?.({ attempt: n, delayMs, outcome: retried, events: retry.length });
        // the backoff is waited for in take(), which also sees a longer hold set meanwhile by another answer
        await attempt(retry, n + 1, Date.now() + delayMs);
      }
    }
    if (reject.length > 0 && lastReject) {
      if (reject.length === 1) {
        results[reject[0]] = { ok: false, error: lastReject.message };
      } else {
        const mid = Math.ceil(reject.length / 2);
        await attempt(reject.slice(0, mid), 1);
        await attempt(reject.slice(mid), 1);
      }
    }
  }

  await attempt(
    msgs.map((_, i) => i),
    1,
  );
  const stoppedBy = run.fatal;
  const stopped = stoppedBy
    ? `the sync stopped (${stoppedBy.message})`
    : signal?.aborted
      ? 'the sync was interrupted'
      : undefined;
  return {
    // Array.from visits the holes of rows left without a result, which map would skip
    results: Array.from(results, (r, i): EventResult => {
      if (r) return r;
      if (stopped === undefined) return { ok: false, error: 'no answer from the CDP' };
      if (!maybeReceived[i]) {
        return {
          ok: false,
          error: stoppedBy ? stoppedBy.message : 'the sync was interrupted before the CDP acknowledged it',
          unrecorded: true,
        };
      }
      return {
        ok: false,
        error: `${stopped} before the CDP answered whether it received this change: resent to be sure`,
        inDoubt: true,
      };
    }),
    exhausted,
    ...(stopReason ? { stopReason } : {}),
    ...(stoppedBy ? { fatal: stoppedBy } : {}),
    requests,
  };
}
