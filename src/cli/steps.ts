/**
 * The build, test and sync steps as `run`, `serve --schedule` and `demo` chain them: each prints its summary
 * and returns an exit code, so a chain can stop at the first failing step.
 */
import { UsageError } from '../errors';
import type { Warehouse } from '../warehouse';
import type { CommandContext } from './context';
import { runnerPart, syncPart } from './parts';

export interface StepOptions {
  select?: string[];
  fullRefresh?: boolean;
  dryRun?: boolean;
  fullResync?: boolean;
  /** Extra vars on top of the configured ones (the demo pins its as-of date). */
  vars?: Record<string, unknown>;
}

export async function buildStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const { buildModels } = runnerPart();
  const result = await buildModels({
    warehouse: wh,
    schema: ctx.config.schema,
    rawSchema: ctx.config.rawSchema,
    vars: { ...ctx.config.vars, ...o.vars },
    fullRefresh: o.fullRefresh,
    select: o.select,
    progress: ctx.out.progress(),
  });
  ctx.out.print(JSON.stringify(result));
  return 0;
}

export async function testStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const { testModels } = runnerPart();
  const result = await testModels({
    warehouse: wh,
    schema: ctx.config.schema,
    rawSchema: ctx.config.rawSchema,
    vars: { ...ctx.config.vars, ...o.vars },
    select: o.select,
  });
  ctx.out.print(JSON.stringify(result));
  return 0;
}

/** Checks the sync settings before anything runs, so `run` fails fast instead of after a long build. */
export function checkSyncSettings(ctx: CommandContext, dryRun: boolean): void {
  const s = ctx.config.sync;
  if (!s.to) {
    throw new UsageError(
      'No sync destination: pass --to segment or --to rudderstack (or set sync.to in cdp-lifecycle.yml).',
    );
  }
  if (!dryRun && !s.writeKey) {
    throw new UsageError(
      `Syncing to ${s.to} needs the write key of the source to send to: pass --write-key (or set LIFECYCLE_SYNC_WRITE_KEY), or use --dry-run.`,
    );
  }
  if (s.to === 'rudderstack' && !dryRun && !s.endpoint) {
    throw new UsageError(
      'Syncing to RudderStack needs your data plane URL: pass --endpoint https://<your-data-plane>.',
    );
  }
}

export async function syncStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const dryRun = Boolean(o.dryRun);
  checkSyncSettings(ctx, dryRun);
  const s = ctx.config.sync;
  const { runSync } = syncPart();
  const result = await runSync({
    warehouse: wh,
    schema: ctx.config.schema,
    to: s.to!,
    endpoint: s.endpoint,
    writeKey: s.writeKey,
    dryRun,
    fullResync: o.fullResync,
    traits: s.traits,
    integrations: s.integrations,
    rateLimit: s.rateLimit,
    progress: ctx.out.progress(),
  });
  ctx.out.print(JSON.stringify(result));
  return 0;
}
