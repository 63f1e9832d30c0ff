/**
 * Inputs at the edges of what each warehouse's functions read the same way (SPEC 4: the same rows on DuckDB and
 * PostgreSQL), found by differential runs against the reference implementation:
 * - DuckDB dated a UTC instant from epoch milliseconds truncated toward 1970, so 1960-06-30 23:59:59.9999 fell
 *   on 1960-07-01 (PostgreSQL, and SPEC 4.1's "date in the zone", say 1960-06-30);
 * - DuckDB read the plan trait's key as a JSONPath, where `*` is a wildcard even quoted: a trait named `*` gave
 *   the JSON list of every trait instead of its value.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { IdentifyRow, TrackRow, ViewRow } from './oracle';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { ensureRawTables, openWarehouse } from '../../src/warehouse';
import { runCli } from '../helpers/cli';
import { build, landRaw } from './helpers';
import { loadReportData } from '../../src/report/data';

const day = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10);

describeEachWarehouse('edge inputs', ({ tw }) => {
  it('dates instants just before a midnight before 1970 on their own UTC day', async () => {
    const page = (id: string, user: string, ts: string): ViewRow => ({
      id,
      user_id: user,
      anonymous_id: null,
      timestamp: ts,
      received_at: '2024-01-01T00:00:00.000Z',
    });
    const wh = await tw().open();
    try {
      await landRaw(
        wh,
        {
          pages: [
            page('p1', 'sixties', '1960-06-30T23:59:59.999900Z'),
            page('p2', 'eve', '1969-12-31T23:59:59.999999Z'),
            page('p3', 'epoch', '1970-01-01T00:00:00.000000Z'),
          ],
        },
        'cdp_edge_ts',
      );
      await build(wh, {
        schema: 'lc_edge_ts',
        rawSchema: 'cdp_edge_ts',
        vars: { lifecycle__as_of_date: '1970-01-05' },
      });
      const rows = await wh.query<{ user_id: string; first: unknown; last: unknown }>(
        `select user_id, first_seen_date as first, last_active_date as last from lc_edge_ts.user_lifecycle order by user_id`,
      );
      expect(rows.map((r) => ({ user: r.user_id, first: day(r.first), last: day(r.last) }))).toEqual([
        { user: 'epoch', first: '1970-01-01', last: '1970-01-01' },
        { user: 'eve', first: '1969-12-31', last: '1969-12-31' },
        { user: 'sixties', first: '1960-06-30', last: '1960-06-30' },
      ]);
    } finally {
      await wh.close();
    }
  }, 120000);

  it('gives a day before year 1 (0001-01-01 in a zone west of UTC) ids of its own', async () => {
    const page = (id: string, user: string, ts: string): ViewRow => ({
      id,
      user_id: user,
      anonymous_id: null,
      timestamp: ts,
      received_at: '2024-06-25T12:00:00.000Z',
    });
    const wh = await tw().open();
    try {
      // Go's zero time, 0001-01-01T00:00:00Z, is 1 BC-12-31 in New York; the other user's day is AD 1's last
      await landRaw(
        wh,
        {
          pages: [
            page('p1', 'u1', '0001-01-01T00:00:00.000000Z'),
            page('p2', 'u2', '0001-12-31T12:00:00.000000Z'),
          ],
        },
        'cdp_edge_bc',
      );
      await build(wh, {
        schema: 'lc_edge_bc',
        rawSchema: 'cdp_edge_bc',
        vars: { lifecycle__as_of_date: '0002-02-01', lifecycle__timezone: 'America/New_York' },
      });
      expect(
        (
          await wh.query<{ status_run_id: string }>(
            `select status_run_id from lc_edge_bc.user_status_history where lifecycle_status = 'new'`,
          )
        )
          .map((r) => r.status_run_id)
          .sort(),
      ).toEqual(['u1|0001-12-31 (BC)', 'u2|0001-12-31']);
      const [days] = await wh.query<{ n: unknown; ids: unknown }>(
        `select count(*) as n, count(distinct status_day_id) as ids from lc_edge_bc.status_daily`,
      );
      expect(Number(days.ids)).toBe(Number(days.n));
      const ids = await wh.query<{ status_day_id: string }>(
        `select status_day_id from lc_edge_bc.status_daily where status_day_id like '0001-12-31%'`,
      );
      // u1 is churned by AD 1's last day
      expect(ids.map((r) => r.status_day_id).sort()).toEqual([
        '0001-12-31 (BC)|new',
        '0001-12-31|churned',
        '0001-12-31|new',
      ]);
      // the report's three-year window starts before year 1 here: it starts at year 1 instead of failing
      const report = await loadReportData({ warehouse: wh, schema: 'lc_edge_bc' });
      expect(report.asOfDate).toBe('0002-02-01');
    } finally {
      await wh.close();
    }
  }, 120000);

  it('dates events of raw tables whose timestamps have no time zone (a loader made them) as UTC instants', async () => {
    const wh = await tw().open();
    const raw = 'cdp_edge_naive';
    try {
      await ensureRawTables(wh, raw);
      // every timestamp column of the tables the models read, as a loader that knows no zones creates them
      for (const table of ['tracks', 'pages', 'screens', 'identifies', 'aliases']) {
        for (const col of ['timestamp', 'received_at']) {
          await wh.exec(
            wh.dialect === 'postgres'
              ? `alter table ${raw}.${table} alter column "${col}" type timestamp without time zone`
              : `alter table ${raw}.${table} alter "${col}" type timestamp`,
          );
        }
      }
      const track = (id: string, user: string, ts: string): TrackRow => ({
        id,
        user_id: user,
        anonymous_id: null,
        event_text: 'Viewed Item',
        timestamp: ts,
        received_at: ts,
        properties: {},
      });
      // 20:00 UTC on April 26 is 05:00 on April 27 in Tokyo (UTC+9); 03:00 UTC on April 27 is 20:00 on April 26
      // in Los Angeles (UTC-7 in summer time)
      await landRaw(
        wh,
        {
          tracks: [
            track('t1', 'utc_evening', '2024-04-26T20:00:00.000Z'),
            track('t2', 'utc_night', '2024-04-27T03:00:00.000Z'),
          ],
        },
        raw,
      );
      const firstSeen = async (tz: string) => {
        const schema = `lc_edge_naive_${tz === 'UTC' ? 'utc' : tz === 'Asia/Tokyo' ? 'tokyo' : 'la'}`;
        await build(wh, {
          schema,
          rawSchema: raw,
          vars: { lifecycle__as_of_date: '2024-04-30', lifecycle__timezone: tz },
        });
        const rows = await wh.query<{ user_id: string; first: unknown }>(
          `select user_id, first_seen_date as first from ${schema}.user_lifecycle order by user_id`,
        );
        return Object.fromEntries(rows.map((r) => [r.user_id, day(r.first)]));
      };
      expect(await firstSeen('UTC')).toEqual({ utc_evening: '2024-04-26', utc_night: '2024-04-27' });
      expect(await firstSeen('Asia/Tokyo')).toEqual({ utc_evening: '2024-04-27', utc_night: '2024-04-27' });
      expect(await firstSeen('America/Los_Angeles')).toEqual({
        utc_evening: '2024-04-26',
        utc_night: '2024-04-26',
      });
    } finally {
      await wh.close();
    }
  }, 180000);

  it('reads a revenue text with spaces (U+0020) around it as its number, and one with other white space as none', async () => {
    // DuckDB's trim() also strips Unicode spaces: a no-break space before 7 made it 7 there and no number on
    // PostgreSQL, where the total counted instead
    const purchase = (user: string, properties: Record<string, unknown>): TrackRow => ({
      id: `rev-${user}`,
      user_id: user,
      anonymous_id: null,
      event_text: 'Order Completed',
      timestamp: '2024-03-01T12:00:00.000Z',
      received_at: '2024-03-01T12:00:00.000Z',
      properties,
    });
    const wh = await tw().open();
    try {
      await landRaw(
        wh,
        {
          tracks: [
            purchase('spaces', { revenue: '  7.25 ', total: 3 }),
            purchase('nbsp', { revenue: '\u00a07', total: 3 }),
            purchase('ideographic', { revenue: '7\u3000', total: 3 }),
            purchase('em_space', { revenue: '\u20037' }),
            purchase('tab', { revenue: '\t7', value: '4' }),
          ],
        },
        'cdp_edge_revenue',
      );
      await build(wh, {
        schema: 'lc_edge_revenue',
        rawSchema: 'cdp_edge_revenue',
        vars: { lifecycle__as_of_date: '2024-03-05' },
      });
      const rows = await wh.query<{ user_id: string; purchase_count: number; monetary: unknown }>(
        `select user_id, purchase_count, cast(monetary as varchar(40)) as monetary
        from lc_edge_revenue.user_lifecycle order by user_id`,
      );
      expect(rows.map((r) => [r.user_id, Number(r.purchase_count), Number(r.monetary)])).toEqual([
        ['em_space', 1, 0],
        ['ideographic', 1, 3],
        ['nbsp', 1, 3],
        ['spaces', 1, 7.25],
        ['tab', 1, 4],
      ]);
    } finally {
      await wh.close();
    }
  }, 120000);

  it('reads a plan trait whose name holds JSONPath or JSON Pointer characters as that key', async () => {
    const identify = (id: string, user: string, traits: Record<string, unknown>): IdentifyRow => ({
      id,
      user_id: user,
      anonymous_id: null,
      timestamp: '2024-03-01T12:00:00.000Z',
      received_at: '2024-03-01T12:00:00.000Z',
      traits,
    });
    const wh = await tw().open();
    try {
      await landRaw(
        wh,
        {
          identifies: [
            identify('i1', 'star', { '*': 'gold', plan: 'x', other: 'y' }),
            identify('i2', 'path', { 'a.b/c~d': 'silver', a: { b: 'no' }, '*': 'no' }),
          ],
        },
        'cdp_edge_plan',
      );
      const plans = async (trait: string) => {
        const schema = `lc_edge_plan_${trait === '*' ? 'star' : 'path'}`;
        await build(wh, {
          schema,
          rawSchema: 'cdp_edge_plan',
          vars: { lifecycle__as_of_date: '2024-03-05', lifecycle__plan_trait: trait },
        });
        return wh.query<{ user_id: string; subscription_status: string | null }>(
          `select user_id, subscription_status from ${schema}.user_lifecycle order by user_id`,
        );
      };
      expect(await plans('*')).toEqual([
        { user_id: 'path', subscription_status: 'no' },
        { user_id: 'star', subscription_status: 'gold' },
      ]);
      expect(await plans('a.b/c~d')).toEqual([
        { user_id: 'path', subscription_status: 'silver' },
        { user_id: 'star', subscription_status: null },
      ]);
    } finally {
      await wh.close();
    }
  }, 120000);
});

describe('a DuckDB build in a process whose TZ is not UTC', () => {
  it('reads timestamps without time zone as UTC, whatever the TZ of the process', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-naive-tz-'));
    const url = `duckdb://${path.join(dir, 'w.duckdb')}`;
    try {
      let wh = await openWarehouse(url);
      try {
        await ensureRawTables(wh, 'cdp');
        for (const table of ['tracks', 'pages', 'screens', 'identifies', 'aliases'])
          for (const col of ['timestamp', 'received_at'])
            await wh.exec(`alter table cdp.${table} alter "${col}" type timestamp`);
        // 14:30 UTC on April 26 is 23:30 that day in Tokyo; read as Los Angeles time it would be 06:30 on the 27th
        await landRaw(wh, {
          tracks: [
            {
              id: 't1',
              user_id: 'afternoon',
              anonymous_id: null,
              event_text: 'Viewed Item',
              timestamp: '2024-04-26T14:30:00.000Z',
              received_at: '2024-04-26T14:30:00.000Z',
              properties: {},
            },
          ],
        });
      } finally {
        await wh.close();
      }
      const vars = { lifecycle__as_of_date: '2024-04-30', lifecycle__timezone: 'Asia/Tokyo' };
      const res = await runCli(['build', '--warehouse', url, '--vars', JSON.stringify(vars)], {
        env: { TZ: 'America/Los_Angeles' },
      });
      expect(res.stderr).toBe('');
      expect(res.code).toBe(0);
      wh = await openWarehouse(url);
      try {
        const rows = await wh.query<{ first: unknown }>(
          `select first_seen_date as first from lifecycle.user_lifecycle where user_id = 'afternoon'`,
        );
        expect(rows.map((r) => day(r.first))).toEqual(['2024-04-26']);
      } finally {
        await wh.close();
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180000);
});
