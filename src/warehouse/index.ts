import { UsageError } from '../errors';
import type { Warehouse } from './types';

export * from './types';
export { isDataError, isMissingRelationError } from './errors';
export { ensureRawTables, RAW_TABLES } from './raw-tables';
export { reservedSchemaProblem, schemaNameProblem } from './schema-names';

export const DEFAULT_WAREHOUSE_URL = 'duckdb://./lifecycle.duckdb';

export type WarehouseLocation =
  | { kind: 'duckdb'; path: string; displayUrl: string }
  | { kind: 'postgres'; url: string; displayUrl: string };

/** libpq's sslmode values, and node-postgres' `no-verify`. */
const SSL_MODES = ['disable', 'allow', 'prefer', 'require', 'verify-ca', 'verify-full', 'no-verify'];

/**
 * Parses a `--warehouse` URL (SPEC §2). Throws a UsageError naming the accepted forms, and `from`, where the URL
 * was set when that is not in front of the user (an environment variable, the config file).
 */
export function parseWarehouseUrl(url: string, from?: string): WarehouseLocation {
  const origin = from === undefined ? '' : ` (from ${from})`;
  const theUrl = (shown: string): string => `The warehouse URL "${shown}"${origin}`;
  let trimmed = url.trim();
  // URL schemes are case-insensitive (RFC 3986): DUCKDB:// and PostgreSQL:// mean the same warehouses
  const scheme = /^(duckdb|postgres|postgresql):/i.exec(trimmed)?.[1];
  if (scheme !== undefined) trimmed = scheme.toLowerCase() + trimmed.slice(scheme.length);
  // duckdb:/abs/file.duckdb or duckdb:file.duckdb: the slashes are the slip, not the path
  if (trimmed.startsWith('duckdb:') && !trimmed.startsWith('duckdb://')) {
    const rest = trimmed.slice('duckdb:'.length);
    throw new UsageError(
      `${theUrl(trimmed)} lacks the // after duckdb:: write it as duckdb://${rest}${rest.startsWith('/') ? ' (three slashes before an absolute path)' : ''}.`,
    );
  }
  if (trimmed.startsWith('duckdb://')) {
    const p = trimmed.slice('duckdb://'.length);
    if (p === '') {
      throw new UsageError(
        `${theUrl('duckdb://')} has no path: use duckdb://./lifecycle.duckdb or duckdb://:memory:.`,
      );
    }
    return { kind: 'duckdb', path: p, displayUrl: trimmed };
  }
  if (/^postgres(ql)?:\/\//.test(trimmed)) {
    // A generated password with # / ? @ ends the URL's user part early (or makes the rest a path or query): the
    // usual cause of a URL that does not parse or lacks a host or database, and not visible once it is masked.
    // It is the cause when the URL, with the user part percent-encoded, would be whole.
    const reserved = userPartNeedsEncoding(trimmed);
    const encodeIt = `${theUrl(redact(trimmed))} is not a valid URL: percent-encode the reserved characters of the user name or password (# as %23, / as %2F, ? as %3F, @ as %40, : as %3A).`;
    let parsed: URL;
    try {
      parsed = new URL(trimmed);
    } catch {
      throw new UsageError(
        reserved
          ? encodeIt
          : `${theUrl(redact(trimmed))} is not a valid URL: use postgres://user[:pass]@host[:port]/db.`,
      );
    }
    if (!parsed.hostname || parsed.pathname.length <= 1) {
      throw new UsageError(
        reserved
          ? encodeIt
          : `${theUrl(redact(trimmed))} needs a host and a database: use postgres://user[:pass]@host[:port]/db.`,
      );
    }
    // node-postgres takes an unknown sslmode as a request for TLS, so a typo surfaced as the server's TLS error
    // ("does not support SSL connections") or a certificate error, neither naming the value
    const sslmode = parsed.searchParams.get('sslmode');
    if (sslmode !== null && !SSL_MODES.includes(sslmode)) {
      throw new UsageError(
        `The warehouse URL's sslmode "${sslmode}"${origin} is not one of ${SSL_MODES.join(', ')}: fix it in the URL (e.g. ?sslmode=require).`,
      );
    }
    return { kind: 'postgres', url: trimmed, displayUrl: redact(trimmed) };
  }
  // A bare file path is the likeliest slip: name the URL it meant.
  if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(trimmed) && /\.(duckdb|db)$/i.test(trimmed)) {
    throw new UsageError(`${theUrl(trimmed)} is a file path: write it as duckdb://${trimmed}.`);
  }
  throw new UsageError(
    `${theUrl(redact(trimmed))} is not supported: use duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db.`,
  );
}

