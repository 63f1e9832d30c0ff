/**
 * The model runner: renders a dbt project (by default the `models/` package `cdp_lifecycle`) with nunjucks and
 * a dbt-compatible context, then builds, tests or compiles it. See docs/runner.md for what maps to dbt.
 *
 * Usage:
 *
 *   import { buildModels, testModels, compileModels } from './runner';
 *
 *   // `dbt build`-like: every model in DAG order, into schema `lifecycle`, reading raw tables from `cdp`.
 *   const res = await buildModels({ warehouse, schema: 'lifecycle', rawSchema: 'cdp',
 *     vars: { lifecycle__as_of_date: '2024-03-31' }, fullRefresh: false, select: ['+user_lifecycle'] });
 *   // res.models: [{ name, file, materialized, relation, status, rows, incremental, ms }]
 *   // A failing model makes buildModels throw a BuildFailedError (a UserError naming model, file and the
 *   // warehouse message), after building every model that does not depend on it; `err.result` has the list.
 *
 *   const t = await testModels({ warehouse, schema: 'lifecycle', rawSchema: 'cdp' });
 *   // t.success === false when a test failed: each failure has `failures` (row count) and `sample` (<= 5 rows).
 *
 *   await compileModels({ dialect: 'snowflake', schema: 'lifecycle', rawSchema: 'cdp', outDir: 'target/compiled' });
 *   // writes target/compiled/snowflake/<model>.sql without any connection.
 *
 * Output: formatModelLine(result, i, total) / formatBuildSummary / formatTestLine / formatTestSummary give
 * dbt-style lines for the CLI.
 *
 * Templates see: ref, source, var, config, is_incremental, this, target (name, type, schema), model,
 * adapter.dispatch (<adapter>__x then default__x, in the package then in the built-in `dbt` namespace),
 * dbt.* cross-database macros (dateadd, datediff, date_trunc, type_*, current_timestamp, safe_cast, concat,
 * hash, split_part, listagg, …), return, exceptions.raise_compiler_error / warn, log, env_var, modules.datetime,
 * run_started_at, execute.
 */
export {
  buildModels,
  checkSelection,
  BuildFailedError,
  type BuildOptions,
  type FullRefreshProbe,
  type BuildResult,
  type ModelResult,
  type ModelEvent,
  type Materialization,
  type RunnerBaseOptions,
} from './build';
export {
  testModels,
  type TestOptions,
  type TestResult,
  type SchemaTestResult,
  type TestStatus,
} from './schema-tests';
export { columnsOf } from './materialize';
export { compileModels, type CompileOptions, type CompileResult, type CompiledModel } from './compile';
export { TARGET_TYPES, type TargetType } from './render';
export { formatModelLine, formatBuildSummary, formatTestLine, formatTestSummary } from './format';
export { defaultProjectDir, loadProject, type Project } from './project';
export {
  RunResultsRecorder,
  runResultsFile,
  RUN_RESULTS_SCHEMA,
  type RunResultsArtifact,
  type RunResultEntry,
} from './run-results';
