// One measured phase of `npm run bench:sync`, in its own process: `sync` runs runSync against the prepared
// warehouse; `raw` sends the same number of identifies (same shape and size) straight through the SDK, with
// no warehouse, diff or state. Reports seconds, events acknowledged and its own peak RSS to the parent.
import { randomUUID } from 'node:crypto';
import type AnalyticsType = require('@rudderstack/rudder-sdk-node');
import { openWarehouse } from '../../src/warehouse';
import { runSync } from '../../src/sync';

interface Params {
  mode: 'sync' | 'raw';
  url: string;
  endpoint: string;
  to: 'rudderstack' | 'segment';
  name: string;
  batch: number;
  n: number;
  every: number;
}

/** The same identifies (same size and shape), straight through the raw SDK: no warehouse, no diff, no state. */
async function rawRudder(url: string, n: number, every: number, batch: number): Promise<number> {
  // Loaded here, not at the top: the sync phase runs in this same file and must not carry the raw SDKs' memory.
  const Analytics = require('@rudderstack/rudder-sdk-node') as typeof AnalyticsType;
  const client = new Analytics('bench-key', {
    dataPlaneUrl: url,
    flushAt: batch,
    maxQueueSize: 4_000_000,
    flushInterval: 3_600_000,
    logLevel: 'none',
    errorHandler: () => undefined,
  });
  let acked = 0;
  const cb = (() => {
    acked++;
  }) as () => void;
  const runId = randomUUID();
  for (let k = 0; k < n; k++) {
    const i = k * every;
    client.identify(rawMessage(i, runId) as Parameters<AnalyticsType['identify']>[0], cb);
    if ((k + 1) % batch === 0) await client.flush();
  }
  await client.flush();
  await client.flush();
  while (acked < n) await new Promise((r) => setImmediate(r));
  return acked;
}

function rawMessage(i: number, runId: string): Record<string, unknown> {
  return {
    userId: `user_${String(i).padStart(8, '0')}`,
    messageId: `cdpl-${randomUUID().replace(/-/g, '')}${randomUUID().replace(/-/g, '')}`,
    timestamp: new Date(),
    traits: {
      lifecycle_status: 'dormant',
      lifecycle_status_since: '2024-06-12',
      lifecycle_previous_status: i % 3 === 0 ? null : 'active',
      rfm_segment: i % 2 === 0 ? 'champions' : null,
    },
    context: {
      library: { name: 'cdp-lifecycle', version: '0.1.0' },
      cdp_lifecycle: { version: '0.1.0', run_id: runId },
    },
    integrations: { All: true },
  };
}

async function rawSegment(url: string, n: number, every: number, batch: number): Promise<number> {
  const { Analytics: SegmentAnalytics } =
    require('@segment/analytics-node') as typeof import('@segment/analytics-node');
  const client = new SegmentAnalytics({ writeKey: 'bench-key', host: url, flushAt: batch, maxRetries: 3 });
  let acked = 0;
  const runId = randomUUID();
  for (let k = 0; k < n; k++) {
    const m = rawMessage(k * every, runId);
    client.identify(
      {
        userId: m.userId as string,
        messageId: m.messageId as string,
        timestamp: m.timestamp as Date,
        traits: m.traits as Record<string, string | null>,
        context: m.context as Record<string, never>,
        integrations: m.integrations as Record<string, boolean>,
      },
      () => acked++,
    );
    // analytics-node has no backpressure; yield so its batches leave instead of all piling up in memory.
    if ((k + 1) % batch === 0) await new Promise((r) => setImmediate(r));
  }
  await client.closeAndFlush({ timeout: 600_000 });
  return acked;
}

async function main(): Promise<void> {
  const p = JSON.parse(process.argv[2]) as Params;
  const t = Date.now();
  if (p.mode === 'sync') {
    const wh = await openWarehouse(p.url);
    const s = await runSync({
      warehouse: wh,
      schema: 'lifecycle',
      to: p.to,
      endpoint: p.endpoint,
      writeKey: 'bench-key',
      name: p.name,
      batchSize: p.batch,
    });
    const seconds = (Date.now() - t) / 1000;
    await wh.close();
    process.send?.({
      mode: 'sync',
      seconds,
      sent: s.sent,
      maxRssKb: process.resourceUsage().maxRSS,
      summary: { considered: s.considered, changed: s.changed, sent: s.sent, failed: s.failed },
    });
  } else {
    const sent =
      p.to === 'rudderstack'
        ? await rawRudder(p.endpoint, p.n, p.every, p.batch)
        : await rawSegment(p.endpoint, p.n, p.every, p.batch);
    process.send?.({
      mode: 'raw',
      seconds: (Date.now() - t) / 1000,
      sent,
      maxRssKb: process.resourceUsage().maxRSS,
    });
  }
  process.disconnect?.();
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
