import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import knexFactory, { type Knex } from 'knex';
import type { Client as PgClient, PoolClient, CustomTypesConfig } from 'pg';
import { types as pgTypes } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import {
  UserError,
  WarehouseUnavailableError,
  errorMessage,
  missingPrivilege,
  noteMissingPrivilege,
} from '../errors';
import { diagnosePrivilege } from './privileges';
import type { ColumnSpec, HeldLock, InsertValue, Row, SqlRunner, SqlValue, Warehouse } from './types';
import { pgRelations, qualify, quoteIdent } from './types';

/** Set on every connection (see afterCreate): formats and semantics the SQL and the parsing here rely on. */
const SESSION_SETTINGS = [
  "set TimeZone = 'UTC'",
  "set DateStyle = 'ISO, YMD'",
  "set IntervalStyle = 'postgres'",
  'set standard_conforming_strings = on',
  // 3: exact on every version (12+ reads any positive value as shortest-exact; 11 and older need 3)
  'set extra_float_digits = 3',
].join('; ');

// Parse like DuckDB does so that both warehouses return the same JS values (see Row in types.ts).
const TYPE_PARSERS: Record<number, (v: string) => unknown> = {
  20: (v) => {
    const n = Number(v);
    return Number.isSafeInteger(n) ? n : BigInt(v);
  },
  1700: (v) => Number(v),
  1082: (v) => v,
  1114: (v) => new Date(v.replace(' ', 'T') + 'Z'),
};

const customTypes: CustomTypesConfig = {
  getTypeParser: ((oid: number, format?: string) => {
    const p = TYPE_PARSERS[oid];
    if (p && format !== 'binary') return p;
    return (pgTypes.getTypeParser as (o: number, f?: string) => unknown)(oid, format);
  }) as CustomTypesConfig['getTypeParser'],
};

const CONNECTION_ERRORS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ENOTFOUND',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EPIPE',
  '57P01', // admin_shutdown
  '57P02', // crash_shutdown
  '57P03', // cannot_connect_now
  '08000',
  '08003',
  '08006',
  '08001',
  '08004',
]);

export function isConnectionError(err: unknown): boolean {
  if (err instanceof WarehouseUnavailableError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && CONNECTION_ERRORS.has(code)) return true;
  const msg = errorMessage(err);
  return /Connection terminated|Client has encountered a connection error|timeout exceeded when trying to connect|Knex: Timeout acquiring a connection/i.test(
    msg,
  );
}

