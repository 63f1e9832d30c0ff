import * as fs from 'node:fs';
import * as path from 'node:path';
import { Cron } from 'croner';
import pino, { type Logger } from 'pino';
import { UsageError, UserError, errorMessage } from '../../errors';
import type { CommandContext, CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { Output, seconds, type OutStream } from '../output';
import { sayLastWords } from '../interrupt';
import { collectorPart } from '../parts';
import { ensureRawTables, parseWarehouseUrl, type Warehouse } from '../../warehouse';
import { runPipeline } from './run';
import {
  checkProject,
  checkSyncSettings,
  checkTimezoneOnWarehouse,
  checkTraitColumns,
  refuseDemoWarehouse,
  runResultsFor,
  warnAboutVars,
} from '../steps';

/** The write key cdp-lifecycle.example.yml ships with. */
export const PLACEHOLDER_WRITE_KEY = 'change-me';

/** Validates a cron expression up front, so a typo is a usage error rather than a silent non-schedule. */
export function parseSchedule(pattern: string): Cron {
  try {
    // croner takes a string with a `:` (an ISO date-time) as one run at that instant: once it has fired,
    // nothing would be scheduled any more, without a word
    if (!pattern.trim().startsWith('@') && pattern.trim().split(/\s+/).length < 5)
      throw new Error(
        'a date-time fires once: a cron expression has 5 fields, 6 with seconds first, 7 with a year last, or is @hourly, @daily…',
      );
    const probe = new Cron(pattern, { paused: true });
    if (!probe.nextRun()) throw new Error('it never fires');
    return probe;
  } catch (err) {
    throw new UsageError(
      `The schedule "${pattern}" is not a valid cron expression (${errorMessage(err)}): use e.g. "0 * * * *" for hourly.`,
    );
  }
}

function waitForShutdownSignal(log: Logger): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      // A second signal means "now": leave without waiting for the drain.
      const force = (second: NodeJS.Signals): void => {
        log.error('second signal received: exiting without finishing the drain');
        // a scheduled run in progress still leaves its run_results.json (see buildStep)
        sayLastWords(second);
        process.exit(1);
      };
      process.once('SIGTERM', force);
      process.once('SIGINT', force);
      resolve(signal);
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}

/** An Output whose lines become structured log records, so a scheduled run logs like the collector. */
function logOutput(log: Logger, verbose: boolean): Output {
  const stream: OutStream = {
    write(chunk: string | Uint8Array): boolean {
      for (const raw of String(chunk).split('\n')) {
        const line = raw.replace(/\s+$/, '');
        if (line === '') continue;
        if (line.startsWith('error: ')) log.error(line.slice(7));
        else if (line.startsWith('warning: ')) log.warn(line.slice(9));
        else log.info(line);
      }
      return true;
    },
  };
  // never coloured (FORCE_COLOR included): the lines become records, read by their `error: ` prefix
  const out = new Output(verbose, stream, stream, false);
  out.record = (level, fields, message) => log[level](fields, message);
  return out;
}

/**
 * Runs build, test and sync on a schedule on the collector's own warehouse connection (a DuckDB file has a
 * single writer process). A run never overlaps the previous one: croner's `protect` skips a tick while a run
 * is in progress, and the skip is logged.
 */
