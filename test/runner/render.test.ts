import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModels, type TargetType } from '../../src/runner';
import { parseProject } from '../../src/runner/graph';
import { loadProject } from '../../src/runner/project';
import { UserError } from '../../src/errors';

// Rendering needs no warehouse: these tests compile small projects written to a temp folder.
let tmpRoot = '';
beforeAll(() => {
  tmpRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-runner-render-'));
});
afterAll(() => fs.rmSync(tmpRoot, { recursive: true, force: true }));

let counter = 0;
function project(files: Record<string, string>, vars = ''): string {
  const dir = path.join(tmpRoot, `p${counter++}`);
  const all: Record<string, string> = {
    'dbt_project.yml': `name: pkg\nconfig-version: 2\nmodel-paths: ['models']\nmacro-paths: ['macros']\n${vars}`,
    ...files,
  };
  for (const [rel, text] of Object.entries(all)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
  return dir;
}

async function compile(
  dir: string,
  dialect: TargetType = 'duckdb',
  vars?: Record<string, unknown>,
  select?: string[],
): Promise<Record<string, string>> {
  const res = await compileModels({
    dialect,
    projectDir: dir,
    schema: 'lifecycle',
    rawSchema: 'cdp',
    vars,
    select,
    outDir: path.join(dir, 'target', 'compiled'),
  });
  return Object.fromEntries(res.models.map((m) => [m.name, m.sql.trim()]));
}

async function compileError(dir: string, vars?: Record<string, unknown>): Promise<UserError> {
  try {
    await compile(dir, 'duckdb', vars);
  } catch (e) {
    expect(e).toBeInstanceOf(UserError);
    return e as UserError;
  }
  throw new Error('expected the compile to fail');
}

describe('runner rendering', () => {
  it('names the cycle when refs form one', async () => {
    const dir = project({
      'models/a.sql': "select * from {{ ref('c') }}",
      'models/b.sql': "select * from {{ ref('a') }}",
      'models/c.sql': "select * from {{ ref('b') }}",
      'models/d.sql': "select * from {{ ref('a') }}",
    });
    const e = await compileError(dir);
    expect(e.message).toMatch(
      /^The models form a cycle: a -> b -> c -> a; remove one of these ref\(\) calls/,
    );
    expect(e.message).toContain(path.join(path.basename(dir), 'models', 'a.sql'));
  });

  it('reads --vars flat, as dbt does: a mapping under the package name is a var of its own', async () => {
    const dir = project(
      { 'models/m.sql': "select '{{ var('x') }}' as x, '{{ var('pkg', 'unset') }}' as pkg" },
      'vars:\n  pkg:\n    x: from_project\n',
    );
    const scoped = await compile(dir, 'duckdb', { pkg: { x: 'from_cli' } });
    expect(scoped.m).toBe(`select 'from_project' as x, '{'x': 'from_cli'}' as pkg`);
    const flat = await compile(dir, 'duckdb', { x: 'from_cli' });
    expect(flat.m).toBe(`select 'from_cli' as x, 'unset' as pkg`);
  });

  it("gives a project's generate_schema_name the node of the model the relation is for", async () => {
    const dir = project(
      {
        'macros/schemas.sql':
          '{% macro generate_schema_name(custom_schema_name, node) %}{{ target.schema }}_{{ node.fqn[1] if node else "nonode" }}_{{ custom_schema_name }}{% endmacro %}',
        'models/marts/m.sql': "{{ config(materialized='table') }}select 1 as x",
        'models/other/m2.sql': "{{ config(materialized='table') }}select * from {{ ref('m') }}",
      },
      'models:\n  pkg:\n    marts:\n      +schema: s1\n    other:\n      +schema: s2\n',
    );
    const parsed = parseProject({ project: loadProject(dir), targetType: 'duckdb', schema: 'lifecycle' });
    // where the build puts m (no model being rendered) and where m2's ref points (m2 being rendered)
    const m = parsed.graph.get('m')!;
    expect(parsed.renderer.relationFor('m', m.config).render()).toBe('"lifecycle_marts_s1"."m"');
    expect((await compile(dir)).m2).toContain('"lifecycle_marts_s1"."m"');
  });

  it('says what to change in a model file name that is not an identifier', async () => {
    const e = await compileError(project({ 'models/2024_report.sql': 'select 1 as x' }));
    expect(e.message).toMatch(
      /2024_report\.sql has a name that is not a plain SQL identifier: rename it to letters, digits and underscores, starting with a letter or an underscore\.$/,
    );
  });

  it('refuses two models that build the same relation (an alias equal to another model)', async () => {
    const dir = project({
      'models/a.sql': "{{ config(alias='b', materialized='table') }}select 1 as x",
      'models/b.sql': "{{ config(materialized='table') }}select 2 as x",
    });
    const e = await compileError(dir);
    expect(e.message).toMatch(
      /^models a and b \(\S*models\/b\.sql\) both build "lifecycle"\."b": give one of them another alias or schema\.$/,
    );
  });

  it('names a missing required var, the model and the file; defaults and --vars fill it', async () => {
    const dir = project(
      {
        'models/m.sql': "select\n{{ var('needed') }} as a, {{ var('opt', 5) }} as b, {{ var('flat') }} as c",
      },
      'vars:\n  flat: 1\n',
    );
    const e = await compileError(dir);
    expect(e.message).toBe(
      `model m (${path.join(path.basename(dir), 'models', 'm.sql')}) failed to render: the var "needed" is required but not set: ` +
        `pass it with --vars '{"needed": ...}' or set it under vars: in dbt_project.yml (line 2)`,
    );
    expect((await compile(dir, 'duckdb', { needed: 7 })).m).toBe('select\n7 as a, 5 as b, 1 as c');
    expect((await compile(dir, 'duckdb', { needed: 7, opt: 'x', flat: 2 })).m).toBe(
      'select\n7 as a, x as b, 2 as c',
    );
  });

  it('gives the line of a syntax error and of a render error as an editor numbers them', async () => {
    const file = (dir: string) => path.join(path.basename(dir), 'models', 'm.sql');
    const syntax = project({ 'models/m.sql': 'select 1\n, 2\n, {{ foo( }}\n' });
    expect((await compileError(syntax)).message).toBe(
      `model m (${file(syntax)}) failed to render: unexpected token: }} (line 3)`,
    );
    const runtime = project({ 'models/m.sql': 'select 1\n, 2\n, {{ foo() }}\n' });
    expect((await compileError(runtime)).message).toBe(
      `model m (${file(runtime)}) failed to render: Unable to call \`foo\`, which is undefined or falsey (line 3)`,
    );
  });

  it('gives the file and line of a syntax error in a macro file', async () => {
    const dir = project({
      'macros/ok.sql': '{% macro a() %}1{% endmacro %}',
      'macros/bad.sql': '\n\n{% macro b() %}\n{{ foo( }}\n{% endmacro %}\n',
      'models/m.sql': 'select {{ a() }} as x',
    });
    expect((await compileError(dir)).message).toBe(
      `The macro file ${path.join(path.basename(dir), 'macros', 'bad.sql')} does not parse: unexpected token: }} (line 4)`,
    );
  });

  it('refuses two macros of one name, in two files or in one, as dbt does', async () => {
    const rel = (dir: string, f: string) => path.join(path.basename(dir), 'macros', f);
    const twoFiles = project({
      'macros/a1.sql': '{% macro a() %}1{% endmacro %}',
      'macros/a2.sql': '{% macro other() %}3{% endmacro %}\n{% macro a() %}2{% endmacro %}',
      'models/m.sql': 'select {{ a() }} as x',
    });
    expect((await compileError(twoFiles)).message).toBe(
      `Two macros are named "a" (${rel(twoFiles, 'a1.sql')} and ${rel(twoFiles, 'a2.sql')}): rename or remove one, as dbt requires.`,
    );
    const oneFile = project({
      'macros/a.sql': '{% macro a() %}1{% endmacro %}\n{%- macro a() -%}2{% endmacro %}',
      'models/m.sql': 'select {{ a() }} as x',
    });
    expect((await compileError(oneFile)).message).toBe(
      `Two macros are named "a" (both in ${rel(oneFile, 'a.sql')}): rename or remove one, as dbt requires.`,
    );
    // a macro tag in a comment or a raw block defines nothing
    const quoted = project({
      'macros/a.sql':
        '{% macro a() %}1{% endmacro %}{# {% macro a() %} #}{% raw %}{% macro a() %}{% endraw %}',
      'models/m.sql': 'select {{ a() }} as x',
    });
    expect((await compile(quoted)).m).toBe('select 1 as x');
  });

  it('calls a macro whose name starts with an underscore, as dbt does, and checks those for duplicates too', async () => {
    const dir = project({
      'macros/helpers.sql': "{% macro _quoted(x) %}'{{ x }}'{% endmacro %}",
      'macros/public.sql': '{% macro label(x) %}{{ _quoted(x) }}{% endmacro %}',
      'models/m.sql': "select {{ label('a') }} as l, {{ _quoted('b') }} as q",
    });
    expect((await compile(dir)).m).toBe("select 'a' as l, 'b' as q");
    const twice = project({
      'macros/a.sql': '{% macro _h() %}1{% endmacro %}',
      'macros/b.sql': '{% macro _h() %}2{% endmacro %}',
      'models/m.sql': 'select {{ _h() }} as x',
    });
    expect((await compileError(twice)).message).toMatch(/^Two macros are named "_h" \(/);
  });

  it('refuses a macro defined inside {% if %} or {% for %}, which dbt does not read', async () => {
    const dir = project({
      'macros/m.sql':
        "{% macro ok() %}1{% endmacro %}\n{% if target.name == 'prod' %}\n{% macro x() %}ONE{% endmacro %}\n{% else %}{% macro x() %}TWO{% endmacro %}{% endif %}",
      'models/m.sql': 'select {{ x() }} as x',
    });
    expect((await compileError(dir)).message).toBe(
      `The macro file ${path.join(path.basename(dir), 'macros', 'm.sql')} defines the macro x inside {% if %} or {% for %} (line 3): dbt allows macros only at the top level of a file; define it there and branch inside it instead.`,
    );
  });

  it('reads a macro file once when macro-paths overlap', async () => {
    const dir = project({
      'dbt_project.yml':
        "name: pkg\nconfig-version: 2\nmodel-paths: ['models']\nmacro-paths: ['macros', 'macros/sub']\n",
      'macros/sub/y.sql': '{% macro y() %}7{% endmacro %}',
      'models/m.sql': 'select {{ y() }} as y',
    });
    expect((await compile(dir)).m).toBe('select 7 as y');
  });

  it("limits n+ and +n by the shortest path, as dbt's breadth-first walk does, and matches default configs", async () => {
    // x refs y and z, y refs z, z refs w: w is two refs above x (through z) and three through y
    const dir = project({
      'models/w.sql': "{{ config(materialized='table') }}select 1 as v",
      'models/z.sql': "select * from {{ ref('w') }}",
      'models/y.sql': "select * from {{ ref('z') }}",
      'models/x.sql': "select * from {{ ref('y') }} union all select * from {{ ref('z') }}",
    });
    const picked = async (select: string[]) =>
      Object.keys(await compile(dir, 'duckdb', undefined, select)).sort();
    expect(await picked(['2+x'])).toEqual(['w', 'x', 'y', 'z']);
    expect(await picked(['1+x'])).toEqual(['x', 'y', 'z']);
    expect(await picked(['w+2'])).toEqual(['w', 'x', 'y', 'z']);
    expect(await picked(['w+1'])).toEqual(['w', 'z']);
    // a model with no materialized config is a view, and dbt's config selector sees it so
    expect(await picked(['config.materialized:view'])).toEqual(['x', 'y', 'z']);
    expect(await picked(['config.materialized:table'])).toEqual(['w']);
  });

  it('resolves adapter.dispatch as <adapter>__x, then default__x, package before the dbt namespace', async () => {
    const dir = project({
      'macros/m.sql': `
{% macro greet() %}{{ return(adapter.dispatch('greet', 'pkg')()) }}{% endmacro %}
{% macro default__greet() %}default{% endmacro %}
{% macro postgres__greet() %}postgres{% endmacro %}
{% macro snowflake__greet() %}snowflake{% endmacro %}
{% macro postgres__type_string() %}my_text{% endmacro %}`,
      'models/m.sql':
        "select '{{ greet() }}' as g, cast(1 as {{ dbt.type_string() }}) as s, {{ dbt.dateadd('day', 1, 'd') }} as d",
    });
    const sql = async (t: TargetType) => (await compile(dir, t)).m;
    expect(await sql('duckdb')).toBe(
      "select 'default' as g, cast(1 as varchar) as s, date_add(d, interval (1) day) as d",
    );
    // The package's postgres__type_string overrides dbt's for the dbt namespace, as a root project can.
    expect(await sql('postgres')).toBe(
      "select 'postgres' as g, cast(1 as my_text) as s, d + ((interval '1 day') * (1)) as d",
    );
    // dbt-redshift inherits from dbt-postgres: postgres__greet serves redshift; dbt's redshift__dateadd wins.
    expect(await sql('redshift')).toBe(
      "select 'postgres' as g, cast(1 as my_text) as s, dateadd(day, 1, d) as d",
    );
    expect(await sql('snowflake')).toBe(
      "select 'snowflake' as g, cast(1 as varchar) as s, dateadd(day, 1, d) as d",
    );
    expect(await sql('bigquery')).toBe(
      "select 'default' as g, cast(1 as string) as s, datetime_add(cast(d as datetime), interval 1 day) as d",
    );
  });

  it('fails clearly when dispatch finds no implementation', async () => {
    const dir = project({
      'macros/m.sql': "{% macro f() %}{{ return(adapter.dispatch('f', 'pkg')()) }}{% endmacro %}",
      'models/m.sql': 'select {{ f() }}',
    });
    const e = await compileError(dir);
    expect(e.message).toContain(
      "adapter.dispatch('f', 'pkg') found no implementation for duckdb (looked for pkg.duckdb__f, pkg.default__f, dbt.duckdb__f, dbt.default__f)",
    );
  });

  it('makes return() the value of the macro and stops it', async () => {
    const dir = project({
      'macros/m.sql': `
{% macro cols() %}{{ return(['a', 'b', 'c']) }}this text is never rendered{% endmacro %}
{% macro pick(flag) %}{% if flag %}{{ return('yes') }}{% endif %}{{ return('no') }}{% endmacro %}
{% macro plain() %}plain text{% endmacro %}`,
      'models/m.sql': `{% set cs = cols() %}select {{ cs | join(', ') }}, {{ cs | length }} as n, '{{ pick(true) }}{{ pick(false) }}' as p, '{{ plain() }}' as t`,
    });
    expect((await compile(dir)).m).toBe("select a, b, c, 3 as n, 'yesno' as p, 'plain text' as t");
  });

  it('keeps the caller variables and loop after a macro it calls returns with return()', async () => {
    // As Jinja2 renders it: the returning macro's scope must not replace the caller's.
    const dir = project({
      'macros/m.sql': `
{% macro r(v) %}{{ return(v ~ '!') }}{% endmacro %}
{% macro lst(vals) %}{% for v in vals %}{{ r(v) }}{% if not loop.last %},{% endif %}{% endfor %}{% endmacro %}
{% macro keep(x) %}{% set a = 'kept' %}{{ r(x) }}|{{ a }}{% endmacro %}
{% macro wrap() %}[{{ caller() }}]{% endmacro %}
{% macro outer() %}{% set b = 'B' %}{% call wrap() %}in{{ r('c') }}{% endcall %}{{ b }}{% endmacro %}`,
      'models/m.sql':
        "select '{{ lst(['a', 'b', 'c']) }}' as l, '{{ keep('z') }}' as k, '{{ outer() }}' as o",
    });
    expect((await compile(dir)).m).toBe("select 'a!,b!,c!' as l, 'z!|kept' as k, '[inc!]B' as o");
  });

  it('reports raise_compiler_error, unknown refs and sources with the model and file', async () => {
    const dir = project({
      'models/m.sql': "{{ exceptions.raise_compiler_error('lifecycle__x must be positive') }}",
    });
    const e = await compileError(dir);
    expect(e.message).toBe(
      `model m (${path.join(path.basename(dir), 'models', 'm.sql')}) failed to render: lifecycle__x must be positive`,
    );
    const dir2 = project({ 'models/m.sql': "select * from {{ ref('nope') }}" });
    expect((await compileError(dir2)).message).toMatch(
      /model m \(.*m\.sql\) failed to render: ref\('nope'\) names no model of the project/,
    );
    const dir3 = project({ 'models/m.sql': "select * from {{ source('raw', 'nope') }}" });
    expect((await compileError(dir3)).message).toMatch(/source\('raw', 'nope'\) is not declared/);
  });

  it('merges config from dbt_project.yml folders, schema.yml and config(), and renders this/target/model', async () => {
    const dir = project(
      {
        'models/marts/m.sql': `{{ config(alias='m_alias') }}select '{{ this }}' as t, '{{ this.identifier }}' as i, '{{ target.schema }}' as s, '{{ model.name }}' as n, '{{ config.get("materialized") }}{{ config.get("nope", "dflt") }}' as x`,
        'models/marts/schema.yml':
          'version: 2\nmodels:\n  - name: m\n    config:\n      materialized: incremental\n      unique_key: id\n',
        'models/v.sql': "{{ config(schema='extra') }}select * from {{ ref('m') }}",
      },
      "models:\n  pkg:\n    +materialized: view\n    marts:\n      +materialized: table\n      +tags: ['mart']\n",
    );
    const res = await compileModels({
      dialect: 'postgres',
      projectDir: dir,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      outDir: path.join(dir, 'out'),
    });
    const m = Object.fromEntries(res.models.map((x) => [x.name, x]));
    expect(m.m.materialized).toBe('incremental');
    expect(m.v.materialized).toBe('view');
    expect(m.m.sql.trim()).toBe(
      `select '"lifecycle"."m_alias"' as t, 'm_alias' as i, 'lifecycle' as s, 'm' as n, 'incrementaldflt' as x`,
    );
    // dbt's default generate_schema_name: a custom schema is appended to the target schema.
    expect(m.v.sql.trim()).toBe('select * from "lifecycle"."m_alias"');
    expect(fs.readFileSync(path.join(dir, 'out', 'postgres', 'm.sql'), 'utf8')).toBe(m.m.sql);
  });

  it('warns about a schema.yml entry for a model with no .sql file and goes on without it, as dbt does', async () => {
    const dir = project({
      'models/m.sql': 'select 1 as id',
      'models/schema.yml':
        'version: 2\nmodels:\n  - name: m\n    columns:\n      - name: id\n        tests: [not_null]\n' +
        '  - name: gone\n    config:\n      materialized: table\n    columns:\n      - name: id\n        tests: [unique]\n',
    });
    const logs: string[] = [];
    const res = await compileModels({
      dialect: 'duckdb',
      projectDir: dir,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      outDir: path.join(dir, 'out'),
      log: (msg) => logs.push(msg),
    });
    expect(res.models.map((x) => x.name)).toEqual(['m']);
    expect(logs).toEqual([
      `warning: Did not find matching node for patch with name 'gone' in the 'models' section of file '${path.join(path.basename(dir), 'models', 'schema.yml')}' (there is no gone.sql): its config and tests are ignored`,
    ]);
    // dbt drops the tests of the missing model too, rather than erroring on a relation never built
    expect(loadProject(dir).tests.map((t) => t.name)).toEqual(['not_null_m_id']);
  });

  it('inlines ephemeral models as CTEs, nested ones first, after an existing WITH', async () => {
    const dir = project({
      'models/e1.sql': "{{ config(materialized='ephemeral') }}select 1 as x",
      'models/e2.sql': "{{ config(materialized='ephemeral') }}select x from {{ ref('e1') }}",
      'models/m.sql':
        "with own as (select 2 as y)\nselect * from {{ ref('e2') }}, own, {{ ref('e1') }} as again",
      'models/n.sql': '-- a comment\nselect * from {{ ref("e2") }}',
    });
    const out = await compile(dir);
    expect(out.m).toBe(
      'with\n__dbt__cte__e1 as (\nselect 1 as x\n),\n__dbt__cte__e2 as (\nselect x from __dbt__cte__e1\n),\n' +
        'own as (select 2 as y)\nselect * from __dbt__cte__e2, own, __dbt__cte__e1 as again',
    );
    expect(out.n).toBe(
      'with __dbt__cte__e1 as (\nselect 1 as x\n),\n__dbt__cte__e2 as (\nselect x from __dbt__cte__e1\n)\n-- a comment\nselect * from __dbt__cte__e2',
    );
  });

  it('offers run_started_at, modules.datetime, log and Python-style string conversion', async () => {
    const logs: string[] = [];
    const dir = project({
      'models/m.sql':
        "{{ log('hello ' ~ 1) }}select '{{ run_started_at.strftime('%Y') | length }}' as y, '{{ none | string }}' as n, " +
        "'{{ [1, 'a'] | string }}' as l, '{{ true ~ '' }}' as b, '{{ modules.datetime.date.today().isoformat() | length }}' as d",
    });
    const res = await compileModels({
      dialect: 'duckdb',
      projectDir: dir,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      outDir: path.join(dir, 'out'),
      log: (m) => logs.push(m),
    });
    expect(res.models[0].sql.trim()).toBe(
      "select '4' as y, 'None' as n, '[1, 'a']' as l, 'True' as b, '10' as d",
    );
    expect(logs).toContain('hello 1');
  });

  it("prints tojson and modules.datetime's constructors as dbt does (Python's json.dumps and datetime)", async () => {
    // The expected texts are what Python 3 prints: json.dumps({'b': 1, 'a': [None, True, 0.5, 0.00001, 'é\\n']}),
    // Jinja2's |tojson, str(datetime.date(2024, 2, 29)), str(datetime.datetime(2002, 10, 27, 6, 0, 0))…
    const dir = project({
      'models/m.sql': [
        "{{ tojson({'b': 1, 'a': [none, true, 0.5, 0.00001, 'é\\n']}) }}",
        "{{ tojson({'b': 1, 'a': 2}, sort_keys=true) }}",
        "{{ {'b': '<x>', 'a': \"it's\"} | tojson }}",
        '{{ modules.datetime.date(2024, 2, 29) }}',
        '{{ modules.datetime.datetime(2002, 10, 27, 6, 0, 0) }}',
        '{{ modules.datetime.datetime(2002, 10, 27, 6, 0, 0, 123456).isoformat() }}',
        "{{ modules.datetime.datetime(2002, 10, 27, 6, 0, 0, 1).strftime('%f|%%f|%H') }}",
        '{{ modules.datetime.datetime(year=99, month=1, day=2) }}',
      ].join('\n'),
    });
    expect((await compile(dir)).m.split('\n')).toEqual([
      '{"b": 1, "a": [null, true, 0.5, 1e-05, "\\u00e9\\n"]}',
      '{"a": 2, "b": 1}',
      '{"a": "it\\u0027s", "b": "\\u003cx\\u003e"}',
      '2024-02-29',
      '2002-10-27 06:00:00',
      '2002-10-27T06:00:00.123456',
      '000001|%f|06',
      '0099-01-02 00:00:00',
    ]);
    // Python's ValueError, as a render error naming the model
    const bad = project({ 'models/bad.sql': 'select {{ modules.datetime.date(2023, 2, 29) }}' });
    expect((await compileError(bad)).message).toMatch(/bad.*day must be in 1\.\.28/s);
  });

  it('prints values as Jinja2 does: Python str() for None, booleans, lists and dicts; nothing for an undefined name', async () => {
    const dir = project({
      'models/m.sql':
        "select '{{ none }}' as n, '{{ true }}' as t, '{{ false }}' as f, \"{{ ['a', 1] }}\" as l, \"{{ {'k': none} }}\" as d, '{{ not_defined_anywhere }}' as u",
    });
    expect((await compile(dir)).m.trim()).toBe(
      "select 'None' as n, 'True' as t, 'False' as f, \"['a', 1]\" as l, \"{'k': None}\" as d, '' as u",
    );
  });

  it('fails on a member of an undefined name, as Jinja2 does, where a typo would leave an empty identifier', async () => {
    const ok = project({
      'models/m.sql': "select '{{ none.x }}' as a, '{{ target.no_such_key }}' as b, '{{ this.schema }}' as c",
    });
    expect((await compile(ok)).m.trim()).toBe("select '' as a, '' as b, 'lifecycle' as c");
    for (const expr of ['tagret.schema', 'target.no_such_key.x', "tagret['schema']"]) {
      const dir = project({ 'models/m.sql': `select 1 as x\nfrom {{ ${expr} }}` });
      const e = await compileError(dir);
      expect(e.message).toContain(path.join(path.basename(dir), 'models', 'm.sql'));
      expect(e.message).toMatch(
        /^model m \(\S+\) failed to render: cannot read "(schema|x)" of something undefined \(a name that is not defined, or a missing attribute\), which Jinja2 and dbt refuse too$/,
      );
    }
  });

  it('rejects unknown dialects and materializations with one clear sentence', async () => {
    const dir = project({ 'models/m.sql': "{{ config(materialized='snapshot') }}select 1" });
    await expect(compile(dir)).rejects.toThrow(
      /model m \(.*\) has materialized='snapshot': use view, table, incremental or ephemeral\./,
    );
    await expect(compile(dir, 'mysql' as TargetType)).rejects.toThrow(/The dialect "mysql" is not supported/);
  });
});
