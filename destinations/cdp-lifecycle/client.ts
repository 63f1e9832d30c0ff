/**
 * The destination's "API client": where landing rows go.
 *
 * Inside the collector the actions never write themselves. The Ingestor runs `destination.onBatch` inside an
 * AsyncLocalStorage context that holds a write set; the actions push their rows into it, and the Ingestor
 * then writes the whole set (every table plus rejected_events) in one warehouse transaction, so nothing is
 * acknowledged before it is committed and one request is all-or-nothing. Outside such a context (the action
 * run on its own, e.g. by `createTestIntegration` or another actions-core host) the rows are written straight
 * to the warehouse named in the settings, one transaction per batch.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import {
  openWarehouse,
  ensureRawTables,
  parseWarehouseUrl,
  reservedSchemaProblem,
  schemaNameProblem,
  RAW_TABLES,
  type Dialect,
  type Warehouse,
  type InsertValue,
} from '../../src/warehouse';
import { UsageError, UserError, WarehouseUnavailableError, errorMessage } from '../../src/errors';
import { isDataError, isMissingRelationError } from '../../src/warehouse/errors';
import {
  IntegrationError,
  MultiStatusResponse,
  PayloadValidationError,
  RetryableError,
  type JSONLikeObject,
} from '@segment/actions-core';
import {
  TABLE_FOR_TYPE,
  TIME_KEYS,
  landingRow,
  landingTimes,
  probeFields,
  type CallType,
  type ShapedFields,
} from '../../transforms/events';
import { validateEvent } from '../../transforms/schemas';
import { refuseDemoSchemas } from '../../src/demo/marker';
import type { Settings } from './generated-types';

export const DEFAULT_RAW_SCHEMA = 'cdp';

type LandingTable = (typeof TABLE_FOR_TYPE)[CallType];

/** Rows collected during one flush, per landing table. */
export class WriteSet {
  readonly rows = new Map<LandingTable, InsertValue[][]>();
  constructor(readonly rawSchema: string) {}
  push(table: LandingTable, rows: InsertValue[][]): void {
    const current = this.rows.get(table);
    if (current) {
      for (const r of rows) current.push(r);
    } else {
      this.rows.set(table, rows);
    }
  }
  get size(): number {
    let n = 0;
    for (const r of this.rows.values()) n += r.length;
    return n;
  }
}

export const writeSetStorage = new AsyncLocalStorage<WriteSet>();

// Warehouses by settings.warehouseUrl: the collector registers the one it already has open, so a setting
// resolves to it instead of opening a second handle (a DuckDB file has only one writer).
const registry = new Map<string, { warehouse: Warehouse; owned: boolean }>();
const opening = new Map<string, Promise<Warehouse>>();
const ensured = new WeakMap<Warehouse, Set<string>>();

/** Makes `key` (a settings.warehouseUrl) resolve to an open warehouse. Returns the key. */
export function registerWarehouse(key: string, warehouse: Warehouse): string {
  registry.set(key, { warehouse, owned: false });
  return key;
}

export function unregisterWarehouse(key: string): void {
  const entry = registry.get(key);
  if (entry && !entry.owned) registry.delete(key);
}

/** The warehouse named by the settings: a registered one, or opened once and kept for later calls. */
export async function resolveWarehouse(url: string): Promise<Warehouse> {
  const entry = registry.get(url);
  if (entry) return entry.warehouse;
  let pending = opening.get(url);
  if (!pending) {
    pending = openWarehouse(url).then((wh) => {
      registry.set(url, { warehouse: wh, owned: true });
      return wh;
    });
    opening.set(url, pending);
    pending.catch(() => undefined).finally(() => opening.delete(url));
  }
  return pending;
}

/** Closes the warehouses this module opened itself (registered ones belong to their owner). */
export async function closeOpenedWarehouses(): Promise<void> {
  const owned = [...registry.entries()].filter(([, e]) => e.owned);
  for (const [key] of owned) registry.delete(key);
  await Promise.all(owned.map(([, e]) => e.warehouse.close()));
}

/**
 * The raw schema of the settings, held to the rules `--raw-schema` is held to (one shared check): a name
 * `cdp-lifecycle build --raw-schema` refuses (upper case, a quoted "Cdp" on PostgreSQL) would land events the
 * models never read, and one the warehouse keeps for itself (information_schema, pg_*, DuckDB's temp) would
 * fail with the warehouse's error, retried for ever.
 */
