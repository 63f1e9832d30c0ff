import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { BUILTIN_MACROS } from '../../src/runner/builtin-macros';
import { parseProject } from '../../src/runner/graph';
import { defaultProjectDir, loadProject, type Project } from '../../src/runner/project';
import { Relation, TARGET_TYPES, type TargetType } from '../../src/runner/render';

/**
 * Every model must render to the same SQL under nunjucks (the runner) and Jinja2, the engine dbt-core renders
 * the package with when a customer installs it with packages.yml. minijinja (parity.test.ts) is close to
 * Jinja2 but not the same engine; this runs the real one, in Python (jinja2_harness.py), with dbt's own
 * conventions for macros, `return()`, `run_started_at` and the environment's extensions.
 *
 * Python with jinja2 comes with Debian's sqlfluff, which .ci/run installs: in CI a missing interpreter fails
 * the suite; elsewhere it is skipped with a message.
 */
const HARNESS = path.join(__dirname, 'jinja2_harness.py');

function findPython(): string | undefined {
  for (const exe of [process.env.PYTHON, 'python3', '/usr/bin/python3']) {
    if (!exe) continue;
    const r = spawnSync(exe, ['-c', 'import jinja2'], { encoding: 'utf8' });
    if (r.status === 0) return exe;
  }
  return undefined;
}

const python = findPython();
if (!python && process.env.CI !== 'true') {
  console.warn('jinja2-parity: no python3 with jinja2 (apt-get install python3-jinja2): skipped');
}
const run = python || process.env.CI === 'true' ? describe : describe.skip;

const normalise = (sql: string): string => sql.replace(/\s+/g, ' ').trim();

interface Job {
  project_name: string;
  builtin_macros: string;
  package_macros: string[];
  var_layers: Array<Record<string, unknown>>;
  refs: Record<string, string>;
  sources: Record<string, string>;
  dispatch: Record<string, [string, string]>;
  target: unknown;
  run_started_at: string;
  models: Array<{ name: string; raw: string; incremental: boolean; this: string }>;
}

type Fn = (...args: unknown[]) => unknown;

/** What the runner resolves for one build, for the Python side, and the SQL nunjucks renders for each model. */
function buildJob(
  project: Project,
  dialect: TargetType,
  vars: Record<string, unknown>,
): { job: Job; expected: Map<string, { file: string; sql: string }> } {
  const runStartedAt = new Date('2024-03-31T12:34:56.789Z');
  const parsed = parseProject({
    project,
    targetType: dialect,
    schema: 'lifecycle',
    rawSchema: 'cdp',
    vars,
    runStartedAt,
  });
  const r = parsed.renderer;
  const g = r.contextGlobals();
  const printed = (v: unknown): string => (v instanceof Relation ? v.render() : String(v));

  // The vars every layer defines, resolved with the runner's precedence: one flat layer for Python.
  const names = new Set<string>([
    ...Object.keys(vars),
    'lifecycle__raw_schema',
    ...Object.keys(project.globalVars ?? {}),
    ...Object.keys((project.packageVars ?? {})[project.name] ?? {}),
  ]);
  const resolvedVars: Record<string, unknown> = {};
  for (const n of names) {
    const v = r.lookupVar(n);
    if (v.found) resolvedVars[n] = v.value;
  }

  const first = parsed.graph.get(parsed.order[0])!.node;
  const refs: Record<string, string> = {};
  r.withModel(first, false, () => {
    for (const name of parsed.order) refs[name] = printed((g.ref as Fn)(name));
  });
  const sources: Record<string, string> = {};
  for (const key of project.sources.keys()) {
    const [s, t] = key.split('.');
    sources[key] = printed((g.source as Fn)(s, t));
  }

  const macroNames = r.macroNames();
  const dispatch: Record<string, [string, string]> = {};
  for (const m of new Set([...macroNames.builtin, ...macroNames.package])) {
    const i = m.indexOf('__');
    if (i < 0) continue;
    const base = m.slice(i + 2);
    for (const ns of ['', 'dbt', project.name]) {
      try {
        const res = r.resolveDispatch(base, ns || undefined);
        dispatch[`${ns}|${base}`] = [res.namespace, res.macro];
      } catch {
        // no implementation for this dialect: the Python side raises too if a template asks for it
      }
    }
  }

  const expected = new Map<string, { file: string; sql: string }>();
  const models: Job['models'] = [];
  for (const name of parsed.order) {
    const gn = parsed.graph.get(name)!;
    const modes = gn.config.materialized === 'incremental' ? [false, true] : [false];
    for (const inc of modes) {
      const self = r.withModel(gn.node, inc, () => printed(g.this));
      models.push({ name, raw: gn.node.raw, incremental: inc, this: self });
      expected.set(`${name}|${inc}`, {
        file: gn.node.file,
        sql: normalise(r.render(gn.node, 'run', inc).sql),
      });
    }
  }

  return {
    job: {
      project_name: project.name,
      builtin_macros: BUILTIN_MACROS,
      package_macros: project.macroFiles.map((m) => m.source),
      var_layers: [resolvedVars],
      refs,
      sources,
      dispatch,
      target: g.target,
      run_started_at: runStartedAt.toISOString(),
      models,
    },
    expected,
  };
}

