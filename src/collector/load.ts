/**
 * `cdp-lifecycle load <file.ndjson>... | -`: lands spec events from NDJSON files through the same Ingestor as
 * the collector. Lines are split as `wc -l` and `tail` split them and handed over in bounded batches; the reader waits while a
 * batch is being written, so memory stays flat whatever the file size.
 */
import * as fs from 'node:fs';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import type { Logger } from 'pino';
import { Ingestor } from './ingest';
import { stripWriteKey } from './mask';
import { ensureRawTables, type Warehouse } from '../warehouse';
import { UserError, errorMessage } from '../errors';
import { silentProgress, type Progress } from '../util/progress';
import { readLinesCapped } from '../util/lines';
import { DEFAULT_MAX_EVENT_BYTES } from '../../transforms/schemas';

export interface LoadOptions {
  warehouse: Warehouse;
  rawSchema: string;
  /** NDJSON files; `-` reads standard input. */
  files: string[];
  progress?: Progress;
  maxEventBytes?: number;
  logger?: Logger;
  /** Lines per batch handed to the Ingestor (default 2,000). */
  batchLines?: number;
  /** A batch is handed over early once its lines hold this many characters (default 32 Mi): long lines. */
  batchChars?: number;
  /** The most of one line held (default MAX_LINE_CHARS, 511 Mi): a longer line is rejected, kept cut to this. */
  maxLineChars?: number;
  /** Standard input, for `-` (default process.stdin). */
  stdin?: Readable;
  /**
   * Called each time the committed part of the input grows: so an interrupted load can say what landed and
   * where to go on from.
   */
  onCommitted?: (state: LoadCommitted) => void;
  /**
   * Aborting stops the load at a clean point: no more lines are read, the lines read but not yet handed to the
   * warehouse are dropped, and the batches being written commit. loadFiles then rejects with LoadStopped, and
   * the last onCommitted state is exactly what landed.
   */
  signal?: AbortSignal;
}

/** An aborted load (see LoadOptions.signal) once it stopped. */
export class LoadStopped extends Error {
  constructor() {
    super('The load was stopped.');
  }
}

/**
 * A file that could not be read to its end (a gzip cut short, a disk error): every line read before the failure
 * was written first, so the last onCommitted state says what landed and where the rest starts.
 */
export class LoadReadFailed extends UserError {}

/** How far a load has committed: every line of `filesDone`, then lines 1 to `throughLine` of `file`. */
export interface LoadCommitted {
  filesDone: string[];
  /** The file being loaded (`stdin` for `-`). */
  file: string;
  /** Whether `file` is gzipped, so that a resume command decompresses it before counting lines. */
  gzipped?: boolean;
  throughLine: number;
  /** Events landed and lines rejected in lines 1 to `throughLine` (and every line of `filesDone`). */
  landed: number;
  rejected: number;
  /**
   * Lines of `file` after `throughLine` already written (landed events and rejected lines alike), whose batch
   * committed before an earlier one.
   */
  landedBeyond: number;
}

export interface BadLine {
  file: string;
  /** 1-based line number. */
  line: number;
  reason: string;
}

export interface LoadSummary {
  files: number;
  /** Non-empty lines read. */
  lines: number;
  landed: number;
  rejected: number;
  /** Rejected events (invalid events and unparsable lines) counted by reason. */
  rejectedByReason: Record<string, number>;
  /** The first rejected lines with their location (at most 1,000 are listed; all are in rejected_events). */
  badLines: BadLine[];
}

const MAX_LISTED = 1000;

const count = (n: number, word: string): string =>
  `${n.toLocaleString('en-US')} ${word}${n === 1 ? '' : 's'}`;

/** "2 files", "standard input", "standard input and 1 file": what a load read, for its summaries. */
export function describeInputs(files: readonly string[]): string {
  const named = files.filter((f) => f !== '-').length;
  const stdin = files.length > named ? 'standard input' : '';
  return [stdin, named > 0 || !stdin ? count(named, 'file') : ''].filter(Boolean).join(' and ');
}

/**
 * Throws a UserError naming the first file `load` could not read (missing, a directory, unreadable), so that
 * the CLI can check them before it opens, and so creates, a warehouse.
 */
