import { quoteIdent, type ColumnSpec, type InsertValue, type Warehouse } from '../../src/warehouse';

/**
 * The five marts of SPEC §5 with hand-picked rows, written straight into a real warehouse, so the reports can
 * be tested before (and independently of) the models. Every figure the tests expect is stated here.
 *
 * As of D = 2026-03-31, 28 users:
 *   status on D:      new 3, active 5, power 2, resurrected 1, at_risk 4, dormant 6, churned 7
 *   status on D-7:    new 4, active 6, power 2, (resurrected none), at_risk 3, dormant 5, churned 5
 *   transitions (last 7 days [03-25, 03-31] / last 30 days [03-02, 03-31]):
 *     active → at_risk 3/5, at_risk → dormant 1/4, (first) → new 3/3, new → active 2/2,
 *     dormant → churned 0/2, dormant → resurrected 1/1; outside the windows: churned → resurrected on 03-01,
 *     active → power on 04-01 (after D)
 *   growth on D: new 2, current 6, reactivated 1, resurrected 1 (DAU 10), WAU 15, MAU 19, CURR 0.75, RURR null
 *   RFM purchasers (8): (5,5) champions 500, (5,4) champions 300, (5,1) new_customer 20,
 *     (4,2) potential_loyalist 80, (3,3) need_attention 60, (2,5) cant_lose 700.5, (1,1) hibernating 15.25,
 *     (1,2) hibernating 30
 */
export const D = '2026-03-31';

const T = (name: string, type: ColumnSpec['type']): ColumnSpec => ({ name, type });

const SQL_TYPES: Record<ColumnSpec['type'], string> = {
  text: 'text',
  timestamptz: 'timestamptz',
  json: 'text',
  integer: 'integer',
  bigint: 'bigint',
  double: 'double precision',
  boolean: 'boolean',
  date: 'date',
};

const TABLES: Record<string, ColumnSpec[]> = {
  user_lifecycle: [
    T('user_id', 'text'),
    T('as_of_date', 'date'),
    T('lifecycle_status', 'text'),
    T('status_since', 'date'),
    T('previous_status', 'text'),
    T('first_seen_date', 'date'),
    T('last_active_date', 'date'),
    T('days_inactive', 'integer'),
    T('active_days_7', 'integer'),
    T('active_days_28', 'integer'),
    T('subscription_status', 'text'),
    T('core_feature_adopted', 'boolean'),
    T('purchase_count', 'integer'),
    T('monetary', 'double'),
    T('rfm_recency_score', 'integer'),
    T('rfm_frequency_score', 'integer'),
    T('rfm_monetary_score', 'integer'),
    T('rfm_segment', 'text'),
  ],
  user_status_history: [
    T('user_id', 'text'),
    T('lifecycle_status', 'text'),
    T('valid_from', 'date'),
    T('valid_to', 'date'),
  ],
  status_transitions: [
    T('user_id', 'text'),
    T('transition_date', 'date'),
    T('from_status', 'text'),
    T('to_status', 'text'),
  ],
  status_daily: [T('date', 'date'), T('lifecycle_status', 'text'), T('users', 'integer')],
  growth_accounting_daily: [
    T('date', 'date'),
    ...[
      'new_users',
      'current_users',
      'reactivated_users',
      'resurrected_users',
      'at_risk_wau_users',
      'at_risk_mau_users',
      'dormant_users',
      'dau',
      'wau',
      'mau',
    ].map((c) => T(c, 'integer')),
    ...['nurr', 'curr', 'rurr', 'surr', 'iwaurr', 'reactivation_rate', 'resurrection_rate'].map((c) =>
      T(c, 'double'),
    ),
  ],
};

const addDays = (date: string, n: number) =>
  new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);

const STATUS_ON_D: Array<[string, number]> = [
  ['new', 3],
  ['active', 5],
  ['power', 2],
  ['resurrected', 1],
  ['at_risk', 4],
  ['dormant', 6],
  ['churned', 7],
];
const STATUS_WEEK_AGO: Array<[string, number]> = [
  ['new', 4],
  ['active', 6],
  ['power', 2],
  ['at_risk', 3],
  ['dormant', 5],
  ['churned', 5],
];

const RFM: Array<[number, number, string, number]> = [
  [5, 5, 'champions', 500],
  [5, 4, 'champions', 300],
  [5, 1, 'new_customer', 20],
  [4, 2, 'potential_loyalist', 80],
  [3, 3, 'need_attention', 60],
  [2, 5, 'cant_lose', 700.5],
  [1, 1, 'hibernating', 15.25],
  [1, 2, 'hibernating', 30],
];

