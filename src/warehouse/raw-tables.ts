import type { ColumnSpec, ColumnType, Dialect, SqlRunner, TableSpec } from './types';
import { ensureSchema, qualify, quoteIdent } from './types';

const t = (name: string, type: ColumnType): ColumnSpec => ({ name, type });

const TIMES = [
  t('timestamp', 'timestamptz'),
  t('original_timestamp', 'timestamptz'),
  t('sent_at', 'timestamptz'),
  t('received_at', 'timestamptz'),
];

/** The landing contract of SPEC §3, column order as listed there. Tables are append-only. */
export const RAW_TABLES = {
  tracks: {
    name: 'tracks',
    columns: [
      t('id', 'text'),
      t('user_id', 'text'),
      t('anonymous_id', 'text'),
      t('event', 'text'),
      t('event_text', 'text'),
      ...TIMES,
      t('properties', 'json'),
      t('context', 'json'),
    ],
  },
  identifies: {
    name: 'identifies',
    columns: [
      t('id', 'text'),
      t('user_id', 'text'),
      t('anonymous_id', 'text'),
      ...TIMES,
      t('traits', 'json'),
      t('context', 'json'),
    ],
  },
  pages: {
    name: 'pages',
    columns: [
      t('id', 'text'),
      t('user_id', 'text'),
      t('anonymous_id', 'text'),
      t('name', 'text'),
      ...TIMES,
      t('properties', 'json'),
      t('context', 'json'),
    ],
  },
  screens: {
    name: 'screens',
    columns: [
      t('id', 'text'),
      t('user_id', 'text'),
      t('anonymous_id', 'text'),
      t('name', 'text'),
      ...TIMES,
      t('properties', 'json'),
      t('context', 'json'),
    ],
  },
  aliases: {
    name: 'aliases',
    columns: [
      t('id', 'text'),
      t('previous_id', 'text'),
      t('user_id', 'text'),
      t('timestamp', 'timestamptz'),
      t('received_at', 'timestamptz'),
      t('context', 'json'),
    ],
  },
  groups: {
    name: 'groups',
    columns: [
      t('id', 'text'),
      t('user_id', 'text'),
      t('anonymous_id', 'text'),
      t('group_id', 'text'),
      t('timestamp', 'timestamptz'),
      t('received_at', 'timestamptz'),
      t('traits', 'json'),
      t('context', 'json'),
    ],
  },
  rejected_events: {
    name: 'rejected_events',
    columns: [t('received_at', 'timestamptz'), t('reason', 'text'), t('payload', 'text')],
  },
} as const satisfies Record<string, TableSpec>;

export type RawTableName = keyof typeof RAW_TABLES;

export function sqlType(dialect: Dialect, type: ColumnType): string {
  switch (type) {
    case 'text':
      return dialect === 'duckdb' ? 'varchar' : 'text';
    case 'timestamptz':
      return 'timestamptz';
    case 'json':
      return dialect === 'duckdb' ? 'json' : 'jsonb';
    case 'integer':
      return 'integer';
    case 'bigint':
      return 'bigint';
    case 'double':
      return 'double precision';
    case 'boolean':
      return 'boolean';
    case 'date':
      return 'date';
  }
}

export function createTableSql(dialect: Dialect, schema: string, table: TableSpec): string {
  const cols = table.columns.map((c) => `${quoteIdent(c.name)} ${sqlType(dialect, c.type)}`).join(', ');
  return `create table if not exists ${qualify(schema, table.name)} (${cols})`;
}

/**
 * Creates the raw schema and every landing table if missing (idempotent, safe to call on every start).
 * Timestamps stay nullable except `received_at`, which the collector always sets.
 */
export async function ensureRawTables(db: SqlRunner, rawSchema: string): Promise<void> {
  await ensureSchema(db, rawSchema);
  for (const table of Object.values(RAW_TABLES)) {
    await db.exec(createTableSql(db.dialect, rawSchema, table));
  }
}
