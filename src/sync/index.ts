import { createHash, randomUUID } from 'node:crypto';
import {
  UsageError,
  UserError,
  WarehouseUnavailableError,
  errorMessage,
  replaceGrant,
  warehouseRefusal,
} from '../errors';
import { isValidIdent, modelSchemaLock, qualify, type Warehouse } from '../warehouse';
import { silentProgress, type Progress } from '../util/progress';
import { defragment } from '../warehouse/fragmentation';
import { DEFAULT_RETRY, FatalDeliveryError, RateLimiter, deliverBatch, type RetryPolicy } from './delivery';
import { SegmentTransport } from './segment';
import {
  appendLog,
  buildDiffQuery,
  capDuckDbMemory,
  ensureSyncTables,
  duplicateUserIds,
  finishRun,
  knownDestinations,
  recordBatch,
  sourceColumns,
  unfinishedBuild,
  startRun,
  SOURCE_TABLE,
  type DiffRow,
  type LogEntry,
  type MemoryCap,
  type RunStatus,
  dropStaleDryRunTables,
  NO_WRITE_KEY,
} from './state';
import {
  DEFAULT_TRAITS,
  parseTraitsOption,
  toTraitValue,
  validateMapping,
  type TraitMapping,
} from './traits';
import {
  checkEndpoint,
  RUDDERSTACK_LIMITS,
  SEGMENT_HOSTS,
  SEGMENT_LIMITS,
  RUDDERSTACK_SIZER,
  SEGMENT_SIZER,
  maskingTransport,
  type IdentifyMessage,
  type Limits,
  type Sizer,
  type Transport,
} from './transport';
import { LIBRARY } from './version';
import { transitionLabel } from './summary';

export { DEFAULT_TRAITS, parseTraitsOption, type TraitMapping } from './traits';
export { SEGMENT_HOSTS, SEGMENT_LIMITS, RUDDERSTACK_LIMITS } from './transport';
export { DEFAULT_RETRY, type RetryPolicy } from './delivery';
export { ensureSyncTables } from './state';

export type SyncTarget = 'rudderstack' | 'segment';

export interface SyncOptions {
  warehouse: Warehouse;
  /** Schema holding `user_lifecycle`; the sync tables are created there too (SPEC: `lifecycle`). */
  schema: string;
  to: SyncTarget;
  /** Host override for both targets; for RudderStack the data plane URL (required unless dry run). */
  endpoint?: string;
  /** Segment workspace region when no endpoint is given: `us` (api.segment.io, default) or `eu`. */
  region?: 'us' | 'eu';
  /** Segment or RudderStack source write key; not needed for a dry run. */
  writeKey?: string;
  /** Destination id for sync_state, instead of `<target>:<host>:<write key hash>`. */
  name?: string;
  dryRun?: boolean;
  /** Resend every user, changed or not (with fresh messageIds, so the CDP does not deduplicate them). */
  fullResync?: boolean;
  /** trait -> column (or the `--traits` text); default DEFAULT_TRAITS. */
  traits?: TraitMapping | string;
  /** The identify's `integrations` object; default `{ "All": true }`. See docs/sync.md on feedback loops. */
  integrations?: Record<string, unknown>;
  /** Events per second, on average; unlimited when absent. */
  rateLimit?: number;
  /** Most events per request (cut further by the byte limits); default 500 (Segment), 50 (RudderStack). */
  batchSize?: number;
  /** Requests in flight at once (for RudderStack, one SDK client each). Default 2. */
  concurrency?: number;
  /** Per-request timeout in ms; default 15000. */
  timeoutMs?: number;
  retry?: Partial<RetryPolicy>;
  /** Lower limits than the CDP's (tests, proxies with smaller bodies). Never raised above SPEC §6. */
  limits?: Partial<Limits>;
  /** Acknowledged rows written to sync_state per transaction; default 5000 (see docs/sync.md). */
  stateFlushRows?: number;
  /**
   * DuckDB working memory while the sync runs (file databases only), e.g. `'64MB'`; null leaves DuckDB's own
   * limit. Default 32MB: the diff spills to disk rather than growing with the user count.
   */
  duckdbMemoryLimit?: string | null;
  /** Rows read from the warehouse per page; default 5000. */
  pageSize?: number;
  progress?: Progress;
  /** Told about each retry (the CLI logs it with --verbose). */
  onRetry?: (info: { attempt: number; delayMs: number; message: string; events: number }) => void;
  /**
   * Stops the run at a clean point (Ctrl-C): no new request leaves, the requests in flight get their answers,
   * what the CDP acknowledged is recorded, rows sent without an answer (a timeout) are recorded failed, and the
   * run ends `interrupted`; the rest is sent by the next run.
   */
  signal?: AbortSignal;
}

