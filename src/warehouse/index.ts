import { UsageError } from '../errors';
import type { Warehouse } from './types';

export * from './types';
export { isDataError } from './errors';
export { ensureRawTables, RAW_TABLES } from './raw-tables';

export const DEFAULT_WAREHOUSE_URL = 'duckdb://./lifecycle.duckdb';

export type WarehouseLocation =
  | { kind: 'duckdb'; path: string; displayUrl: string }
  | { kind: 'postgres'; url: string; displayUrl: string };

/** Parses a `--warehouse` URL (SPEC §2). Throws a UsageError naming the accepted forms. */
export function parseWarehouseUrl(url: string): WarehouseLocation {
  const trimmed = url.trim();
  if (trimmed.startsWith('duckdb://')) {
    const p = trimmed.slice('duckdb://'.length);
    if (p === '') {
      throw new UsageError(
        'The warehouse URL "duckdb://" has no path: use duckdb://./lifecycle.duckdb or duckdb://:memory:.',
      );
    }
    return { kind: 'duckdb', path: p, displayUrl: trimmed };
  }
  if (/^postgres(ql)?:\/\//.test(trimmed)) {
    let parsed: URL;
    try {
      parsed = new URL(trimmed);
    } catch {
      throw new UsageError(
        `The warehouse URL "${redact(trimmed)}" is not a valid URL: use postgres://user[:pass]@host[:port]/db.`,
      );
    }
    if (!parsed.hostname || parsed.pathname.length <= 1) {
      throw new UsageError(
        `The warehouse URL "${redact(trimmed)}" needs a host and a database: use postgres://user[:pass]@host[:port]/db.`,
      );
    }
    return { kind: 'postgres', url: trimmed, displayUrl: redact(trimmed) };
  }
  // A bare file path is the likeliest slip: name the URL it meant.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) && /\.(duckdb|db)$/i.test(trimmed)) {
    throw new UsageError(`The warehouse URL "${trimmed}" is a file path: write it as duckdb://${trimmed}.`);
  }
  throw new UsageError(
    `The warehouse URL "${redact(trimmed)}" is not supported: use duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db.`,
  );
}

/** Removes the password from a URL so it can be logged. */
export function redact(url: string): string {
  return url.replace(/^([a-z]+:\/\/[^:/@]+):[^@]*@/i, '$1:***@');
}

export async function openWarehouse(url: string): Promise<Warehouse> {
  const loc = parseWarehouseUrl(url);
  if (loc.kind === 'duckdb') {
    const { DuckDBWarehouse } = await import('./duckdb');
    return DuckDBWarehouse.open(loc.path, loc.displayUrl);
  }
  const { PostgresWarehouse } = await import('./postgres');
  return PostgresWarehouse.open(loc.url, loc.displayUrl);
}