export function rawSchemaOf(settings: Settings): string {
  const schema = settings.rawSchema || DEFAULT_RAW_SCHEMA;
  const problem =
    schemaNameProblem(schema) ?? reservedSchemaProblem(schema, warehouseKindOf(settings.warehouseUrl));
  if (problem) throw new UsageError(`The raw schema "${schema}" ${problem}.`);
  return schema;
}

/** DuckDB or PostgreSQL, known without connecting: a registered warehouse's, else its URL's. */
function warehouseKindOf(url: string): Dialect {
  return registry.get(url)?.warehouse.dialect ?? parseWarehouseUrl(url).kind;
}

/**
 * Creates the raw tables once per warehouse and schema, after refusing a raw schema the demo made (as `serve`
 * and `load` refuse it: the next `cdp-lifecycle demo` resets it, dropping the events). Checked with the tables,
 * so a batch adds no round trip; a refused schema is checked again on the next call.
 */
async function ensureTables(wh: Warehouse, schema: string): Promise<void> {
  let done = ensured.get(wh);
  if (!done) ensured.set(wh, (done = new Set()));
  if (done.has(schema)) return;
  await refuseDemoSchemas(wh, [schema], 'set warehouseUrl to duckdb://./events.duckdb');
  await ensureRawTables(wh, schema);
  done.add(schema);
}

/**
 * Runs `write`; when a raw table or the schema went away since they were created (dropped by hand, a
 * database restored), creates them again and writes once more, as the collector does, instead of failing
 * every call until the process restarts.
 */
async function withTables<T>(wh: Warehouse, schema: string, write: () => Promise<T>): Promise<T> {
  await ensureTables(wh, schema);
  try {
    return await write();
  } catch (err) {
    if (!isMissingRelationError(err)) throw err;
    ensured.get(wh)?.delete(schema);
    await ensureTables(wh, schema);
    return write();
  }
}

class ProbeRolledBack extends Error {}

/**
 * Whether `table` takes a row with nothing unusual in it, dated where `like` (a refused payload) would land
 * (written, then rolled back). This tells a payload at fault (400, not retried) from a table that refuses any
 * row there (a partition not created yet, a NOT NULL column added by hand): that one is the warehouse's to
 * fix, and the payload must be retried, not dropped.
 */
async function acceptsNeutralRow(
  wh: Warehouse,
  schema: string,
  type: CallType,
  like: ShapedFields,
): Promise<boolean> {
  // the refused row's resolved timestamp, not its raw fields: a payload without a timestamp lands at
  // receivedAt minus the clock skew, and a partition by time is chosen by that
  const { ts, received } = landingTimes(like);
  const neutral = probeFields(type, { timestamp: ts, receivedAt: received });
  const table = TABLE_FOR_TYPE[type];
  try {
    await wh.transaction(async (tx) => {
      // a probe never commits, so a deferred constraint would never judge it
      if (tx.dialect === 'postgres') await tx.exec('set constraints all immediate');
      await tx.insertRows(schema, table, RAW_TABLES[table].columns, [landingRow(type, neutral)]);
      throw new ProbeRolledBack();
    });
  } catch (e) {
    if (e instanceof ProbeRolledBack) return true;
    if (e instanceof WarehouseUnavailableError) throw e;
    return false;
  }
  return false;
}

/**
 * What the collector's validator would refuse in an action payload (its fields carry the event's names), with
 * the collector's reason; null when it can land. A null time field is absent, as the collector reads it; an
 * empty one is refused as the collector refuses it (`timestamp is not an ISO-8601 timestamp`), not landed as
 * absent. (A single payload never shows one: actions-core removes empty strings at its top before perform.)
 */
function payloadProblem(type: CallType, f: ShapedFields): string | null {
  const event: Record<string, unknown> = { ...f, type };
  for (const k of TIME_KEYS) {
    if (event[k] === null) delete event[k];
  }
  const v = validateEvent(event, type);
  return 'reason' in v ? v.reason : null;
}

/**
 * Lands the payloads of one action call: into the current write set inside the Ingestor (which validated the
 * events already), else straight into the warehouse of the settings. There nobody validated them: a payload
 * the collector would refuse (a timestamp that is not ISO-8601 would fail the whole transaction, or land as a
 * wrong date) is left out and reported, so the valid ones still land. Returns the number of rows, or for a
 * batch with refused payloads a MultiStatusResponse with each payload's outcome; a single refused payload
 * throws PayloadValidationError.
 */
