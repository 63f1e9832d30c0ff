import * as http from 'node:http';
import type { AddressInfo } from 'node:net';
import { gunzipSync } from 'node:zlib';

/** One request as the fake CDP received it. */
export interface ReceivedRequest {
  n: number;
  method: string;
  path: string;
  headers: http.IncomingHttpHeaders;
  /** Bytes on the wire (compressed when gzip). */
  wireBytes: number;
  /** Bytes of the JSON body after decompression. */
  bodyBytes: number;
  body: { batch: Array<Record<string, unknown>>; [k: string]: unknown };
  receivedAt: number;
  /** The status the fake answered with (undefined when it never answered). */
  status?: number;
}

export interface Reply {
  status: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Never answer (the connection stays open until the server closes). */
  hang?: boolean;
}

export type Handler = (req: ReceivedRequest) => Reply | Promise<Reply>;

export interface FakeCdp {
  url: string;
  requests: ReceivedRequest[];
  setHandler(h: Handler): void;
  /** Events of every request answered 2xx, i.e. acknowledged. */
  acked(): Array<Record<string, unknown>>;
  close(): Promise<void>;
}

/**
 * A real HTTP server playing Segment's and RudderStack's `/v1/batch`: it decompresses, parses and records
 * every request, and answers what the test's handler says (200 by default, like both APIs).
 */
export async function startFakeCdp(
  handler: Handler = () => ({ status: 200, body: { success: true } }),
): Promise<FakeCdp> {
  let current = handler;
  const requests: ReceivedRequest[] = [];
  const sockets = new Set<import('node:net').Socket>();
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      void (async () => {
        const wire = Buffer.concat(chunks);
        const raw = req.headers['content-encoding'] === 'gzip' ? gunzipSync(wire) : wire;
        let body: ReceivedRequest['body'];
        try {
          // a request without a body (a redirected POST re-sent as a GET) carries no event
          body =
            raw.length === 0 ? { batch: [] } : (JSON.parse(raw.toString('utf8')) as ReceivedRequest['body']);
        } catch {
          res.writeHead(400, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ success: false, message: 'Invalid JSON' }));
          return;
        }
        const rec: ReceivedRequest = {
          n: requests.length + 1,
          method: req.method ?? '',
          path: req.url ?? '',
          headers: req.headers,
          wireBytes: wire.length,
          bodyBytes: raw.length,
          body,
          receivedAt: Date.now(),
        };
        requests.push(rec);
        const reply = await current(rec);
        if (reply.hang) return;
        rec.status = reply.status;
        res.writeHead(reply.status, { 'content-type': 'application/json', ...(reply.headers ?? {}) });
        res.end(JSON.stringify(reply.body ?? (reply.status < 300 ? { success: true } : { success: false })));
      })();
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    setHandler: (h) => (current = h),
    acked: () =>
      requests.filter((r) => r.status !== undefined && r.status < 300).flatMap((r) => r.body.batch),
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}