function csvField(col: ColumnSpec, v: InsertValue): string {
  if (v === null || v === undefined) return '';
  let s: string;
  switch (col.type) {
    case 'json':
      s = typeof v === 'string' ? v : JSON.stringify(v);
      break;
    case 'timestamptz':
      s = v instanceof Date ? v.toISOString() : String(v);
      break;
    case 'boolean':
      return v ? 't' : 'f';
    default:
      s = v instanceof Date ? v.toISOString() : String(v);
  }
  // PostgreSQL text cannot hold NUL; it would abort the whole COPY, so it is dropped here.
  if (s.includes('\u0000')) s = s.replace(/\u0000/g, '');
  // Quoted fields keep '' distinct from NULL (an unquoted empty field).
  return '"' + s.replace(/"/g, '""') + '"';
}

/** The statement a permission error (42501) refused, for explainRefusal to work out the grant it needs. */
const refusedStatements = new WeakMap<object, string>();

function isPermissionError(err: unknown): err is Error {
  return err instanceof Error && (err as { code?: unknown }).code === '42501';
}

function noteStatement(err: unknown, sql: string): void {
  if (isPermissionError(err) && !refusedStatements.has(err)) refusedStatements.set(err, sql);
}

/**
 * When `err` is (or wraps) a permission error, asks the catalog on `client`, once the statement and its
 * transaction have ended, which grant it calls for, and notes it on the error (see diagnosePrivilege), for the
 * CLI to name. Never throws: a question that fails leaves the warehouse's message as it is.
 */
async function explainRefusal(client: PoolClient, err: unknown): Promise<void> {
  let e: unknown = err;
  for (let depth = 0; e instanceof Error && depth < 5; depth++, e = e.cause) {
    const sql = refusedStatements.get(e);
    if (sql === undefined || !isPermissionError(e) || missingPrivilege(e)) continue;
    try {
      const found = await diagnosePrivilege(
        async (q, params) => (await client.query(q, params)).rows as Array<Record<string, unknown>>,
        e.message,
        sql,
      );
      if (found) noteMissingPrivilege(e, found);
    } catch {
      // the connection broke, or the server is too old for a function used: the message stays as it is
    }
    return;
  }
}

class PgRunner implements SqlRunner {
  readonly dialect = 'postgres' as const;
  constructor(protected readonly client: PoolClient) {}

  async query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    try {
      const res = await this.client.query(sql, params ? [...params] : undefined);
      return res.rows as T[];
    } catch (err) {
      noteStatement(err, sql);
      throw err;
    }
  }

  async exec(sql: string): Promise<void> {
    try {
      await this.client.query(sql);
    } catch (err) {
      noteStatement(err, sql);
      throw err;
    }
  }

  async insertRows(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
  ): Promise<number> {
    if (rows.length === 0) return 0;
    const cols = columns.map((c) => quoteIdent(c.name)).join(', ');
    const sql = `COPY ${qualify(schema, table)} (${cols}) FROM STDIN WITH (FORMAT csv)`;
    const copy = this.client.query(copyFrom(sql));
    const CHUNK = 2000;
    function* lines(): Generator<string> {
      for (let i = 0; i < rows.length; i += CHUNK) {
        let buf = '';
        const end = Math.min(rows.length, i + CHUNK);
        for (let r = i; r < end; r++) {
          const row = rows[r];
          let line = '';
          for (let j = 0; j < columns.length; j++) {
            if (j > 0) line += ',';
            line += csvField(columns[j], row[j]);
          }
          buf += line + '\n';
        }
        yield buf;
      }
    }
    try {
      await pipeline(Readable.from(lines()), copy);
    } catch (err) {
      noteStatement(err, sql);
      throw err;
    }
    return rows.length;
  }
}

/**
 * `sslmode` as psql, dbt and every libpq client read it. node-postgres 8 reads `require` (what RDS, Cloud SQL
 * and Azure print in their connection strings) as `verify-full`, so a server whose CA the machine lacks
 * fails, and it prints a security warning on every connection; `uselibpqcompat=true` gives libpq's meaning
 * (`require`: encrypted, certificate not checked; `verify-full` to check it). Other modes stay as they are.
 */
export function withLibpqSslModes(url: string, home = os.homedir()): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return url;
  }
  // only the modes node-postgres reads differently: its `no-verify` has no libpq twin
  const mode = u.searchParams.get('sslmode');
  if (
    (mode !== 'require' && mode !== 'prefer' && mode !== 'verify-ca') ||
    u.searchParams.has('uselibpqcompat')
  ) {
    return url;
  }
  // verify-ca checks the certificate against a CA, not the host name: libpq's CA file is sslrootcert, else
  // ~/.postgresql/root.crt, and without either it refuses to connect, as node-postgres does (in a paragraph)
  if (mode === 'verify-ca' && !u.searchParams.has('sslrootcert')) {
    const fallback = path.join(home, '.postgresql', 'root.crt');
    if (!fs.existsSync(fallback)) {
      throw new UserError(
        `sslmode=verify-ca checks the server's certificate against your CA, and no CA file was given: add sslrootcert=<CA file> to the warehouse URL (libpq's default, ${fallback}, is not there), or use sslmode=verify-full.`,
      );
    }
    u.searchParams.set('sslrootcert', fallback);
  }
  u.searchParams.set('uselibpqcompat', 'true');
  return u.toString();
}

/** The URL's sslmode; null without one (or for a URL that does not parse). */
function sslMode(url: string): string | null {
  try {
    return new URL(url).searchParams.get('sslmode');
  } catch {
    return null;
  }
}

function withSslMode(url: string, mode: string): string {
  const u = new URL(url);
  u.searchParams.set('sslmode', mode);
  u.searchParams.delete('uselibpqcompat');
  return u.toString();
}

export class PostgresWarehouse implements Warehouse {
  readonly dialect = 'postgres' as const;
  /** How often the connection holding an exclusive() lock runs a query while the work goes on. */
  static lockHeartbeatMs = 30_000;

