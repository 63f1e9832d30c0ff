/**
 * The one ingest path of the collector, `load` and `demo`: validate and shape each event, pass the valid ones
 * through the actions-core Destination (`onBatch`), and write what the actions produced plus every rejected
 * event in ONE warehouse transaction. Concurrent callers are grouped into larger writes (micro-batching), but
 * a caller's promise resolves only after the transaction holding its events committed, and a caller's events
 * are all-or-nothing: they are always in the same transaction.
 */
import type { Logger } from 'pino';
import { Destination, type SegmentEvent, type Result, type JSONObject } from '@segment/actions-core';
import definition from '../../destinations/cdp-lifecycle';
import type { Settings } from '../../destinations/cdp-lifecycle/generated-types';
import {
  WriteSet,
  registerWarehouse,
  unregisterWarehouse,
  writeSetStorage,
} from '../../destinations/cdp-lifecycle/client';
import {
  CALL_TYPES,
  normalizeEvent,
  isJsonObject,
  probeFields,
  type CallType,
  type JsonObject,
} from '../../transforms/events';
import { validateEvent, timestampProblem, DEFAULT_MAX_EVENT_BYTES } from '../../transforms/schemas';
import { maskWriteKeys } from './mask';
import {
  ensureRawTables,
  isDataError,
  isMissingRelationError,
  RAW_TABLES,
  type InsertValue,
  type Warehouse,
} from '../warehouse';
import { isValidIdent } from '../warehouse/types';
import { UsageError, UserError, WarehouseUnavailableError, errorMessage } from '../errors';

export interface IngestorOptions {
  warehouse: Warehouse;
  rawSchema: string;
  /** Larger events are rejected (SPEC §7, default 32 KB). */
  maxEventBytes?: number;
  logger?: Logger;
  /** How long the first pending call waits for others to share its write (default 2 ms). */
  batchWindowMs?: number;
  /** A write is started as soon as this many events are pending (default 5,000). */
  maxBatchEvents?: number;
  /**
   * Groups in flight at once. Default: 2 on PostgreSQL (the next group runs through the Destination while the
   * previous one is copied); 1 on DuckDB, whose single writer gains more from larger grouped writes (it pays a
   * fixed cost per transaction) than from overlap (measured with `npm run bench:ingest`).
   */
  concurrency?: number;
}

export interface IngestMeta {
  /** When the events were received (default: now). */
  receivedAt?: Date;
  /** Keep a `receivedAt` an event already carries (webhooks, files) instead of stamping `receivedAt`. */
  keepReceivedAt?: boolean;
  /** The call type implied by the endpoint (`/v1/track`) for events without `type`. */
  impliedType?: CallType;
  /**
   * `sentAt` of the enclosing batch as sent (any JSON value; null is absent), copied onto the events that have
   * none. One that is not an ISO-8601 string (a number of epoch milliseconds, say) rejects those events.
   */
  batchSentAt?: unknown;
  /** `context` of the enclosing batch, given to the valid events that have none (see NormalizeOptions). */
  batchContext?: JsonObject;
  /** Raw text of each event (e.g. the NDJSON line), stored as the payload when it is rejected. */
  rawTexts?: ReadonlyArray<string | undefined>;
  /**
   * The text of the event at an index as sent, asked for only when that event is rejected (a batch's element,
   * found by scanning the body then): stored as its payload, without bearing on the size limit.
   */
  payloadText?: (index: number) => string | undefined;
  /** Payloads that were already refused upstream (e.g. unparsable lines): they land in rejected_events too. */
  extraRejections?: ReadonlyArray<{ reason: string; payload: string }>;
}

export interface RejectedEvent {
  /** Position of the event in the request (or batch) it came in. */
  index: number;
  messageId?: string;
  reason: string;
}

export interface IngestResult {
  landed: number;
  rejected: RejectedEvent[];
}

interface Pending {
  events: JsonObject[];
  indexes: number[];
  rejected: RejectedEvent[];
  rejectedRows: InsertValue[][];
  receivedAt: string;
  /** The event at an index as sent, for its rejected_events row (else it is re-serialised). */
  payloadOf?: (index: number) => string | undefined;
  resolve(r: IngestResult): void;
  reject(e: unknown): void;
}

let instanceCount = 0;

/** Thrown inside a probe's transaction so that it rolls back; carries how many events the actions wrote. */
class ProbeRolledBack extends Error {
  constructor(readonly landed: number) {
    super('probe rolled back');
  }
}

