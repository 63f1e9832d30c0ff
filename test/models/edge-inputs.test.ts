/**
 * Inputs at the edges of what each warehouse's functions read the same way (SPEC 4: the same rows on DuckDB and
 * PostgreSQL), found by differential runs against the reference implementation:
 * - DuckDB dated a UTC instant from epoch milliseconds truncated toward 1970, so 1960-06-30 23:59:59.9999 fell
 *   on 1960-07-01 (PostgreSQL, and SPEC 4.1's "date in the zone", say 1960-06-30);
 * - DuckDB read the plan trait's key as a JSONPath, where `*` is a wildcard even quoted: a trait named `*` gave
 *   the JSON list of every trait instead of its value.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { IdentifyRow, ViewRow } from './oracle';
import { build, landRaw } from './helpers';

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
