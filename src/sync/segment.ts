import { promisify } from 'node:util';
import { gzip as gzipCb } from 'node:zlib';
import { errorMessage } from '../errors';
import {
  absoluteLocation,
  classify,
  describeNetworkError,
  networkOutcome,
  SEGMENT_LIMITS,
  SEGMENT_SIZER,
  type IdentifyMessage,
  type Limits,
  type Outcome,
  type Transport,
} from './transport';
import { LIBRARY } from './version';

const gzip = promisify(gzipCb);

/**
 * A small client for Segment's HTTP Tracking API (`POST /v1/batch`). Not `@segment/analytics-node`: that SDK
 * batches, retries and drops on its own schedule, and reports per event, but it cannot tell which event of a
 * batch a 400 refused nor send exactly the batch we cut, and those two are what isolating a poisoned row and
 * "state only after acknowledgement" need. Retries live in the delivery loop, shared with RudderStack.
 */
export class SegmentTransport implements Transport {
  readonly target = 'segment' as const;
  readonly limits: Limits;
  private readonly auth: string;
  private readonly url: string;

  constructor(
    readonly host: string,
    writeKey: string,
    private readonly timeoutMs: number,
    limits: Partial<Limits> = {},
  ) {
    this.limits = { ...SEGMENT_LIMITS, ...limits };
    // Segment's documented scheme: the write key as the Basic user name, empty password.
    this.auth = 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');
    this.url = `${host}/v1/batch`;
  }

  eventBytes(msg: IdentifyMessage): number {
    return SEGMENT_SIZER.eventBytes(msg);
  }

  batchOverheadBytes(events: number): number {
    return SEGMENT_SIZER.batchOverheadBytes(events);
  }

  async send(msgs: readonly IdentifyMessage[]): Promise<Outcome[]> {
    const outcome = await this.post(msgs);
    return msgs.map(() => outcome);
  }

  private async post(msgs: readonly IdentifyMessage[]): Promise<Outcome> {
    const body = JSON.stringify({ batch: msgs, sentAt: new Date().toISOString() });
    const compressed = await gzip(body);
    let res: Response;
    try {
      res = await fetch(this.url, {
        method: 'POST',
        headers: {
          'Content-Type': 'application/json',
          'Content-Encoding': 'gzip',
          Authorization: this.auth,
          'User-Agent': `${LIBRARY.name}/${LIBRARY.version}`,
        },
        body: compressed,
        // a redirect is reported, not followed (see classify)
        redirect: 'manual',
        signal: AbortSignal.timeout(this.timeoutMs),
      });
    } catch (err) {
      // fetch says only "fetch failed"; the reason (ECONNREFUSED, ENOTFOUND, bad port…) is in its cause.
      const c = (err as { cause?: { code?: string; message?: string; hostname?: string } }).cause;
      if (c?.message === 'bad port') {
        // fetch refuses the ports browsers block (1, 25, 6000…) every time: retrying only wastes the backoff.
        return {
          kind: 'fatal',
          message: `${this.url}: fetch refuses to connect to port ${new URL(this.url).port}, one of the ports browsers block: serve the batch API on another port`,
        };
      }
      return networkOutcome(
        (err as Error).name === 'TimeoutError'
          ? `${this.url}: no answer within ${this.timeoutMs} ms`
          : describeNetworkError(this.url, errorMessage(err), c?.code ?? c?.message, c?.hostname),
        c?.code,
      );
    }
    const text = await res.text().catch(() => '');
    if (res.ok) return { kind: 'ok' };
    return classify(
      res.status,
      describeError(res.status, text),
      res.headers.get('retry-after'),
      absoluteLocation(res.headers.get('location'), this.url),
      'segment',
    );
  }

  async close(): Promise<void> {
    // fetch keeps no per-client state to release.
  }
}

/** The CDP's own words when it gives some (Segment answers `{"success":false,"message":…}`), else the status. */
export function describeError(status: number, body: string): string {
  let detail = body.trim();
  try {
    const parsed = JSON.parse(body) as unknown;
    // a JSON string is its own message
    const m =
      typeof parsed === 'string'
        ? parsed
        : typeof parsed === 'object' && parsed !== null
          ? ((parsed as { message?: unknown; error?: unknown }).message ??
            (parsed as { message?: unknown; error?: unknown }).error)
          : undefined;
    if (typeof m === 'string') detail = m.trim();
  } catch {
    // not JSON: keep the text
  }
  if (detail.length > 300) detail = detail.slice(0, 300) + '…';
  return detail ? `HTTP ${status}: ${detail}` : `HTTP ${status}`;
}
