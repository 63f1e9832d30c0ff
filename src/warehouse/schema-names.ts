/**
 * The rules a schema name must meet, shared by the CLI's settings and the Action Destination's rawSchema (a
 * raw schema one of them accepts and the other refuses would land events the models never read).
 */
import { DUCKDB_FILE_CATALOG, isValidIdent } from './types';

/**
 * Why a schema or table name cannot be used (to follow the name in a message), or undefined when it can.
 * Names are lower case: DuckDB ignores case in names while the runner's catalog checks compare them exactly,
 * and on PostgreSQL a quoted "LIFECYCLE" is a different schema from the lifecycle analysts type unquoted.
 */
export function schemaNameProblem(value: string, kind: 'schema' | 'table' = 'schema'): string | undefined {
  // `$` is a PostgreSQL identifier character, but neither BigQuery nor Snowflake's unquoted names take it
  if (!isValidIdent(value) || value.includes('$')) {
    const why = !/^[A-Za-z0-9_]+$/.test(value)
      ? 'use letters, digits and underscores only'
      : /^[0-9]/.test(value)
        ? 'start it with a letter or an underscore'
        : 'use at most 63 characters';
    return `is not a valid ${kind} name: ${why}`;
  }
  if (value !== value.toLowerCase()) {
    return `has upper-case letters: use "${value.toLowerCase()}" (DuckDB ignores case in names and PostgreSQL folds unquoted ones to lower case)`;
  }
  return undefined;
}

/**
 * Schema names a warehouse keeps for itself: DuckDB reads temp, system and memory as its own catalogs (a model
 * there fails as an ambiguous reference), and both refuse to create tables in their catalogs (PostgreSQL in
 * any pg_* schema). Checked for the raw schema too: the commands that land events create it, and a build reads it.
 */
export function reservedSchemaProblem(value: string, warehouse: 'duckdb' | 'postgres'): string | undefined {
  const reserved =
    warehouse === 'duckdb'
      ? ['temp', 'system', 'memory', DUCKDB_FILE_CATALOG, 'information_schema', 'pg_catalog'].includes(value)
      : value === 'information_schema' || value.startsWith('pg_');
  return reserved ? `is reserved by the warehouse for its own use: choose another name` : undefined;
}
