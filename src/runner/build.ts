import * as path from 'node:path';
import {
  UsageError,
  UserError,
  WarehouseUnavailableError,
  errorMessage,
  missingPrivilege,
  refusalFix,
} from '../errors';
import { closest } from '../util/closest';
import type { Progress } from '../util/progress';
import type { SqlRunner, TableSpec, Warehouse } from '../warehouse/types';
import { createTableSql } from '../warehouse/raw-tables';
import { ensureSchema, listSchemas, modelSchemaLock, qualify, type HeldLock } from '../warehouse/types';
import { descendants, selectForTests, selectModels } from './dag';
import { cleanSql, injectCtes, parseProject, type ParsedProject } from './graph';
import {
  buildIncremental,
  buildSwap,
  columnsOf,
  existingKind,
  parseIndexes,
  type AfterApply,
  type IncrementalOptions,
  type IncrementalStrategy,
  type OnSchemaChange,
} from './materialize';
import { defaultProjectDir, loadProject, type ModelConfig, type ModelNode } from './project';
import { applyGrants, parseGrants, type Grants } from './grants';
import { parsePersistDocs, persistDocs } from './persist-docs';
import { ModelRenderError, type RenderedModel } from './render';

export type Materialization = 'view' | 'table' | 'incremental' | 'ephemeral';

export interface ModelResult {
  name: string;
  /** The model file, relative to the project's parent (`models/marts/user_lifecycle.sql`). */
  file: string;
  materialized: Materialization;
  /** `"schema"."name"` built, or the CTE name for ephemeral models. */
  relation: string;
  status: 'success' | 'error' | 'skipped';
  /** Rows in the built table (table, full incremental) or rows processed by an incremental run; null for views. */
  rows: number | null;
  /** True when an incremental model ran incrementally (not a first run or full refresh). */
  incremental: boolean;
  ms: number;
  /** The error (a full sentence naming model, file and warehouse), why the model was skipped, or a note on how it was built. */
  message?: string;
  /** The SELECT the model ran (the incremental variant on an incremental run); absent when it never rendered. */
  compiledSql?: string;
}

/** Progress of one model: `start` before it runs, `end` with its result. */
export interface ModelEvent {
  phase: 'start' | 'end';
  /** 0-based position among the selected models, and their number. */
  index: number;
  total: number;
  name: string;
  /** On `start`: what the model builds (its result so far), so a caller can report it if the run stops here. */
  planned?: ModelResult;
  result?: ModelResult;
}

export interface BuildResult {
  success: boolean;
  models: ModelResult[];
  ms: number;
}

export interface RunnerBaseOptions {
  /** Folder with dbt_project.yml; default: the `models/` package shipped with cdp-lifecycle. */
  projectDir?: string;
  /** target.schema, where models are built (`--schema`, default `lifecycle`). */
  schema: string;
  /** Raw landing schema (`--raw-schema`), passed to the package as the var `lifecycle__raw_schema`. */
  rawSchema: string;
  /** `--vars`: override dbt_project.yml vars. */
  vars?: Record<string, unknown>;
  /** dbt selectors: `name`, `+name`, `name+`, `tag:x`, `path:dir`; a comma intersects. */
  select?: string[];
  exclude?: string[];
  /** Receives `log()` and `exceptions.warn()` output of the templates. */
  log?: (message: string) => void;
  /** target.database; build and test take it from their warehouse (see databaseName). */
  database?: string | null;
}

export interface BuildOptions extends RunnerBaseOptions {
  warehouse: Warehouse;
  fullRefresh?: boolean;
  progress?: Progress;
  /** Called as each model starts and finishes (e.g. for a live log or per-model timings). */
  onModel?: (event: ModelEvent) => void;
  /** Stop at the first failing model instead of building the models that do not depend on it. */
  failFast?: boolean;
  /**
   * Asked once the schema is locked and before any model runs, unless fullRefresh is set: a reason to rebuild
   * every selected model in full (each incremental model's line then gives it), or null to build as usual.
   * The package's own check lives with its caller (see src/cli/full-refresh.ts); `compile` renders a model's
   * SQL as a full build would run it.
   */
  decideFullRefresh?: (probe: FullRefreshProbe) => Promise<string | null>;
}

/** What decideFullRefresh may look at: the warehouse (under the build's lock) and the parsed project. */
export interface FullRefreshProbe {
  warehouse: Warehouse;
  compile: (model: string) => string;
  /** Where the build writes a model: its schema (custom schemas included) and identifier (its alias). */
  relation: (model: string) => { schema: string; identifier: string };
}

/** Thrown by buildModels when a model failed; `result` lists every model's outcome. */
export class BuildFailedError extends UserError {
  constructor(
    message: string,
    readonly result: BuildResult,
  ) {
    super(message);
    this.name = 'BuildFailedError';
  }
}

function firstLine(msg: string): string {
  const line = msg.split('\n').find((l) => l.trim() !== '') ?? msg;
  return line.trim().replace(/\s+/g, ' ');
}