function startSchedule(
  ctx: CommandContext,
  wh: Warehouse,
  pattern: string,
  log: Logger,
): { stop(): Promise<void> } {
  const syncConfigured = Boolean(ctx.config.sync.to && ctx.config.sync.writeKey);
  if (!syncConfigured) {
    // name only what is missing: sync.to alone is a half-done set-up, not "no destination"
    log.warn(
      ctx.config.sync.to
        ? `sync.to is ${ctx.config.sync.to} but no sync write key is set (sync.write_key in cdp-lifecycle.yml, or LIFECYCLE_SYNC_WRITE_KEY): scheduled runs will build and test only`
        : 'no sync destination configured (sync.to and sync.write_key in cdp-lifecycle.yml, or LIFECYCLE_SYNC_TO and ' +
            'LIFECYCLE_SYNC_WRITE_KEY): scheduled runs will build and test only',
    );
  }
  const steps = syncConfigured ? (['build', 'test', 'sync'] as const) : (['build', 'test'] as const);
  let runNumber = 0;
  let current: Promise<void> | undefined;
  const job = new Cron(
    pattern,
    {
      protect: () =>
        log.warn({ run: runNumber }, 'scheduled run skipped: the previous run is still in progress'),
    },
    () => {
      const run = ++runNumber;
      const runLog = log.child({ run });
      const started = Date.now();
      runLog.info({ steps }, 'scheduled run started');
      current = (async () => {
        const runCtx: CommandContext = { ...ctx, out: logOutput(runLog, ctx.verbose) };
        try {
          const code = await runPipeline(
            runCtx,
            wh,
            { runResults: await runResultsFor(runCtx, 'run') },
            steps,
          );
          runLog[code === 0 ? 'info' : 'error'](
            { exitCode: code, ms: Date.now() - started },
            `scheduled run ${code === 0 ? 'succeeded' : 'failed'} in ${seconds(Date.now() - started)}`,
          );
        } catch (err) {
          // the exit code `run` would have ended with, as for a step that fails: one field to alert on
          const exitCode = runCtx.out.failure(err);
          runLog.error(
            { exitCode, ms: Date.now() - started },
            `scheduled run failed in ${seconds(Date.now() - started)}`,
          );
        } finally {
          // none once the schedule is stopping (a signal came during the run)
          const next = job.nextRun();
          if (next) runLog.info({ next: next.toISOString() }, 'next scheduled run');
        }
      })();
      return current;
    },
  );
  log.info({ schedule: pattern, steps, next: job.nextRun()?.toISOString() }, 'schedule started');
  return {
    async stop() {
      job.stop();
      if (job.isBusy() && current) {
        log.info('waiting for the scheduled run in progress to finish (send the signal again to exit now)');
      }
      await current;
    },
  };
}

export const serveCommand: CommandSpec = {
  name: 'serve',
  summary: 'run the collector (Segment HTTP Tracking API, RudderStack data plane API, webhooks)',
  examples: [
    'cdp-lifecycle serve --write-key $COLLECTOR_KEY',
    'LIFECYCLE_WRITE_KEYS=key1,key2 cdp-lifecycle serve --host 0.0.0.0 --port 8080',
    'cdp-lifecycle serve --write-key $KEY --schedule "15 * * * *"   # build, test, sync hourly',
  ],
  notes:
    'Endpoints: POST /v1/batch, /v1/import, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias,\n' +
    '/v1/group, /webhook; GET /health. Auth: HTTP Basic with a write key as user name, or writeKey in the body.\n' +
    'SIGTERM / SIGINT drain in-flight requests, finish a scheduled run in progress, then exit 0.',
  action: async (ctx) => {
    const c = ctx.config.serve;
    if (c.writeKeys.length === 0) {
      throw new UsageError(
        'The collector needs at least one write key: pass --write-key <key> (repeatable) or set LIFECYCLE_WRITE_KEYS.',
      );
    }
    // the example config's placeholder: anyone who reads the docs could send events with it
    if (c.writeKeys.includes(PLACEHOLDER_WRITE_KEY)) {
      throw new UsageError(
        `The write key "${PLACEHOLDER_WRITE_KEY}" is the example config's placeholder: set serve.write_keys (or LIFECYCLE_WRITE_KEYS) to keys of your own, e.g. from \`openssl rand -hex 16\`.`,
      );
    }
    if (c.schedule) {
      parseSchedule(c.schedule).stop();
      // Every scheduled run would fail on these: say so now, not once per run in the log.
      await checkProject(ctx, {});
      // a var typo would otherwise show only in the log of the first scheduled run
      await warnAboutVars(ctx, ctx.config.vars);
      const sync = ctx.config.sync;
      if (sync.to === 'rudderstack' && sync.writeKey && !sync.endpoint) {
        throw new UsageError(
          'The scheduled sync to RudderStack needs your data plane URL: set sync.endpoint in cdp-lifecycle.yml or LIFECYCLE_SYNC_ENDPOINT.',
        );
      }
      // what `run` refuses before it builds (the collector's own key, a bad endpoint, a trait mapped to no
      // column) would otherwise fail every scheduled run at its sync, after its build and test
      if (sync.to && sync.writeKey) {
        checkSyncSettings(ctx, false);
        await checkTraitColumns(ctx);
      }
    }
    const level = ctx.verbose ? 'debug' : (process.env.LOG_LEVEL ?? 'info');
    if (!(level in pino.levels.values)) {
      throw new UsageError(
        `LOG_LEVEL "${level}" is not a log level: use one of ${Object.keys(pino.levels.values).join(', ')}.`,
      );
    }
    const log = pino({ name: 'cdp-lifecycle', level });
    const signal = waitForShutdownSignal(log);
    // A collector that could not start (port taken, wrong --host) leaves no DuckDB file it just created:
    // nothing landed in it, and a stray file would later pass for a warehouse.
    const loc = parseWarehouseUrl(ctx.config.warehouse);
    const newFile =
      loc.kind === 'duckdb' && loc.path !== ':memory:' && !fs.existsSync(path.resolve(loc.path))
        ? path.resolve(loc.path)
        : undefined;
    // Only a file this process opened itself: when the open fails (another process created and locked it in
    // the meantime) the file is that process's. The inode guards against a file replaced since.
    let openedInode: number | undefined;
    let listening = false;
    const stages = {
      opened: () => {
        if (newFile) openedInode = fs.statSync(newFile).ino;
        // a relative path follows the working directory, not the config file: say which file this is
        if (loc.kind === 'duckdb' && loc.path !== ':memory:') {
          log.info({ file: path.resolve(loc.path) }, 'DuckDB warehouse file');
        }
      },
      listening: () => (listening = true),
    };
    try {
      return await serveOn(ctx, c, log, signal, stages);
    } catch (err) {
      if (newFile && openedInode !== undefined && !listening) {
        const ino = fs.existsSync(newFile) ? fs.statSync(newFile).ino : undefined;
        if (ino === openedInode) {
          for (const f of [newFile, `${newFile}.wal`]) fs.rmSync(f, { force: true });
        }
      }
      throw err;
    }
  },
};