  private constructor(
    private readonly knex: Knex,
    readonly displayUrl: string,
  ) {}

  static async open(url: string, displayUrl: string): Promise<PostgresWarehouse> {
    if (sslMode(url) === 'allow') return PostgresWarehouse.openAllowing(url, displayUrl);
    try {
      return await PostgresWarehouse.openOnce(url, displayUrl);
    } catch (err) {
      // libpq's prefer (its default, and common in copied URLs): encrypted when the server can, else plain.
      // node-postgres has no fallback, and its error names the cause: the same URL again, without TLS.
      if (sslMode(url) === 'prefer' && /does not support SSL/i.test(errorMessage(err))) {
        return PostgresWarehouse.openOnce(withSslMode(url, 'disable'), displayUrl);
      }
      throw err;
    }
  }

  /**
   * libpq's allow: plain first, encrypted (certificate not checked) only when the server refuses plain
   * connections; node-postgres reads it as a demand for TLS with a checked certificate.
   */
  private static async openAllowing(url: string, displayUrl: string): Promise<PostgresWarehouse> {
    try {
      return await PostgresWarehouse.openOnce(withSslMode(url, 'disable'), displayUrl);
    } catch (err) {
      // pg_hba.conf holds only hostssl lines for this client: "no pg_hba.conf entry for host …, no encryption"
      if (/no encryption/i.test(errorMessage(err))) {
        return PostgresWarehouse.openOnce(withSslMode(url, 'require'), displayUrl);
      }
      throw err;
    }
  }

  private static async openOnce(url: string, displayUrl: string): Promise<PostgresWarehouse> {
    const knex = knexFactory({
      client: 'pg',
      connection: {
        connectionString: withLibpqSslModes(url),
        types: customTypes,
        // shown in pg_stat_activity, and in the message of a run that finds another one holding its lock
        application_name: 'cdp-lifecycle',
      } as Knex.PgConnectionConfig,
      // one more than the work needs at once: a build or sync holds one for its lock (see exclusive)
      pool: {
        min: 0,
        max: 5,
        // Set on every new connection rather than as startup options, which an `options` parameter in the URL
        // (or a pooler that drops them) would replace. Dates and timestamps are computed in UTC whatever the
        // server's default. JIT is off: PostgreSQL compiles every expression of a statement's plan on first
        // use, and a model's plan has hundreds (most in CTEs a given run never executes): about 2.5 s per big
        // model statement, more than the statement itself (bench:models on PostgreSQL, 200k users: incremental
        // day 16.4 s with JIT, 6.3 s without; see docs/models.md). A server without JIT (before 11) keeps going.
        // A statement whose client went away (Ctrl-C on a build) stops within a second instead of running to
        // its end, holding the locks a rerun then waits on (PostgreSQL 14+; an older server keeps going).
        // The output formats are pinned too, so that a database or role set to other ones (DateStyle 'SQL, DMY'
        // made status_since 30/03/2024 in the synced traits and broke the report's date arithmetic;
        // standard_conforming_strings off read a backslash in a var's event name as an escape) changes nothing.
        afterCreate: (conn: PgClient, done: (err: Error | null, conn: PgClient) => void) => {
          conn.query(SESSION_SETTINGS, (err: Error | null) => {
            if (err) return done(err, conn);
            conn.query('set jit = off', () =>
              conn.query('set client_connection_check_interval = 1000', () => done(null, conn)),
            );
          });
        },
      },
      acquireConnectionTimeout: 10000,
      // knex prints each failed connection attempt (and each connection that ends) on its own; the same error
      // reaches the caller as a WarehouseUnavailableError (or a lost lock), which the CLI shows once, as one
      // sentence.
      log: {
        warn: (message: string) => {
          if (!/^(Acquire connection error|Connection Error:)/.test(message)) console.warn(message);
        },
      },
    });
    const wh = new PostgresWarehouse(knex, displayUrl);
    try {
      await wh.ping();
      await wh.checkEncoding();
    } catch (err) {
      await knex.destroy().catch(() => undefined);
      throw err;
    }
    return wh;
  }

