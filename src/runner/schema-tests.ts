import { UserError, errorMessage, missingPrivilege, refusalFix } from '../errors';
import type { Progress } from '../util/progress';
import type { Row, SqlValue, Warehouse } from '../warehouse/types';
import { isValidIdent, quoteIdent } from '../warehouse/types';
import { compileModel, databaseName, openProject, type RunnerBaseOptions } from './build';
import { excludedBy, selectForTests } from './dag';
import type { ParsedProject } from './graph';
import { relationKind } from './materialize';
import type { TestSpec } from './project';
import type { RenderedModel } from './render';

/**
 * dbt's verdict on a test's failing rows: with severity error, `error_if` (default `!=0`) fails it, else
 * `warn_if` (default `!=0`) warns; with severity warn, only `warn_if` counts. A condition is SQL on the count,
 * as in dbt (`>10`, `!=0`, `between 5 and 10`): a plain comparison is decided here, anything else by the
 * warehouse.
 */
async function testVerdict(
  t: TestSpec,
  config: TestSpec['config'],
  failures: number,
  wh: Warehouse,
): Promise<'pass' | 'warn' | 'fail'> {
  const holds = async (key: 'error_if' | 'warn_if'): Promise<boolean> => {
    const raw = String(config[key] ?? '!=0');
    const m = /^\s*(!=|<>|>=|<=|==|=|>|<)\s*(\d+)\s*$/.exec(raw);
    if (!m) {
      try {
        // a fail_calc may count in fractions (sum(amount)): compare the number as it is
        const [row] = await wh.query<{ hit: number | bigint }>(
          `select case when cast(${failures} as ${Number.isInteger(failures) ? 'bigint' : 'double precision'}) ${raw} then 1 else 0 end as hit`,
        );
        return Number(row?.hit ?? 0) === 1;
      } catch (err) {
        throw new UserError(
          `${t.name} (${t.file}): ${key} "${raw}" is no condition dbt takes (${wh.dialect} says: ${errorMessage(err).split('\n')[0]}): write a SQL condition on the failing-row count, such as ">10", "!=0" or "between 5 and 10".`,
        );
      }
    }
    const n = Number(m[2]);
    switch (m[1]) {
      case '>':
        return failures > n;
      case '>=':
        return failures >= n;
      case '<':
        return failures < n;
      case '<=':
        return failures <= n;
      case '=':
      case '==':
        return failures === n;
      default:
        return failures !== n;
    }
  };
  if (config.severity !== 'warn' && (await holds('error_if'))) return 'fail';
  return (await holds('warn_if')) ? 'warn' : 'pass';
}

/**
 * A test's config with its Jinja rendered, as dbt renders every string of it (`severity: "{{ 'error' if
 * target.name == 'prod' else 'warn' }}"`); `where` is rendered where it is used.
 */