function incrementalOptions(cfg: ModelConfig, where: string): IncrementalOptions {
  const list = (v: unknown): string[] =>
    v === undefined || v === null ? [] : Array.isArray(v) ? v.map(String) : [String(v)];
  // dbt takes one string key as "a column name or expression" and writes it into its delete as is; a list
  // is compared column by column, so only a single key can be an expression
  const uniqueKeyExpression =
    typeof cfg.unique_key === 'string' && isKeyExpression(cfg.unique_key) ? cfg.unique_key.trim() : undefined;
  // a key written quoted, as dbt puts it in its SQL as is (unique_key='"MixedId"'), names that column
  const uniqueKey = uniqueKeyExpression
    ? []
    : list(cfg.unique_key).map((k) => /^\s*"(.+)"\s*$/.exec(k)?.[1].replace(/""/g, '"') ?? k);
  const keyed = uniqueKey.length > 0 || uniqueKeyExpression !== undefined;
  const strategy = String(cfg.incremental_strategy ?? (keyed ? 'delete+insert' : 'append'));
  if (!['append', 'delete+insert', 'merge'].includes(strategy)) {
    throw new UserError(
      `${where} has incremental_strategy='${strategy}': use append, delete+insert or merge.`,
    );
  }
  if (strategy === 'merge' && uniqueKeyExpression !== undefined) {
    // dbt's merge writes DBT_INTERNAL_SOURCE.<unique_key>, which an expression breaks: it fails there too,
    // only later, on the first incremental run
    throw new UserError(
      `${where} uses incremental_strategy='merge' with the unique_key expression ${uniqueKeyExpression}, which a merge cannot match on (dbt's merge fails on it too): use delete+insert, or select the expression as a column and name that column.`,
    );
  }
  if (strategy !== 'append' && !keyed) {
    throw new UserError(
      `${where} uses incremental_strategy='${strategy}' without a unique_key: set unique_key.`,
    );
  }
  const osc = String(cfg.on_schema_change ?? 'ignore') as OnSchemaChange;
  if (!['ignore', 'fail', 'append_new_columns', 'sync_all_columns'].includes(osc)) {
    throw new UserError(
      `${where} has on_schema_change='${osc}': use ignore, fail, append_new_columns or sync_all_columns.`,
    );
  }
  // dbt's materialization reads the older name first (config.get('predicates') or …('incremental_predicates'))
  const empty = (v: unknown): boolean =>
    v === undefined || v === null || v === '' || (Array.isArray(v) && v.length === 0);
  const predicatesValue = empty(cfg.predicates) ? cfg.incremental_predicates : cfg.predicates;
  if (
    predicatesValue !== undefined &&
    predicatesValue !== null &&
    typeof predicatesValue !== 'string' &&
    !(Array.isArray(predicatesValue) && predicatesValue.every((p) => typeof p === 'string'))
  ) {
    throw new UserError(
      `${where} has incremental_predicates that are not a list of SQL conditions: write them as ["DBT_INTERNAL_DEST.col > …", …].`,
    );
  }
  const incrementalPredicates = list(predicatesValue).filter((p) => p.trim() !== '');
  const mergeUpdate = cfg.merge_update_columns === undefined ? undefined : list(cfg.merge_update_columns);
  const mergeExclude = list(cfg.merge_exclude_columns);
  if (mergeUpdate && mergeExclude.length) {
    throw new UserError(`${where} sets both merge_update_columns and merge_exclude_columns: keep one.`);
  }
  return {
    strategy: strategy as IncrementalStrategy,
    uniqueKey,
    uniqueKeyExpression,
    onSchemaChange: osc,
    mergeUpdateColumns: mergeUpdate,
    mergeExcludeColumns: mergeExclude,
    incrementalPredicates,
    sqlHeader: sqlHeaderOf(cfg),
  };
}

/**
 * Whether a single unique_key is an SQL expression (`id || '-' || k`, `lower(email)`) rather than the name of a
 * column, plain or quoted: a plain name that is not a column keeps the runner's error naming it.
 */
function isKeyExpression(key: string): boolean {
  const k = key.trim();
  return !/^(?:[A-Za-z_][A-Za-z0-9_$]*|"(?:[^"]|"")+")$/.test(k);
}

/** The sql_header config (`config(sql_header=…)`, or `{% call set_sql_header(config) %}`'s block). */
function sqlHeaderOf(cfg: ModelConfig): string | undefined {
  const v = cfg.sql_header;
  return v === undefined || v === null ? undefined : String(v);
}

/**
 * dbt's name for the database of a warehouse URL: the PostgreSQL database, or a DuckDB file's stem as
 * dbt-duckdb names it (`memory` in memory).
 */
export function databaseName(displayUrl: string): string | null {
  if (displayUrl.startsWith('duckdb://')) {
    const file = displayUrl.slice('duckdb://'.length);
    return file === ':memory:' ? 'memory' : path.basename(file).replace(/\.[^.]*$/, '');
  }
  try {
    const db = decodeURIComponent(new URL(displayUrl).pathname.slice(1));
    return db || null;
  } catch {
    return null;
  }
}

