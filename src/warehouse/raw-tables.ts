import { UserError } from '../errors';
import type { ColumnSpec, ColumnType, Dialect, SqlRunner, TableSpec, Warehouse } from './types';
import { ensureSchema, pgRelations, qualify, quoteIdent } from './types';

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
 *
 * On PostgreSQL only the missing tables are created, looked up in the catalog first, as ensureSchema does for
 * the schema: PostgreSQL checks CREATE on the schema even for `create table if not exists` of a table that
 * exists, and a loader role is often given only USAGE on the schema and INSERT on tables another role created.
 * Each table found takes an insert of no rows instead, which PostgreSQL refuses as it would the first event (a
 * role without INSERT, a read-only database or standby): `serve` then fails at start, as it did when the
 * create statement refused, not on every event it takes.
 *
 * On PostgreSQL, two sessions creating the same table at once both pass `if not exists` and one fails on the
 * catalog's unique index (`type "tracks" already exists`): the first events a destination receives arrive in
 * parallel calls, and a collector may start beside it. So the creation runs in a transaction holding an
 * advisory lock on the schema's name; the later session then finds the tables made.
 */
export async function ensureRawTables(db: Warehouse, rawSchema: string): Promise<void> {
  const create = async (tx: SqlRunner): Promise<void> => {
    const existing = await checkRawShape(tx, rawSchema);
    await ensureSchema(tx, rawSchema);
    for (const table of Object.values(RAW_TABLES)) {
      // (DuckDB has no privileges, and its information_schema spans every attached catalog: there the
      // statement's `if not exists` decides, as before)
      if (tx.dialect === 'postgres' && existing.has(table.name)) {
        const cols = table.columns.map((c) => quoteIdent(c.name));
        await tx.exec(
          `insert into ${qualify(rawSchema, table.name)} (${cols.join(', ')}) select ${cols.map(() => 'null').join(', ')} where false`,
        );
      } else await tx.exec(createTableSql(tx.dialect, rawSchema, table));
    }
  };
  if (db.dialect !== 'postgres') return create(db);
  await db.transaction(async (tx) => {
    await tx.query('select pg_advisory_xact_lock(hashtextextended($1, 0))', [
      `cdp-lifecycle raw tables ${rawSchema}`,
    ]);
    await create(tx);
  });
}

/**
 * Refuses a raw schema whose landing tables exist in another shape, before anything is created or written:
 * `create table if not exists` passes over a view or a table of the same name, and the first write would then
 * fail on every event (the views of docs/warehouse-destinations.md over a destination's tables, or the
 * destination's own flattened tables). Returns the names of the tables and views the schema holds.
 */
async function checkRawShape(db: SqlRunner, rawSchema: string): Promise<Set<string>> {
  const rows = await db.query<{ table_name: string; table_type: string; column_name: string | null }>(
    db.dialect === 'postgres'
      ? `select r.table_name, r.table_type, a.attname as column_name
         from ${pgRelations(true)}
         left join pg_catalog.pg_attribute as a on a.attrelid = r.relid and a.attnum > 0 and not a.attisdropped
         where r.table_schema = $1`
      : `select t.table_name, t.table_type, c.column_name
         from information_schema.tables as t
         left join information_schema.columns as c
           on c.table_schema = t.table_schema and c.table_name = t.table_name
         where t.table_schema = $1`,
    [rawSchema],
  );
  const found = new Map<string, { view: boolean; columns: Set<string> }>();
  for (const r of rows) {
    const e = found.get(r.table_name) ?? { view: /view/i.test(r.table_type), columns: new Set<string>() };
    if (r.column_name !== null) e.columns.add(r.column_name.toLowerCase());
    found.set(r.table_name, e);
  }
  const views: string[] = [];
  const lacking: string[] = [];
  for (const table of Object.values(RAW_TABLES)) {
    const e = found.get(table.name);
    if (!e) continue;
    if (e.view) {
      views.push(table.name);
      continue;
    }
    const absent = table.columns.filter((c) => !e.columns.has(c.name)).map((c) => c.name);
    if (absent.length > 0) lacking.push(`${table.name} has no ${absent.join(', ')}`);
  }
  if (views.length > 0) {
    throw new UserError(
      `The raw schema ${rawSchema} holds views (${views.join(', ')}), and events land in tables: collect or load into another raw schema (--raw-schema) and union it into those views (docs/warehouse-destinations.md).`,
    );
  }
  if (lacking.length > 0) {
    throw new UserError(
      `The raw schema ${rawSchema} holds tables of another shape (${lacking.join('; ')}): collect or load into a schema of your own (--raw-schema); a warehouse destination's tables are read through the views of docs/warehouse-destinations.md.`,
    );
  }
  return new Set(found.keys());
}