  private async withClient<T>(fn: (client: PoolClient) => Promise<T>): Promise<T> {
    let client: PoolClient;
    try {
      client = (await this.knex.client.acquireConnection()) as PoolClient;
    } catch (err) {
      throw new WarehouseUnavailableError(
        `Could not connect to PostgreSQL at ${this.displayUrl}: ${errorMessage(err)}; ${connectAdvice(err)}.`,
        { cause: err },
      );
    }
    try {
      return await fn(client);
    } catch (err) {
      // (a transaction has rolled back by now, so the connection can still answer)
      await explainRefusal(client, err);
      if (isConnectionError(err) && !(err instanceof WarehouseUnavailableError)) {
        throw new WarehouseUnavailableError(
          `Lost the connection to PostgreSQL at ${this.displayUrl}: ${errorMessage(err)}`,
          {
            cause: err,
          },
        );
      }
      throw err;
    } finally {
      await this.knex.client.releaseConnection(client);
    }
  }

  query<T extends Row = Row>(sql: string, params?: readonly SqlValue[]): Promise<T[]> {
    return this.withClient((c) => new PgRunner(c).query<T>(sql, params));
  }

  exec(sql: string): Promise<void> {
    return this.withClient((c) => new PgRunner(c).exec(sql));
  }

  insertRows(
    schema: string,
    table: string,
    columns: readonly ColumnSpec[],
    rows: readonly InsertValue[][],
  ): Promise<number> {
    return this.withClient((c) => new PgRunner(c).insertRows(schema, table, columns, rows));
  }

  transaction<T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> {
    return this.withClient(async (c) => {
      await c.query('BEGIN');
      try {
        const result = await fn(new PgRunner(c));
        await c.query('COMMIT');
        return result;
      } catch (err) {
        try {
          await c.query('ROLLBACK');
        } catch {
          // A broken connection has already rolled back.
        }
        throw err;
      }
    });
  }

  async ping(): Promise<void> {
    await this.query('select 1');
  }

  /**
   * Events carry any Unicode: a database in a single-byte encoding (LATIN1…) refuses some rows deep inside a
   * write, after others of the same request or file went in. Refused up front instead, naming the fix.
   * SQL_ASCII stores the bytes as sent, so it loses nothing.
   */
  async checkEncoding(): Promise<void> {
    const [r] = await this.query<{ server_encoding: string }>('show server_encoding');
    const encoding = r?.server_encoding ?? 'UTF8';
    if (encoding !== 'UTF8' && encoding !== 'SQL_ASCII') {
      throw new UserError(
        `The PostgreSQL database at ${this.displayUrl} uses the encoding ${encoding}, which cannot store every character events carry: use a UTF8 database (create database … encoding 'UTF8' template template0).`,
      );
    }
  }

  async *stream<T extends Row = Row>(
    sql: string,
    params: readonly SqlValue[],
    pageSize: number,
  ): AsyncIterable<T[]> {
    let client: PoolClient;
    try {
      client = (await this.knex.client.acquireConnection()) as PoolClient;
    } catch (err) {
      throw new WarehouseUnavailableError(
        `Could not connect to PostgreSQL at ${this.displayUrl}: ${errorMessage(err)}`,
        {
          cause: err,
        },
      );
    }
    const cursor = `cdp_lifecycle_cursor`;
    let inTransaction = false;
    try {
      await client.query('BEGIN');
      inTransaction = true;
      await client.query(`DECLARE ${cursor} NO SCROLL CURSOR FOR ${sql}`, [...params]);
      for (;;) {
        const res = await client.query(`FETCH FORWARD ${Math.max(1, Math.floor(pageSize))} FROM ${cursor}`);
        if (res.rows.length === 0) break;
        yield res.rows as T[];
      }
      await client.query('COMMIT');
      inTransaction = false;
    } catch (err) {
      if (isPermissionError(err)) {
        noteStatement(err, sql);
        if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
        inTransaction = false;
        await explainRefusal(client, err);
      }
      throw err;
    } finally {
      // A failure, or a reader that stops early (a sync refused by its CDP breaks out of its loop): the
      // transaction is ended here, else the pool hands the next query a connection still inside it, where its
      // writes would never commit and a second DECLARE fails. (A connection too broken to roll back is one
      // the pool already marked and drops when it is next acquired.)
      if (inTransaction) await client.query('ROLLBACK').catch(() => undefined);
      await this.knex.client.releaseConnection(client);
    }
  }