export function openProject(
  opts: RunnerBaseOptions,
  targetType: ParsedProject['renderer']['targetType'],
): ParsedProject {
  const project = loadProject(opts.projectDir ?? defaultProjectDir(), { log: opts.log });
  try {
    return parseProject({
      project,
      targetType,
      schema: opts.schema,
      vars: opts.vars,
      rawSchema: opts.rawSchema,
      log: opts.log,
      fullRefresh: (opts as Partial<BuildOptions>).fullRefresh,
      database: opts.database,
    });
  } catch (err) {
    // A var the package's macros refuse (lifecycle__new_days: 0) is bad input, not a broken model: a usage
    // error in the macro's own words, rather than a failed render blamed on the first model that reads it.
    if (err instanceof ModelRenderError && err.compilerMessage?.startsWith('The var ')) {
      throw new UsageError(err.compilerMessage, { cause: err });
    }
    throw err;
  }
}

/**
 * The project parsed with these vars and the models a `--select`/`--exclude` picks, without a warehouse, so
 * that a bad var or a selector that matches nothing stops the command before it connects. `forTests` reads
 * the selectors as `test` does (`source:` ones pick source tests).
 */
export function checkSelection(
  opts: RunnerBaseOptions,
  targetType: ParsedProject['renderer']['targetType'],
  forTests = false,
): Set<string> {
  const parsed = openProject(opts, targetType);
  const { graph, project } = parsed;
  return forTests
    ? selectForTests(graph, opts.select, project.name, opts.exclude).models
    : selectModels(graph, opts.select, project.name, opts.exclude);
}

/** Renders a model for execution, with ephemeral CTEs injected. */
export function compileModel(
  parsed: ParsedProject,
  name: string,
  isIncremental: boolean,
  cache: Map<string, RenderedModel>,
): string {
  const ephemeral = (n: string): RenderedModel => {
    let r = cache.get(n);
    if (!r) {
      r = parsed.renderer.render(parsed.graph.get(n)!.node, 'run', false);
      r = { ...r, sql: cleanSql(r.sql) };
      cache.set(n, r);
    }
    return r;
  };
  const node = parsed.graph.get(name)!.node;
  const r = parsed.renderer.render(node, 'run', isIncremental);
  const sql = cleanSql(r.sql);
  if (r.config.materialized === 'ephemeral') cache.set(name, { ...r, sql });
  if (sql.trim() === '') {
    throw new UserError(
      `model ${name} (${node.file}) renders to empty SQL: it must contain a select statement.`,
    );
  }
  return injectCtes(sql, r.ephemeralRefs, ephemeral);
}

/**
 * Builds the selected models. One build or sync of a schema at a time: two overlapping scheduled runs would
 * drop each other's `__dbt_tmp` tables and apply the same incremental rows twice, so the second one stops
 * with a message naming the first (see Warehouse.exclusive).
 */
export async function buildModels(opts: BuildOptions): Promise<BuildResult> {
  return opts.warehouse.exclusive(
    modelSchemaLock(opts.schema),
    `a build or sync of schema ${opts.schema}`,
    (lock) => buildUnlocked(opts, lock),
  );
}

