import { Option } from 'commander';
import type { CommandContext, CommandSpec } from '../context';
import { withWarehouse } from '../context';
import {
  buildStep,
  checkSyncSettings,
  checkSyncStep,
  checkTraitColumns,
  checkProject,
  runResultsFor,
  syncStep,
  testStep,
  type StepOptions,
} from '../steps';
import type { Warehouse } from '../../warehouse';
import { dryRunOption, fullResyncOption } from './sync';
import { excludeOption, selectOption } from './models';

/** build → test → sync on one open warehouse; stops at the first step that does not exit 0. */
export async function runPipeline(
  ctx: CommandContext,
  wh: Warehouse,
  o: StepOptions,
  only: ReadonlyArray<'build' | 'test' | 'sync'> = ['build', 'test', 'sync'],
): Promise<number> {
  const steps: Array<['build' | 'test' | 'sync', () => Promise<number>]> = [
    ['build', () => buildStep(ctx, wh, o)],
    ['test', () => testStep(ctx, wh, o)],
    ['sync', () => syncStep(ctx, wh, o)],
  ];
  // usage errors first: not after a build and a test that took minutes
  if (only.includes('sync')) await checkSyncStep(ctx, wh, Boolean(o.dryRun));
  const chosen = steps.filter(([n]) => only.includes(n));
  for (const [i, [name, step]] of chosen.entries()) {
    const after = chosen.slice(i + 1).map(([n]) => n);
    let code: number;
    try {
      code = await step();
    } catch (err) {
      // the last step has none after it to skip: the error alone says what failed
      if (after.length === 0) throw err;
      // a step that throws (a model failed: BuildFailedError) also skips the others, and says so after its error
      code = ctx.out.failure(err);
    }
    if (code !== 0) {
      if (after.length > 0) ctx.out.error(`${name} failed, so ${after.join(' and ')} did not run.`);
      return code;
    }
  }
  return 0;
}

export const runCommand: CommandSpec = {
  name: 'run',
  summary: 'build, test and sync in sequence, stopping at the first failing step',
  options: [
    new Option('--full-refresh', 'rebuild incremental models from scratch'),
    selectOption(),
    excludeOption(),
    dryRunOption('build and test for real, then log what the sync would send and send nothing'),
    fullResyncOption(),
  ],
  examples: [
    'cdp-lifecycle run --to segment --write-key $SEGMENT_WRITE_KEY',
    'cdp-lifecycle run --to rudderstack --endpoint https://acme.dataplane.rudderstack.com --write-key $KEY',
    'cdp-lifecycle run --to segment --dry-run --vars \'{"lifecycle__as_of_date": "2024-06-30"}\'',
  ],
  notes:
    'Writes target/run_results.json (dbt schema v6) for the build and test steps (--target-path). For a schedule inside the collector process (required with a DuckDB file), use `serve --schedule`.',
  action: async (ctx) => {
    const dryRun = Boolean(ctx.opts.dryRun);
    checkSyncSettings(ctx, dryRun);
    await checkTraitColumns(ctx);
    const o: StepOptions = {
      dryRun,
      fullRefresh: Boolean(ctx.opts.fullRefresh),
      fullResync: Boolean(ctx.opts.fullResync),
      select: ctx.opts.select as string[] | undefined,
      exclude: ctx.opts.exclude as string[] | undefined,
    };
    // one artifact for the build and the test step, as dbt build writes
    await checkProject(ctx, o);
    o.runResults = await runResultsFor(ctx, 'run', o);
    return withWarehouse(ctx, (wh) => runPipeline(ctx, wh, o));
  },
};