export function checkLoadFiles(files: readonly string[]): void {
  if (files.length === 0)
    throw new UserError('Name at least one NDJSON file to load, or - for standard input.');
  for (const f of files) {
    if (f !== '-' && !fs.existsSync(f)) throw new UserError(`The file ${f} does not exist: check the path.`);
    if (f !== '-' && fs.statSync(f).isDirectory())
      throw new UserError(`${f} is a directory: name NDJSON files.`);
    if (f !== '-') {
      try {
        fs.accessSync(f, fs.constants.R_OK);
      } catch (err) {
        throw new UserError(`The file ${f} cannot be read (${errorMessage(err)}): check its permissions.`, {
          cause: err,
        });
      }
    }
  }
}

const NDJSON_HINT = 'load takes NDJSON, one event object per line (e.g. jq -c ".[]")';

// Lines end at a line feed only, as `tail` counts them: a file with old Mac line ends (CR alone) is one long
// line, which would be a puzzle without this hint (and is over the event limit as soon as it holds a few
// events). Looked for on rejected lines only, not on every line read.
const LONE_CR = ' and holds a carriage return not followed by a line feed: end lines with \\n or \\r\\n';

/**
 * The most of one line load holds, just under the longest string V8 can make (2^29 - 24 characters): SPEC §2
 * keeps a rejected line's raw text whole, so only a line that no string could hold (a whole export on one
 * line) is kept cut to this, while the lines after it are read as usual. Held whole, it would stop the load
 * and lose the valid lines around it.
 */
export const MAX_LINE_CHARS = 511 * 1024 * 1024;

// (no byte count in the reason: the summary groups lines by reason, and every cut line would be its own group)
function cutLineReason(head: string, cap: number): string {
  const most = cap % (1024 * 1024) === 0 ? `${cap / (1024 * 1024)} Mi characters` : `${cap} characters`;
  const hint = head.trimStart().startsWith('[')
    ? `; it starts with "[": ${NDJSON_HINT}`
    : head.includes('\r')
      ? `; it${LONE_CR.replace(/^ and/, '')}`
      : '';
  return `line is larger than the ${most} load holds of a line: its first ${most} are kept as its payload${hint}`;
}

/**
 * How much longer than the event's compact JSON its line may be and still be parsed: `\u0041` spells one byte in
 * six, and separators may carry spaces; beyond that a line is not parsed (see readLine).
 */
const LINE_SPELLING_FACTOR = 8;

/** A non-empty line's event, or why it is rejected as a line (the Ingestor validates the event itself). */
function readLine(trimmed: string, maxEventBytes: number): { event: unknown } | { reason: string } {
  // The limit is on the event as compact JSON, as the collector measures it; a line may spell the same event
  // up to six times longer (`\u65e5` escapes, as Python's json.dumps writes, and spaces), so only a line longer
  // than any such spelling can be is rejected unparsed: JSON.parse of a whole export on one line (hundreds of
  // MB) builds gigabytes of objects only to reject them. The line itself is kept, as every rejected line is.
  const most = maxEventBytes * LINE_SPELLING_FACTOR;
  if (trimmed.length > most && Buffer.byteLength(trimmed) > most) {
    if (trimmed.includes('\r')) return { reason: `line is larger than ${most} bytes${LONE_CR}` };
    return {
      reason: trimmed.startsWith('[')
        ? `line is larger than ${most} bytes and starts with "[": ${NDJSON_HINT}`
        : `line is larger than ${most} bytes, which no event of at most ${maxEventBytes} bytes spells`,
    };
  }
  let event: unknown;
  try {
    event = JSON.parse(trimmed);
  } catch {
    return { reason: `line is not valid JSON${trimmed.includes('\r') ? LONE_CR : ''}` };
  }
  // a JSON file of events, or a webhook's array, where one event per line was expected
  if (Array.isArray(event)) return { reason: `line is a JSON array: ${NDJSON_HINT}` };
  // As the collector does before it validates: an event's writeKey never lands, so it is not measured either
  // (a line the collector would take, key included, lands). The line kept for a rejected event still holds
  // it, masked as "***", as the collector keeps an event's text.
  stripWriteKey(event);
  return { event };
}

/** True when the file starts with gzip's magic bytes (whatever its name); false when it cannot be read here,
 * so that reading it fails where every read failure is reported. */
function isGzipFile(file: string): boolean {
  let fd: number;
  try {
    // only a regular file: peeking at a pipe (`load <(zcat f.gz)`) would consume its first bytes
    if (!fs.statSync(file).isFile()) return false;
    fd = fs.openSync(file, 'r');
  } catch {
    return false;
  }
  try {
    const head = Buffer.alloc(2);
    return fs.readSync(fd, head, 0, 2, 0) === 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    fs.closeSync(fd);
  }
}

