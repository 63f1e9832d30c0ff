/**
 * Load generator for `npm run bench:ingest`, run as its own process so that building and sending requests
 * does not compete with the collector's event loop. Sends `events` spec events in SDK-sized batches over
 * `concurrency` keep-alive connections and prints one JSON line: { sent, ms, statuses }.
 *
 * Usage: client.ts <baseUrl> <writeKey> <events> <batchSize> <concurrency> <runId>
 */
import * as http from 'node:http';

const [baseUrl, writeKey, eventsArg, batchArg, concArg, runId] = process.argv.slice(2);
const total = Number(eventsArg);
const batchSize = Number(batchArg);
const concurrency = Number(concArg);
const auth = 'Basic ' + Buffer.from(`${writeKey}:`).toString('base64');
const agent = new http.Agent({ keepAlive: true, maxSockets: concurrency });
const url = new URL('/v1/batch', baseUrl);
const day0 = Date.UTC(2024, 0, 1);

// Event JSON is built from templates: the generator must stay far cheaper than the server it measures.
function event(i: number): string {
  const user = i % 50_000;
  const ts = new Date(day0 + (i % 90) * 86_400_000 + (i % 86_400) * 1000).toISOString();
  const head = `"messageId":"${runId}-${i}","userId":"user-${user}","anonymousId":"anon-${user}","timestamp":"${ts}"`;
  const context = `"context":{"library":{"name":"analytics-node","version":"3.1.0"},"ip":"10.0.${i % 250}.${i % 200}","locale":"en-US","userAgent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36"}`;
  switch (i % 20) {
    case 0:
      return `{"type":"identify",${head},"traits":{"plan":"${i % 3 === 0 ? 'pro' : 'free'}","email":"user-${user}@example.org"},${context}}`;
    case 1:
    case 2:
      return `{"type":"page",${head},"name":"Pricing","properties":{"path":"/pricing","referrer":"https://www.google.com/"},${context}}`;
    case 3:
      return `{"type":"screen",${head},"name":"Home","properties":{"tab":"feed"},${context}}`;
    case 4:
      return `{"type":"track",${head},"event":"Order Completed","properties":{"order_id":"o-${i}","revenue":${(i % 500) + 0.99},"currency":"EUR"},${context}}`;
    default:
      return `{"type":"track",${head},"event":"Product Viewed","properties":{"sku":"SKU-${i % 5000}","price":19.99,"category":"shoes"},${context}}`;
  }
}

function body(start: number, n: number): string {
  const parts = new Array<string>(n);
  for (let k = 0; k < n; k++) parts[k] = event(start + k);
  return `{"batch":[${parts.join(',')}],"sentAt":"${new Date().toISOString()}"}`;
}

function send(data: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: 'POST',
        agent,
        headers: {
          'content-type': 'application/json',
          'content-length': Buffer.byteLength(data),
          authorization: auth,
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', reject);
    req.end(data);
  });
}

async function main(): Promise<void> {
  const statuses: Record<string, number> = {};
  let next = 0;
  const started = Date.now();
  async function worker(): Promise<void> {
    for (;;) {
      const start = next;
      if (start >= total) return;
      const n = Math.min(batchSize, total - start);
      next += n;
      let status = await send(body(start, n));
      // Like the SDKs: retry a 503 (warehouse busy/unavailable) after a short pause.
      for (let attempt = 0; status === 503 && attempt < 5; attempt++) {
        await new Promise((r) => setTimeout(r, 200 * 2 ** attempt));
        status = await send(body(start, n));
      }
      statuses[status] = (statuses[status] ?? 0) + n;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  process.stdout.write(JSON.stringify({ sent: total, ms: Date.now() - started, statuses }) + '\n');
  agent.destroy();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
