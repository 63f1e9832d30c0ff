/**
 * A change of vars makes the next incremental build recompute everyone (the config fingerprint of
 * int_lifecycle__builds differs). Two configurations must never print the same fingerprint: a list holding the
 * one event `E","X` printed as the list of `E` and `X`, so switching between them kept stale statuses.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { TrackRow } from './oracle';
import { build, landRaw, readMarts } from './helpers';

const track = (id: string, user: string, event: string, day: string): TrackRow => ({
  id,
  user_id: user,
  anonymous_id: null,
  event_text: event,
  timestamp: `${day}T12:00:00.000Z`,
  received_at: `${day}T12:00:00.000Z`,
  properties: {},
});

describeEachWarehouse('config fingerprint', ({ tw }) => {
  it('tells a list holding one event with quotes and a comma from the list of two events', async () => {
    const wh = await tw().open();
    try {
      await landRaw(
        wh,
        {
          tracks: [
            track('t1', 'fp-a', 'Z', '2024-05-05'),
            track('t2', 'fp-a', 'E', '2024-05-10'),
            track('t3', 'fp-b', 'Z', '2024-05-28'),
          ],
        },
        'cdp_fp',
      );
      const D = '2024-06-01';
      const one = { lifecycle__as_of_date: D, lifecycle__churn_events: ['E","X'] };
      const two = { lifecycle__as_of_date: D, lifecycle__churn_events: ['E', 'X'] };
      await build(wh, { schema: 'lc_fp_inc', rawSchema: 'cdp_fp', vars: one });
      await build(wh, { schema: 'lc_fp_inc', rawSchema: 'cdp_fp', vars: two });
      await build(wh, { schema: 'lc_fp_full', rawSchema: 'cdp_fp', vars: two, fullRefresh: true });
      const status = async (schema: string) =>
        wh.query<{ user_id: string; lifecycle_status: string }>(
          `select user_id, lifecycle_status from ${schema}.user_lifecycle order by user_id`,
        );
      // E is a churn event now: fp-a's last event churned it
      expect(await status('lc_fp_full')).toEqual([
        { user_id: 'fp-a', lifecycle_status: 'churned' },
        { user_id: 'fp-b', lifecycle_status: 'new' },
      ]);
      expect(await readMarts(wh, 'lc_fp_inc')).toEqual(await readMarts(wh, 'lc_fp_full'));
    } finally {
      await wh.close();
    }
  }, 120000);
});
