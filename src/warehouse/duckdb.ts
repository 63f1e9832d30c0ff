import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomUUID } from 'node:crypto';
import { UserError, WarehouseUnavailableError, errorMessage } from '../errors';
import type { ColumnSpec, HeldLock, InsertValue, Row, SqlRunner, SqlValue, Warehouse } from './types';
import { isStorageWriteError } from './errors';
import { DUCKDB_FILE_CATALOG, quoteIdent } from './types';

// The ESM build of some DuckDB helpers misbehaves under jest; require keeps one module instance.
import duckdb = require('@duckdb/node-api');

type Conn = duckdb.DuckDBConnection;

/** Serialises async work: a DuckDB connection runs one statement (and one transaction) at a time. */
class Mutex {
  private tail: Promise<unknown> = Promise.resolve();
  run<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.tail.then(fn, fn);
    this.tail = next.catch(() => undefined);
    return next;
  }
}

function bindable(params: readonly SqlValue[] | undefined): duckdb.DuckDBValue[] | undefined {
  if (!params) return undefined;
  return params.map((p) => (p instanceof Date ? p.toISOString() : p));
}

function normaliseValue(value: unknown, type: duckdb.DuckDBType): unknown {
  if (value === null || value === undefined) return null;
  if (type.alias === 'JSON' && typeof value === 'string') {
    try {
      return JSON.parse(value) as unknown;
    } catch {
      return value;
    }
  }
  switch (type.typeId) {
    case duckdb.DuckDBTypeId.DATE:
      return value instanceof Date ? value.toISOString().slice(0, 10) : String(value);
    case duckdb.DuckDBTypeId.BIGINT:
    case duckdb.DuckDBTypeId.HUGEINT:
    case duckdb.DuckDBTypeId.UBIGINT:
    case duckdb.DuckDBTypeId.UHUGEINT:
      if (
        typeof value === 'bigint' &&
        value <= BigInt(Number.MAX_SAFE_INTEGER) &&
        value >= BigInt(Number.MIN_SAFE_INTEGER)
      ) {
        return Number(value);
      }
      return value;
    default:
      return value;
  }
}

const MIN_DATE_MS = -8_640_000_000_000_000n;

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);
/** 10^0 … 10^22, each parsed from its text, so exact (10^22 is the largest exact power of ten). */
const POW10 = Array.from({ length: 23 }, (_, i) => Number(`1e${i}`));

/**
 * A decimal as the double nearest to it, as PostgreSQL's reader gives it (Number of the exact text). The library
 * rounds the scaled-up integer to a double and then divides: two roundings, which from about 10^15 give another
 * double (9054314288976277.35 was 9054314288976276 on DuckDB, 9054314288976278 on PostgreSQL), so a report or
 * a synced `monetary` trait differed between the warehouses under the same messageId.
 */
function decimalToNumber(d: duckdb.DuckDBDecimalValue): number {
  // both operands exact (the integer within 2^53, the power of ten within 10^22): one correctly rounded division
  if (d.value <= SAFE && d.value >= -SAFE && d.scale <= 22) return Number(d.value) / POW10[d.scale];
  return Number(d.toString());
}

/**
 * DuckDB's conversion to JavaScript values, except that a decimal is read with one rounding (decimalToNumber),
 * and that a timestamp before 1970 with a fraction of a millisecond is floored to its millisecond, as
 * PostgreSQL's driver reads it: the library divides toward zero, so 1969-12-31 23:59:59.999999 came back as
 * 1970-01-01 00:00:00.000, on another day.
 */
const toJS: duckdb.DuckDBValueConverter<duckdb.JS> = (value, type, converter) => {
  if (value instanceof duckdb.DuckDBDecimalValue) return decimalToNumber(value);
  if (
    (value instanceof duckdb.DuckDBTimestampValue || value instanceof duckdb.DuckDBTimestampTZValue) &&
    value.micros < 0n &&
    value.micros % 1000n !== 0n
  ) {
    const ms = value.micros / 1000n - 1n;
    if (ms >= MIN_DATE_MS) return new Date(Number(ms));
  }
  return duckdb.JSDuckDBValueConverter(value, type, converter);
};

function rowsFromReader<T extends Row>(reader: duckdb.DuckDBResultReader): T[] {
  const types = reader.columnTypes();
  const names = reader.deduplicatedColumnNames();
  const rows = reader.convertRows(toJS);
  return rows.map((r) => {
    const o: Row = {};
    for (let i = 0; i < names.length; i++) o[names[i]] = normaliseValue(r[i], types[i]);
    return o as T;
  });
}