function renderedConfig(t: TestSpec, parsed: ParsedProject): TestSpec['config'] {
  const out: TestSpec['config'] = { ...t.config };
  const node = t.source ? undefined : parsed.graph.get(t.model)?.node;
  for (const k of ['severity', 'error_if', 'warn_if', 'limit', 'fail_calc']) {
    const v = out[k];
    if (typeof v === 'string' && /\{[{%#]/.test(v)) out[k] = parsed.renderer.renderString(v, node).trim();
  }
  if (typeof out.severity === 'string') out.severity = out.severity.trim().toLowerCase() as 'error' | 'warn';
  return out;
}

/** dbt's `limit` config: at most that many failing rows are counted. */
function testLimit(t: TestSpec, config: TestSpec['config']): number | undefined {
  const raw = config.limit;
  if (raw === undefined || raw === null || raw === '') return undefined;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 0)
    throw new UserError(`${t.name} (${t.file}): limit "${String(raw)}" is not a whole number of rows.`);
  return n;
}

/** dbt's `fail_calc`: the SQL over the test's rows that gives its failures, when not the default `count(*)`. */
function failCalc(t: TestSpec, config: TestSpec['config']): string | undefined {
  const raw = config.fail_calc;
  if (raw === undefined || raw === null) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '')
    throw new UserError(
      `${t.name} (${t.file}): fail_calc must be SQL over the test's rows, such as "count(*)" or "sum(n_records)".`,
    );
  return raw.trim() === 'count(*)' ? undefined : raw.trim();
}

/**
 * dbt's store_failures (or store_failures_as table/view, which implies it): the failing rows saved in a table
 * of the warehouse. Not done here.
 */
function storesFailures(config: TestSpec['config']): boolean {
  const as = config.store_failures_as;
  if (as === 'ephemeral') return false;
  const on = config.store_failures;
  return on === true || String(on).toLowerCase() === 'true' || as === 'table' || as === 'view';
}

export type TestStatus = 'pass' | 'fail' | 'warn' | 'error' | 'skipped';

export interface SchemaTestResult {
  /** dbt-style name, e.g. `not_null_user_lifecycle_user_id`. */
  name: string;
  type: string;
  model: string;
  column?: string;
  /** The schema.yml that declares the test. */
  file: string;
  status: TestStatus;
  /**
   * Rows returned by the test query (dbt's "Got N results"): failing rows, or failing values for
   * unique/accepted_values; with a `fail_calc`, its value over those rows (0 when it is null).
   */
  failures: number;
  /** Up to 5 of those rows. */
  sample: Row[];
  /** For fail/warn/error/skipped: one sentence saying what is wrong. */
  message?: string;
  /** The query that selects failing rows (parameters inlined only in this text, never when executed). */
  sql: string;
  ms: number;
}

export interface TestResult {
  /** False when any test failed or could not run: the CLI exits 1. */
  success: boolean;
  passed: number;
  failed: number;
  warned: number;
  errored: number;
  skipped: number;
  tests: SchemaTestResult[];
  ms: number;
  /**
   * The warehouse's error when it refused the role a schema the tests read: the tests stopped at the first one
   * refused (the others are skipped), and the caller reports it as the one grant to give.
   */
  refusal?: unknown;
}

export interface TestOptions extends RunnerBaseOptions {
  warehouse: Warehouse;
  progress?: Progress;
  onTest?: (result: SchemaTestResult) => void;
}

const SAMPLE_SIZE = 5;

/**
 * A tested column. dbt writes it unquoted unless the column says `quote: true`, so the warehouse folds its case
 * (PostgreSQL to lower case): `UserId` in schema.yml tests the column user_id. Quoted here (a reserved word
 * must not break the query), after the same folding.
 */
function col(name: string, where: string, exact = false): string {
  if (!isValidIdent(name)) {
    throw new UserError(
      `${where}: the column "${name}" is not a plain SQL identifier; tests take column names.`,
    );
  }
  return quoteIdent(exact ? name : name.toLowerCase());
}

interface TestQuery {
  sql: string;
  params: SqlValue[];
}

/** Builds the SQL of a generic test the way dbt's built-in test macros write it, with bound values. */
function testQuery(
  t: TestSpec,
  modelRel: string,
  parsed: ParsedProject,
  cache: Map<string, RenderedModel>,
): TestQuery {
  const where = `the ${t.type} test ${t.name} (${t.file})`;
  const model = t.config.where
    ? `(select * from ${modelRel} where ${parsed.renderer.renderString(String(t.config.where), parsed.graph.get(t.model)?.node)}) dbt_subquery`
    : modelRel;
  const type = t.type.startsWith('dbt.') ? t.type.slice(4) : t.type;
  const needCol = (): string => {
    if (!t.column) throw new UserError(`${where} needs a column: put it under a column or give column_name.`);
    // A column under `columns:` is an identifier, quoted; a model-level `column_name:` is SQL written by the
    // package's author, like the model itself, and dbt inserts it as is (e.g. "a || '|' || b").
    if (t.columnIsSql && !isValidIdent(t.column)) return `(${t.column})`;
    return col(t.column, where, t.columnQuoted);
  };
  switch (type) {
    case 'not_null': {
      const c = needCol();
      return { sql: `select * from ${model} where ${c} is null`, params: [] };
    }
    case 'unique': {
      const c = needCol();
      return {
        sql: `select ${c} as unique_field, count(*) as n_records from ${model} where ${c} is not null group by ${c} having count(*) > 1`,
        params: [],
      };
    }
    case 'accepted_values': {
      const c = needCol();
      const values = t.args.values;
      if (!Array.isArray(values) || values.length === 0) {
        throw new UserError(`${where} needs a non-empty "values:" list.`);
      }
      const quote = t.args.quote !== false;
      const params: SqlValue[] = values.map((v) => {
        if (quote) return String(v);
        if (typeof v === 'number' || typeof v === 'boolean') return v;
        throw new UserError(
          `${where} has quote: false, so its values must be numbers or booleans, not ${JSON.stringify(v)}.`,
        );
      });
      const list = params.map((_, i) => `$${i + 1}`).join(', ');
      return {
        sql:
          `with all_values as (select ${c} as value_field, count(*) as n_records from ${model} group by ${c}) ` +
          `select * from all_values where value_field not in (${list})`,
        params,
      };
    }
    case 'relationships': {
      const c = needCol();
      const to = t.args.to;
      const field = t.args.field;
      if (typeof to !== 'string' || typeof field !== 'string') {
        throw new UserError(`${where} needs "to: ref('model')" and "field: column".`);
      }
      // dbt disables (with a warning) a test whose parent is a disabled model: no relation was built for it
      const target = refTarget(to);
      if (target && parsed.project.models.has(target) && !parsed.graph.has(target)) {
        throw new UnsupportedTest(`its parent ref('${target}') is disabled`);
      }
      const expr = /^\s*\{\{/.test(to) ? to : `{{ ${to} }}`;
      let parent = parsed.renderer.renderString(expr, parsed.graph.get(t.model)?.node).trim();
      // ref() to an ephemeral model renders its CTE name, which no test query defines: inline its SQL instead
      const eph = /^"?__dbt__cte__(\w+)"?$/.exec(parent);
      if (eph && parsed.graph.has(eph[1]))
        parent = `(\n${compileModel(parsed, eph[1], false, cache)}\n) dbt_parent`;
      const f = col(field, where);
      return {
        sql:
          `with child as (select ${c} as from_field from ${model} where ${c} is not null), ` +
          `parent as (select ${f} as to_field from ${parent}) ` +
          `select from_field from child left join parent on child.from_field = parent.to_field where parent.to_field is null`,
        params: [],
      };
    }
    default:
      throw new UnsupportedTest(
        `the test type ${t.type} is not supported (use unique, not_null, accepted_values, relationships)`,
      );
  }
}

class UnsupportedTest extends Error {}

/** The model a `to:` like `ref('m')` (or `ref('pkg', 'm')`) names. */
function refTarget(to: string): string | undefined {
  return /\bref\(\s*(?:['"][^'"]*['"]\s*,\s*)?['"]([^'"]+)['"]\s*\)/.exec(to)?.[1];
}

/** The models a test reads: the one it is declared on, and a relationships test's `to:` model. */
function testParents(t: TestSpec): string[] {
  const to = t.type === 'relationships' && typeof t.args.to === 'string' ? refTarget(t.args.to) : undefined;
  return to === undefined || to === t.model ? [t.model] : [t.model, to];
}

function inlineParams(q: TestQuery): string {
  return q.sql.replace(/\$(\d+)/g, (_, i: string) => {
    const v = q.params[Number(i) - 1];
    return typeof v === 'string' ? `'${v.replace(/'/g, "''")}'` : String(v);
  });
}

/**
 * Runs the schema tests (unique, not_null, accepted_values, relationships; model and column level, with
 * `config: {where, severity}`) of the selected models against the built relations.
 */
export async function testModels(opts: TestOptions): Promise<TestResult> {
  const started = Date.now();
  const wh = opts.warehouse;
  const parsed = openProject({ database: databaseName(wh.displayUrl), ...opts }, wh.dialect);
  // Source tests run with the whole project, or when a selector names `source:<source>[.<table>]`.
  const {
    models: selected,
    sources: sourceSelectors,
    everything,
  } = selectForTests(parsed.graph, opts.select, parsed.project.name, opts.exclude);
  const sourceSelected = (t: TestSpec): boolean =>
    everything ||
    sourceSelectors.some((s) => s === t.source!.source || s === `${t.source!.source}.${t.source!.table}`);
  // dbt's default (eager) indirect selection: a test runs when any model it reads is selected, and none of
  // them is excluded (a relationships test reads its `to:` model too)
  const excluded = excludedBy(parsed.graph, opts.exclude, parsed.project.name);
  const modelSelected = (t: TestSpec): boolean => {
    const parents = testParents(t).filter((p) => parsed.graph.has(p));
    return parents.some((p) => selected.has(p)) && !parents.some((p) => excluded.has(p));
  };
  const specs = parsed.project.tests.filter(
    // (a test with `enabled: false` is left out, as dbt leaves it out)
    (t) => t.config.enabled !== false && (t.source ? sourceSelected(t) : modelSelected(t)),
  );
  const results: SchemaTestResult[] = [];
  const cache = new Map<string, RenderedModel>();
  const relCache = new Map<string, { rel: string } | { error: string }>();
  opts.progress?.start(specs.length, 'test', 'tests');

  const modelRelation = async (name: string): Promise<{ rel: string } | { error: string }> => {
    let r = relCache.get(name);
    if (r) return r;
    const src = parsed.project.sources.get(name);
    const g = parsed.graph.get(name);
    if (!g && src) {
      const rel = parsed.renderer.renderString(`{{ source('${src.source}', '${src.name}') }}`).trim();
      const [schema, table] = rel.split('.').map((p) => p.replace(/^"|"$/g, ''));
      const kind = await relationKind(wh, schema, table);
      r = kind ? { rel } : { error: `the source table ${rel} does not exist on ${wh.dialect}` };
      relCache.set(name, r);
      return r;
    }
    if (!g) throw new UserError(`the test names ${name}, which is neither a model nor a source table`);
    const cfg = parsed.renderer.configs.get(name) ?? g.config;
    if (cfg.materialized === 'ephemeral') {
      // An ephemeral model has no relation: test its SQL inline, as dbt does.
      r = { rel: `(\n${compileModel(parsed, name, false, cache)}\n) dbt_ephemeral` };
    } else {
      const rel = parsed.renderer.relationFor(name, cfg);
      const kind = await relationKind(wh, rel.schema, rel.identifier);
      r = kind
        ? { rel: rel.render() }
        : { error: `model ${name} is not built (no ${rel.render()} on ${wh.dialect}): run build first` };
    }
    relCache.set(name, r);
    return r;
  };

  let refusal: { err: unknown; what: string } | undefined;
  for (const t of specs) {
    const t0 = Date.now();
    const res: SchemaTestResult = {
      name: t.name,
      type: t.type,
      model: t.model,
      column: t.column,
      file: t.file,
      status: 'pass',
      failures: 0,
      sample: [],
      sql: '',
      ms: 0,
    };
    if (refusal) {
      res.status = 'skipped';
      res.message = `skipped because the warehouse refused ${refusal.what}`;
      results.push(res);
      opts.onTest?.(res);
      opts.progress?.increment(1, `${t.name} ${res.status}`);
      continue;
    }
    try {
      const rel = await modelRelation(t.model);
      if ('error' in rel) throw new UserError(rel.error);
      const q = testQuery(t, rel.rel, parsed, cache);
      res.sql = inlineParams(q);
      const config = renderedConfig(t, parsed);
      const limit = testLimit(t, config);
      const calc = failCalc(t, config);
      if (storesFailures(config))
        opts.log?.(
          `warning: ${t.name} (${t.file}) sets store_failures, which this runner does not support: its failing rows are not saved in a table (the test runs, and reports its count and sample rows)`,
        );
      // dbt's get_test_sql: `select <fail_calc> as failures from (<test sql> limit <limit>) dbt_internal_test`
      const counted = await wh.query<{ n: number | bigint | string | null }>(
        limit === undefined
          ? `select ${calc ?? 'count(*)'} as n from (${q.sql}) dbt_internal_test`
          : `select ${calc ?? 'count(*)'} as n from (select * from (${q.sql}) dbt_limited limit ${limit}) dbt_internal_test`,
        q.params,
      );
      const n = counted[0]?.n;
      // a fail_calc over no rows (sum) is null: in dbt, no threshold holds on it, and the test passes
      res.failures = n === null || n === undefined ? 0 : Number(n);
      // PostgreSQL's bigint and numeric come as decimal text; other text ('' or '0x10', which Number() reads
      // as 0 and 16) is no count of failures
      const numeric = typeof n !== 'string' || /^\s*[-+]?(\d+\.?\d*|\.\d+)(e[-+]?\d+)?\s*$/i.test(n);
      if (!numeric || !Number.isFinite(res.failures)) {
        res.failures = 0;
        throw new UserError(
          `fail_calc "${calc}" gives ${typeof n === 'string' ? `'${n}'` : String(n)}, not a number of failures`,
        );
      }
      const verdict = n === null ? 'pass' : await testVerdict(t, config, res.failures, wh);
      if (verdict !== 'pass') {
        res.sample = await wh.query(`select * from (${q.sql}) dbt_test limit ${SAMPLE_SIZE}`, q.params);
        res.status = verdict;
        res.message = `${t.name} (${t.file}) ${res.status === 'warn' ? 'warned' : 'failed'}: ${calc ? `fail_calc ${calc} is ${res.failures} over the test's rows` : `${res.failures} failing row${res.failures === 1 ? '' : 's'}`} in ${t.model}${t.column ? '.' + t.column : ''}`;
      }
    } catch (err) {
      if (err instanceof UnsupportedTest) {
        res.status = 'skipped';
        res.message = `${t.name} (${t.file}) was skipped: ${err.message}`;
      } else {
        res.status = 'error';
        const msg = errorMessage(err).split('\n')[0];
        // every error names its test and file (a Jinja error in its where: config says only what is wrong)
        res.message = !(err instanceof UserError)
          ? `${t.name} (${t.file}) could not run on ${wh.dialect}: ${msg}`
          : msg.startsWith(`${t.name} (`)
            ? msg
            : `${t.name} (${t.file}): ${msg}`;
        // the database's own set-up (a missing grant, a timeout): say what to change, as a build does
        const fix = err instanceof UserError ? undefined : refusalFix(err);
        if (fix) res.message = `${res.message.replace(/\.$/, '')}: ${fix.fix}.`;
        // a schema the role may not use fails every test that reads it alike: one grant, not a hundred errors
        const lacking = missingPrivilege(err);
        if (lacking?.kind === 'schema') refusal = { err, what: `usage on schema ${lacking.object}` };
      }
    }
    res.ms = Date.now() - t0;
    results.push(res);
    opts.onTest?.(res);
    opts.progress?.increment(1, `${t.name} ${res.status}`);
  }
  const count = (s: TestStatus): number => results.filter((r) => r.status === s).length;
  const out: TestResult = {
    success: count('fail') === 0 && count('error') === 0,
    passed: count('pass'),
    failed: count('fail'),
    warned: count('warn'),
    errored: count('error'),
    skipped: count('skipped'),
    tests: results,
    ms: Date.now() - started,
    refusal: refusal?.err,
  };
  opts.progress?.stop(
    `tests: ${out.passed} passed, ${out.failed} failed, ${out.warned} warned, ${out.errored} errored${out.skipped ? `, ${out.skipped} skipped` : ''}`,
  );
  return out;
}
