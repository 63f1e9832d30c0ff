import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError, errorMessage } from '../errors';
import { makeDirs } from '../util/files';
import { compileModel, openProject, type RunnerBaseOptions } from './build';
import { selectModels } from './dag';
import type { RenderedModel, TargetType } from './render';
import { TARGET_TYPES } from './render';

export interface CompileOptions extends RunnerBaseOptions {
  dialect: TargetType;
  /**
   * Output root; files go to `<outDir>/<dialect>/<model>.sql` (`<outDir>/<dialect>/incremental/` with
   * `incremental`). Default: `target/compiled` in the working directory.
   */
  outDir?: string;
  /**
   * Render incremental models as a daily run does (`is_incremental()` true), for checking the SQL that only
   * incremental runs execute; the default, like `dbt compile` on an empty target, renders first runs.
   */
  incremental?: boolean;
}

export interface CompiledModel {
  name: string;
  file: string;
  materialized: string;
  /** Absolute path of the written file. */
  path: string;
  sql: string;
}

export interface CompileResult {
  dialect: TargetType;
  dir: string;
  models: CompiledModel[];
}

/**
 * Renders every (selected) model for a dialect and writes the SELECT each would run, with ephemeral CTEs
 * inlined and `is_incremental()` false, as `dbt compile` does. Needs no connection.
 */
export async function compileModels(opts: CompileOptions): Promise<CompileResult> {
  if (!TARGET_TYPES.includes(opts.dialect)) {
    throw new UsageError(
      `The dialect "${String(opts.dialect)}" is not supported: use ${TARGET_TYPES.join(', ')}.`,
    );
  }
  const parsed = openProject(opts, opts.dialect);
  const selected = selectModels(parsed.graph, opts.select, parsed.project.name, opts.exclude);
  // a daily run's SQL beside the first run's, not over it
  const dir = path.resolve(
    opts.outDir ?? path.join('target', 'compiled'),
    opts.dialect,
    opts.incremental === true ? 'incremental' : '',
  );
  const unwritable = (err: unknown): UserError =>
    new UserError(
      `Cannot write the compiled models into ${dir} (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}): pass --out (or --target-path) with a folder you can write to.`,
    );
  try {
    makeDirs(dir);
  } catch (err) {
    throw unwritable(err);
  }
  const cache = new Map<string, RenderedModel>();
  const models: CompiledModel[] = [];
  for (const name of parsed.order) {
    if (!selected.has(name)) continue;
    const g = parsed.graph.get(name)!;
    const cfg = parsed.renderer.configs.get(name) ?? g.config;
    const isInc = opts.incremental === true && cfg.materialized === 'incremental';
    const sql = compileModel(parsed, name, isInc, cache) + '\n';
    const file = path.join(dir, `${name}.sql`);
    try {
      fs.writeFileSync(file, sql);
    } catch (err) {
      throw unwritable(err);
    }
    models.push({
      name,
      file: g.node.file,
      materialized: String(parsed.renderer.configs.get(name)?.materialized ?? 'view'),
      path: file,
      sql,
    });
  }
  return { dialect: opts.dialect, dir, models };
}