function toMicros(v: Date | string): bigint {
  const ms = v instanceof Date ? v.getTime() : Date.parse(v);
  if (Number.isNaN(ms)) throw new Error(`invalid timestamp: ${String(v)}`);
  const d = v instanceof Date ? v : new Date(ms);
  // Keep sub-millisecond precision when the ISO string carries it (".123456Z").
  let extra = 0n;
  if (typeof v === 'string') {
    const m = /\.\d{3}(\d{1,3})/.exec(v);
    if (m) extra = BigInt(m[1].padEnd(3, '0'));
  }
  return BigInt(d.getTime()) * 1000n + extra;
}

function appendValue(appender: duckdb.DuckDBAppender, col: ColumnSpec, v: InsertValue): void {
  if (v === null || v === undefined) {
    appender.appendNull();
    return;
  }
  switch (col.type) {
    case 'text':
      appender.appendVarchar(typeof v === 'string' ? v : String(v));
      return;
    case 'json':
      appender.appendVarchar(typeof v === 'string' ? v : JSON.stringify(v));
      return;
    case 'timestamptz':
      appender.appendTimestampTZ(new duckdb.DuckDBTimestampTZValue(toMicros(v as Date | string)));
      return;
    case 'date':
      appender.appendDate(duckdb.DuckDBDateValue.fromParts(parseDateParts(String(v))));
      return;
    case 'integer':
      appender.appendInteger(Number(v));
      return;
    case 'bigint':
      appender.appendBigInt(BigInt(v as number | bigint | string));
      return;
    case 'double':
      appender.appendDouble(Number(v));
      return;
    case 'boolean':
      appender.appendBoolean(Boolean(v));
      return;
  }
}

function parseDateParts(s: string): { year: number; month: number; day: number } {
  const m = /^(\d{4})-(\d{2})-(\d{2})/.exec(s);
  if (!m) throw new Error(`invalid date: ${s}`);
  return { year: Number(m[1]), month: Number(m[2]), day: Number(m[3]) };
}

class DuckRunner implements SqlRunner {
  readonly dialect = 'duckdb' as const;
  constructor(protected readonly conn: () => Conn) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    const reader = await this.conn().runAndReadAll(sql, bindable(params));
    return rowsFromReader<T>(reader);
  }

  async exec(sql: string): Promise<void> {
    await this.conn().run(sql);
  }

  async insertRows(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
  ): Promise<number> {
    if (rows.length === 0) return 0;
    // DuckDB's appender fills a table's columns by position; PostgreSQL's COPY names them. A table whose
    // columns are in another order, or that has more (a DBA's loaded_at), would take values in the wrong
    // columns or refuse every row: such a table is written through a staging table of the given shape instead.
    // on this runner's connection, not through query(): a warehouse serialises that, and its caller may hold
    // the turn (inserting while it streams)
    const found = rowsFromReader<{ name: string }>(
      await this.conn().runAndReadAll(
        `select column_name as name from duckdb_columns()
          where database_name = current_database() and schema_name = $1 and table_name = $2
          order by column_index`,
        bindable([schema, table]),
      ),
    );
    const positional = found.length === columns.length && found.every((c, i) => c.name === columns[i].name);
    if (positional || found.length === 0) return this.append(schema, table, columns, rows);
    const have = new Set(found.map((c) => c.name));
    const missing = columns.filter((c) => !have.has(c.name)).map((c) => c.name);
    if (missing.length > 0) {
      throw new Error(`${schema}.${table} has no column ${missing.join(', ')}`);
    }
    const staging = `cdpl_append_${randomUUID().replace(/-/g, '')}`;
    const names = columns.map((c) => quoteIdent(c.name)).join(', ');
    await this.conn().run(
      `create temp table ${staging} (${columns.map((c) => `${quoteIdent(c.name)} ${c.type === 'text' ? 'varchar' : c.type}`).join(', ')})`,
    );
    try {
      await this.append('main', staging, columns, rows, 'temp');
      await this.conn().run(
        `insert into ${quoteIdent(schema)}.${quoteIdent(table)} (${names}) select ${names} from temp.main.${staging}`,
      );
    } finally {
      await this.conn().run(`drop table if exists temp.main.${staging}`);
    }
    return rows.length;
  }

  private async append(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
    catalog?: string,
  ): Promise<number> {
    const appender = await this.conn().createAppender(table, schema, catalog);
    let failed = false;
    try {
      for (const row of rows) {
        for (let j = 0; j < columns.length; j++) appendValue(appender, columns[j], row[j]);
        appender.endRow();
      }
      appender.flushSync();
    } catch (err) {
      failed = true;
      // The refused rows stay in the appender's buffer, and destroying it (when the garbage collector gets to
      // it, at any later moment) flushes them again: that failure would abort whatever transaction then runs
      // on this connection ("Current transaction is aborted"). Dropped now, they cannot.
      try {
        appender.clear();
      } catch {
        // nothing buffered, or the appender is unusable: either way nothing is left to flush
      }
      throw err;
    } finally {
      try {
        appender.closeSync();
      } catch (err) {
        // after a failed flush, closing fails too ("transaction is aborted"): keep the first, telling error
        if (!failed) throw err;
      }
    }
    return rows.length;
  }
}

