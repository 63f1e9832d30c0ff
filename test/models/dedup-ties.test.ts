/**
 * Copies of one id received at the same instant, with the same timestamp and source, but carrying different
 * facts (a replay whose payload was edited): SPEC 3 keeps "the row received first", which does not tell them
 * apart. The models break the tie on the facts themselves (the smaller first, text byte by byte), so the same
 * copy wins on every warehouse and whatever order the copies were stored in. Each case below lands its
 * copies in one order in one raw schema and in the other order in a second, and expects the same pick from
 * both: the lower revenue, the copy that is not activity (is_active 0 sorts first), the plan 'basic' < 'pro'.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { IdentifyRow, TrackRow } from './oracle';
import { build, landRaw } from './helpers';

const D = '2024-02-22';
const AT = '2024-02-20T10:00:00.000Z';
const track = (
  id: string,
  user: string,
  event: string,
  properties: Record<string, unknown> = {},
): TrackRow => ({
  id,
  user_id: user,
  anonymous_id: null,
  event_text: event,
  timestamp: AT,
  received_at: AT,
  properties,
});
const identify = (id: string, user: string, plan: string): IdentifyRow => ({
  id,
  user_id: user,
  anonymous_id: null,
  timestamp: AT,
  received_at: AT,
  traits: { plan },
});

const tracks = [
  track('order-1', 'buyer', 'Order Completed', { revenue: 20 }),
  track('order-1', 'buyer', 'Order Completed', { revenue: 10 }),
  track('evt-1', 'leaver', 'Viewed Item'),
  track('evt-1', 'leaver', 'Account Deleted'),
  track('view-1', 'planner', 'Viewed Item'),
];
const identifies = [identify('idf-1', 'planner', 'pro'), identify('idf-1', 'planner', 'basic')];

describeEachWarehouse('dedup of copies that tie on every key', ({ tw }) => {
  it('picks the same copy whatever order the copies were stored in', async () => {
    const wh = await tw().open();
    try {
      const picks = [];
      for (const [raw, schema, order] of [
        ['cdp_fwd', 'lc_fwd', <T>(rows: T[]) => rows],
        ['cdp_rev', 'lc_rev', <T>(rows: T[]) => [...rows].reverse()],
      ] as const) {
        await landRaw(wh, { tracks: order(tracks), identifies: order(identifies) }, raw);
        await build(wh, { schema, rawSchema: raw, vars: { lifecycle__as_of_date: D } });
        const rows = await wh.query<{
          user_id: string;
          lifecycle_status: string;
          monetary: unknown;
          subscription_status: string | null;
        }>(
          `select user_id, lifecycle_status, monetary, subscription_status from ${schema}.user_lifecycle order by user_id`,
        );
        picks.push(rows.map((r) => ({ ...r, monetary: Number(r.monetary) })));
      }
      expect(picks[0]).toEqual([
        { user_id: 'buyer', lifecycle_status: 'new', monetary: 10, subscription_status: null },
        { user_id: 'leaver', lifecycle_status: 'churned', monetary: 0, subscription_status: null },
        { user_id: 'planner', lifecycle_status: 'new', monetary: 0, subscription_status: 'basic' },
      ]);
      expect(picks[1]).toEqual(picks[0]);
    } finally {
      await wh.close();
    }
  }, 120000);
});