export interface SyncTransition {
  /** Status last delivered to this destination; null when the user was never delivered. */
  from: string | null;
  to: string | null;
  count: number;
}

/** The figures of a sync run that ended in an error (its sync_runs row says `error`), for the log record. */
export interface FailedSyncRun {
  runId: string;
  destination: string;
  status: 'error';
  dryRun: boolean;
  considered: number;
  changed: number;
  sent: number;
  failed: number;
  invalid: number;
  error: string;
}

const failedRuns = new WeakMap<object, FailedSyncRun>();

/** The run a sync error ended, when runSync threw it after the run started (see FailedSyncRun). */
export function failedSyncRunOf(err: unknown): FailedSyncRun | undefined {
  return typeof err === 'object' && err !== null ? failedRuns.get(err) : undefined;
}

export interface SyncSummary {
  runId: string;
  destination: string;
  target: SyncTarget;
  host: string | null;
  dryRun: boolean;
  fullResync: boolean;
  status: RunStatus;
  /** Users in user_lifecycle. */
  considered: number;
  /** Users the diff selected: new, changed, or failed last time (all with fullResync). */
  changed: number;
  /** Acknowledged by the CDP (0 in a dry run). */
  sent: number;
  /** Refused by the CDP, or given up on after retries. */
  failed: number;
  /** Not sendable (null or duplicate user_id, identify over 32 KB): logged, never sent. */
  invalid: number;
  transitions: SyncTransition[];
  /** Up to 20 examples of failed and invalid rows with their reason. */
  errors: Array<{ userId: string | null; status: 'failed' | 'invalid'; error: string }>;
  /**
   * Every failed and invalid row counted by reason, the 20 reasons with the most rows first (the rows of the
   * others in `otherProblems`), with the first few user ids of each: one reason (the CDP down) often covers
   * thousands of rows.
   */
  problemGroups: SyncProblemGroup[];
  otherProblems: number;
  /** Why the run stopped early (CDP down after retries), when it did. */
  aborted: string | null;
  requests: number;
  durationMs: number;
  /** What the CLI should exit with: 1 when rows failed (SPEC §8) or the run was interrupted, else 0. */
  exitCode: 0 | 1;
}

export interface SyncProblemGroup {
  status: 'failed' | 'invalid';
  error: string;
  count: number;
  /** The first 3 users with this reason (null: a row without user_id). */
  userIds: Array<string | null>;
}

const DEFAULT_INTEGRATIONS = Object.freeze({ All: true });
/** Distinct reasons counted one by one; the summary shows the 20 with the most rows. */
const MAX_PROBLEM_REASONS = 1000;

function sha256(s: string): string {
  return createHash('sha256').update(s).digest('hex');
}

/**
 * Deterministic: the same destination, user, traits and previously delivered change always give the same id,
 * so a replay after a crash is deduplicated. The previous change's id is part of it because the state moves
 * only once the CDP has acknowledged: a value that comes back (at_risk → loyal → at_risk) is a new change,
 * which must not reuse the id the CDP deduplicates on for a day or more.
 */
export function messageIdFor(
  destination: string,
  userId: string,
  traitsHash: string,
  salt = '',
  previousMessageId: string | null = null,
): string {
  const prev = previousMessageId ? `\nafter:${previousMessageId}` : '';
  return `cdpl-${sha256(`${destination}\n${userId}\n${traitsHash}${salt ? `\n${salt}` : ''}${prev}`)}`;
}

function resolveHost(opts: SyncOptions): string | null {
  let raw: string | undefined = opts.endpoint;
  if (raw === undefined || raw === '') {
    if (opts.to === 'segment') raw = SEGMENT_HOSTS[opts.region ?? 'us'];
    else if (opts.dryRun) return null;
    else {
      throw new UsageError(
        'Syncing to RudderStack needs the data plane URL: pass --endpoint https://<your-data-plane>.dataplane.rudderstack.com.',
      );
    }
  }
  return checkEndpoint(raw, opts.to);
}