async function buildUnlocked(opts: BuildOptions, lock: HeldLock): Promise<BuildResult> {
  const started = Date.now();
  const wh = opts.warehouse;
  const parsed = openProject({ database: databaseName(wh.displayUrl), ...opts }, wh.dialect);
  const { graph, order, renderer } = parsed;
  const selected = selectModels(graph, opts.select, parsed.project.name, opts.exclude);
  const todo = order.filter((n) => selected.has(n));
  try {
    await checkSources(parsed, wh, todo);
  } catch (err) {
    // Reported as dbt reports models that never ran: each selected model `skipped` with the reason, so that
    // run_results.json says this build failed instead of being left as the previous build wrote it.
    if (!(err instanceof UserError) || err instanceof UsageError) throw err;
    const models = todo.map((name): ModelResult => ({
      ...newResult(parsed, name),
      status: 'skipped',
      message: `not built: ${err.message}`,
    }));
    throw new BuildFailedError(err.message, { success: false, models, ms: Date.now() - started });
  }
  const results: ModelResult[] = [];
  const failed = new Set<string>();
  /** For a skipped model, the failed model that caused it. */
  const failedRoot = new Map<string, string>();
  // Models whose stored table this build replaced in full (and the views and ephemerals over them), with the
  // incremental model that started it: see below.
  const rebuiltFrom = new Map<string, string>();
  // A full_refresh: false model keeps its table whatever happens above it, and so passes on no full rebuild:
  // the models a rebuild of `root` reaches are those below it by a path through no such model.
  const rebuildReaches = (root: string): string[] => {
    // (dbt reads full_refresh on incremental models only: a view or table under `+full_refresh: false`
    // for a whole folder is rebuilt as usual, and passes the rebuild on)
    const kept = (n: string): boolean => {
      const c = renderer.configs.get(n) ?? graph.get(n)!.config;
      return c.full_refresh === false && c.materialized === 'incremental';
    };
    const reached = new Set<string>();
    descendants(graph, root, Infinity, reached, (m) => !kept(m));
    return order.filter((n) => reached.has(n));
  };
  // Incremental models an earlier partial build left out when it rebuilt a model upstream of them in full,
  // with that model: they are rebuilt in full the next time they are built (see below).
  const pendingTable = qualify(opts.schema, PENDING_REBUILDS);
  const pending = new Map<string, string>();
  if ((await existingKind(wh, opts.schema, PENDING_REBUILDS)) === 'table') {
    for (const r of await wh.query<{ model: string; upstream: string }>(
      `select model, upstream from ${pendingTable}`,
    ))
      pending.set(r.model, r.upstream);
  }
  const cache = new Map<string, RenderedModel>();
  let fullRefresh = opts.fullRefresh === true;
  let autoRefresh: string | null = null;
  if (!fullRefresh && opts.decideFullRefresh) {
    autoRefresh = await opts.decideFullRefresh({
      warehouse: wh,
      compile: (n) => compileModel(parsed, n, false, cache),
      relation: (n) => {
        // a model's config (alias, schema) is known once it has been rendered
        if (!renderer.configs.has(n)) compileModel(parsed, n, false, cache);
        const r = renderer.relationFor(n, renderer.configs.get(n) ?? graph.get(n)!.config);
        return { schema: r.schema, identifier: r.identifier };
      },
    });
    fullRefresh = autoRefresh !== null;
  }
  const schemasMade = new Set<string>();
  let grantsNoted = false;
  // Set when the warehouse refuses every write (a read-only database or role), or refuses to create a schema
  // the models build into (a role without CREATE on the database): the models after it are skipped, not tried,
  // and still recorded (run_results.json lists them as dbt does).
  let refusedBy: ModelResult | undefined;
  let refusedWhat = '';
  // The unselected views that exist now: only these may be rebuilt after the selected models (see
  // restoreDroppedViews), so that a partial build never creates a view nobody asked for.
  const viewsBefore = await existingUnselectedViews(parsed, wh, todo);
  opts.progress?.start(todo.length, 'build', 'models');

  for (let i = 0; i < todo.length; i++) {
    const name = todo[i];
    // Without the lock another run may start alongside: stop between two models rather than race it.
    const lost = lock.lost();
    if (lost !== null) {
      opts.progress?.stop('stopped: the lock on the schema was lost');
      throw new UserError(
        `The build lost its lock on schema ${opts.schema} (its connection ended: ${lost}) and stopped before model ${name}, so that no other run builds alongside it; run it again.`,
      );
    }
    const g = graph.get(name)!;
    const cfg = renderer.configs.get(name) ?? g.config;
    const relation = renderer.relationFor(name, cfg);
    const t0 = Date.now();
    const result = newResult(parsed, name);
    opts.onModel?.({ phase: 'start', index: i, total: todo.length, name, planned: { ...result } });
    const materialized = result.materialized;
    const brokenUpstream = g.refs.find((r) => failed.has(r));
    if (refusedBy) {
      result.status = 'skipped';
      result.message = `skipped because the warehouse refused ${refusedWhat}`;
      failed.add(name);
    } else if (brokenUpstream || (opts.failFast && failed.size > 0)) {
      result.status = 'skipped';
      // name the model that failed, not a skipped one between it and this one
      const root = brokenUpstream ? (failedRoot.get(brokenUpstream) ?? brokenUpstream) : undefined;
      result.message = !brokenUpstream
        ? 'skipped because an earlier model failed'
        : root === brokenUpstream
          ? `skipped because ${root} failed`
          : `skipped because ${root} failed (upstream of ${brokenUpstream})`;
      if (root) failedRoot.set(name, root);
      failed.add(name);
    } else {
      // what the warehouse refused, when it stops the build (see refusedBy)
      let stops: string | undefined;
      try {
        const schema = relation.schema;
        const ident = relation.identifier;
        const indexes = parseIndexes(cfg.indexes, `model ${name} (${g.node.file})`);
        const contract = cfg.contract;
        if (
          typeof contract === 'object' &&
          contract !== null &&
          [true, 'true', 'True'].includes((contract as Record<string, unknown>).enforced as string)
        ) {
          // a model built as if its contract held, while nothing checked it, would pass for a checked one
          throw new UserError(
            `model ${name} (${g.node.file}) sets contract: {enforced: true}, which this runner does not enforce (dbt checks the columns' names and data types before it builds): build it with dbt, or set enforced: false.`,
          );
        }
        if (materialized === 'ephemeral') {
          result.compiledSql = compileModel(parsed, name, false, cache);
        } else {
          if (!schemasMade.has(schema)) {
            // once per schema, before its first model: a refusal (no CREATE on the database) stops the build
            // below, as every model after would meet it
            try {
              await runWarehouse(
                name,
                g.node.file,
                wh.dialect,
                () => ensureSchema(wh, schema),
                `creating schema ${schema}`,
              );
            } catch (err) {
              if (refusalFix(err)) stops = `to create schema ${schema}`;
              throw err;
            }
            schemasMade.add(schema);
          }
          const configured = configSteps(parsed, name, g.node, cfg, schema, ident, materialized);
          if (configured.grants && wh.dialect !== 'postgres' && !grantsNoted) {
            opts.log?.('grants configs are not applied on DuckDB, which has no privileges');
            grantsNoted = true;
          }
          await runHooks(parsed, wh, name, cfg, 'pre');
          // Inside the transaction that puts the model in place, as dbt does: a failing post-hook (e.g. the
          // delete of tombstone rows) rolls the model back to its previous state instead of half-applying it.
          // A hook marked `transaction: false` (vacuum, create index concurrently) runs after the commit.
          // The grants come last, as in dbt, so a grant to a missing role also leaves the previous relation.
          const postHooks: AfterApply = async (tx, info) => {
            await runHooks(parsed, tx, name, cfg, 'post', 'in-transaction');
            await configured.apply(tx, info);
          };
          // what a PostgreSQL swap could not keep of the views over the old relation, for the model's line
          const notes: string[] = [];
          // a model upstream of this one whose stored table this build replaced in full (see rebuiltFrom)
          const upstreamRebuilt = g.refs.find((r) => rebuiltFrom.has(r));
          if (materialized === 'incremental') {
            const incOpts = incrementalOptions(cfg, `model ${name} (${g.node.file})`);
            const existing = await existingKind(wh, schema, ident);
            // dbt's should_full_refresh: the model's full_refresh config, when set, wins over the flag
            const keep = cfg.full_refresh === false;
            const refresh = cfg.full_refresh === true || (fullRefresh && !keep);
            let isInc = existing === 'table' && !refresh;
            if (existing === 'table' && refresh && autoRefresh !== null)
              result.message = `rebuilt in full: ${autoRefresh}`;
            // A model that keeps its table in sync with itself may read a new column from {{ this }} before
            // the column exists (dbt would fail and ask for --full-refresh): a stored table that lacks a
            // column schema.yml declares predates the model, so it is rebuilt in full instead.
            if (isInc && !keep && incOpts.onSchemaChange === 'sync_all_columns' && g.node.columns.length) {
              const stored = new Set((await columnsOf(wh, schema, ident)).map((c) => c.toLowerCase()));
              const missing = g.node.columns.map((c) => c.name).filter((c) => !stored.has(c.toLowerCase()));
              if (missing.length) {
                isInc = false;
                result.message = `rebuilt in full: the stored table lacks ${missing.join(', ')}, declared in schema.yml`;
              }
            }
            // An incremental model tracks what changed upstream since its last run from the rows its upstream
            // incremental models rewrote (their build times, previous values, tombstones). An upstream table
            // rebuilt in full keeps none of that, so everything downstream of it is rebuilt in full too.
            // A model with full_refresh: false keeps its table whatever happened upstream, as in dbt: its rows may
            // hold history that no rebuild could bring back.
            if (isInc && upstreamRebuilt) {
              const root = rebuiltFrom.get(upstreamRebuilt)!;
              if (keep)
                result.message = `kept incremental (full_refresh: false), though ${root} was rebuilt in full upstream`;
              else {
                isInc = false;
                result.message = `rebuilt in full: ${root} was rebuilt in full upstream`;
              }
            }
            const queued = pending.get(name);
            if (isInc && queued !== undefined) {
              if (keep)
                result.message = `kept incremental (full_refresh: false), though ${queued} was rebuilt in full by an earlier build without it`;
              else {
                isInc = false;
                result.message = `rebuilt in full: ${queued} was rebuilt in full by an earlier build without it`;
              }
            }
            // (also a table built for the first time: its downstream tables may survive from before it was dropped)
            if (!isInc) rebuiltFrom.set(name, rebuiltFrom.get(upstreamRebuilt ?? '') ?? name);
            // Downstream incremental models left out of this build keep what they derived from the old table
            // (or from the one dropped before this build made it again): once this one is built, those with a
            // stored table are queued to be rebuilt in full whenever they are next built.
            const left: string[] = [];
            if (!isInc) {
              for (const d of rebuildReaches(name)) {
                const dCfg = renderer.configs.get(d) ?? graph.get(d)!.config;
                if (selected.has(d) || dCfg.materialized !== 'incremental' || dCfg.full_refresh === false)
                  continue;
                const dRel = renderer.relationFor(d, dCfg);
                if ((await existingKind(wh, dRel.schema, dRel.identifier)) === 'table') left.push(d);
              }
            }
            if (left.length) {
              const note = `the incremental models downstream of it not in this build (${left.join(', ')}) will be rebuilt in full when they are next built`;
              result.message = result.message ? `${result.message}; ${note}` : `rebuilt in full; ${note}`;
            }
            const sql = compileModel(parsed, name, isInc, cache);
            result.compiledSql = sql;
            result.incremental = isInc;
            result.rows = await runWarehouse(name, g.node.file, wh.dialect, () =>
              isInc
                ? buildIncremental(wh, schema, ident, sql, incOpts, postHooks)
                : buildSwap(wh, 'table', schema, ident, sql, indexes, postHooks, notes, incOpts.sqlHeader),
            );
            if (queued !== undefined) {
              await wh.query(`delete from ${pendingTable} where model = $1`, [name]);
              pending.delete(name);
            }
            if (left.length) {
              await ensureSchema(wh, opts.schema);
              await wh.exec(createTableSql(wh.dialect, opts.schema, PENDING_TABLE));
              for (const d of left.filter((x) => !pending.has(x))) {
                await wh.query(`insert into ${pendingTable} (model, upstream) values ($1, $2)`, [d, name]);
                pending.set(d, name);
              }
            }
          } else {
            if (upstreamRebuilt) rebuiltFrom.set(name, rebuiltFrom.get(upstreamRebuilt)!);
            const sql = compileModel(parsed, name, false, cache);
            result.compiledSql = sql;
            result.rows = await runWarehouse(name, g.node.file, wh.dialect, () =>
              buildSwap(
                wh,
                materialized === 'table' ? 'table' : 'view',
                schema,
                ident,
                sql,
                indexes,
                postHooks,
                notes,
                sqlHeaderOf(cfg),
              ),
            );
          }
          if (notes.length) result.message = [result.message, ...notes].filter(Boolean).join('; ');
          await runHooks(parsed, wh, name, cfg, 'post', 'after-commit');
        }
      } catch (err) {
        // A lost connection or a locked file ends the build: every later model would fail the same way.
        if (err instanceof WarehouseUnavailableError) throw err;
        if (err instanceof UserError && err.cause instanceof WarehouseUnavailableError) throw err.cause;
        result.status = 'error';
        result.message =
          err instanceof UserError
            ? err.message
            : `model ${name} (${g.node.file}) failed on ${wh.dialect}: ${firstLine(errorMessage(err))}`;
        // the database's own set-up (read-only, a missing grant, a timeout): say what to change
        const refusal = refusalFix(err);
        if (refusal) result.message = `${result.message.replace(/\.$/, '')}: ${refusal.fix}.`;
        // a read-only database or role refuses every model alike: stop at the first
        if (refusal?.stopsEverything) stops ??= `to write ${name}`;
        // so does a schema to build into that exists but where the role may not create: every model makes a
        // relation there
        const lacking = missingPrivilege(err);
        if (lacking?.kind === 'schema' && lacking.object === relation.schema) {
          stops ??= `to create relations in schema ${relation.schema}`;
        }
        if (stops !== undefined) {
          refusedBy = result;
          refusedWhat = stops;
        }
        failed.add(name);
      }
    }
    result.ms = Date.now() - t0;
    results.push(result);
    opts.onModel?.({ phase: 'end', index: i, total: todo.length, name, result });
    opts.progress?.increment(1, `${name} ${result.status} ${result.ms}ms`);
  }
  if (refusedBy) {
    const res: BuildResult = { success: false, models: results, ms: Date.now() - started };
    opts.progress?.stop(`stopped at ${refusedBy.name}: the warehouse refused ${refusedWhat}`);
    // one sentence on what to change: every skipped model would say the same
    throw new BuildFailedError(refusedBy.message ?? `the warehouse refused ${refusedWhat}`, res);
  }
  await restoreDroppedViews(parsed, wh, todo, viewsBefore, failed, results, opts.onModel);
  const res: BuildResult = { success: failed.size === 0, models: results, ms: Date.now() - started };
  const ok = results.filter((r) => r.status === 'success').length;
  opts.progress?.stop(`built ${ok}/${results.length} models in ${(res.ms / 1000).toFixed(1)}s`);
  if (!res.success) {
    const first = results.find((r) => r.status === 'error');
    const otherErrors = results.filter((r) => r.status === 'error').length - (first ? 1 : 0);
    const skipped = results.filter((r) => r.status === 'skipped').length;
    const parts = [
      otherErrors > 0 ? `${otherErrors} more model${otherErrors > 1 ? 's' : ''} failed` : '',
      skipped > 0 ? `${skipped} skipped` : '',
    ].filter(Boolean);
    throw new BuildFailedError(
      `${first?.message ?? 'a model failed'}${parts.length ? ` (${parts.join(', ')})` : ''}`,
      res,
    );
  }
  return res;
}

