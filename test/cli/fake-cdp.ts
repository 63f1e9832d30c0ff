import * as http from 'node:http';
import { gunzipSync } from 'node:zlib';
import type { AddressInfo } from 'node:net';

export interface ReceivedBatch {
  authorization?: string;
  batch: Array<{ type: string; userId: string; traits: Record<string, unknown>; messageId: string }>;
}

/** A local stand-in for Segment's `POST /v1/batch`: records what it is sent, answers `status` (200 by default). */
export async function startFakeSegment(status = 200): Promise<{
  url: string;
  batches: ReceivedBatch[];
  identifies(): ReceivedBatch['batch'];
  close(): Promise<void>;
}> {
  const batches: ReceivedBatch[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      let body = Buffer.concat(chunks);
      if (req.headers['content-encoding'] === 'gzip') body = gunzipSync(body);
      if (req.url === '/v1/batch' && status === 200) {
        batches.push({
          authorization: req.headers.authorization,
          ...(JSON.parse(body.toString('utf8')) as Omit<ReceivedBatch, 'authorization'>),
        });
      }
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(status === 200 ? '{"success":true}' : '{"success":false,"message":"rejected by the test"}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    batches,
    identifies: () => batches.flatMap((b) => b.batch),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

/** Spec events for a few users, dated relative to today so that the default as-of date sees them. */
export function sampleEvents(users: string[], daysAgo: (i: number) => number): object[] {
  const day = (n: number): string => new Date(Date.now() - n * 86_400_000).toISOString();
  return users.flatMap((userId, i) => [
    {
      type: 'identify',
      userId,
      traits: { plan: 'pro' },
      timestamp: day(daysAgo(i)),
      messageId: `id-${userId}`,
    },
    { type: 'track', userId, event: 'Report Created', timestamp: day(daysAgo(i)), messageId: `t-${userId}` },
  ]);
}

/** Asserts a CLI exit code, showing the output when it differs (a bare "expected 0, got 1" says nothing). */
export function expectExit(r: { code: number | null; stdout: string; stderr: string }, code: number): void {
  expect({ code: r.code, stdout: r.stdout.slice(-2000), stderr: r.stderr.slice(-2000) }).toMatchObject({
    code,
  });
  expect(r.stderr).not.toMatch(/\n\s+at /);
}