/**
 * An event of `type` with nothing of any caller's in it but the dates of `like` (a refused event), so that a
 * table partitioned by time is probed where the refused rows would go: what a healthy raw table always takes.
 */
function neutralEvent(type: CallType, receivedAt: string, like: JsonObject | undefined): JsonObject {
  const received = typeof like?.receivedAt === 'string' ? like.receivedAt : receivedAt;
  const timestamp = typeof like?.timestamp === 'string' ? like.timestamp : received;
  const e: JsonObject = { type, ...(probeFields(type, { timestamp, receivedAt: received }) as JsonObject) };
  normalizeEvent(e, { receivedAt, keepReceivedAt: true });
  return e;
}

function addRejection(
  rejected: RejectedEvent[],
  rows: InsertValue[][],
  receivedAt: string,
  index: number,
  ev: unknown,
  reason: string,
  raw?: string,
): void {
  const mid = isJsonObject(ev) ? ev.messageId : undefined;
  rejected.push({
    index,
    ...(typeof mid === 'string' && mid.length <= 100 ? { messageId: mid } : {}),
    reason,
  });
  rows.push([receivedAt, reason, raw ?? maskWriteKeys(serializeEvent(ev))]);
}

/** What kind of JSON value `v` is, for a reason: "a number", "an object"… */
function jsonKind(v: unknown): string {
  if (Array.isArray(v)) return 'an array';
  if (v === null) return 'null';
  return typeof v === 'object' ? 'an object' : `a ${typeof v}`;
}

/** Serialises any JSON value, including ones nested too deeply for JSON.stringify's recursion. */
export function serializeEvent(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch {
    return stringifyIteratively(value);
  }
}

function stringifyIteratively(root: unknown): string {
  // An explicit stack instead of recursion: each entry is either a value still to write or literal text.
  type Item = { v: unknown } | { text: string };
  const out: string[] = [];
  const stack: Item[] = [{ v: root }];
  while (stack.length) {
    const item = stack.pop() as Item;
    if ('text' in item) {
      out.push(item.text);
      continue;
    }
    const v = item.v;
    if (Array.isArray(v)) {
      out.push('[');
      stack.push({ text: ']' });
      for (let i = v.length - 1; i >= 0; i--) {
        stack.push({ v: v[i] === undefined ? null : v[i] });
        if (i > 0) stack.push({ text: ',' });
      }
    } else if (isJsonObject(v)) {
      out.push('{');
      stack.push({ text: '}' });
      const keys = Object.keys(v).filter((k) => v[k] !== undefined);
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push({ v: v[keys[i]] });
        stack.push({ text: JSON.stringify(keys[i]) + ':' });
        if (i > 0) stack.push({ text: ',' });
      }
    } else {
      out.push(JSON.stringify(v) ?? 'null');
    }
  }
  return out.join('');
}

export class Ingestor {
  private readonly wh: Warehouse;
  private readonly rawSchema: string;
  private readonly maxEventBytes: number;
  private readonly logger: Logger | undefined;
  private readonly windowMs: number;
  private readonly maxBatch: number;
  private readonly concurrency: number;
  private readonly destination = new Destination<Settings>(definition);
  private readonly settings: JSONObject;
  private readonly settingsByType = new Map<string, JSONObject>();
  private readonly registryKey: string;

  private pending: Pending[] = [];
  private pendingEvents = 0;
  private timer: NodeJS.Timeout | undefined;
  private inFlight = 0;
  private idleWaiters: Array<() => void> = [];
  private tablesReady: Promise<void> | undefined;
  private closed = false;