/** A model's result before it runs: what it is and where it goes, `success` until something else happens. */
function newResult(parsed: ParsedProject, name: string): ModelResult {
  const g = parsed.graph.get(name)!;
  const cfg = parsed.renderer.configs.get(name) ?? g.config;
  const materialized = String(cfg.materialized ?? 'view') as Materialization;
  return {
    name,
    file: g.node.file,
    materialized,
    relation:
      materialized === 'ephemeral' ? `__dbt__cte__${name}` : parsed.renderer.relationFor(name, cfg).render(),
    status: 'success',
    rows: null,
    incremental: false,
    ms: 0,
  };
}

/** The view models left out of this build whose relation exists (PostgreSQL only: see restoreDroppedViews). */
async function existingUnselectedViews(
  parsed: ParsedProject,
  wh: Warehouse,
  todo: string[],
): Promise<Set<string>> {
  const found = new Set<string>();
  if (wh.dialect !== 'postgres') return found;
  const selected = new Set(todo);
  for (const name of parsed.order) {
    if (selected.has(name)) continue;
    const cfg = parsed.renderer.configs.get(name) ?? parsed.graph.get(name)!.config;
    if ((cfg.materialized ?? 'view') !== 'view') continue;
    const rel = parsed.renderer.relationFor(name, cfg);
    if (await existingKind(wh, rel.schema, rel.identifier)) found.add(name);
  }
  return found;
}