function serveOn(
  ctx: CommandContext,
  c: CommandContext['config']['serve'],
  log: Logger,
  signal: Promise<NodeJS.Signals>,
  stages: { opened: () => void; listening: () => void },
): Promise<number> {
  return withWarehouse(ctx, async (wh) => {
    stages.opened();
    await refuseDemoWarehouse(ctx, wh);
    // a zone this warehouse's time zone database lacks would fail every scheduled build: said now, not in the log
    if (c.schedule) await checkTimezoneOnWarehouse(wh, ctx.config.vars);
    // Scheduled builds must work before the first event arrives, so the landing tables exist from the start.
    await ensureRawTables(wh, ctx.config.rawSchema);
    const { startCollector } = await collectorPart();
    const collector = await startCollector({
      logger: log,
      warehouse: wh,
      rawSchema: ctx.config.rawSchema,
      port: c.port,
      host: c.host,
      writeKeys: c.writeKeys,
      maxRequestBytes: c.maxRequestBytes,
      maxEventBytes: c.maxEventBytes,
      maxBatchEvents: c.maxBatchEvents,
      maxConcurrentRequests: c.maxConcurrentRequests,
    }).catch((err: unknown) => {
      const code = (err as { code?: string }).code;
      if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
        throw new UserError(
          `Cannot listen on --host ${c.host}: it is not an address of this machine; use 127.0.0.1, 0.0.0.0 (every interface) or one of its own addresses.`,
          { cause: err },
        );
      }
      if (code === 'EADDRINUSE' || code === 'EACCES') {
        throw new UserError(
          code === 'EADDRINUSE'
            ? `Port ${c.port} on ${c.host} is already in use: stop the other process or pick another --port.`
            : `Not allowed to listen on ${c.host}:${c.port}: pick a port above 1023 or another --host.`,
          { cause: err },
        );
      }
      throw err;
    });
    stages.listening();
    const schedule = c.schedule ? startSchedule(ctx, wh, c.schedule, log) : undefined;
    const received = await signal;
    log.info({ signal: received }, 'shutting down: draining in-flight requests');
    // Stop taking events first (close stops listening at once, then drains), while a scheduled run in
    // progress finishes: it needs the warehouse, not the collector.
    const closing = collector.close();
    await schedule?.stop();
    await closing;
    log.info('closing the warehouse');
    return 0;
  });
}