function checkOptions(opts: SyncOptions): void {
  if (opts.to !== 'segment' && opts.to !== 'rudderstack') {
    throw new UsageError(
      `--to "${String(opts.to)}" is not a sync target: use --to segment or --to rudderstack.`,
    );
  }
  if (!isValidIdent(opts.schema)) {
    throw new UsageError(
      `--schema "${opts.schema}" is not a valid schema name: use letters, digits and underscores.`,
    );
  }
  if (opts.region !== undefined && opts.region !== 'us' && opts.region !== 'eu') {
    throw new UsageError(`The Segment region "${String(opts.region)}" is unknown: use us or eu.`);
  }
  const positive = (v: number | undefined, flag: string): void => {
    if (v !== undefined && !(Number.isFinite(v) && v > 0)) {
      throw new UsageError(`${flag} must be a positive number, got ${String(v)}.`);
    }
  };
  positive(opts.rateLimit, '--rate-limit');
  positive(opts.batchSize, '--batch-size');
  if (opts.concurrency !== undefined && !(Number.isInteger(opts.concurrency) && opts.concurrency >= 1)) {
    throw new UsageError(`concurrency must be a whole number of 1 or more, got ${String(opts.concurrency)}.`);
  }
  positive(opts.timeoutMs, 'The request timeout');
  positive(opts.pageSize, 'The page size');
  positive(opts.stateFlushRows, 'The state flush size');
  if (opts.retry?.maxAttempts !== undefined) positive(opts.retry.maxAttempts, '--max-attempts');
  if (!opts.dryRun && !opts.writeKey) {
    throw new UsageError(
      `Syncing to ${opts.to === 'segment' ? 'Segment' : 'RudderStack'} needs a source write key: pass --write-key (or use --dry-run to only compute the diff).`,
    );
  }
  if (opts.name !== undefined && !/^[\w.:@/-]{1,200}$/.test(opts.name)) {
    throw new UsageError(
      `--name "${opts.name}" is not a valid destination name: use letters, digits and . : @ / - _.`,
    );
  }
  if (
    opts.integrations !== undefined &&
    (opts.integrations === null || typeof opts.integrations !== 'object' || Array.isArray(opts.integrations))
  ) {
    throw new UsageError('--integrations must be a JSON object, e.g. {"All": false, "Braze": true}.');
  }
}

function capLimits(
  target: SyncTarget,
  given: Partial<Limits> | undefined,
  batchSize: number | undefined,
): Limits {
  const max = target === 'segment' ? SEGMENT_LIMITS : RUDDERSTACK_LIMITS;
  // RudderStack: the SDK re-measures its whole queue on every enqueue, so its cost per event grows with
  // flushAt; around 50 events per request is fastest (see docs/sync.md).
  const defaultEvents = target === 'segment' ? 500 : 50;
  return {
    maxEventBytes: Math.min(max.maxEventBytes, given?.maxEventBytes ?? max.maxEventBytes),
    maxBatchBytes: Math.min(max.maxBatchBytes, given?.maxBatchBytes ?? max.maxBatchBytes),
    maxBatchEvents: Math.max(
      1,
      Math.floor(Math.min(max.maxBatchEvents, given?.maxBatchEvents ?? batchSize ?? defaultEvents)),
    ),
  };
}

/**
 * The warehouse error that stopped a run with rows sent but unrecorded, saying so: the user would otherwise take
 * it that what the CDP acknowledged is lost, or recorded. Keeps the kind of error (a refusal's fix, a lost
 * connection's exit code, an unexpected one's hint) and the original as its cause.
 */
function unrecordedError(err: unknown, rows: number, runId: string): Error {
  const base = (warehouseRefusal(err) ?? errorMessage(err).trim().split('\n')[0]).replace(/\.$/, '');
  const message = `${base}; ${rows} row(s) sent to the CDP could not be recorded: the next run resends them (run ${runId}).`;
  if (err instanceof WarehouseUnavailableError) return new WarehouseUnavailableError(message, { cause: err });
  if (err instanceof UserError) return new UserError(message, { cause: err, exitCode: err.exitCode });
  if (warehouseRefusal(err) !== undefined) return new UserError(message, { cause: err });
  return new Error(message, { cause: err });
}

interface Pending {
  msg: IdentifyMessage;
  bytes: number;
  entry: LogEntry;
}

/**
 * The reverse sync of SPEC §6: diff `user_lifecycle` against what this destination last acknowledged, send
 * one identify per changed user, record every outcome. Throws UsageError for bad options, UserError when the
 * CDP refuses the configuration (401/403/404) or the warehouse lacks `user_lifecycle`; row failures do not
 * throw: they are in the summary (`exitCode` 1) and in sync_state, to be retried next run.
 */
export async function runSync(opts: SyncOptions): Promise<SyncSummary> {
  checkOptions(opts);
  // A real sync shares the build's lock: two at once would send the same changes twice, and one during a
  // build would read the marts between two of its models. A dry run only reads, so it never waits.
  if (opts.dryRun === true) return syncThenTidy(opts);
  return opts.warehouse.exclusive(
    modelSchemaLock(opts.schema),
    `a build or sync of schema ${opts.schema}`,
    () => syncThenTidy(opts),
  );
}