/**
 * On PostgreSQL, swapping a relation in drops the views that select from it (dbt-postgres does the same); the
 * swap recreates them from their stored definitions, except a view that no longer fits the new relation. Such
 * a view, when it was not selected, would then be gone: rebuild it from its model so a partial build never
 * removes one. Only views that existed before the build (`before`) come back: one that never existed, or that
 * an earlier build never made, stays for a build that selects it. DuckDB does not bind views to relations, so
 * there nothing is ever missing.
 */
async function restoreDroppedViews(
  parsed: ParsedProject,
  wh: Warehouse,
  built: string[],
  before: Set<string>,
  failed: Set<string>,
  results: ModelResult[],
  onModel?: (event: ModelEvent) => void,
): Promise<void> {
  if (wh.dialect !== 'postgres') return;
  const done = new Set(built);
  // Their lines follow the selected models' ("21 of 21", "22 of 22"): how many there are is known only as
  // each is found.
  let extra = 0;
  const touched = new Set(built.filter((n) => !failed.has(n)));
  for (const name of parsed.order) {
    if (done.has(name)) continue;
    const g = parsed.graph.get(name)!;
    const cfg = parsed.renderer.configs.get(name) ?? g.config;
    const isView = (cfg.materialized ?? 'view') === 'view';
    // An ephemeral model is inlined, so a view selects from whatever its ephemeral refs select from.
    const readsTouched = (refs: string[]): boolean =>
      refs.some((r) => {
        if (touched.has(r)) return true;
        const rg = parsed.graph.get(r)!;
        const eph = (parsed.renderer.configs.get(r) ?? rg.config).materialized === 'ephemeral';
        return eph && readsTouched(rg.refs);
      });
    const upstreamTouched = readsTouched(g.refs);
    if (!isView || !upstreamTouched || !before.has(name)) continue;
    const rel = parsed.renderer.relationFor(name, cfg);
    if (await existingKind(wh, rel.schema, rel.identifier)) continue;
    const t0 = Date.now();
    const result: ModelResult = {
      name,
      file: g.node.file,
      materialized: 'view',
      relation: rel.render(),
      status: 'success',
      rows: null,
      incremental: false,
      ms: 0,
      message: 'rebuilt: PostgreSQL dropped this view with the relation it selects from',
    };
    const index = built.length + extra++;
    // so that an interrupted build can say this view was being restored (see the CLI's run_results.json)
    onModel?.({ phase: 'start', index, total: index + 1, name, planned: { ...result } });
    try {
      const sql = compileModel(parsed, name, false, new Map());
      const { apply } = configSteps(parsed, name, g.node, cfg, rel.schema, rel.identifier, 'view');
      await runWarehouse(name, g.node.file, wh.dialect, () =>
        buildSwap(wh, 'view', rel.schema, rel.identifier, sql, [], apply),
      );
      touched.add(name);
    } catch (err) {
      result.status = 'error';
      result.message = errorMessage(err);
      failed.add(name);
    }
    result.ms = Date.now() - t0;
    results.push(result);
    onModel?.({ phase: 'end', index, total: index + 1, name, result });
  }
}