  async exclusive<T>(name: string, what: string, fn: (lock: HeldLock) => Promise<T>): Promise<T> {
    const key = `cdp-lifecycle:${name}`;
    // A session lock on a connection of its own: it is released when fn ends, or by the server if this
    // process dies, so a crashed run never blocks the next one. fn's own errors come out as they are (not
    // taken for a failure of this connection), hence the wrapper.
    const outcome = await this.withClient(async (c): Promise<{ value: T } | { error: unknown }> => {
      const got = await c.query<{ ok: boolean }>(
        'select pg_try_advisory_lock(hashtextextended($1, 0)) as ok',
        [key],
      );
      if (!got.rows[0].ok) {
        const holder = await c.query<{ pid: number; since: Date | null; addr: string | null; app: string }>(
          `select a.pid, a.backend_start as since, host(a.client_addr) as addr, a.application_name as app
           from (select hashtextextended($1, 0) as k) as key
           join pg_locks l on l.locktype = 'advisory' and l.granted and l.objsubid = 1
             and l.classid = ((key.k >> 32) & 4294967295)::oid and l.objid = (key.k & 4294967295)::oid
           join pg_stat_activity a on a.pid = l.pid
           where l.database = (select oid from pg_database where datname = current_database())`,
          [key],
        );
        const h = holder.rows[0];
        const who = h
          ? ` (PostgreSQL backend PID ${h.pid}${h.app ? `, ${h.app}` : ''}${h.addr ? ` from ${h.addr}` : ''}${
              h.since ? `, connected since ${h.since.toISOString().replace('T', ' ').slice(0, 19)} UTC` : ''
            })`
          : '';
        throw new UserError(
          `Another process is running ${what} on ${this.displayUrl}${who}: wait for it to finish, then run again.`,
        );
      }
      // The connection, and the lock with it, can end under the work: the work is told (HeldLock.lost) as
      // soon as the driver sees it end, idle as it is (the server ending the backend, pg_terminate_backend, a
      // reset socket), so that a build stops before its next model rather than run on beside the next run
      // that takes the lock.
      let lost: string | null = null;
      const onError = (err: unknown) => {
        lost ??= errorMessage(err).split('\n')[0];
      };
      const onEnd = () => {
        lost ??= 'the server closed it';
      };
      c.on('error', onError);
      c.on('end', onEnd);
      // An idle connection can be ended under the work (idle_session_timeout, a proxy's idle timeout), which
      // would release the lock: a trivial query now and then keeps it busy, and a failed beat tells of a
      // connection lost without a word (a network fault).
      const beat = setInterval(() => {
        c.query('select 1').catch(onError);
      }, PostgresWarehouse.lockHeartbeatMs);
      beat.unref();
      try {
        return { value: await fn({ lost: () => lost }) };
      } catch (error) {
        return { error };
      } finally {
        clearInterval(beat);
        c.off('error', onError);
        c.off('end', onEnd);
        await c.query('select pg_advisory_unlock(hashtextextended($1, 0))', [key]).catch(() => undefined);
      }
    });
    if ('error' in outcome) throw outcome.error;
    return outcome.value;
  }

  async tableExists(schema: string, table: string): Promise<boolean> {
    const rows = await this.query(
      `select 1 as x from ${pgRelations()} where r.table_schema = $1 and r.table_name = $2`,
      [schema, table],
    );
    return rows.length > 0;
  }

  async close(): Promise<void> {
    await this.knex.destroy();
  }
}

/**
 * What to fix when the server answered but refused the connection: a server that says the database or the role
 * does not exist is running, so "check that the server is running" would send the user the wrong way.
 */
function connectAdvice(err: unknown): string {
  const code = (err as { code?: unknown } | null)?.code;
  // 3D000 invalid_catalog_name: the database named in the URL
  if (code === '3D000') return 'create the database (createdb) or fix its name in --warehouse';
  // 28000 invalid_authorization_specification (no such role, pg_hba refusal), 28P01 invalid_password
  if (code === '28000' || code === '28P01') return 'check the user name and password in --warehouse';
  return 'check --warehouse and that the server is running';
}