  constructor(opts: IngestorOptions) {
    if (!isValidIdent(opts.rawSchema)) {
      throw new UsageError(
        `The raw schema "${opts.rawSchema}" is not a valid SQL identifier: use letters, digits and underscores (e.g. --raw-schema cdp).`,
      );
    }
    this.wh = opts.warehouse;
    this.rawSchema = opts.rawSchema;
    this.maxEventBytes = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
    this.logger = opts.logger;
    this.windowMs = opts.batchWindowMs ?? 2;
    this.maxBatch = opts.maxBatchEvents ?? 5000;
    this.concurrency = opts.concurrency ?? (opts.warehouse.dialect === 'postgres' ? 2 : 1);
    this.registryKey = registerWarehouse(
      `ingestor-${++instanceCount}:${opts.warehouse.displayUrl}`,
      opts.warehouse,
    );
    this.settings = {
      warehouseUrl: this.registryKey,
      rawSchema: this.rawSchema,
      // The destination's presets are its subscriptions: one action per call type.
      subscriptions: (definition.presets ?? []).map((p) => ({
        name: p.name ?? p.partnerAction,
        partnerAction: p.partnerAction,
        subscribe: 'subscribe' in p ? p.subscribe : '',
        mapping: p.mapping ?? {},
      })),
    };
    const subscriptions = this.settings.subscriptions as Array<{ subscribe: string }>;
    for (const t of CALL_TYPES) {
      const own = subscriptions.filter((x) => x.subscribe === `type = "${t}"`);
      if (own.length > 0) this.settingsByType.set(t, { ...this.settings, subscriptions: own });
    }
  }

