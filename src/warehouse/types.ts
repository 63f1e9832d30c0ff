export type Dialect = 'duckdb' | 'postgres';

/** Values that can be bound as query parameters. Dates are bound as ISO-8601 strings (cast in SQL). */
export type SqlValue = string | number | bigint | boolean | null | Date;

/**
 * A row as returned by `query`, normalised identically on both warehouses so results can be compared:
 * integers and decimals are numbers (bigint only beyond 2^53; a decimal the double nearest to it), DATE is a
 * `YYYY-MM-DD` string, TIMESTAMP/TIMESTAMPTZ is a `Date`, JSON/JSONB is parsed, text is a string, NULL is null.
 */
export type Row = Record<string, unknown>;

export type ColumnType =
  'text' | 'timestamptz' | 'json' | 'integer' | 'bigint' | 'double' | 'boolean' | 'date';

export interface ColumnSpec {
  name: string;
  type: ColumnType;
}

export interface TableSpec {
  name: string;
  columns: ColumnSpec[];
}

/**
 * A value for `insertRows`: `timestamptz` takes a Date or an ISO-8601 string, `json` takes an already
 * serialised JSON string or a plain value (serialised with JSON.stringify), `date` takes `YYYY-MM-DD`.
 */
export type InsertValue = SqlValue | Record<string, unknown> | unknown[] | undefined;

export interface SqlRunner {
  readonly dialect: Dialect;
  /** One statement with positional parameters `$1`, `$2`… (the same syntax on both warehouses). */
  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]>;
  /** One or more statements separated by `;`, no parameters. */
  exec(sql: string): Promise<void>;
  /**
   * Bulk append (DuckDB appender, PostgreSQL COPY). `rows[i][j]` is the value of `columns[j]`.
   * Returns the number of rows written.
   */
  insertRows(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
  ): Promise<number>;
}