export async function createFixtureMarts(
  wh: Warehouse,
  schema = 'lifecycle',
  historyDays = 45,
): Promise<void> {
  const s = quoteIdent(schema);
  await wh.exec(`create schema if not exists ${s}`);
  for (const [name, cols] of Object.entries(TABLES)) {
    await wh.exec(`drop table if exists ${s}.${quoteIdent(name)}`);
    await wh.exec(
      `create table ${s}.${quoteIdent(name)} (${cols.map((c) => `${quoteIdent(c.name)} ${SQL_TYPES[c.type]}`).join(', ')})`,
    );
  }
  const insert = (table: string, rows: InsertValue[][]) => wh.insertRows(schema, table, TABLES[table], rows);

  // user_lifecycle: users u01… in status order; the first 8 are the purchasers.
  const users: InsertValue[][] = [];
  let n = 0;
  for (const [status, count] of STATUS_ON_D) {
    for (let i = 0; i < count; i++) {
      const rfm = RFM[n];
      n++;
      users.push([
        `u${String(n).padStart(2, '0')}`,
        D,
        status,
        addDays(D, -3),
        null,
        addDays(D, -60),
        addDays(D, -1),
        1,
        3,
        10,
        n % 3 === 0 ? 'pro' : 'free',
        n % 2 === 0,
        rfm ? 1 + (n % 4) : 0,
        rfm ? rfm[3] : 0,
        rfm ? rfm[0] : null,
        rfm ? rfm[1] : null,
        rfm ? 3 : null,
        rfm ? rfm[2] : null,
      ]);
    }
  }
  await insert('user_lifecycle', users);
  await insert('user_status_history', [
    ['u01', 'new', addDays(D, -60), addDays(D, -54)],
    ['u01', 'active', addDays(D, -53), null],
  ]);

  // status_daily: the two days the report compares are exact; the rest is a smooth history for the chart.
  const daily: InsertValue[][] = [];
  for (let k = historyDays; k >= 0; k--) {
    const date = addDays(D, -k);
    let rows: Array<[string, number]>;
    if (k === 0) rows = STATUS_ON_D;
    else if (k === 7) rows = STATUS_WEEK_AGO;
    else
      rows = STATUS_ON_D.map(([st, c], i) => [st, Math.max(0, c + ((k + i) % 3) - 1 - Math.floor(k / 15))]);
    for (const [st, c] of rows) if (c > 0) daily.push([date, st, c]);
  }
  await insert('status_daily', daily);

  const tr = (user: string, date: string, from: string | null, to: string): InsertValue[] => [
    user,
    date,
    from,
    to,
  ];
  await insert('status_transitions', [
    tr('u09', '2026-03-26', 'active', 'at_risk'),
    tr('u10', '2026-03-28', 'active', 'at_risk'),
    tr('u11', '2026-03-31', 'active', 'at_risk'),
    tr('u12', '2026-03-10', 'active', 'at_risk'),
    tr('u13', '2026-03-15', 'active', 'at_risk'),
    tr('u14', '2026-03-29', 'at_risk', 'dormant'),
    tr('u15', '2026-03-05', 'at_risk', 'dormant'),
    tr('u16', '2026-03-12', 'at_risk', 'dormant'),
    tr('u17', '2026-03-20', 'at_risk', 'dormant'),
    tr('u11', '2026-03-30', 'dormant', 'resurrected'),
    tr('u20', '2026-03-02', 'dormant', 'churned'),
    tr('u21', '2026-03-03', 'dormant', 'churned'),
    tr('u04', '2026-03-25', 'new', 'active'),
    tr('u05', '2026-03-27', 'new', 'active'),
    tr('u01', '2026-03-29', null, 'new'),
    tr('u02', '2026-03-30', null, 'new'),
    tr('u03', '2026-03-31', null, 'new'),
    tr('u22', '2026-03-01', 'churned', 'resurrected'),
    tr('u06', '2026-04-01', 'active', 'power'),
  ]);

  const growth: InsertValue[][] = [];
  for (let k = historyDays; k >= 0; k--) {
    const date = addDays(D, -k);
    if (k === 0) {
      growth.push([date, 2, 6, 1, 1, 5, 4, 9, 10, 15, 19, 0.5, 0.75, null, 1, 0.2, 0.1, 0.05]);
      continue;
    }
    const nw = 1 + (k % 3);
    const cur = 5 + (k % 4);
    const react = k % 2;
    const res = k % 5 === 0 ? 1 : 0;
    const dau = nw + cur + react + res;
    growth.push([
      date,
      nw,
      cur,
      react,
      res,
      4,
      3,
      8,
      dau,
      dau + 4,
      dau + 7,
      0.4,
      0.7 + (k % 5) / 50,
      k % 2 ? 0.5 : null,
      0.3,
      0.25,
      0.1,
      0.02,
    ]);
  }
  await insert('growth_accounting_daily', growth);
}
