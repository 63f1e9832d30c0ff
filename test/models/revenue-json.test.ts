/**
 * A revenue sent as a JSON number is the double JavaScript (or any client) holds: DuckDB's JSON reader parses it
 * as one, so PostgreSQL, which keeps the literal digits, must read it the same way or the two warehouses round it
 * to different cents. 10.0049999999999999 and 2.6749999999999998 are the doubles written 10.005 and 2.675
 * (what JSON.stringify prints for them), which round half away from zero to 10.01 and 2.68; the same digits sent
 * as a string are read exactly (rules.test.ts: '10.0049999999999999' is 10.00).
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { TrackRow } from './oracle';
import { build, landRaw } from './helpers';

const D = '2024-02-22';
const AT = '2024-02-20T10:00:00.000Z';
const purchase = (user: string): TrackRow => ({
  id: `order-${user}`,
  user_id: user,
  anonymous_id: null,
  event_text: 'Order Completed',
  timestamp: AT,
  received_at: AT,
  properties: {},
});

// the JSON texts, as a client that prints 17 significant digits sends them
const bodies: Record<string, string> = {
  ten: '{"revenue": 10.0049999999999999}',
  two: '{"revenue": 2.6749999999999998}',
  // an integer literal stays exact
  big: '{"revenue": 12345678901234}',
  // a number in exponent form
  exp: '{"revenue": 1.5e1}',
  // below the smallest double: 0 (PostgreSQL's float8 refused it, failing the whole build), and beyond the
  // largest one, with a fraction: no number (as every magnitude of 10^24 or more), then the next field counts
  tiny: '{"revenue": 1e-400, "total": 3}',
  huge: '{"revenue": 1.5e400, "total": 4}',
  hugefrac:
    '{"revenue": 123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890123456789012345678901234567890.5, "total": 5}',
};

describeEachWarehouse('revenue sent as a JSON number', ({ tw }) => {
  it('is the double the client sent, rounded to cents the same way on every warehouse', async () => {
    const wh = await tw().open();
    try {
      await landRaw(wh, { tracks: Object.keys(bodies).map(purchase) }, 'cdp_num');
      for (const [user, body] of Object.entries(bodies)) {
        await wh.query(`update cdp_num.tracks set properties = $1 where user_id = $2`, [body, user]);
      }
      await build(wh, { schema: 'lc_num', rawSchema: 'cdp_num', vars: { lifecycle__as_of_date: D } });
      const rows = await wh.query<{ user_id: string; monetary: unknown }>(
        'select user_id, monetary from lc_num.user_lifecycle order by user_id',
      );
      expect(rows.map((r) => [r.user_id, Number(r.monetary)])).toEqual([
        ['big', 12345678901234],
        ['exp', 15],
        ['huge', 4],
        ['hugefrac', 5],
        ['ten', 10.01],
        ['tiny', 0],
        ['two', 2.68],
      ]);
    } finally {
      await wh.close();
    }
  }, 120000);
});

// Strings in exponent form whose exponent has leading zeros: 5000e-003 was taken for an exponent of 100 or more
// (0, then no number at all for 1e+002) on every warehouse but BigQuery.
const padded: Record<string, string> = {
  five: '{"revenue": "5000e-003"}', // 5000 / 1000
  hundred: '{"revenue": "1e+002"}', // 100
  quarter: '{"revenue": "12.5E-001"}', // 1.25
  small: '{"revenue": "7e-0100", "total": 9}', // 7 * 10^-100: a number, rounded to 0.00 (total is not read)
  bigneg: '{"revenue": "7e-1000", "total": 6}', // an exponent of four digits: no number, the total counts
};

describeEachWarehouse('revenue sent as a string with a zero-padded exponent', ({ tw }) => {
  it('is read at the exponent its digits spell', async () => {
    const wh = await tw().open();
    try {
      await landRaw(wh, { tracks: Object.keys(padded).map(purchase) }, 'cdp_pad');
      for (const [user, body] of Object.entries(padded)) {
        await wh.query(`update cdp_pad.tracks set properties = $1 where user_id = $2`, [body, user]);
      }
      await build(wh, { schema: 'lc_pad', rawSchema: 'cdp_pad', vars: { lifecycle__as_of_date: D } });
      const rows = await wh.query<{ user_id: string; monetary: unknown }>(
        'select user_id, monetary from lc_pad.user_lifecycle order by user_id',
      );
      expect(rows.map((r) => [r.user_id, Number(r.monetary)])).toEqual([
        ['bigneg', 6],
        ['five', 5],
        ['hundred', 100],
        ['quarter', 1.25],
        ['small', 0],
      ]);
    } finally {
      await wh.close();
    }
  }, 120000);
});
