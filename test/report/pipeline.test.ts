import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { Ingestor } from '../../src/collector';
import {
  DEMO_NON_ACTIVITY_EVENTS,
  demoVars,
  generateDemoEvents,
  retailSampleEvents,
  type DemoEvent,
} from '../../src/demo';
import { renderTerminalReport, writeHtmlReport } from '../../src/report';
import { buildModels } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { SPEC_DEFAULTS, statusByUser, type Status } from '../demo/spec-status';
import { describeEachWarehouse } from '../helpers/warehouses';

/**
 * The real chain: demo events (and the retail sample) → the collector's ingest path → the models → both
 * reports. Statuses in the built marts are compared with the tests' own reading of SPEC §4 over the same
 * events, so a drift in the generator, the models or the report shows up here.
 */
const D = '2026-11-20'; // a Friday, like 2011-12-09: the retail sample shifts onto D exactly
const CSV = path.resolve(__dirname, '..', '..', '..', 'shared', 'datasets', 'online-retail-sample.csv');

describeEachWarehouse('demo data through the real pipeline', ({ kind, tw }) => {
  let wh: Warehouse;
  let events: DemoEvent[];
  let dir: string;
  beforeAll(async () => {
    wh = await tw().open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-pipeline-'));
    events = [...generateDemoEvents({ endDate: D, users: 400, days: 120, seed: 11 })];
    // The retail sample doubles the work; once (on DuckDB) is enough to follow it through the models.
    if (kind === 'duckdb') events.push(...retailSampleEvents(CSV, { shiftTo: D }));
    const ingestor = new Ingestor({ warehouse: wh, rawSchema: 'cdp' });
    try {
      for (let i = 0; i < events.length; i += 5000) {
        const res = await ingestor.ingest(events.slice(i, i + 5000));
        expect(res.rejected).toEqual([]);
      }
    } finally {
      await ingestor.close();
    }
    const build = await buildModels({
      warehouse: wh,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      vars: demoVars(D),
    });
    expect(build.success).toBe(true);
  }, 120_000);
  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('gives every user the status the SPEC rules give them, and every status occurs', async () => {
    const rows = await wh.query<{ user_id: string; lifecycle_status: string }>(
      'select user_id, lifecycle_status from lifecycle.user_lifecycle',
    );
    const expected = statusByUser(events, D, {
      ...SPEC_DEFAULTS,
      nonActivityEvents: [...DEMO_NON_ACTIVITY_EVENTS],
    });
    const wrong = rows
      .filter((r) => expected.get(r.user_id) !== r.lifecycle_status)
      .map((r) => `${r.user_id}: model ${r.lifecycle_status}, rules ${expected.get(r.user_id)}`);
    expect(wrong.slice(0, 10)).toEqual([]);
    expect(rows.length).toBe(expected.size);
    const present = new Set(rows.map((r) => r.lifecycle_status));
    expect([...present].sort()).toEqual([
      'active',
      'at_risk',
      'churned',
      'dormant',
      'new',
      'power',
      'resurrected',
    ]);
  });

  if (kind === 'duckdb') {
    it('carries a retail customer into RFM with hand-computed figures', async () => {
      // Customer 12347 ordered 42.60 (2010-12-07), 48.60 (2011-01-26), 37.20 (2011-04-07), 324.60 (2011-10-31).
      // Shifted so 2011-12-09 is D, the first order is 367 days old: outside the 365-day RFM window.
      const [c] = await wh.query(
        'select purchase_count, monetary from lifecycle.user_lifecycle where user_id = $1',
        ['retail-12347'],
      );
      expect(c).toEqual({ purchase_count: 3, monetary: 410.4 });
    });
  }

  it('reports the same status counts as the marts hold', async () => {
    const counts = await wh.query<{ lifecycle_status: Status; n: number }>(
      'select lifecycle_status, count(*) as n from lifecycle.user_lifecycle group by lifecycle_status',
    );
    const text = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle' });
    expect(text).toContain(`Lifecycle report — as of ${D}`);
    for (const { lifecycle_status, n } of counts) {
      const line = text.split('\n').find((l) => l.startsWith(`  ${lifecycle_status} `));
      expect(line?.trim().split(/\s+/)[1]).toBe(n.toLocaleString('en-US'));
    }
    expect(text).toMatch(/DAU [\d,]+ · WAU [\d,]+ · MAU [\d,]+/);
    const file = path.join(dir, 'report.html');
    const data = await writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file });
    expect(data.asOfDate).toBe(D);
    expect(data.purchasers).toBeGreaterThan(0);
    expect(data.statusDaily.length).toBeGreaterThan(100);
    expect(fs.statSync(file).size).toBeGreaterThan(100_000);
  });
});