export interface Warehouse extends SqlRunner {
  /** The connection URL with any password removed, for logs and error messages. */
  readonly displayUrl: string;
  /** All-or-nothing: commits when `fn` resolves, rolls back when it throws. Transactions are serialised. */
  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T>;
  /** Cheap round trip; throws WarehouseUnavailableError when the warehouse is gone. */
  ping(): Promise<void>;
  /**
   * Streams a query's rows in pages of about `pageSize` rows, so memory stays flat whatever the result size.
   */
  stream<T extends Row = Row>(sql: string, params: readonly SqlValue[], pageSize: number): AsyncIterable<T[]>;
  tableExists(schema: string, table: string): Promise<boolean>;
  /**
   * Runs `fn` holding the exclusive lock `name` for every process that uses this warehouse: a PostgreSQL
   * advisory lock, held on a connection of its own. A DuckDB file admits one process, so there the lock only
   * guards against a second caller in this process. When another holds it, throws a UserError saying who,
   * with `what` (e.g. "a build or sync of schema lifecycle") naming the work. `fn` gets the held lock, to
   * check between steps that it still holds it.
   */
  exclusive<T>(name: string, what: string, fn: (lock: HeldLock) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}

/**
 * Creates a schema unless it exists. Checked first: PostgreSQL refuses even `create schema if not exists` to a
 * role without CREATE on the database, and a DBA often gives the build's role just that: an existing schema
 * it owns.
 */
export async function ensureSchema(db: SqlRunner, schema: string): Promise<void> {
  const sql =
    db.dialect === 'postgres'
      ? 'select 1 as x from pg_namespace where nspname = $1'
      : 'select 1 as x from duckdb_schemas() where database_name = current_database() and schema_name = $1';
  if ((await db.query(sql, [schema])).length) return;
  await db.exec(`create schema if not exists ${quoteIdent(schema)}`);
}

/** The schemas of the warehouse's current database, system schemas left out, sorted. */
export async function listSchemas(db: SqlRunner): Promise<string[]> {
  const sql =
    db.dialect === 'postgres'
      ? "select nspname as name from pg_namespace where nspname not like 'pg\\_%' and nspname <> 'information_schema' order by 1"
      : "select schema_name as name from duckdb_schemas() where database_name = current_database() and schema_name not in ('information_schema', 'pg_catalog') order by 1";
  return (await db.query<{ name: string }>(sql)).map((r) => r.name);
}

/**
 * PostgreSQL's tables and views from pg_catalog, as a relation `r (table_schema, table_name, table_type, relid)`
 * shaped like information_schema.tables: that view lists only what the role has a privilege on, and the rest
 * exists all the same (a schema that looks empty would be dropped with another role's tables in it; a source
 * table the role may not read would be called missing). Materialized views, which information_schema never
 * lists, only when asked for.
 */
export function pgRelations(withMaterializedViews = false): string {
  return `(select n.nspname as table_schema, c.relname as table_name, c.oid as relid,
      case when c.relkind in ('v', 'm') then 'VIEW' else 'BASE TABLE' end as table_type
    from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
    where c.relkind in ('r', 'p', 'v', 'f'${withMaterializedViews ? ", 'm'" : ''})) as r`;
}

/** The tables and views of a schema, with their kind, sorted by name. */
export async function listRelations(
  db: SqlRunner,
  schema: string,
): Promise<Array<{ name: string; view: boolean }>> {
  // a caller takes "nothing there" as "safe to drop" (demo): everything counts, on PostgreSQL (see pgRelations)
  const rows = await db.query<{ table_name: string; table_type: string }>(
    `select r.table_name, r.table_type
     from ${db.dialect === 'postgres' ? pgRelations(true) : 'information_schema.tables as r'}
     where r.table_schema = $1 order by 1`,
    [schema],
  );
  return rows.map((r) => ({ name: r.table_name, view: /view/i.test(r.table_type) }));
}

/** A lock Warehouse.exclusive holds while its work runs. */
export interface HeldLock {
  /** Why the lock was lost (its connection ended), or null while it is held. */
  lost(): string | null;
}

/** The Warehouse.exclusive lock that a build and a sync of one model schema share. */
export function modelSchemaLock(schema: string): string {
  return `schema:${schema}`;
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_$]{0,62}$/;

/**
 * Quotes an identifier that came from configuration. Names must be plain SQL identifiers: anything else is
 * refused rather than escaped, because a schema called `a"; drop…` is never what the user meant.
 */
export function quoteIdent(name: string): string {
  if (!IDENT.test(name)) {
    throw new Error(`"${name}" is not a valid SQL identifier: use letters, digits and underscores only`);
  }
  return `"${name}"`;
}

/**
 * Quotes a name read from a catalog (a column, a role): unlike configuration, it may hold any character, so its
 * quotes are doubled instead of refused.
 */
export function quoteCatalogName(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/**
 * A string literal of any text (a comment). PostgreSQL gets a dollar-quoted one, as dbt-postgres writes
 * comments, whose tag does not occur in the text, so no setting (standard_conforming_strings) changes its
 * meaning; DuckDB a quoted one with its quotes doubled.
 */
export function quoteText(dialect: Dialect, text: string): string {
  if (dialect !== 'postgres') return `'${text.replace(/'/g, "''")}'`;
  // (not only `$tag$`: a text ending in `$tag` would close the literal early with the closing tag's `$`)
  let tag = 'cdp_text';
  for (let i = 0; text.includes(tag); i++) tag = `cdp_text_${i}`;
  return `$${tag}$${text}$${tag}$`;
}

export function qualify(schema: string, table: string): string {
  return `${quoteIdent(schema)}.${quoteIdent(table)}`;
}

export function isValidIdent(name: string): boolean {
  return IDENT.test(name);
}

/**
 * The catalog a DuckDB file is attached as: a schema of this name would make every reference to it ambiguous,
 * so configuration refuses it (defined here, not in duckdb.ts, so that checking it loads no native module).
 */
export const DUCKDB_FILE_CATALOG = 'cdp_lifecycle_db';