  /**
   * Validates, shapes and lands `events`. Resolves once the valid events and the rejected ones are committed;
   * rejects with WarehouseUnavailableError when the warehouse cannot take them (nothing of the call landed).
   */
  ingest(events: readonly unknown[], meta: IngestMeta = {}): Promise<IngestResult> {
    if (this.closed) {
      return Promise.reject(new UserError('The ingestor is closed: it accepts no more events.'));
    }
    const receivedAt = (meta.receivedAt ?? new Date()).toISOString();
    const p: Pending = {
      events: [],
      indexes: [],
      rejected: [],
      rejectedRows: [],
      receivedAt,
      // what load read from a file is kept as it was, but never a write key in it (see maskWriteKeys)
      payloadOf: (i) => {
        const raw = meta.rawTexts?.[i];
        return raw === undefined ? meta.payloadText?.(i) : maskWriteKeys(raw);
      },
      resolve: () => undefined,
      reject: () => undefined,
    };
    const batchSentAt = meta.batchSentAt ?? undefined;
    const normalize = {
      receivedAt,
      keepReceivedAt: meta.keepReceivedAt ?? false,
      batchSentAt: typeof batchSentAt === 'string' ? batchSentAt : undefined,
      batchContext: meta.batchContext,
    };
    // Every event is measured, however small the request it came in: its compact JSON may be larger than the
    // text it was sent as (a byte that is not UTF-8 becomes U+FFFD, three bytes; `1E20` prints as 21 digits; an
    // endpoint adds its `type`), and serve must refuse what load, which measures each line's event, refuses.
    // (validateEvent serialises only an event whose cheap upper bound is over the limit.)
    const limit = { maxBytes: this.maxEventBytes };
    // A batch's sentAt becomes the sentAt of each event without one, after validation: checked here as an
    // event's own would be, so that such an event is quarantined with the reason instead of failing its write
    // (DuckDB refused the whole request, PostgreSQL the row with its own message) or landing uncorrected. One
    // that is not a string at all (epoch milliseconds) is refused alike: ignored, it let those events land
    // without their clock correction, while an event's own such sentAt is rejected by the schema.
    const batchSentAtProblem =
      batchSentAt === undefined
        ? undefined
        : typeof batchSentAt === 'string'
          ? timestampProblem(batchSentAt)
          : `is not an ISO-8601 timestamp: it is ${jsonKind(batchSentAt)}, not a string`;
    const batchSentAtReason =
      batchSentAtProblem &&
      `the batch's sentAt (${serializeEvent(batchSentAt).slice(0, 60)}), which this event takes as it has none, ${batchSentAtProblem}`;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      const v = validateEvent(ev, meta.impliedType, limit);
      if ('type' in v && batchSentAtReason && (ev as JsonObject).sentAt == null) {
        addRejection(p.rejected, p.rejectedRows, receivedAt, i, ev, batchSentAtReason, p.payloadOf?.(i));
        continue;
      }
      if ('type' in v) {
        const e = ev as JsonObject;
        if (e.type === undefined) e.type = v.type;
        normalizeEvent(e, normalize);
        p.events.push(e);
        p.indexes.push(i);
        continue;
      }
      const reason = v.reason;
      addRejection(p.rejected, p.rejectedRows, receivedAt, i, ev, reason, p.payloadOf?.(i));
    }
    for (const x of meta.extraRejections ?? [])
      p.rejectedRows.push([receivedAt, x.reason, maskWriteKeys(x.payload)]);
    return new Promise<IngestResult>((resolve, reject) => {
      p.resolve = resolve;
      p.reject = reject;
      this.pending.push(p);
      this.pendingEvents += p.events.length + 1;
      this.schedule();
    });
  }

  /** Resolves when everything handed to `ingest` so far has been written (or failed). */
  flush(): Promise<void> {
    if (this.pending.length === 0 && this.inFlight === 0) return Promise.resolve();
    if (this.timer) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    this.pump();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Refuses new events, writes the pending ones, and releases the warehouse registration. */
  async close(): Promise<void> {
    this.closed = true;
    await this.flush();
    unregisterWarehouse(this.registryKey);
  }

  private schedule(): void {
    if (this.inFlight > 0) {
      // Completion of the running group pumps again; start a parallel one only when it is worth it.
      if (this.pendingEvents >= this.parallelThreshold) this.pump();
    } else if (this.pendingEvents >= this.maxBatch) {
      this.pump();
    } else if (!this.timer) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, this.windowMs);
    }
  }

  private get parallelThreshold(): number {
    return Math.max(1, Math.floor(this.maxBatch / 5));
  }

  private pump(): void {
    while (this.pending.length > 0 && this.inFlight < this.concurrency) {
      // A further group in parallel only when it is worth a transaction of its own; otherwise the calls keep
      // accumulating and go together, in one larger write, when the running group is done.
      if (this.inFlight > 0 && this.pendingEvents < this.parallelThreshold) break;
      const group: Pending[] = [];
      let n = 0;
      while (
        this.pending.length > 0 &&
        (group.length === 0 || n + this.pending[0].events.length <= this.maxBatch)
      ) {
        const p = this.pending.shift() as Pending;
        n += p.events.length + 1;
        group.push(p);
      }
      this.pendingEvents -= n;
      this.inFlight++;
      void this.writeGroup(group).finally(() => {
        this.inFlight--;
        if (this.pending.length > 0) this.pump();
        else if (this.inFlight === 0) {
          const waiters = this.idleWaiters;
          this.idleWaiters = [];
          for (const w of waiters) w();
        }
      });
    }
  }

  private async writeGroup(group: Pending[]): Promise<void> {
    try {
      const results = await this.process(group);
      for (let i = 0; i < group.length; i++) group[i].resolve(results[i]);
    } catch (err) {
      if (err instanceof WarehouseUnavailableError) {
        for (const p of group) p.reject(err);
        return;
      }
      if (group.length > 1) {
        // A data error in one caller's events must not fail the others grouped with it: write each alone.
        this.logger?.warn(
          { err: errorMessage(err), callers: group.length },
          'grouped write failed; retrying one by one',
        );
        for (const p of group) await this.writeGroup([p]);
        return;
      }
      // One caller's events that the warehouse refuses although they passed validation (a constraint a DBA
      // added, a value the validator could not foresee): answering 500 would make the SDK resend the same
      // batch forever and land none of its valid events. Halve until the refused events are alone, and
      // quarantine them with the warehouse's message (see isolate for a table that refuses everything).
      const p = group[0];
      this.logger?.warn(
        { err: errorMessage(err), events: p.events.length },
        'the warehouse refused a batch of valid events; isolating the refused ones',
      );
      try {
        p.resolve(await this.isolate(p, err));
      } catch (e) {
        this.logger?.error({ err: errorMessage(e) }, 'writing a batch of events failed');
        p.reject(e);
      }
    }
  }

  /**
   * Lands `p`, whose write just failed with `err`, without the events the warehouse refuses: tries it in halves
   * down to single events, each try rolled back, and quarantines the events refused alone, in one transaction
   * with the rest (a request's events are all-or-nothing, as any write of them is). Whenever an event is
   * refused, a neutral event of each refused type tells whether the table refuses any row (a column the
   * collector cannot fill, a NOT NULL on what a valid event may lack, a missing partition): then the table is
   * at fault, not the events, and the request fails as a whole, nothing of it stored, for the SDK to retry once
   * the table is fixed.
   */
  private async isolate(p: Pending, err: unknown): Promise<IngestResult> {
    const refused = await this.refusedEvents(p, err, false);
    if (!(await this.takesRowsLike(refused, p.receivedAt))) throw err;
    try {
      return await this.writeWithout(p, refused);
    } catch (e) {
      if (e instanceof WarehouseUnavailableError || !isDataError(e)) throw e;
      // Every part was taken alone but not all of them together: events of the request conflict with each
      // other (the same id twice under a unique index a DBA added). Tried again, each part beside the ones
      // taken before it, so that only the later of two conflicting events is refused.
      const again = await this.refusedEvents(p, e, true);
      if (!(await this.takesRowsLike(again, p.receivedAt))) throw e;
      return this.writeWithout(p, again);
    }
  }

  /**
   * Whether the table takes a neutral event of each refused type (true when none is refused): if not, it
   * refuses any row, and the refusal is the table's fault, not the events'.
   */
  private async takesRowsLike(
    refused: ReadonlyArray<{ event: JsonObject }>,
    receivedAt: string,
  ): Promise<boolean> {
    if (refused.length === 0) return true;
    return this.acceptsNeutralEvents(
      refused.map((x) => x.event),
      receivedAt,
    );
  }

  /**
   * The events of `p` the warehouse refuses, found by writing it in halves (whose write failed with `err`),
   * every write rolled back. `cumulative`: each part is tried together with the parts taken before it.
   */
  private async refusedEvents(
    p: Pending,
    err: unknown,
    cumulative: boolean,
  ): Promise<Array<{ index: number; event: JsonObject; reason: string }>> {
    const refused: Array<{ index: number; event: JsonObject; reason: string }> = [];
    const taken: Pending = { ...p, events: [], indexes: [], rejected: [], rejectedRows: [] };
    const walk = async (events: JsonObject[], indexes: number[], e: unknown): Promise<void> => {
      if (e instanceof WarehouseUnavailableError) throw e;
      if (events.length === 1) {
        // Only a refusal of the data is the event's fault. Anything else (a deadlock, a timeout, a missing
        // column) fails the request, nothing of it written, and the SDK resends it: nothing is quarantined
        // that a retry would have landed.
        if (!isDataError(e)) throw e;
        refused.push({
          index: indexes[0],
          event: events[0],
          reason: `the warehouse refused it: ${errorMessage(e)}`,
        });
        return;
      }
      const mid = events.length >> 1;
      for (const [from, to] of [
        [0, mid],
        [mid, events.length],
      ]) {
        const part: Pending = {
          ...p,
          events: events.slice(from, to),
          indexes: indexes.slice(from, to),
          rejected: [],
          rejectedRows: [],
        };
        try {
          await this.process(cumulative ? [taken, part] : [part], true);
        } catch (e2) {
          if (!(e2 instanceof ProbeRolledBack)) {
            await walk(part.events, part.indexes, e2);
            continue;
          }
        }
        taken.events.push(...part.events);
        taken.indexes.push(...part.indexes);
      }
    };
    await walk(p.events, p.indexes, err);
    return refused;
  }

  /** Writes `p` in one transaction, with `refused` quarantined instead of written. */
  private async writeWithout(
    p: Pending,
    refused: ReadonlyArray<{ index: number; event: JsonObject; reason: string }>,
  ): Promise<IngestResult> {
    const out = new Set(refused.map((x) => x.index));
    const rest: Pending = {
      ...p,
      events: p.events.filter((_, j) => !out.has(p.indexes[j])),
      indexes: p.indexes.filter((i) => !out.has(i)),
      rejected: p.rejected.slice(),
      rejectedRows: p.rejectedRows.slice(),
    };
    for (const x of refused)
      addRejection(
        rest.rejected,
        rest.rejectedRows,
        p.receivedAt,
        x.index,
        x.event,
        x.reason,
        p.payloadOf?.(x.index),
      );
    return (await this.process([rest]))[0];
  }

  /**
   * Whether the raw tables take an event of each type in `like` that carries nothing of the caller's but its
   * type and receipt time. Written through the same path as real events, then rolled back: nothing lands.
   */
  private async acceptsNeutralEvents(like: readonly JsonObject[], receivedAt: string): Promise<boolean> {
    // in one order, so that two probes never lock the tables in opposite orders
    const types = [...new Set(like.map((e) => e.type as CallType))].sort();
    const events = types.map((type) =>
      neutralEvent(
        type,
        receivedAt,
        like.find((e) => e.type === type),
      ),
    );
    const probe: Pending = {
      events,
      indexes: events.map((_, i) => i),
      rejected: [],
      rejectedRows: [],
      receivedAt,
      resolve: () => undefined,
      reject: () => undefined,
    };
    try {
      await this.process([probe], true);
    } catch (e) {
      if (e instanceof ProbeRolledBack) return e.landed === events.length;
      if (e instanceof WarehouseUnavailableError) throw e;
      this.logger?.warn({ err: errorMessage(e) }, 'the raw tables refuse a neutral event too');
      return false;
    }
    return false;
  }

  private ensureTables(): Promise<void> {
    if (!this.tablesReady) {
      this.tablesReady = ensureRawTables(this.wh, this.rawSchema).catch((err: unknown) => {
        this.tablesReady = undefined;
        throw err;
      });
    }
    return this.tablesReady;
  }

  /** `rollback`: write, then undo the transaction by throwing ProbeRolledBack (see acceptsNeutralEvents). */
  private async process(group: Pending[], rollback = false): Promise<IngestResult[]> {
    const events: JsonObject[] = [];
    for (const p of group) for (const e of p.events) events.push(e);
    const ws = new WriteSet(this.rawSchema);
    // One onBatch per call type, with the subscriptions of that type only: every event still goes through
    // the Destination, but is not tested against the five subscriptions that cannot match it.
    const byType = new Map<string, number[]>();
    for (let i = 0; i < events.length; i++) {
      const t = events[i].type as string;
      let idx = byType.get(t);
      if (!idx) byType.set(t, (idx = []));
      idx.push(i);
    }
    // An event landed when some action answered 2xx for it; otherwise it is rejected with the action's
    // reason, never dropped silently.
    const landed = new Uint8Array(events.length);
    const reasons: Array<string | undefined> = [];
    for (const [type, idx] of byType) {
      const batch = idx.map((i) => events[i]) as unknown as SegmentEvent[];
      const settings = this.settingsByType.get(type) ?? this.settings;
      const results: Result[] = await writeSetStorage.run(ws, () =>
        this.destination.onBatch(batch, settings),
      );
      for (const r of results) {
        const ms = r.multistatus;
        if (!ms) continue;
        for (let j = 0; j < ms.length; j++) {
          const st = ms[j];
          const i = idx[j];
          if (!st) continue;
          if (st.status >= 200 && st.status < 300) landed[i] = 1;
          else if (
            reasons[i] === undefined &&
            'errormessage' in st &&
            !/match the subscription/.test(st.errormessage)
          ) {
            reasons[i] = st.errormessage;
          }
        }
      }
    }
    const out: IngestResult[] = [];
    const rejectedRows: InsertValue[][] = [];
    let k = 0;
    for (const p of group) {
      // Copies: a failed grouped write is retried per caller, and must not count a rejection twice.
      const rejected = p.rejected.slice();
      let n = 0;
      for (const row of p.rejectedRows) rejectedRows.push(row);
      for (let j = 0; j < p.events.length; j++, k++) {
        if (landed[k]) n++;
        else {
          const reason = reasons[k] ?? 'no action is subscribed to this call';
          addRejection(
            rejected,
            rejectedRows,
            p.receivedAt,
            p.indexes[j],
            p.events[j],
            reason,
            p.payloadOf?.(p.indexes[j]),
          );
        }
      }
      rejected.sort((a, b) => a.index - b.index);
      out.push({ landed: n, rejected });
    }
    await this.ensureTables();
    const write = () =>
      this.wh.transaction(async (tx) => {
        // A probe never commits, so a deferred constraint would never judge it: check them on each row instead.
        if (rollback && tx.dialect === 'postgres') await tx.exec('set constraints all immediate');
        for (const [table, rows] of ws.rows) {
          await tx.insertRows(this.rawSchema, table, RAW_TABLES[table].columns, rows);
        }
        if (rejectedRows.length > 0) {
          await tx.insertRows(
            this.rawSchema,
            'rejected_events',
            RAW_TABLES.rejected_events.columns,
            rejectedRows,
          );
        }
        if (rollback) throw new ProbeRolledBack(out.reduce((n, r) => n + r.landed, 0));
      });
    const ready = this.tablesReady;
    try {
      await write();
    } catch (err) {
      if (!isMissingRelationError(err)) throw err;
      // A raw table or the schema went away while the collector ran (dropped by hand, a database restored):
      // create them again, as at start, rather than answer 500 to every retry until someone restarts it.
      // Writes failing together share one re-creation: concurrent `create schema if not exists` can collide.
      this.logger?.warn({ err: errorMessage(err) }, 'a raw table was missing; creating the raw tables again');
      if (this.tablesReady === ready) this.tablesReady = undefined;
      await this.ensureTables();
      await write();
    }
    return out;
  }
}