/**
 * Names the destinations a keyless dry run cannot choose between, and the flags that pick one as the next real
 * run would: two keys on one host need --write-key, one key on two hosts (Segment's US and EU endpoints)
 * --endpoint. A Segment key without --endpoint means api.segment.io, so a key synced elsewhere needs both.
 */
function ambiguousDestinations(to: SyncTarget, givenHost: string | null, known: string[]): string {
  const generated = new RegExp(`^${to}:(.+):([0-9a-f]{12}|${NO_WRITE_KEY})$`);
  const parsed: Array<{ host: string; key: string }> = [];
  const named: string[] = [];
  for (const d of [...known].sort()) {
    const m = generated.exec(d);
    if (m) parsed.push({ host: m[1], key: m[2] });
    else named.push(d);
  }
  const items = [
    ...parsed.map((p) => `${p.host} (${p.key === NO_WRITE_KEY ? 'no write key' : `key sha256 ${p.key}…`})`),
    ...named.map((n) => `"${n}"`),
  ];
  const shown = items.slice(0, 5).join(', ') + (items.length > 5 ? ` and ${items.length - 5} more` : '');
  const hosts = new Set(parsed.map((p) => p.host));
  const keys = new Set(parsed.map((p) => p.key));
  const [onlyHost] = [...hosts];
  const keyFindsIt =
    hosts.size === 1 &&
    (givenHost !== null || to === 'rudderstack' || onlyHost === new URL(SEGMENT_HOSTS.us).host);
  const flags =
    named.length > 0
      ? "the --endpoint and --write-key (or the API's name)"
      : keyFindsIt
        ? 'the --write-key'
        : keys.size === 1 && hosts.size > 1
          ? 'the --endpoint'
          : 'the --endpoint and --write-key';
  return `${known.length} destinations have been synced to ${to}${givenHost === null ? '' : ` at ${givenHost}`} (${shown}): pass ${flags} of the one this dry run should compare with.`;
}

/**
 * A dry run without a key diffs against the one destination already synced for this target (and the host of
 * --endpoint, when given), so it previews what the real run would send; with none, against nothing (everyone
 * is new). With several, any choice would preview the wrong one, so it asks which. Segment's default host
 * counts as not given: a sync to its EU endpoint is the one to preview then.
 */
async function keylessDestinations(
  wh: Warehouse,
  schema: string,
  opts: Pick<SyncOptions, 'to' | 'endpoint' | 'region'>,
  hostId: string | null,
): Promise<string[]> {
  const givenHost = opts.endpoint || opts.region ? hostId : null;
  const prefix = givenHost === null ? `${opts.to}:` : `${opts.to}:${givenHost}:`;
  const known = await knownDestinations(wh, schema, prefix);
  if (known.length > 1) throw new UsageError(ambiguousDestinations(opts.to, givenHost, known));
  return known;
}

/**
 * The usage errors a sync can only find in the warehouse (today: which destination a keyless dry run should
 * compare with), for a command that syncs after other work (`run`) to raise before that work starts.
 */
export async function checkSyncDestination(opts: SyncOptions): Promise<void> {
  if (opts.name || opts.writeKey) return;
  const host = resolveHost(opts);
  try {
    await keylessDestinations(opts.warehouse, opts.schema, opts, host === null ? null : new URL(host).host);
  } catch (err) {
    throw namesSyncGrant(err, opts.schema);
  }
}

/**
 * A sync keeps its tables in the model schema and writes a work table there on every run, dry runs too: a
 * role refused on that schema needs `usage, create` on it (the README's PostgreSQL role), whichever of the two
 * the statement refused lacked, so the message names both rather than one now and the other next run.
 */
function namesSyncGrant(err: unknown, schema: string): unknown {
  replaceGrant(err, (p) =>
    p.kind === 'schema' && p.object === schema
      ? `grant usage, create on schema ${p.name} to ${p.role}`
      : undefined,
  );
  return err;
}

/**
 * Each sync appends a few rows to its tables; on DuckDB a scheduled sync per process would leave a row group
 * of its own each time, and the file would grow by blocks nothing reclaims (see isFragmented). Housekeeping:
 * a failure here costs file space only, never the sync's result.
 */
async function syncThenTidy(opts: SyncOptions): Promise<SyncSummary> {
  try {
    return await syncUnlocked(opts);
  } catch (err) {
    throw namesSyncGrant(err, opts.schema);
  } finally {
    if (opts.warehouse.dialect === 'duckdb') {
      // a table not made yet (the sync stopped before) fails the storage query, and is passed over like one
      for (const table of ['sync_runs', 'sync_log', 'sync_state']) {
        await defragment(opts.warehouse, opts.schema, table).catch(() => undefined);
      }
    }
  }
}

