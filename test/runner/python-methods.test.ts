import * as fs from 'node:fs';
import * as path from 'node:path';
import { spawnSync } from 'node:child_process';
import { compileModels } from '../../src/runner';
import { tempProject } from './temp-project';

/**
 * The str and dict methods dbt projects call in macros, rendered by the runner and by Jinja2 itself (the
 * engine of dbt-core): the same text. JavaScript's own `replace` (first match only) and `split` (no split on
 * whitespace) used to answer instead, and `join`, `upper`, `items`, `get`… failed as undefined.
 */
const TEMPLATE = [
  "{{ ', '.join(['a', 'b', 'c']) }}",
  "{{ 'a-b-c'.replace('-', '_') }} {{ 'a-b-c'.replace('-', '_', 1) }} {{ 'aaa'.replace('a', 'b', 0) }}",
  "{{ '  a  b\tc '.split() }} {{ 'a,b,,c'.split(',') }} {{ 'a,b,c'.split(',', 1) }} {{ ' x y z '.split(none, 1) }}",
  "[{{ ' x '.strip() }}] [{{ 'xxhixx'.strip('x') }}] [{{ '  y '.lstrip() }}] [{{ ' z  '.rstrip() }}] [{{ 'abcba'.rstrip('ab') }}]",
  "{{ 'Hello'.upper() }} {{ 'Hello'.lower() }} {{ 'hELLO wORLD'.capitalize() }}",
  "{{ 'stg_orders'.startswith('stg_') }} {{ 'stg_orders'.endswith('.sql') }}",
  "{% set d = {'a': 1, 'b': 'x'} %}{% for k, v in d.items() %}{{ k }}={{ v }};{% endfor %}",
  "{{ d.get('a') }} {{ d.get('z') }} {{ d.get('z', 'dflt') }} {{ d.keys() | list }} {{ d.values() | list }}",
  "{% set cols = ['id', 'user_id'] %}select {{ ', '.join(cols) }} from t where {{ ' and '.join(['x = 1', 'y = 2']) }}",
].join('\n');

function jinja2(template: string): string | undefined {
  const r = spawnSync(
    'python3',
    [
      '-c',
      'import jinja2, sys; sys.stdout.write(jinja2.Environment().from_string(sys.stdin.read()).render())',
    ],
    { input: template, encoding: 'utf8' },
  );
  return r.status === 0 ? r.stdout : undefined;
}

const expectedFromJinja2 = jinja2('');
if (expectedFromJinja2 === undefined && process.env.CI !== 'true') {
  console.warn('python-methods: no python3 with jinja2 (apt-get install python3-jinja2): skipped');
}
const run = expectedFromJinja2 !== undefined || process.env.CI === 'true' ? describe : describe.skip;

/** Compiles one model of `sql` in a project of its own, gone afterwards. */
async function compileOne(sql: string): Promise<string> {
  const dir = tempProject('pymethods', {
    'dbt_project.yml': "name: pm\nconfig-version: 2\nmodel-paths: ['models']\n",
    'models/m.sql': sql,
  });
  try {
    const res = await compileModels({
      dialect: 'duckdb',
      projectDir: dir,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      outDir: path.join(dir, 'target'),
    });
    return res.models[0].sql;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

run('Python str and dict methods in templates', () => {
  it('render as Jinja2 renders them', async () => {
    const ours = await compileOne(TEMPLATE);
    const theirs = jinja2(TEMPLATE);
    expect(theirs).toBeDefined();
    expect(ours.trim().split('\n')).toEqual((theirs ?? '').trim().split('\n'));
    // and what that is, read by hand, so that both engines cannot be wrong together
    expect(ours).toContain("a_b_c a_b-c aaa\n['a', 'b', 'c'] ['a', 'b', '', 'c'] ['a', 'b,c'] ['x', 'y z ']");
    expect(ours).toContain('a=1;b=x;\n1 None dflt');
    expect(ours).toContain('select id, user_id from t where x = 1 and y = 2');
  });

  it("fail as Python's do on a join of non-strings, rather than printing them", async () => {
    await expect(compileOne("select {{ ', '.join(['a', 1]) }}")).rejects.toThrow(
      /model m \(.*\) failed to render: .*sequence item 1: expected str instance, int found/,
    );
  });
});