export async function landPayloads(
  type: CallType,
  settings: Settings,
  payloads: ShapedFields[],
  batch: boolean,
): Promise<number | MultiStatusResponse> {
  const table = TABLE_FOR_TYPE[type];
  const ws = writeSetStorage.getStore();
  if (ws) {
    const rows = new Array<InsertValue[]>(payloads.length);
    for (let i = 0; i < payloads.length; i++) rows[i] = landingRow(type, payloads[i]);
    ws.push(table, rows);
    return rows.length;
  }
  const problems = payloads.map((p) => payloadProblem(type, p));
  const retried: Array<string | undefined> = [];
  const valid = payloads.flatMap((p, i) => (problems[i] ? [] : [i]));
  if (valid.length > 0) {
    try {
      const schema = rawSchemaOf(settings);
      const wh = await resolveWarehouse(settings.warehouseUrl);
      const insert = (indexes: number[]) =>
        withTables(wh, schema, () =>
          wh.transaction((tx) =>
            tx.insertRows(
              schema,
              table,
              RAW_TABLES[table].columns,
              indexes.map((i) => landingRow(type, payloads[i])),
            ),
          ),
        );
      try {
        await insert(valid);
      } catch (err) {
        if (!isDataError(err)) throw err;
        // One row the warehouse refuses (a constraint a DBA added) fails the whole insert: row by row, the
        // others land and each refused one is named, as the collector quarantines them. A row refused because
        // the table takes no row dated like it (a missing partition) is the table's fault, whatever else
        // landed: it is retried, not dropped.
        let landed = 0;
        const neutralTaken = new Map<string, Promise<boolean>>();
        for (const i of valid) {
          try {
            await insert([i]);
            landed++;
          } catch (e) {
            if (!isDataError(e)) throw e;
            // the neutral row is dated by both (a table may be partitioned by received_at)
            const { ts, received } = landingTimes(payloads[i]);
            const at = `${ts} ${received}`;
            let taken = neutralTaken.get(at);
            if (!taken) neutralTaken.set(at, (taken = acceptsNeutralRow(wh, schema, type, payloads[i])));
            if (await taken) problems[i] = `the warehouse refused it: ${errorMessage(e)}`;
            else
              retried[i] =
                `the raw table ${schema}.${table} refuses any row dated like this one (${errorMessage(e)}): fix the table, and it is retried`;
          }
        }
        if (landed === 0 && valid.every((i) => retried[i])) {
          throw new RetryableError(
            `The raw table ${schema}.${table} refuses any row (${errorMessage(err)}); nothing was stored: fix the table, and the call is retried.`,
          );
        }
      }
    } catch (err) {
      throw asActionError(err);
    }
  }
  if (!batch && problems[0]) throw new PayloadValidationError(problems[0]);
  if (!problems.some((x) => x) && !retried.some((x) => x)) return valid.length;
  const status = new MultiStatusResponse();
  problems.forEach((problem, i) => {
    const retry = retried[i];
    if (retry) {
      status.setErrorResponseAtIndex(i, { status: 500, errortype: 'RETRYABLE_ERROR', errormessage: retry });
    } else if (problem) {
      // without `sent` or `body`, actions-core files it as refused before delivery, not by the destination
      status.setErrorResponseAtIndex(i, {
        status: 400,
        errortype: 'PAYLOAD_VALIDATION_FAILED',
        errormessage: problem,
      });
    } else {
      status.setSuccessResponseAtIndex(i, {
        status: 200,
        sent: payloads[i] as JSONLikeObject,
        body: 'landed',
      });
    }
  });
  return status;
}

/**
 * actions-core retries any error without a status (it counts as 500): a warehouse that is down should be
 * retried, a setting that can never work (a bad URL or raw schema, a schema of views, the demo's) should not.
 */
function asActionError(err: unknown): unknown {
  if (err instanceof WarehouseUnavailableError) return new RetryableError(err.message, 503);
  if (err instanceof UserError) return new IntegrationError(err.message, 'INVALID_SETTINGS', 400);
  return err;
}

/** testAuthentication: the warehouse answers and the raw tables can be created. */
export async function checkWarehouse(settings: Settings): Promise<void> {
  const schema = rawSchemaOf(settings);
  const wh = await resolveWarehouse(settings.warehouseUrl);
  await wh.ping();
  // created again when they went away since
  ensured.get(wh)?.delete(schema);
  await ensureTables(wh, schema);
}