/**
 * dbt's pre-hook / post-hook config: SQL strings (or `{sql: ...}`) rendered with the model's context (so
 * `{{ this }}` works) and run before the model is built / after it is in place.
 */
async function runHooks(
  parsed: ParsedProject,
  wh: SqlRunner,
  name: string,
  cfg: ModelConfig,
  when: 'pre' | 'post',
  which: 'all' | 'in-transaction' | 'after-commit' = 'all',
): Promise<void> {
  // (mergeConfig files both spellings, pre-hook and pre_hook, under pre_hook)
  const raw = cfg[`${when}_hook`];
  if (raw === undefined || raw === null) return;
  const hooks = (Array.isArray(raw) ? raw : [raw])
    .map((h) => {
      const o = typeof h === 'string' ? { sql: h } : ((h ?? {}) as { sql?: unknown; transaction?: unknown });
      return { sql: String(o.sql ?? ''), inTx: o.transaction !== false };
    })
    .filter((h) => which === 'all' || (which === 'in-transaction') === h.inTx)
    .map((h) => h.sql);
  const node = parsed.graph.get(name)!.node;
  for (const hook of hooks) {
    if (hook.trim() === '') continue;
    const sql = renderFor(parsed, name, hook, `its ${when}-hook`);
    await runWarehouse(name, node.file, wh.dialect, () => wh.exec(sql), `in its ${when}-hook`);
  }
}

/** Renders Jinja a model's config carries (a hook, a description) as the model would, naming it on error. */
function renderFor(parsed: ParsedProject, name: string, text: string, what: string): string {
  const node = parsed.graph.get(name)!.node;
  try {
    return parsed.renderer.renderString(text, node);
  } catch (err) {
    throw new UserError(`model ${name} (${node.file}) failed to render ${what}: ${errorMessage(err)}`, {
      cause: err,
    });
  }
}

/**
 * A model's grants (PostgreSQL only) and comments (persist_docs), applied in the transaction that puts it in
 * place. Grants are revoked only on a relation kept (an incremental table, a view replaced in place), as
 * dbt-postgres revokes only on relations it keeps (see applyGrants).
 */
