import type { ColumnSpec, InsertValue, Warehouse } from '../../../src/warehouse';

/** The SPEC §5 columns of `user_lifecycle`, for tests that run before (or without) the models. */
export const USER_LIFECYCLE_COLUMNS: readonly ColumnSpec[] = [
  { name: 'user_id', type: 'text' },
  { name: 'as_of_date', type: 'date' },
  { name: 'lifecycle_status', type: 'text' },
  { name: 'status_since', type: 'date' },
  { name: 'previous_status', type: 'text' },
  { name: 'first_seen_date', type: 'date' },
  { name: 'last_active_date', type: 'date' },
  { name: 'days_inactive', type: 'integer' },
  { name: 'active_days_7', type: 'integer' },
  { name: 'active_days_28', type: 'integer' },
  { name: 'subscription_status', type: 'text' },
  { name: 'core_feature_adopted', type: 'boolean' },
  { name: 'purchase_count', type: 'integer' },
  { name: 'monetary', type: 'double' },
  { name: 'rfm_recency_score', type: 'integer' },
  { name: 'rfm_frequency_score', type: 'integer' },
  { name: 'rfm_monetary_score', type: 'integer' },
  { name: 'rfm_segment', type: 'text' },
];

export interface FixtureUser {
  user_id: string | null;
  lifecycle_status: string;
  status_since: string;
  previous_status: string | null;
  rfm_segment?: string | null;
  subscription_status?: string | null;
  monetary?: number;
}

const SQL_TYPES: Record<string, string> = {
  text: 'text',
  date: 'date',
  integer: 'integer',
  boolean: 'boolean',
  double: 'double precision',
};

/** (Re)creates `<schema>.user_lifecycle` holding exactly `users`. */
export async function writeUserLifecycle(
  wh: Warehouse,
  schema: string,
  users: readonly FixtureUser[],
): Promise<void> {
  await wh.exec(`create schema if not exists ${schema}`);
  await wh.exec(`drop table if exists ${schema}.user_lifecycle`);
  await wh.exec(
    `create table ${schema}.user_lifecycle (${USER_LIFECYCLE_COLUMNS.map((c) => `${c.name} ${SQL_TYPES[c.type]}`).join(', ')})`,
  );
  const rows: InsertValue[][] = users.map((u) => [
    u.user_id,
    '2024-06-30',
    u.lifecycle_status,
    u.status_since,
    u.previous_status,
    '2024-01-01',
    '2024-06-29',
    1,
    3,
    12,
    u.subscription_status ?? null,
    null,
    u.rfm_segment ? 2 : 0,
    u.monetary ?? 0,
    u.rfm_segment ? 3 : null,
    u.rfm_segment ? 2 : null,
    u.rfm_segment ? 4 : null,
    u.rfm_segment ?? null,
  ]);
  for (let i = 0; i < rows.length; i += 5000) {
    await wh.insertRows(schema, 'user_lifecycle', USER_LIFECYCLE_COLUMNS, rows.slice(i, i + 5000));
  }
}

/** Sets one user's status (as a model rebuild would). */
export async function setStatus(
  wh: Warehouse,
  schema: string,
  userId: string,
  status: string,
  since: string,
  previous: string | null,
): Promise<void> {
  await wh.query(
    `update ${schema}.user_lifecycle set lifecycle_status = $2, status_since = cast($3 as date), previous_status = $4 where user_id = $1`,
    [userId, status, since, previous],
  );
}

export function makeUsers(n: number, prefix = 'u'): FixtureUser[] {
  const statuses = ['new', 'active', 'power', 'at_risk', 'dormant', 'churned', 'resurrected'];
  return Array.from({ length: n }, (_, i) => ({
    user_id: `${prefix}${String(i).padStart(5, '0')}`,
    lifecycle_status: statuses[i % statuses.length],
    status_since: `2024-06-${String((i % 28) + 1).padStart(2, '0')}`,
    previous_status: i % 3 === 0 ? null : statuses[(i + 1) % statuses.length],
    rfm_segment: i % 2 === 0 ? 'champions' : null,
  }));
}
