import type { IdentifyMessage, Outcome, Transport } from './transport';

export interface RetryPolicy {
  /** Sends of the same events before they are marked failed (first try included). */
  maxAttempts: number;
  /** First backoff; doubles each attempt, with jitter, up to maxDelayMs. */
  baseDelayMs: number;
  maxDelayMs: number;
  /**
   * The longest Retry-After a run waits for. A longer one is not cut short (that would resend before the CDP
   * asked): the rows are marked failed and the run stops, so one answer cannot park a scheduled run for hours.
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

/**
 * Spaces requests so that on average at most `perSecond` events leave; the first request goes at once. Also
 * holds every request while the CDP's last Retry-After runs: it throttles the source, not one request.
 */
export class RateLimiter {
  private next = 0;
  private heldUntil = 0;
  constructor(private readonly perSecond: number | undefined) {}
  /** No request leaves before `at` (ms since the epoch). */
  holdUntil(at: number): void {
    this.heldUntil = Math.max(this.heldUntil, at);
  }
  async take(events: number, signal?: AbortSignal): Promise<void> {
    // a later Retry-After may extend the hold while this request waits
    for (let now = Date.now(); this.heldUntil > now && !signal?.aborted; now = Date.now()) {
      await sleep(this.heldUntil - now, signal);
    }
    if (!this.perSecond) return;
    const now = Date.now();
    this.next = Math.max(this.next, now);
    const wait = this.next - now;
    this.next += (events * 1000) / this.perSecond;
    if (wait > 0) await sleep(wait, signal);
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
 * `unrecorded`: not acknowledged, and not to be recorded either (the run was interrupted before the CDP
 * answered it, or a request of its batch was refused outright): the user stays changed, and the next run sends it.
 */
export type EventResult = { ok: true } | { ok: false; error: string; unrecorded?: true };

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
): Promise<BatchResult> {
  const results: Array<EventResult | undefined> = new Array(msgs.length);
  let exhausted = false;
  let stopReason: string | undefined;
  let fatal: FatalDeliveryError | undefined;
  let requests = 0;

  async function attempt(indices: number[], n: number): Promise<void> {
    // refused outright by an earlier request of the batch (a bisection half, an SDK's split request): no event
    // can succeed, so nothing more of it leaves; its rows are left without a result, hence unrecorded
    if (fatal) return;
    await limiter.take(indices.length, signal);
    // interrupted (before the first send, during a backoff or a Retry-After): nothing more leaves
    if (signal?.aborted) {
      for (const i of indices) {
        results[i] = {
          ok: false,
          error: 'the sync was interrupted before the CDP acknowledged it',
          unrecorded: true,
        };
      }
      return;
    }
    requests++;
    const outcomes = await transport.send(
      indices.map((i) => msgs[i]),
      signal,
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
          fatal ??= new FatalDeliveryError(o.message, o.status);
          break;
        case 'retry':
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
    if (fatal) {
      // An event refused alone is the CDP's last word on it, recorded as in any run; events to retry or bisect
      // are not sent again and stay unrecorded.
      if (reject.length === 1 && lastReject) results[reject[0]] = { ok: false, error: lastReject.message };
      return;
    }
    if (retry.length > 0 && retried) {
      const asked = retried.retryAfterMs;
      if (asked !== undefined && asked > policy.maxRetryAfterMs) {
        exhausted = true;
        const wait = `${Math.ceil(asked / 1000)} s`;
        stopReason = `the CDP asked to wait ${wait} (Retry-After); the rest is left for the next run`;
        for (const i of retry) {
          results[i] = {
            ok: false,
            error: `the endpoint asked to wait ${wait} (Retry-After), longer than a run waits (${Math.round(policy.maxRetryAfterMs / 1000)} s): ${retried.message}`,
          };
        }
      } else if (n >= policy.maxAttempts) {
        exhausted = true;
        for (const i of retry) {
          results[i] = { ok: false, error: `gave up after ${n} attempts: ${retried.message}` };
        }
      } else {
        const delayMs = backoffMs(policy, n, retried.retryAfterMs);
        if (asked !== undefined) limiter.holdUntil(Date.now() + asked);
        onRetry?.({ attempt: n, delayMs, outcome: retried, events: retry.length });
        await sleep(delayMs, signal);
        await attempt(retry, n + 1);
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
  const stoppedBy = fatal;
  return {
    results: results.map(
      (r) =>
        r ??
        (stoppedBy
          ? { ok: false, error: stoppedBy.message, unrecorded: true }
          : { ok: false, error: 'no answer from the CDP' }),
    ),
    exhausted,
    ...(stopReason ? { stopReason } : {}),
    ...(stoppedBy ? { fatal: stoppedBy } : {}),
    requests,
  };
}
