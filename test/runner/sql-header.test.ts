import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// A header that sets a value the model's SELECT reads: it only holds when the header runs before the create,
// in the same request, as dbt sends it (a `set local` lasts for its transaction on PostgreSQL).
const SET = `{% if target.type == 'duckdb' %}set variable header_value = 'from header';{% else %}set local cdp.header_value = 'from header';{% endif %}`;
const GET = `{% if target.type == 'duckdb' %}getvariable('header_value'){% else %}current_setting('cdp.header_value', true){% endif %}`;

const FILES = oneSourceProject('sql_header', 'events', {
  'with_call.sql': `{{ config(materialized='table') }}
{% call set_sql_header(config) %}${SET}{% endcall %}
select id, ${GET} as v from {{ source('raw', 'events') }}`,
  'incremental_kw.sql': `{{ config(materialized='incremental', sql_header=(
    "set variable header_value = 'from header'" if target.type == 'duckdb'
    else "set local cdp.header_value = 'from header'")) }}
select {{ var('run', 1) }} as run, ${GET} as v`,
  'contracted.sql': "select id from {{ source('raw', 'events') }}",
  'schema.yml': `version: 2
models:
  - name: contracted
    config:
      contract: {enforced: true}
    columns:
      - name: id
        data_type: integer
`,
});

describeEachWarehouse('sql_header and contract configs', ({ tw }) => {
  const suite = projectSuite('sql-header', FILES, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1)',
  ]);

  it('sends the sql_header before the create, as dbt does, on a first and an incremental run', async () => {
    const select = ['with_call', 'incremental_kw'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    expect((await buildModels({ ...suite(), select, vars: { run: 2 } })).success).toBe(true);
    const wh = suite().warehouse;
    expect(await wh.query('select id, v from marts.with_call')).toEqual([{ id: 1, v: 'from header' }]);
    expect(await wh.query('select run, v from marts.incremental_kw order by run')).toEqual([
      { run: 1, v: 'from header' },
      { run: 2, v: 'from header' },
    ]);
  });

  it('refuses a model whose contract is enforced, naming it, rather than build it unchecked', async () => {
    const err = await buildModels({ ...suite(), select: ['contracted'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const [model] = (err as BuildFailedError).result.models;
    expect(model).toMatchObject({ name: 'contracted', status: 'error' });
    expect(model.message).toMatch(
      /^model contracted \(.*contracted\.sql\) sets contract: \{enforced: true\}, which this runner does not enforce/,
    );
    const built = await suite().warehouse.query(
      "select table_name from information_schema.tables where table_schema = 'marts' and table_name = 'contracted'",
    );
    expect(built).toEqual([]);
  });
});
