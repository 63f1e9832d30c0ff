import * as http from 'node:http';
import * as net from 'node:net';
import { gzipSync } from 'node:zlib';

export interface PostResult {
  status: number;
  body: Record<string, unknown>;
  headers: http.IncomingHttpHeaders;
}

export function basic(key: string): string {
  return 'Basic ' + Buffer.from(`${key}:`).toString('base64');
}

/**
 * A raw connection to an HTTP server, for requests no HTTP client sends as such (a body cut short, trickled,
 * endless, or sent whole before the answer is read): `answer` is all the server wrote, once the connection
 * closes; socket errors (a reset) are kept in `errors` rather than thrown.
 */
export async function rawConnection(
  port: number,
): Promise<{ socket: net.Socket; answer: Promise<string>; errors: Error[] }> {
  const socket = net.connect(port, '127.0.0.1');
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()));
  const errors: Error[] = [];
  socket.on('error', (err) => errors.push(err));
  const chunks: Buffer[] = [];
  socket.on('data', (c: Buffer) => chunks.push(c));
  const answer = new Promise<string>((resolve) =>
    socket.once('close', () => resolve(Buffer.concat(chunks).toString('utf8'))),
  );
  return { socket, answer, errors };
}

/** The head of a JSON `POST /v1/batch` authenticated with `key`, with `headers` (lines without their CRLF). */
export function batchHead(key: string, ...headers: string[]): string {
  return (
    `POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: ${basic(key)}\r\nContent-Type: application/json\r\n` +
    headers.map((h) => `${h}\r\n`).join('') +
    '\r\n'
  );
}

/** POSTs raw bytes with node:http (so oversized and malformed bodies are sent exactly as given). */
export function post(
  base: string,
  path: string,
  body: string | Buffer,
  opts: { key?: string; gzip?: boolean; headers?: http.OutgoingHttpHeaders } = {},
): Promise<PostResult> {
  const u = new URL(path, base);
  let data = typeof body === 'string' ? Buffer.from(body) : body;
  const headers: http.OutgoingHttpHeaders = { 'content-type': 'application/json', ...opts.headers };
  if (opts.key !== undefined) headers.authorization = basic(opts.key);
  if (opts.gzip) {
    data = gzipSync(data);
    headers['content-encoding'] = 'gzip';
  }
  if (headers['transfer-encoding'] === undefined) headers['content-length'] = data.length;
  return new Promise((resolve, reject) => {
    const req = http.request(u, { method: 'POST', headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let parsed: Record<string, unknown> = {};
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed, headers: res.headers });
      });
    });
    // The server may answer (413) and close before the whole body is written.
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE' || err.code === 'ECONNRESET') return;
      reject(err);
    });
    req.end(data);
  });
}

export function postJson(base: string, path: string, value: unknown, key?: string): Promise<PostResult> {
  return post(base, path, JSON.stringify(value), { key });
}

/**
 * A TCP proxy in front of PostgreSQL that the test can cut (refusing and dropping every connection, as when
 * the server or the network goes away) and restore on the same port.
 */
export class TcpProxy {
  private server: net.Server | undefined;
  private readonly sockets = new Set<net.Socket>();
  port = 0;
  constructor(
    private readonly targetHost: string,
    private readonly targetPort: number,
  ) {}

  async start(): Promise<void> {
    const server = net.createServer((client) => {
      const upstream = net.connect(this.targetPort, this.targetHost);
      for (const s of [client, upstream]) {
        this.sockets.add(s);
        s.on('close', () => this.sockets.delete(s));
        s.on('error', () => undefined);
      }
      client.pipe(upstream).pipe(client);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as net.AddressInfo).port;
    this.server = server;
  }

  async cut(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const s of this.sockets) s.destroy();
    if (server) await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  restore(): Promise<void> {
    return this.start();
  }
}
