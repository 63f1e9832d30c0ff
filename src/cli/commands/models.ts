import * as path from 'node:path';
import { Option } from 'commander';
import type { CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { plural } from '../output';
import { runnerPart } from '../parts';
import { DIALECTS, type CompileDialect } from '../settings';
import { parseWarehouseUrl } from '../../warehouse';
import {
  buildStep,
  checkProject,
  checkVarValues,
  runResultsFor,
  testStep,
  warnAboutVars,
  type StepOptions,
} from '../steps';

export const selectOption = (): Option =>
  new Option(
    '-s, --select <selector...>',
    'only these models: name (globs), +name (with ancestors), name+ (with descendants), @name, tag:x, path:dir, source:x, config.key:value, package:x; a comma intersects',
  );

export const excludeOption = (): Option =>
  new Option('--exclude <selector...>', 'leave out these models (same forms as --select)');

export const buildCommand: CommandSpec = {
  name: 'build',
  summary: 'render and run the lifecycle models in the warehouse',
  options: [
    new Option('--full-refresh', 'rebuild incremental models from scratch'),
    selectOption(),
    excludeOption(),
  ],
  examples: [
    'cdp-lifecycle build',
    'cdp-lifecycle build --vars \'{"lifecycle__as_of_date": "2024-06-30", "lifecycle__timezone": "Europe/Berlin"}\'',
    'cdp-lifecycle build --vars @vars.yml --select +user_lifecycle',
    'cdp-lifecycle build --full-refresh --warehouse postgres://etl@db.internal/analytics',
  ],
  notes:
    "Writes target/run_results.json (dbt schema v6) with every model's status, timing and rows (--target-path).",
  action: async (ctx) => {
    const o: StepOptions = {
      fullRefresh: Boolean(ctx.opts.fullRefresh),
      select: ctx.opts.select as string[] | undefined,
      exclude: ctx.opts.exclude as string[] | undefined,
    };
    await checkProject(ctx, o);
    o.runResults = await runResultsFor(ctx, 'build', o);
    return withWarehouse(ctx, (wh) => buildStep(ctx, wh, o));
  },
};

export const testCommand: CommandSpec = {
  name: 'test',
  summary: 'run the schema tests (unique, not_null, accepted_values, relationships) of the built models',
  options: [selectOption(), excludeOption()],
  examples: ['cdp-lifecycle test', 'cdp-lifecycle test --select user_lifecycle'],
  notes:
    "Exits 1 when a test fails, listing the failing rows. Writes target/run_results.json (dbt schema v6) with every test's status and failures (--target-path).",
  action: async (ctx) => {
    const o: StepOptions = {
      select: ctx.opts.select as string[] | undefined,
      exclude: ctx.opts.exclude as string[] | undefined,
    };
    await checkProject(ctx, o, true);
    o.runResults = await runResultsFor(ctx, 'test', o);
    return withWarehouse(ctx, (wh) => testStep(ctx, wh, o));
  },
};

export const compileCommand: CommandSpec = {
  name: 'compile',
  summary: 'render every model to <target-path>/compiled/<dialect>/ without connecting to a warehouse',
  options: [
    new Option('--dialect <dialect>', 'SQL dialect to render for (default: the --warehouse kind)').choices([
      ...DIALECTS,
    ]),
    new Option(
      '--out <dir>',
      'output root; files go to <dir>/<dialect>/ (default: compiled/ in --target-path, target/compiled)',
    ),
    new Option(
      '--incremental',
      'render incremental models as a daily run executes them (is_incremental() true), into <dialect>/incremental/',
    ),
    selectOption(),
    excludeOption(),
  ],
  examples: [
    'cdp-lifecycle compile --dialect snowflake',
    'cdp-lifecycle compile --incremental --select int_lifecycle__status_runs',
    'cdp-lifecycle compile --dialect bigquery --vars \'{"lifecycle__timezone": "America/New_York"}\'',
  ],
  action: async (ctx) => {
    const dialect =
      (ctx.opts.dialect as CompileDialect | undefined) ?? parseWarehouseUrl(ctx.config.warehouse).kind;
    const { compileModels } = await runnerPart();
    await warnAboutVars(ctx, ctx.config.vars);
    checkVarValues(ctx.config.vars);
    const result = await compileModels({
      dialect,
      outDir: path.resolve(
        ctx.opts.out ? String(ctx.opts.out) : path.join(ctx.config.targetPath, 'compiled'),
      ),
      schema: ctx.config.schema,
      rawSchema: ctx.config.rawSchema,
      vars: ctx.config.vars,
      select: ctx.opts.select as string[] | undefined,
      exclude: ctx.opts.exclude as string[] | undefined,
      incremental: ctx.opts.incremental === true,
    });
    for (const m of result.models) ctx.out.print(`  ${path.relative(process.cwd(), m.path) || m.path}`);
    ctx.out.print(
      `Compiled ${plural(result.models.length, 'model')} for ${dialect}${ctx.opts.incremental === true ? ' (incremental models as a daily run executes them)' : ''} into ${result.dir}.`,
    );
  },
};
