import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import * as fs from 'node:fs';
import { projectSuite, tempProject } from './temp-project';

// dbt renders the Jinja in the `models:` configs of dbt_project.yml (with --vars only: DbtProjectYamlRenderer
// has no project vars yet) and in schema.yml's `config:` (with every var), natively: "{{ false }}" is false.
// Hooks stay as written, to render when they run.
const FILES: Record<string, string> = {
  'dbt_project.yml': `name: yj
config-version: 2
model-paths: ['models']
vars:
  mat: view
  key_col: id
models:
  yj:
    +materialized: "{{ var('mat', 'table') }}"
    +tags: ["{{ 'tg_' ~ target.name }}", plain]
    +post-hook: "insert into {{ var('lifecycle__raw_schema') }}.hook_log values ('{{ this.identifier }}')"
    off:
      +enabled: "{{ var('off_on', false) }}"
`,
  'models/sources.yml': `version: 2
sources:
  - name: raw
    schema: "{{ var('lifecycle__raw_schema') }}"
    tables:
      - name: events
models:
  - name: keyed
    config:
      materialized: "{{ 'incremental' if var('key_col') == 'id' else 'table' }}"
      unique_key: "{{ var('key_col') }}"
`,
  'models/plain.sql': "select id from {{ source('raw', 'events') }}",
  'models/keyed.sql': "select id, v from {{ source('raw', 'events') }}",
  'models/off/disabled.sql': 'select * from nowhere',
};

describeEachWarehouse('Jinja in YAML model configs', ({ tw }) => {
  const suite = projectSuite('yamljinja', FILES, () => tw().open(), [
    'create table src.events (id integer, v varchar(10))',
    "insert into src.events values (1, 'a'), (2, 'b')",
    'create table src.hook_log (model varchar(20))',
  ]);
  const kinds = async () =>
    (
      await suite().warehouse.query<{ t: string; k: string }>(
        "select table_name as t, table_type as k from information_schema.tables where table_schema = 'marts' order by 1",
      )
    ).map((r) => `${r.t}:${r.k}`);

  it('renders dbt_project.yml configs with --vars and target, schema.yml configs with every var', async () => {
    const first = await buildModels({ ...suite(), select: ['tag:tg_dev'] });
    // the project's own vars: (mat: view) are not seen in dbt_project.yml; the disabled folder stays out
    expect(first.models.map((m) => [m.name, m.materialized, m.status])).toEqual([
      ['keyed', 'incremental', 'success'],
      ['plain', 'table', 'success'],
    ]);
    await suite().warehouse.exec("update src.events set v = 'c' where id = 2");
    const second = await buildModels({ ...suite(), select: ['tag:plain'], vars: { mat: 'view' } });
    expect(second.models.map((m) => [m.name, m.materialized, m.incremental])).toEqual([
      ['keyed', 'incremental', true],
      ['plain', 'view', false],
    ]);
    // unique_key rendered to id: the changed row is replaced, not added
    expect(await suite().warehouse.query('select id, v from marts.keyed order by id')).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'c' },
    ]);
    expect(await kinds()).toEqual(['keyed:BASE TABLE', 'plain:VIEW']);
    // the hook rendered when it ran, with the model's this
    expect(
      (await suite().warehouse.query<{ model: string }>('select model from src.hook_log order by 1')).map(
        (r) => r.model,
      ),
    ).toEqual(['keyed', 'keyed', 'plain', 'plain']);
  });

  it('enables a model from --vars, and names the config a missing var breaks', async () => {
    const on = await buildModels({ ...suite(), select: ['disabled'], vars: { off_on: true } }).catch(
      (e: unknown) => e,
    );
    // enabled now: it builds, and fails on its missing table
    expect(on).toBeInstanceOf(BuildFailedError);
    expect((on as Error).message).toMatch(/model disabled /);
    const broken = {
      ...FILES,
      'dbt_project.yml': FILES['dbt_project.yml'].replace("var('mat', 'table')", "var('mat')"),
    };
    const dir = tempProject('yamljinja-broken', broken);
    const err = await buildModels({ ...suite(), projectDir: dir })
      .catch((e: unknown) => e)
      .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
    expect((err as Error).message).toMatch(
      /The config materialized of the model \w+, set in \S*dbt_project\.yml, does not render: the var "mat" is required but not set: dbt_project\.yml's configs see only --vars, as in dbt/,
    );
  });
});

// dbt's quoted_native_concat keeps one expression's value as it is: a var '2024' is the string '2024' (a custom
// schema), not the number 2024 (which no name config takes, so the model would silently build elsewhere).
const NUMERIC_TEXT = {
  'dbt_project.yml': "name: yjn\nconfig-version: 2\nmodel-paths: ['models']\n",
  'models/schema.yml': `version: 2
models:
  - name: numbered
    config:
      schema: "{{ var('suffix', '2024') }}"
`,
  'models/numbered.sql': "{{ config(materialized='table') }}select 1 as id",
};

describeEachWarehouse('Jinja in YAML model configs, numeric text', ({ tw }) => {
  const suite = projectSuite('yamljinja-num', NUMERIC_TEXT, () => tw().open(), []);

  it('keeps a var that reads as a number a string', async () => {
    const built = await buildModels(suite());
    expect(built.models.map((m) => [m.name, m.relation])).toEqual([['numbered', '"marts_2024"."numbered"']]);
  });
});