function renderWithJinja2(job: Job): Record<string, { sql?: string; error?: string }> {
  const r = spawnSync(python!, [HARNESS], {
    input: JSON.stringify(job),
    encoding: 'utf8',
    maxBuffer: 256 * 1024 * 1024,
  });
  if (r.status !== 0) throw new Error(`jinja2_harness.py failed (${r.status}): ${r.stderr}`);
  return JSON.parse(r.stdout) as Record<string, { sql?: string; error?: string }>;
}

// The defaults (D from run_started_at), and every var overridden with values that take other template paths:
// a fixed D, a zone with an offset, event lists with quotes, other thresholds.
const VAR_SETS: Array<[string, Record<string, unknown>]> = [
  ['defaults', {}],
  [
    'overridden',
    {
      lifecycle__as_of_date: '2024-06-30',
      lifecycle__timezone: 'America/New_York',
      lifecycle__new_days: 3,
      lifecycle__power_days: 1,
      lifecycle__churn_events: ['Account Deleted', "O'Brien Left"],
      lifecycle__non_activity_events: ['Email Delivered'],
      lifecycle__core_events: ['Lesson Completed', 'Quiz Passed'],
      lifecycle__purchase_events: ['Order Completed', 'Subscription Renewed'],
      lifecycle__plan_trait: 'tier',
      lifecycle__lookback_hours: 0,
    },
  ],
];

run('nunjucks / Jinja2 (dbt-core) parity', () => {
  const PROJECTS = [defaultProjectDir(), path.join(__dirname, 'fixtures', 'basic')];
  const cases = PROJECTS.flatMap((dir) =>
    TARGET_TYPES.flatMap((t) =>
      VAR_SETS.filter(([label]) => dir === PROJECTS[0] || label === 'defaults').map(
        ([label, vars]) => [path.basename(dir), t, label, dir, vars] as const,
      ),
    ),
  );

  it('finds python3 with jinja2 (CI installs it with sqlfluff)', () => {
    expect(python).toBeDefined();
  });

  it.each(cases)(
    '%s renders every model identically for %s with %s vars',
    (_p, dialect, _l, dir, vars) => {
      const project = loadProject(dir);
      const { job, expected } = buildJob(project, dialect, vars);
      const got = renderWithJinja2(job);
      expect(Object.keys(got).sort()).toEqual([...expected.keys()].sort());
      for (const [key, want] of expected) {
        const res = got[key];
        // The file and mode in the compared object tell which model left the portable subset.
        expect({ file: want.file, key, sql: res.error ?? normalise(res.sql ?? '') }).toEqual({
          file: want.file,
          key,
          sql: want.sql,
        });
      }
    },
    60_000,
  );
});

describe('the Jinja2 parity check itself', () => {
  (python ? it : it.skip)('notices a template that renders differently outside the portable subset', () => {
    const project = loadProject(path.join(__dirname, 'fixtures', 'basic'));
    const { job } = buildJob(project, 'duckdb', {});
    job.models = [
      // Jinja2 prints none as "None", nunjucks as nothing; a tuple literal is not portable either.
      {
        name: 'probe',
        raw: "select '{{ none }}' as x, {{ ref('dim_users') }}",
        incremental: false,
        this: '',
      },
    ];
    expect(renderWithJinja2(job)['probe|false']).toEqual({
      sql: `select 'None' as x, "lifecycle"."dim_users"`,
    });
  });
});

// The package's whole-number vars under dbt's engine: a YAML 7.0 is a float to Jinja2 but the integer 7 to
// nunjucks, so the runner took it while dbt refused it; both must read it as 7 and refuse what is not whole.
describe('whole-number vars under Jinja2', () => {
  (python ? it : it.skip)('take an integral float and refuse fractions, booleans and decimal texts', () => {
    const { job } = buildJob(loadProject(defaultProjectDir()), 'duckdb', {});
    const probes: Array<[string, string]> = [
      ['float', '7.0'],
      ['int', '7'],
      ['text', "'7'"],
      ['fraction', '7.5'],
      ['boolean', 'true'],
      ['decimal_text', "'7.0'"],
      ['below', '0.0'],
    ];
    job.models = probes.map(([name, literal]) => ({
      name,
      raw: `select {{ lifecycle_int_var('lifecycle__probe_days', ${literal}, 1) }} as n`,
      incremental: false,
      this: '',
    }));
    const got = renderWithJinja2(job);
    const sqlOf = (name: string) => got[`${name}|false`];
    for (const ok of ['float', 'int', 'text']) expect(sqlOf(ok)).toEqual({ sql: 'select 7 as n' });
    for (const [bad, shown] of [
      ['fraction', '7.5'],
      ['boolean', 'True'],
      ['decimal_text', '7.0'],
      ['below', '0.0'],
    ]) {
      expect(sqlOf(bad).error).toContain(
        `The var lifecycle__probe_days must be a whole number >= 1, not '${shown}'`,
      );
    }
  });
});