async function connect(instance: duckdb.DuckDBInstance, file: string): Promise<Conn> {
  const conn = await instance.connect();
  if (file !== ':memory:') await conn.run(`USE ${DUCKDB_FILE_CATALOG}`);
  return conn;
}

/** Settings for every connection of the instance, set once when it is opened. */
async function configure(instance: duckdb.DuckDBInstance): Promise<void> {
  const setup = await instance.connect();
  try {
    // An incremental model deletes a few rows from most row groups of a big table on every run; DuckDB's
    // checkpoint would then merge and rewrite those row groups, which cost more than the model itself. The
    // runner compacts a table instead once its deleted rows pass a threshold (see compactIfBloated).
    await setup.run('SET GLOBAL max_vacuum_tasks = 0');
    // DuckDB takes the process's zone (TZ) for its session: a raw table whose timestamps have no time zone
    // (created by a loader) would then be read as local times, and dated by the machine the build runs on.
    // UTC, as the PostgreSQL sessions are (SPEC 3 stores every timestamp in UTC).
    await setup.run("SET GLOBAL TimeZone = 'UTC'");
    // The models narrow big tables with `key in (select … from a small work list)`. DuckDB estimates the
    // filtered big side at a fraction of its real size (default selectivities) and then flips the semi-join to
    // hash the big table instead of the list: 4M rows hashed to keep 150k. Without this pass the subquery side
    // is the build side, as written; the join order optimizer still orders inner joins. Measured with
    // `npm run bench:models`: incremental build about 25% faster, full build about 10%.
    const flip = await setup.runAndReadAll(
      "select count(*) as n from duckdb_optimizers() where name = 'build_side_probe_side'",
    );
    if (Number(flip.getRowObjectsJS()[0]?.n ?? 0) > 0)
      await setup.run("SET GLOBAL disabled_optimizers = 'build_side_probe_side'");
  } finally {
    setup.closeSync();
  }
}

export class DuckDBWarehouse extends DuckRunner implements Warehouse {
  private readonly lock = new Mutex();
  private closed = false;

  private constructor(
    private readonly instance: duckdb.DuckDBInstance,
    private readonly connection: Conn,
    readonly displayUrl: string,
    private readonly file: string,
  ) {
    super(() => connection);
  }

  /**
   * `readOnly`: attach the file read-only, for commands that only read (report, test). DuckDB lets several
   * read-only processes share a file (an analyst's `duckdb -readonly`, a BI tool), and needs no write access
   * to the file or its folder; a process that holds it for writing still excludes them.
   */
  static async open(
    location: string,
    displayUrl: string,
    opts: { readOnly?: boolean } = {},
  ): Promise<DuckDBWarehouse> {
    const file = location === ':memory:' ? ':memory:' : path.resolve(location);
    if (file !== ':memory:' && fs.existsSync(file) && fs.statSync(file).isDirectory()) {
      throw new UserError(
        `${file} is a directory: point --warehouse at a DuckDB file, e.g. duckdb://${path.join(file, 'lifecycle.duckdb')}.`,
      );
    }
    // unavailable rather than wrong: a volume not mounted yet is the same to see, and the destination retries
    if (file !== ':memory:' && !fs.existsSync(path.dirname(file))) {
      throw new WarehouseUnavailableError(
        `The folder ${path.dirname(file)} does not exist: create it, or point --warehouse at a file in an existing folder.`,
      );
    }
    let instance: duckdb.DuckDBInstance;
    try {
      if (file === ':memory:') {
        instance = await duckdb.DuckDBInstance.create(file);
      } else {
        // Opened directly, the file's catalog is named after it: ./lifecycle.duckdb would be catalog
        // "lifecycle", and every `lifecycle.user_lifecycle` an ambiguous catalog-or-schema reference. Attaching
        // it under a fixed name keeps two-part names meaning schema.table whatever the file is called.
        instance = await duckdb.DuckDBInstance.create(':memory:');
        const setup = await instance.connect();
        try {
          // TYPE duckdb: without it, DuckDB attaches an existing .ndjson/.json/.csv file as an empty in-memory
          // database, and everything written there would be lost without a word
          await setup.run(
            `ATTACH '${file.replace(/'/g, "''")}' AS ${DUCKDB_FILE_CATALOG} (TYPE duckdb${opts.readOnly && file !== ':memory:' ? ', READ_ONLY' : ''})`,
          );
        } catch (err) {
          setup.closeSync();
          instance.closeSync();
          throw err;
        }
        setup.closeSync();
      }
    } catch (err) {
      const msg = errorMessage(err);
      if (/not a valid DuckDB database file/i.test(msg)) {
        throw new UserError(
          `The file ${file} is not a DuckDB database: point --warehouse at a DuckDB database file (serve, load and demo create one under a new name).`,
          { cause: err },
        );
      }
      // DuckDB writes its file and a .wal beside it even to read: a file or folder this user cannot write.
      // Unavailable rather than wrong (a volume mounted or chowned later): the destination retries it.
      if (/permission denied/i.test(msg)) {
        throw new WarehouseUnavailableError(
          opts.readOnly
            ? `The DuckDB file ${file} cannot be read (permission denied): make it readable for this user, or point --warehouse at a copy.`
            : `The DuckDB file ${file} cannot be opened for writing (permission denied): make it and its folder writable for this user (DuckDB writes even to read), or point --warehouse at a copy.`,
          { cause: err },
        );
      }
      // DuckDB's own words only: the file's path, or a checksum error "in block at location 0", may say "lock"
      if (/Could not set lock on file|Conflicting lock/i.test(msg)) {
        const pid = /PID (\d+)/.exec(msg)?.[1];
        throw new WarehouseUnavailableError(
          `The DuckDB file ${file} is locked by another process${pid ? ` (PID ${pid})` : ''}: stop it, or run this step ` +
            `inside that process (e.g. \`cdp-lifecycle serve --schedule\`) since a DuckDB file has one writer.`,
          { cause: err },
        );
      }
      throw new WarehouseUnavailableError(`Could not open the DuckDB database ${file}: ${msg}`, {
        cause: err,
      });
    }
    await configure(instance);
    const connection = await connect(instance, file);
    return new DuckDBWarehouse(instance, connection, displayUrl, file);
  }