/** Whether `url` becomes a valid postgres URL with a host and a database once its user part is percent-encoded. */
function userPartNeedsEncoding(url: string): boolean {
  const m = /^([a-z]+:\/\/)(.*)@([^@]*)$/is.exec(url);
  if (!m || !/[#/?@:]/.test(m[2])) return false;
  const colon = m[2].indexOf(':');
  const user = colon === -1 ? m[2] : m[2].slice(0, colon);
  const encoded =
    encodeURIComponent(user) + (colon === -1 ? '' : ':' + encodeURIComponent(m[2].slice(colon + 1)));
  try {
    const fixed = new URL(`${m[1]}${encoded}@${m[3]}`);
    return fixed.hostname !== '' && fixed.pathname.length > 1;
  } catch {
    return false;
  }
}

/**
 * Removes the password from a URL so it can be logged: everything from the user name's colon to the last `@`,
 * since a password may hold `@` (URL parsers, pg's included, end the user part at the last one) and, not
 * percent-encoded, `/`, `?` or `#`. An `@` later in the URL masks more than the password, never less.
 */
export function redact(url: string): string {
  const m = /^([a-z][a-z0-9+.-]*:\/\/)([^:/@]*):(.*)@/is.exec(url);
  let masked = m ? `${m[1]}${m[2]}:***@${url.slice(m[0].length)}` : url;
  if (!m) {
    // a URL the pattern above misses (`postgres:user:pw@host`, `postgres//user:pw@host`, `https://pro/xy:pw@host`)
    // may still hold a password, itself holding `/`: everything from the first colon after the scheme's `//`
    // (or the start) to the last `@` is masked (more than the password, never less)
    const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
    const at = url.lastIndexOf('@');
    const colon = at > 0 ? url.indexOf(':', scheme ? scheme[0].length : 0) : -1;
    if (colon !== -1 && colon < at) masked = `${url.slice(0, colon)}:***${url.slice(at)}`;
  }
  // libpq's password parameters, which pg reads from the query too, by their decoded names (`pass%77ord` is
  // `password` to pg)
  return masked.replace(/([?&])([^=&#]*)=([^&#]*)/g, (whole, sep: string, name: string) =>
    isPasswordParam(decodedParam(name)) ? `${sep}${name}=***` : whole,
  );
}

/** Whether a URL query parameter, by its decoded name, carries a password pg uses (password, sslpassword). */
export function isPasswordParam(decodedName: string): boolean {
  return /password/i.test(decodedName);
}

function decodedParam(name: string): string {
  try {
    return decodeURIComponent(name.replace(/\+/g, ' '));
  } catch {
    return name;
  }
}

/** `readOnly`: the caller only reads; a DuckDB file is then attached read-only (see DuckDBWarehouse.open). */
export async function openWarehouse(url: string, opts: { readOnly?: boolean } = {}): Promise<Warehouse> {
  const loc = parseWarehouseUrl(url);
  if (loc.kind === 'duckdb') {
    const { DuckDBWarehouse } = await import('./duckdb');
    return DuckDBWarehouse.open(loc.path, loc.displayUrl, opts);
  }
  const { PostgresWarehouse } = await import('./postgres');
  return PostgresWarehouse.open(loc.url, loc.displayUrl);
}