/** Loads every file in order; rejected lines land in `rejected_events` and are counted in the summary. */
export async function loadFiles(opts: LoadOptions): Promise<LoadSummary> {
  checkLoadFiles(opts.files);
  // Before the first line is read: a raw schema of views or foreign tables refuses every write alike.
  await ensureRawTables(opts.warehouse, opts.rawSchema);
  const progress = opts.progress ?? silentProgress;
  const batchLines = opts.batchLines ?? 2000;
  const batchChars = opts.batchChars ?? 32 * 1024 * 1024;
  const maxEventBytes = opts.maxEventBytes ?? DEFAULT_MAX_EVENT_BYTES;
  const maxLineChars = opts.maxLineChars ?? MAX_LINE_CHARS;
  const ingestor = new Ingestor({
    warehouse: opts.warehouse,
    rawSchema: opts.rawSchema,
    maxEventBytes: opts.maxEventBytes,
    logger: opts.logger,
    // One writer feeds it, so there is nothing to wait for: write each batch at once.
    batchWindowMs: 0,
  });
  const summary: LoadSummary = {
    files: opts.files.length,
    lines: 0,
    landed: 0,
    rejected: 0,
    rejectedByReason: {},
    badLines: [],
  };
  const tally = (reason: string): void => {
    summary.rejected++;
    summary.rejectedByReason[reason] = (summary.rejectedByReason[reason] ?? 0) + 1;
  };
  const list = (file: string, line: number, reason: string): void => {
    if (summary.badLines.length < MAX_LISTED) summary.badLines.push({ file, line, reason });
  };

  const files = opts.files;
  const total = files.includes('-') ? undefined : files.reduce((n, f) => n + fs.statSync(f).size, 0);
  progress.start(total, 'load', total === undefined ? 'lines' : 'bytes');
  let bytesDone = 0;
  const filesDone: string[] = [];
  // what the committed prefix of the input holds (see `order` below)
  const committed = { landed: 0, rejected: 0 };
  try {
    for (const file of files) {
      const name = file === '-' ? 'stdin' : file;
      // A gzipped file (Segment's and RudderStack's storage exports are) is read through gunzip; progress then
      // counts the compressed bytes read, the size the total was made of.
      const fileBase = bytesDone;
      let compressedRead = 0;
      const raw = file === '-' ? undefined : fs.createReadStream(file);
      const gzipped = file !== '-' && isGzipFile(file);
      let input: Readable;
      if (raw && gzipped) {
        raw.on('data', (c: Buffer | string) => (compressedRead += c.length));
        const gunzip = createGunzip();
        raw.on('error', (err) => gunzip.destroy(err));
        input = raw.pipe(gunzip);
      } else input = raw ?? opts.stdin ?? process.stdin;
      if (opts.signal?.aborted) throw new LoadStopped();
      // an abort ends the lines even while they wait on a slow input (stdin)
      const lines = readLinesCapped(input, opts.signal, maxLineChars);
      let lineNo = 0;
      let events: unknown[] = [];
      let texts: string[] = [];
      let lineNos: number[] = [];
      let bad: Array<{ reason: string; payload: string; line: number }> = [];
      // characters of the lines held in the batch being read, which flushes it early when its lines are long
      let heldChars = 0;
      // Up to two batches in flight: the next one is read and validated while the previous one is written.
      const inFlight: Array<Promise<void>> = [];
      // Batches in reading order, so that "committed through line n" never skips one still in flight: two
      // batches write at once, and on PostgreSQL the later one may commit first. Only the prefix of committed
      // batches counts as landed for an interruption; a later batch already committed is reported apart.
      // A batch's bad lines are noted when it leaves this queue, in line order: so the summary lists the first
      // bad lines of the input, whichever batch commits first.
      const order: Array<{
        last: number;
        done: boolean;
        landed: number;
        rejected: number;
        bad: Array<{ line: number; reason: string }>;
      }> = [];
      let throughLine = 0;

      const flush = async (): Promise<void> => {
        if (events.length === 0 && bad.length === 0) return;
        const batch = { lineNos, bad };
        const place = {
          last: lineNo,
          done: false,
          landed: 0,
          rejected: 0,
          bad: [] as Array<{ line: number; reason: string }>,
        };
        order.push(place);
        const written = ingestor
          .ingest(events, { keepReceivedAt: true, rawTexts: texts, extraRejections: bad })
          .then((res) => {
            for (const b of batch.bad) tally(b.reason);
            for (const r of res.rejected) tally(r.reason);
            summary.landed += res.landed;
            progress.update(total === undefined ? summary.lines : bytesDone, `${summary.landed} landed`);
            Object.assign(place, {
              done: true,
              landed: res.landed,
              rejected: res.rejected.length + batch.bad.length,
              bad: [
                ...batch.bad,
                ...res.rejected.map((r) => ({ line: batch.lineNos[r.index], reason: r.reason })),
              ].sort((x, y) => x.line - y.line),
            });
            while (order.length > 0 && order[0].done) {
              const b = order.shift() as (typeof order)[number];
              for (const x of b.bad) list(name, x.line, x.reason);
              throughLine = b.last;
              committed.landed += b.landed;
              committed.rejected += b.rejected;
            }
            opts.onCommitted?.({
              filesDone: filesDone.slice(),
              file: name,
              gzipped,
              throughLine,
              landed: committed.landed,
              rejected: committed.rejected,
              landedBeyond: order.reduce((n, b) => n + (b.done ? b.landed + b.rejected : 0), 0),
            });
          })
          .catch((err: unknown) => {
            if (err instanceof UserError) throw err;
            throw new UserError(`Writing events from ${name} to the warehouse failed: ${errorMessage(err)}`, {
              cause: err,
            });
          });
        // Handled here so a failure waiting in the queue is not an unhandled rejection; it is rethrown when
        // the batch is awaited.
        written.catch(() => undefined);
        events = [];
        texts = [];
        lineNos = [];
        bad = [];
        heldChars = 0;
        inFlight.push(written);
        if (inFlight.length >= 2) await inFlight.shift();
      };

      try {
        for await (const { text: line, cutBytes } of lines) {
          if (opts.signal?.aborted) break;
          lineNo++;
          bytesDone = gzipped
            ? fileBase + compressedRead
            : bytesDone + (cutBytes ?? Buffer.byteLength(line)) + 1;
          const trimmed = cutBytes === undefined ? line.trim() : line;
          if (trimmed === '') continue;
          summary.lines++;
          const read: ReturnType<typeof readLine> =
            cutBytes === undefined
              ? readLine(trimmed, maxEventBytes)
              : { reason: cutLineReason(line, maxLineChars) };
          if ('reason' in read) bad.push({ reason: read.reason, payload: line, line: lineNo });
          else {
            events.push(read.event);
            texts.push(trimmed);
            lineNos.push(lineNo);
          }
          // Rejected lines count towards the batch too: a file of nothing but bad lines (a CSV loaded by
          // mistake) is written as it is read instead of piling up until the end.
          heldChars += line.length;
          if (events.length + bad.length >= batchLines || heldChars >= batchChars) await flush();
        }
        if (!opts.signal?.aborted) await flush();
        // Settle every batch before reporting, even when one failed, so no write outlives this call.
        const settled = await Promise.allSettled(inFlight.splice(0));
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (failed) throw failed.reason;
        if (opts.signal?.aborted) throw new LoadStopped();
        filesDone.push(name);
      } catch (err) {
        if (err instanceof UserError || err instanceof LoadStopped) {
          await Promise.allSettled(inFlight.splice(0));
          throw err;
        }
        // The line being read failed: the ones before it were read whole, and are valid events like any
        // other, so they are written before the load stops (a storage export cut short keeps its first part).
        let writeError: unknown;
        await flush().catch((e: unknown) => (writeError = e));
        const settled = await Promise.allSettled(inFlight.splice(0));
        const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
        if (writeError !== undefined) throw writeError;
        if (failed) throw failed.reason;
        const where = lineNo === 0 ? 'before its first line' : `after line ${lineNo}`;
        throw new LoadReadFailed(`Reading ${name} failed ${where}: ${errorMessage(err)}.`, { cause: err });
      } finally {
        await lines.return(undefined);
        if (raw) {
          raw.destroy();
          if (input !== raw) input.destroy();
        }
      }
    }
  } finally {
    await ingestor.close();
    progress.stop(
      `loaded ${count(summary.landed, 'event')} from ${describeInputs(opts.files)}, ${summary.rejected} rejected` +
        (summary.rejected > 0 ? ` (see ${opts.rawSchema}.rejected_events)` : ''),
    );
  }
  return summary;
}
