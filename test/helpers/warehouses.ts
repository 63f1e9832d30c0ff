import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { PG_ADMIN_URL } from './pg-url';

export { PG_ADMIN_URL };

export type WarehouseKind = 'duckdb' | 'postgres';

/**
 * Runs statements on their own connection, as the PostgreSQL superuser of the test server: databases, roles,
 * settings a suite's own connection should not hold. `url` picks the database (default: the admin one).
 */
export async function pgAdmin(sql: string | string[], url: string = PG_ADMIN_URL): Promise<void> {
  const c = new Client({ connectionString: url });
  await c.connect();
  try {
    for (const s of Array.isArray(sql) ? sql : [sql]) await c.query(s);
  } finally {
    await c.end();
  }
}

/** The test server's URL for database `db`, as `user` when given (else the admin). */
export function pgDatabaseUrl(db: string, user?: string): string {
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${db}`;
  if (user) u.username = user;
  return u.toString();
}

export function pgEnabled(): boolean {
  return process.env.CDP_LIFECYCLE_PG_AVAILABLE !== '0';
}

/** A fresh, empty warehouse for one test file: a temp DuckDB file, or a new PostgreSQL database. */
export interface TestWarehouse {
  kind: WarehouseKind;
  /** The URL to pass to the code under test (e.g. a child process or the CLI). */
  url: string;
  /** Opens a new connection; the caller closes it. */
  open(): Promise<Warehouse>;
  drop(): Promise<void>;
}

export async function createTestWarehouse(kind: WarehouseKind, label = 'test'): Promise<TestWarehouse> {
  const suffix = `${label
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(0, 20)}_${process.pid}_${randomBytes(3).toString('hex')}`;
  if (kind === 'duckdb') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-lifecycle-'));
    const url = `duckdb://${path.join(dir, `${suffix}.duckdb`)}`;
    return {
      kind,
      url,
      open: () => openWarehouse(url),
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const db = `cdpl_${suffix}`;
  await pgAdmin(`create database ${db}`);
  const url = pgDatabaseUrl(db);
  return {
    kind,
    url,
    open: () => openWarehouse(url),
    drop: () => pgAdmin(`drop database if exists ${db} with (force)`),
  };
}

/**
 * Runs the same suite on DuckDB and on PostgreSQL. `fn` receives a getter for the suite's warehouse, created
 * in beforeAll and dropped in afterAll. PostgreSQL suites skip (with a warning printed by the global setup)
 * only outside CI when the server is unreachable.
 */
export function describeEachWarehouse(
  title: string,
  fn: (ctx: { kind: WarehouseKind; tw: () => TestWarehouse }) => void,
  kinds: WarehouseKind[] = ['duckdb', 'postgres'],
): void {
  for (const kind of kinds) {
    const run = kind === 'postgres' && !pgEnabled() ? describe.skip : describe;
    run(`${title} [${kind}]`, () => {
      let tw: TestWarehouse | undefined;
      beforeAll(async () => {
        tw = await createTestWarehouse(kind, title);
      });
      afterAll(async () => {
        await tw?.drop();
      });
      fn({
        kind,
        tw: () => {
          if (!tw) throw new Error('test warehouse not created yet');
          return tw;
        },
      });
    });
  }
}
