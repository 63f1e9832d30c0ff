import { Cron } from 'croner';
import { UsageError, errorMessage } from '../../errors';
import type { CommandContext, CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { seconds } from '../output';
import { collectorPart } from '../parts';
import type { Warehouse } from '../../warehouse';
import { runPipeline } from './run';

/** Validates a cron expression up front, so a typo is a usage error rather than a silent non-schedule. */
export function parseSchedule(pattern: string): Cron {
  try {
    const probe = new Cron(pattern, { paused: true });
    if (!probe.nextRun()) throw new Error('it never fires');
    return probe;
  } catch (err) {
    throw new UsageError(
      `The schedule "${pattern}" is not a valid cron expression (${errorMessage(err)}): use e.g. "0 * * * *" for hourly.`,
    );
  }
}

function waitForShutdownSignal(ctx: CommandContext): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.removeListener('SIGTERM', onSignal);
      process.removeListener('SIGINT', onSignal);
      // A second signal means "now": leave without waiting for the drain.
      const force = (): void => {
        ctx.out.error('Second signal received: exiting without finishing the drain.');
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

/**
 * Runs build, test and sync on a schedule on the collector's own warehouse connection (a DuckDB file has a
 * single writer process). A run never overlaps the previous one: croner's `protect` skips a tick while a run
 * is in progress, and the skip is logged.
 */
function startSchedule(ctx: CommandContext, wh: Warehouse, pattern: string): { stop(): Promise<void> } {
  const syncConfigured = Boolean(ctx.config.sync.to && ctx.config.sync.writeKey);
  if (!syncConfigured) {
    ctx.out.warn(
      'No sync destination configured (sync.to and sync.write_key in cdp-lifecycle.yml, or LIFECYCLE_SYNC_TO and ' +
        'LIFECYCLE_SYNC_WRITE_KEY): scheduled runs will build and test only.',
    );
  }
  let runNumber = 0;
  let current: Promise<void> | undefined;
  const job = new Cron(
    pattern,
    {
      protect: () =>
        ctx.out.info(
          `${new Date().toISOString()} scheduled run skipped: run ${runNumber} is still in progress`,
        ),
    },
    () => {
      const n = ++runNumber;
      const started = Date.now();
      ctx.out.info(`${new Date(started).toISOString()} scheduled run ${n} started`);
      current = (async () => {
        try {
          const code = syncConfigured
            ? await runPipeline(ctx, wh, {})
            : await runPipeline(ctx, wh, {}, ['build', 'test']);
          ctx.out.info(
            `${new Date().toISOString()} scheduled run ${n} ${code === 0 ? 'succeeded' : `failed (exit ${code})`} in ${seconds(Date.now() - started)}`,
          );
        } catch (err) {
          ctx.out.failure(err);
          ctx.out.info(
            `${new Date().toISOString()} scheduled run ${n} failed in ${seconds(Date.now() - started)}`,
          );
        }
      })();
      return current;
    },
  );
  const next = job.nextRun();
  ctx.out.info(
    `schedule "${pattern}": build, test${syncConfigured ? ', sync' : ''}; next run ${next?.toISOString()}`,
  );
  return {
    async stop() {
      job.stop();
      if (current) {
        ctx.out.info(
          'waiting for the scheduled run in progress to finish (send the signal again to exit now)',
        );
        await current;
      }
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
    'Endpoints: POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/alias, /v1/group,\n' +
    '/webhook; GET /health. Auth: HTTP Basic with a write key as user name, or writeKey in the body.\n' +
    'SIGTERM / SIGINT drain in-flight requests, finish a scheduled run in progress, then exit 0.',
  action: async (ctx) => {
    const c = ctx.config.serve;
    if (c.writeKeys.length === 0) {
      throw new UsageError(
        'The collector needs at least one write key: pass --write-key <key> (repeatable) or set LIFECYCLE_WRITE_KEYS.',
      );
    }
    if (c.schedule) parseSchedule(c.schedule).stop();
    const signal = waitForShutdownSignal(ctx);
    return withWarehouse(ctx, async (wh) => {
      const { startCollector } = collectorPart();
      const collector = await startCollector({
        warehouse: wh,
        rawSchema: ctx.config.rawSchema,
        port: c.port,
        host: c.host,
        writeKeys: c.writeKeys,
        maxRequestBytes: c.maxRequestBytes,
        maxEventBytes: c.maxEventBytes,
      });
      ctx.out.info(
        `collector listening on ${collector.url} (warehouse ${wh.displayUrl}, raw schema ${ctx.config.rawSchema})`,
      );
      const schedule = c.schedule ? startSchedule(ctx, wh, c.schedule) : undefined;
      const received = await signal;
      ctx.out.info(`${received} received: draining`);
      await schedule?.stop();
      await collector.close();
      ctx.out.info('collector stopped');
      return 0;
    });
  },
};