async function syncUnlocked(opts: SyncOptions): Promise<SyncSummary> {
  const started = Date.now();
  const wh = opts.warehouse;
  const schema = opts.schema;
  const dryRun = opts.dryRun === true;
  const fullResync = opts.fullResync === true;
  const mapping: TraitMapping =
    typeof opts.traits === 'string' ? parseTraitsOption(opts.traits) : { ...(opts.traits ?? DEFAULT_TRAITS) };
  const host = resolveHost(opts);
  const hostId = host === null ? null : new URL(host).host;
  const limits = capLimits(opts.to, opts.limits, opts.batchSize);
  if (opts.rateLimit)
    limits.maxBatchEvents = Math.max(1, Math.min(limits.maxBatchEvents, Math.ceil(opts.rateLimit)));
  const retry: RetryPolicy = { ...DEFAULT_RETRY, ...(opts.retry ?? {}) };
  const timeoutMs = opts.timeoutMs ?? 15_000;
  const progress = opts.progress ?? silentProgress;
  const integrations = opts.integrations ?? DEFAULT_INTEGRATIONS;

  const columns = await sourceColumns(wh, schema);
  validateMapping(
    mapping,
    columns.map((c) => c.name),
    `${schema}.${SOURCE_TABLE}`,
  );
  if (!columns.some((c) => c.name === 'user_id')) {
    throw new UserError(
      `${schema}.${SOURCE_TABLE} has no user_id column: rebuild the models with \`cdp-lifecycle build\`.`,
    );
  }
  // a dry run too: its diff would count rows of two builds
  if (columns.some((c) => c.name === 'as_of_date')) {
    const unfinished = await unfinishedBuild(wh, schema);
    if (unfinished) throw new UserError(unfinished);
  }
  await ensureSyncTables(wh, schema);

  let destination: string;
  if (opts.name) destination = opts.name;
  else if (opts.writeKey && hostId !== null) {
    destination = `${opts.to}:${hostId}:${sha256(opts.writeKey).slice(0, 12)}`;
  } else if (opts.writeKey) {
    // a RudderStack dry run without --endpoint: the key's destination on whichever host it was synced to
    const suffix = `:${sha256(opts.writeKey).slice(0, 12)}`;
    const known = (await knownDestinations(wh, schema, `${opts.to}:`)).filter((d) => d.endsWith(suffix));
    destination = known.length === 1 ? known[0] : `${opts.to}:unknown${suffix}`;
  } else {
    const known = await keylessDestinations(wh, schema, opts, hostId);
    destination = known.length === 1 ? known[0] : `${opts.to}:${hostId ?? 'unknown'}:${NO_WRITE_KEY}`;
  }

  let transport: Transport | undefined;
  if (!dryRun && host !== null && opts.writeKey) {
    transport =
      opts.to === 'segment'
        ? new SegmentTransport(host, opts.writeKey, timeoutMs, limits)
        : // Loaded on demand: the SDK pulls in axios and friends, which a Segment or dry run has no use for.
          new (await import('./rudderstack')).RudderStackTransport(
            host,
            opts.writeKey,
            timeoutMs,
            limits,
            Math.floor(opts.concurrency ?? 2),
          );
    transport = maskingTransport(transport, opts.writeKey);
  }
  // Sizes are measured as the target's wire format, also in a dry run, so it reports the same invalid rows.
  const sizer: Sizer = opts.to === 'segment' ? SEGMENT_SIZER : RUDDERSTACK_SIZER;
  const concurrency = Math.floor(opts.concurrency ?? 2);

  const runId = randomUUID();
  const startedAt = new Date();
  await startRun(wh, schema, { runId, destination, target: opts.to, startedAt, dryRun, fullResync });

  const counts = { considered: 0, changed: 0, sent: 0, failed: 0, invalid: 0 };
  const transitions = new Map<string, SyncTransition>();
  const errors: SyncSummary['errors'] = [];
  let aborted: string | null = null;
  let fatal: unknown;
  let requests = 0;
  // failed rows that were sent but never answered: the CDP may hold them (counted for the error sentence)
  let inDoubt = 0;
  let batchNo = 0;
  const statusTrait = Object.keys(mapping).find((t) => mapping[t] === 'lifecycle_status');
  const timestamp = startedAt.toISOString();
  const salt = fullResync ? `full-resync:${runId}` : '';

  const groups = new Map<string, SyncProblemGroup>();
  // rows whose reason came after MAX_PROBLEM_REASONS others (a CDP echoing each row's id in its error)
  let untracked = 0;
  /** `reason` is what sync_log keeps for the row; `group`, when given, the same reason without its figures. */
  const noteError = (
    userId: string | null,
    status: 'failed' | 'invalid',
    reason: string,
    group = reason,
  ): void => {
    if (errors.length < 20) errors.push({ userId, status, error: reason });
    const key = `${status}\u0000${group}`;
    let g = groups.get(key);
    if (!g) {
      if (groups.size >= MAX_PROBLEM_REASONS) {
        untracked++;
        return;
      }
      g = { status, error: group, count: 0, userIds: [] };
      groups.set(key, g);
    }
    g.count++;
    if (g.userIds.length < 3) g.userIds.push(userId);
  };

  // Writes are serialised (one DuckDB writer; ordered state) and overlap with the requests. Acknowledged rows
  // are written in chunks of `stateFlushRows` or every 2 s, whichever comes first: each write is a set-based
  // join against sync_state, whose cost barely depends on the chunk size. At most one write waits behind the
  // requests, so a crash makes the next run replay at most the unwritten chunk and what was in flight, under
  // the same messageIds.
  const stateFlushRows = Math.max(1, Math.floor(opts.stateFlushRows ?? 5000));
  let writeChain: Promise<void> = Promise.resolve();
  let writesPending = 0;
  let writeError: unknown;
  // rows sent whose state write failed or was skipped: the run keeps its pending table so that
  // the next one resends them (see markInDoubt)
  let unrecorded = 0;
  const write = (fn: () => Promise<void>, rows = 0): void => {
    writesPending++;
    // The chain never rejects (an unobserved rejection would kill the process); the first error stops the
    // run through writeError, and later writes are skipped so state is never written out of order.
    writeChain = writeChain
      .then(async () => {
        if (writeError !== undefined) {
          unrecorded += rows;
          return;
        }
        try {
          await fn();
        } catch (err) {
          unrecorded += rows;
          throw err;
        }
      })
      .catch((err: unknown) => {
        writeError ??= err;
      })
      .finally(() => writesPending--);
  };
  let acked: LogEntry[] = [];
  let logOnly: LogEntry[] = [];
  let lastFlush = Date.now();
  const flushWrites = (force: boolean): void => {
    if (acked.length > 0 && (force || acked.length >= stateFlushRows || Date.now() - lastFlush >= 2000)) {
      const entries = acked;
      const no = ++batchNo;
      acked = [];
      lastFlush = Date.now();
      write(() => memory.run(() => recordBatch(wh, schema, runId, no, destination, entries)), entries.length);
    }
    if (logOnly.length > 0 && (force || logOnly.length >= stateFlushRows)) {
      const entries = logOnly;
      const no = ++batchNo;
      logOnly = [];
      write(() => appendLog(wh, schema, runId, no, entries));
    }
  };
  const inflight = new Set<Promise<void>>();

  const dispatch = async (batch: Pending[]): Promise<void> => {
    if (batch.length === 0) return;
    if (!transport) {
      for (const p of batch) {
        p.entry.status = 'dry_run';
        logOnly.push(p.entry);
      }
      flushWrites(false);
      progress.increment(batch.length);
      while (writesPending > 1) await writeChain;
      return;
    }
    while (inflight.size >= concurrency) await Promise.race(inflight);
    while (writesPending > 1) await writeChain;
    if (aborted || fatal || writeError !== undefined || opts.signal?.aborted) return;
    const t = transport;
    const job = (async () => {
      const res = await deliverBatch(
        t,
        batch.map((p) => p.msg),
        retry,
        limiter,
        (info) =>
          opts.onRetry?.({ ...info, message: info.outcome.kind === 'ok' ? '' : info.outcome.message }),
        opts.signal,
        refusedOutright,
      );
      requests += res.requests;
      res.results.forEach((r, i) => {
        const e = batch[i].entry;
        // not acknowledged, nor possibly received, and the run stops (interrupted, or refused outright by a later
        // request of this batch): left unrecorded, so the next run sends it as changed
        if (!r.ok && r.unrecorded) return;
        if (!r.ok && r.inDoubt) inDoubt++;
        if (r.ok) {
          e.status = 'sent';
          counts.sent++;
        } else {
          e.status = 'failed';
          e.error = r.error;
          counts.failed++;
          noteError(e.userId, 'failed', r.error);
        }
        acked.push(e);
      });
      // raised only once what the batch's earlier requests had acknowledged is queued for recording above
      if (res.fatal) fatal ??= res.fatal;
      if (res.exhausted && !aborted) {
        aborted =
          res.stopReason ??
          `the CDP kept failing after ${retry.maxAttempts} attempts; the rest is left for the next run`;
      }
      flushWrites(false);
      progress.increment(batch.length);
    })().catch((err: unknown) => {
      fatal ??= err;
    });
    inflight.add(job);
    void job.finally(() => inflight.delete(job));
  };
  const limiter = new RateLimiter(opts.rateLimit);
  // a 401/403/404 in one batch stops the sends of every batch in flight, not only its own
  const refusedOutright: { fatal?: FatalDeliveryError } = {};

  let runError: unknown;
  let memory: MemoryCap = { restore: async () => undefined, run: (step) => step() };
  let pendingTable: string | undefined;
  try {
    memory = await capDuckDbMemory(
      wh,
      opts.duckdbMemoryLimit === undefined ? '32MB' : opts.duckdbMemoryLimit,
    );
    const q = buildDiffQuery({
      dialect: wh.dialect,
      schema,
      mapping,
      columns,
      destination,
      fullResync,
      dryRunId: dryRun ? runId : undefined,
      startedAtMs: startedAt.getTime(),
    });
    // housekeeping only: a role that may not drop them still syncs
    await dropStaleDryRunTables(wh, schema).catch(() => undefined);
    const duplicates = await memory.run(() => duplicateUserIds(wh, schema));
    pendingTable = q.pendingTable;
    await wh.exec(`drop table if exists ${qualify(schema, q.pendingTable)}`);
    await wh.exec(q.createSql);
    await memory.run(() => wh.query(q.fillSql, q.params));
    const [c] = await wh.query<{ considered: number; changed: number }>(
      `select (select count(*) from ${qualify(schema, SOURCE_TABLE)}) as considered,
              (select count(*) from ${qualify(schema, q.pendingTable)}) as changed`,
    );
    counts.considered = Number(c?.considered ?? 0);
    // Everything the diff selected, even if the run stops early (then sent + failed + invalid < changed).
    counts.changed = Number(c?.changed ?? 0);
    progress.start(counts.changed, dryRun ? `sync (dry run) → ${opts.to}` : `sync → ${opts.to}`, 'users');

    let batch: Pending[] = [];
    let batchBytes = 0;

    outer: for await (const page of wh.stream<DiffRow>(q.readSql, [], opts.pageSize ?? 5000)) {
      for (const row of page) {
        // a failing warehouse is not read on; a run stopped by its CDP still counts the rest of the diff below,
        // so that its transitions add up to `changed` like a whole run's
        // (only the status columns are looked at then: the rest of a large diff costs its read, little more)
        if (writeError !== undefined || opts.signal?.aborted) break outer;
        const prev = row.prev_traits;
        const fromStatus =
          statusTrait && prev && typeof prev === 'object' && prev[statusTrait] != null
            ? String(prev[statusTrait])
            : null;
        const toStatus = row.to_status ?? null;
        const key = `${fromStatus ?? ''}\u0000${toStatus ?? ''}`;
        const tr = transitions.get(key) ?? { from: fromStatus, to: toStatus, count: 0 };
        tr.count++;
        transitions.set(key, tr);
        if (aborted || fatal) continue;
        const userId = row.user_id === null || row.user_id === undefined ? null : String(row.user_id);
        const traits: Record<string, ReturnType<typeof toTraitValue>> = {};
        for (const { trait, alias } of q.columnAliases) traits[trait] = toTraitValue(row[alias]);
        const entry: LogEntry = {
          userId,
          status: 'invalid',
          error: null,
          fromStatus,
          toStatus,
          messageId: null,
          traitsHash: row.traits_hash,
          traits,
        };
        let reason: string | null = null;
        let group: string | undefined;
        if (userId === null || userId.trim() === '') reason = 'user_id is null, empty or blank';
        else if (duplicates.has(userId))
          reason = `user_id appears more than once in ${schema}.${SOURCE_TABLE}`;
        let msg: IdentifyMessage | undefined;
        let bytes = 0;
        if (reason === null && userId !== null) {
          entry.messageId = messageIdFor(destination, userId, row.traits_hash, salt, row.prev_message_id);
          msg = {
            type: 'identify',
            userId,
            messageId: entry.messageId,
            timestamp,
            traits,
            context: { library: LIBRARY, cdp_lifecycle: { version: LIBRARY.version, run_id: runId } },
            integrations,
          };
          bytes = sizer.eventBytes(msg);
          if (bytes > limits.maxEventBytes) {
            reason = `the identify is ${bytes} bytes, over the ${limits.maxEventBytes}-byte event limit`;
            // one group for all of them in the summary, not one per size
            group = `the identify is over the ${limits.maxEventBytes}-byte event limit`;
          }
        }
        if (reason !== null || !msg) {
          entry.error = reason;
          counts.invalid++;
          noteError(userId, 'invalid', reason ?? 'invalid', group ?? reason ?? 'invalid');
          logOnly.push(entry);
          progress.increment(1);
          continue;
        }
        if (
          batch.length > 0 &&
          (batch.length >= limits.maxBatchEvents ||
            batchBytes + bytes + sizer.batchOverheadBytes(batch.length + 1) > limits.maxBatchBytes)
        ) {
          await dispatch(batch);
          batch = [];
          batchBytes = 0;
        }
        batch.push({ msg, bytes, entry });
        batchBytes += bytes;
      }
      flushWrites(false);
    }
    if (!aborted && !fatal && writeError === undefined && !opts.signal?.aborted) await dispatch(batch);
    await Promise.all(inflight);
  } catch (err) {
    runError = err;
  }
  await Promise.allSettled(inflight);
  // Whatever was acknowledged is recorded, even when the run stops on an error.
  flushWrites(true);
  await writeChain;
  runError ??= writeError;
  await transport?.close().catch(() => undefined);
  // Kept when rows sent went unrecorded: their state still shows the value delivered before, so a warehouse
  // that went back to it meanwhile would look unchanged while the CDP holds the other; the next run marks them
  // failed from this table, as it does a killed run's.
  if (pendingTable && unrecorded === 0) {
    const t = qualify(schema, pendingTable);
    await wh.exec(`drop table if exists ${t}`).catch(() => undefined);
  }
  await memory.restore().catch(() => undefined);
  runError ??= fatal;
  if (runError && unrecorded > 0) runError = unrecordedError(runError, unrecorded, runId);

  const interrupted = opts.signal?.aborted === true;
  if (interrupted)
    aborted ??= 'interrupted: what the CDP acknowledged is recorded; the next run sends the rest';
  let status: RunStatus = interrupted ? 'interrupted' : counts.failed > 0 ? 'failed' : 'success';
  let errorText: string | null = aborted;
  if (runError) {
    status = 'error';
    errorText =
      runError instanceof FatalDeliveryError
        ? `${opts.to === 'segment' ? 'Segment' : 'RudderStack'} ${runError.status === undefined ? 'cannot be reached' : 'refused the request'}: ${runError.message}`
        : errorMessage(runError);
  }
  const transitionRecord: Record<string, number> = {};
  for (const t of transitions.values()) transitionRecord[transitionLabel(t.from, t.to)] = t.count;
  try {
    await finishRun(wh, schema, runId, status, counts, transitionRecord, errorText);
  } catch (err) {
    runError ??= err;
  }
  progress.stop();

  if (runError) {
    let thrown: unknown = runError;
    if (runError instanceof FatalDeliveryError) {
      const what = runError.status === undefined ? 'cannot be reached' : 'refused the sync';
      // said, since the user would otherwise take it that the whole run was lost
      const kept =
        (counts.sent > 0 ? `; the ${counts.sent} row(s) it acknowledged before are recorded` : '') +
        (inDoubt > 0
          ? `; ${inDoubt} row(s) sent without an answer are marked failed, and the next run resends them`
          : '');
      thrown = new UserError(
        `${opts.to === 'segment' ? 'Segment' : 'RudderStack'} at ${host} ${what}: ${runError.message}; nothing more was sent${kept} (run ${runId}).`,
        { cause: runError },
      );
    }
    // the log's sync record still carries the run's figures: a refused key is the failure an alert most needs
    if (typeof thrown === 'object' && thrown !== null)
      failedRuns.set(thrown, {
        runId,
        destination,
        status: 'error',
        dryRun,
        ...counts,
        error: errorText ?? errorMessage(thrown),
      });
    throw thrown;
  }

  // the reasons with the most rows, whenever they first came up; ties in a fixed order
  const sortedGroups = [...groups.values()].sort(
    (a, b) =>
      b.count - a.count || a.status.localeCompare(b.status, 'en') || a.error.localeCompare(b.error, 'en'),
  );
  const shownGroups = sortedGroups.slice(0, 20);
  const hiddenGroups = sortedGroups.slice(20);

  return {
    runId,
    destination,
    target: opts.to,
    host,
    dryRun,
    fullResync,
    status,
    ...counts,
    // ties in a fixed order, so that the summary reads the same on every warehouse and plan
    transitions: [...transitions.values()].sort(
      (a, b) =>
        b.count - a.count ||
        (a.from ?? '').localeCompare(b.from ?? '', 'en') ||
        (a.to ?? '').localeCompare(b.to ?? '', 'en'),
    ),
    errors,
    problemGroups: shownGroups,
    otherProblems: untracked + hiddenGroups.reduce((sum, g) => sum + g.count, 0),
    aborted,
    requests,
    durationMs: Date.now() - started,
    exitCode: counts.failed > 0 || interrupted ? 1 : 0,
  };
}

export { formatSyncSummary } from './summary';