  override query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.lock.run(() => super.query<T>(sql, params));
  }

  override exec(sql: string): Promise<void> {
    return this.lock.run(() => super.exec(sql));
  }

  override insertRows(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
  ): Promise<number> {
    return this.lock.run(() => super.insertRows(schema, table, columns, rows));
  }

  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.lock.run(async () => {
      const tx = new DuckRunner(() => this.connection);
      await this.connection.run('BEGIN TRANSACTION');
      try {
        const result = await fn(tx);
        await this.connection.run('COMMIT');
        return result;
      } catch (err) {
        try {
          await this.connection.run('ROLLBACK');
        } catch {
          // The transaction may already be aborted; the original error is what matters.
        }
        // A file that can no longer be written (full disk, a folder made read-only) refuses every write until
        // someone frees space or fixes it, as an unreachable PostgreSQL does: unavailable, so that the
        // collector answers 503 and the SDKs retry, and the destination retries, nothing having been stored.
        if (isStorageWriteError(err)) {
          throw new WarehouseUnavailableError(
            `The DuckDB file ${this.file} cannot be written (${errorMessage(err)}): free disk space, or make the file, its .wal and its folder writable.`,
            { cause: err },
          );
        }
        throw err;
      }
    });
  }

  async ping(): Promise<void> {
    if (this.closed) throw new WarehouseUnavailableError('The DuckDB warehouse is closed.');
    await this.query('select 1');
  }

  async *stream<T extends Row = Row>(
    sql: string,
    params: readonly SqlValue[],
    pageSize: number,
  ): AsyncIterable<T[]> {
    // A separate connection so that a long read does not block writers on the main one.
    const conn = await connect(this.instance, this.file);
    try {
      const result = await conn.stream(sql, bindable(params));
      const types = result.columnTypes();
      const names = result.deduplicatedColumnNames();
      let page: T[] = [];
      for (;;) {
        const chunk = await result.fetchChunk();
        if (!chunk || chunk.rowCount === 0) break;
        for (const r of chunk.convertRows(toJS)) {
          const o: Row = {};
          for (let i = 0; i < names.length; i++) o[names[i]] = normaliseValue(r[i], types[i]);
          page.push(o as T);
          if (page.length >= pageSize) {
            yield page;
            page = [];
          }
        }
      }
      if (page.length > 0) yield page;
    } finally {
      conn.closeSync();
    }
  }

  private readonly held = new Set<string>();

  async exclusive<T>(name: string, what: string, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
    // Another process cannot open the file at all (open() explains the file lock); this guards one process.
    if (this.held.has(name)) {
      throw new UserError(
        `This process is already running ${what} on ${this.displayUrl}: wait for it to finish.`,
      );
    }
    this.held.add(name);
    try {
      return await fn({ lost: () => null });
    } finally {
      this.held.delete(name);
    }
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    const rows = await this.query(
      'select 1 as x from information_schema.tables where table_schema = $1 and table_name = $2',
      [schema, table],
    );
    return rows.length > 0;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.lock.run(async () => {
      this.connection.closeSync();
      this.instance.closeSync();
    });
  }
}

export { quoteIdent };