function configSteps(
  parsed: ParsedProject,
  name: string,
  node: ModelNode,
  cfg: ModelConfig,
  schema: string,
  ident: string,
  materialized: string,
): { grants: Grants | null; apply: AfterApply } {
  const where = `model ${name} (${node.file})`;
  const grants = parseGrants(cfg.grants, where);
  const docs = parsePersistDocs(cfg.persist_docs, where);
  const kind = materialized === 'view' ? 'view' : 'table';
  const apply: AfterApply = async (tx, info) => {
    if (grants && tx.dialect === 'postgres') {
      await runWarehouse(
        name,
        node.file,
        tx.dialect,
        () => applyGrants(tx, schema, ident, grants, info.kept),
        'applying its grants',
      );
    }
    // descriptions are Jinja too, rendered as dbt renders them (`{{ target.name }}`)
    const render = (text: string): string =>
      /\{[{%#]/.test(text) ? renderFor(parsed, name, text, 'a description').trim() : text;
    if (docs)
      await runWarehouse(
        name,
        node.file,
        tx.dialect,
        () => persistDocs(tx, kind, schema, ident, node, docs, render),
        'writing its descriptions',
      );
  };
  return { grants, apply };
}

/**
 * Every source table the selected models read must exist before anything is built: otherwise each model over
 * a missing raw table fails with the warehouse's bare "does not exist", and the models after it are skipped.
 */
async function checkSources(parsed: ParsedProject, wh: Warehouse, models: string[]): Promise<void> {
  const read = new Map<string, { schema: string; identifier: string; columns: string[]; models: string[] }>();
  for (const name of models) {
    for (const key of parsed.graph.get(name)?.sources ?? []) {
      const r = parsed.renderer.sourceRelation(key);
      if (!r) continue;
      const k = `${r.schema}.${r.identifier}`;
      const columns = parsed.project.sources.get(key)?.columns ?? [];
      const entry = read.get(k) ?? { ...r, columns, models: [] };
      entry.models.push(name);
      read.set(k, entry);
    }
  }
  const missing: string[] = [];
  const lacking: string[] = [];
  for (const [rel, e] of read) {
    if ((await existingKind(wh, e.schema, e.identifier)) === null) {
      missing.push(`${rel} (read by ${e.models.join(', ')})`);
      continue;
    }
    if (e.columns.length === 0) continue;
    // Unquoted names match without case on both warehouses.
    const have = new Set((await columnsOf(wh, e.schema, e.identifier)).map((c) => c.toLowerCase()));
    const absent = e.columns.filter((c) => !have.has(c.toLowerCase()));
    if (absent.length > 0) {
      lacking.push(
        `${rel} has no ${absent.length === 1 ? 'column' : 'columns'} ${absent.join(', ')} (read by ${e.models.join(', ')})`,
      );
    }
  }
  if (missing.length === 0 && lacking.length > 0) {
    // Checked before any model runs: a view already rebuilt on the wrong table would otherwise stay so.
    throw new UserError(
      `The source ${lacking.length === 1 ? 'table' : 'tables'} ${lacking.join('; ')}, though the project's sources YAML declares them: point the sources at tables of the landing shape (a Segment or RudderStack destination's own tables need the views of docs/warehouse-destinations.md, and --raw-schema then names the views' schema).`,
    );
  }
  if (missing.length === 0) return;
  // No other process can land events in an in-memory DuckDB: "land events there first" would send the user
  // to serve or load, whose events go to another, equally new, memory.
  if (wh.dialect === 'duckdb' && wh.displayUrl === 'duckdb://:memory:') {
    throw new UserError(
      `The source tables do not exist in duckdb://:memory:, a database that starts empty and ends with this command: point --warehouse at the DuckDB file your events were landed in, e.g. duckdb://./lifecycle.duckdb.`,
    );
  }
  // A whole schema missing is one mistake (a typo in --raw-schema), not a list of absent tables.
  const schemas = await listSchemas(wh);
  const absent = [...new Set([...read.values()].map((e) => e.schema))].filter((s) => !schemas.includes(s));
  if (absent.length > 0) {
    const s = absent[0];
    const others = schemas.filter((x) => !x.startsWith('__'));
    const hint = closest(s, others);
    const shown = others.length > 12 ? [...others.slice(0, 12), '…'] : others;
    throw new UserError(
      `The schema ${s}, where the source tables should be, does not exist in ${wh.displayUrl}${hint ? `: did you mean --raw-schema ${hint}?` : ''} (schemas there: ${shown.join(', ') || 'none'})` +
        (hint
          ? '.'
          : `: land events there first (cdp-lifecycle serve, load, or demo --warehouse ${wh.displayUrl} --raw-schema ${s}) or check --raw-schema.`),
    );
  }
  const one = missing.length === 1;
  throw new UserError(
    `${one ? 'The source table' : 'The source tables'} ${missing.join('; ')} ${one ? 'does' : 'do'} not exist in ${wh.displayUrl}: land events there first (cdp-lifecycle serve or load), check --raw-schema, or point the source at your table with the package's lifecycle__*_table vars (docs/warehouse-destinations.md).`,
  );
}

async function runWarehouse<T>(
  name: string,
  file: string,
  dialect: string,
  fn: () => Promise<T>,
  where = '',
): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof UserError && /^model /.test(err.message)) throw err;
    const at = where ? ` ${where}` : '';
    throw new UserError(
      `model ${name} (${file}) failed on ${dialect}${at}: ${firstLine(errorMessage(err))}`,
      {
        cause: err,
      },
    );
  }
}

/**
 * The runner's note of incremental models to rebuild in full at their next build, in the build's schema: a
 * partial build that rebuilt a model upstream of them in full left them out (see buildUnlocked).
 */
export const PENDING_REBUILDS = 'cdp_lifecycle_pending_rebuilds';

const PENDING_TABLE: TableSpec = {
  name: PENDING_REBUILDS,
  columns: [
    { name: 'model', type: 'text' },
    { name: 'upstream', type: 'text' },
  ],
};
