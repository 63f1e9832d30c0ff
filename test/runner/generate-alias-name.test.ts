import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { oneSourceProject, projectSuite, tempProject } from './temp-project';

// dbt names every model's relation with generate_alias_name(custom_alias_name, node); a project's own macro of
// that name replaces the default (the alias config, else the model's name), as generate_schema_name does.
const FILES = {
  ...oneSourceProject('aliases', 'events', {
    'marts/first.sql': "{{ config(materialized='table') }}select id from {{ source('raw', 'events') }}",
    'other/second.sql': `{{ config(materialized='view', alias='two') }}
select id, '{{ this.identifier }}' as me, '{{ model.alias }}' as alias from {{ ref('first') }}`,
    'other/third.sql': `{{ config(materialized='incremental', unique_key='id') }}
select id from {{ ref('second') }}{% if is_incremental() %} where id > (select max(id) from {{ this }}){% endif %}`,
  }),
  'macros/aliases.sql': `{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
  {%- if custom_alias_name -%} {{ custom_alias_name | trim }}_custom
  {%- else -%} {{ node.fqn[1] }}_{{ node.name }}
  {%- endif -%}
{%- endmacro %}`,
};

describeEachWarehouse('generate_alias_name', ({ tw }) => {
  const suite = projectSuite('aliases', FILES, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1), (2)',
  ]);

  it("names each model's relation with the project's generate_alias_name, as dbt does", async () => {
    const first = await buildModels(suite());
    expect(first.models.map((m) => [m.name, m.relation])).toEqual([
      ['first', '"marts"."marts_first"'],
      ['second', '"marts"."two_custom"'],
      ['third', '"marts"."other_third"'],
    ]);
    const tables = await suite().warehouse.query<{ t: string }>(
      "select table_name as t from information_schema.tables where table_schema = 'marts' order by 1",
    );
    expect(tables.map((r) => r.t)).toEqual(['marts_first', 'other_third', 'two_custom']);
    // ref(), this and model.alias all name the generated relation
    expect(await suite().warehouse.query('select id, me, alias from marts.two_custom order by id')).toEqual([
      { id: 1, me: 'two_custom', alias: 'two_custom' },
      { id: 2, me: 'two_custom', alias: 'two_custom' },
    ]);
    await suite().warehouse.exec('insert into src.events values (3)');
    const again = await buildModels(suite());
    expect(again.models.find((m) => m.name === 'third')).toMatchObject({
      status: 'success',
      incremental: true,
    });
    expect(await suite().warehouse.query('select count(*)::int as n from marts.other_third')).toEqual([
      { n: 3 },
    ]);
  });
});

// A project macro may delegate to dbt's default__generate_alias_name, and read `model`, which is the node
// being named (the same name whichever model refs it); a none is an error, not a table named "null".
const DELEGATING = {
  ...oneSourceProject('aliases2', 'events', {
    'first.sql': "{{ config(materialized='table') }}select id from {{ source('raw', 'events') }}",
    'second.sql': "{{ config(materialized='table', alias='two') }}select id from {{ ref('first') }}",
  }),
  'macros/aliases.sql': `{% macro generate_alias_name(custom_alias_name=none, node=none) -%}
  {%- if node.name == 'first' -%} zz_{{ model.name }}
  {%- elif node.name == 'nameless' -%} {{ return(none) }}
  {%- else -%} {{ dbt.default__generate_alias_name(custom_alias_name, node) }}
  {%- endif -%}
{%- endmacro %}`,
};

describeEachWarehouse('generate_alias_name delegating to dbt', ({ tw }) => {
  const suite = projectSuite('aliases2', DELEGATING, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1)',
  ]);

  it('names a model the same from its own build and from a ref, and delegates to the default', async () => {
    const built = await buildModels(suite());
    expect(built.models.map((m) => [m.name, m.relation, m.status])).toEqual([
      ['first', '"marts"."zz_first"', 'success'],
      ['second', '"marts"."two"', 'success'],
    ]);
  });

  it('refuses a none for a name', async () => {
    const dir = tempProject('aliases2-none', {
      ...DELEGATING,
      'models/nameless.sql': "{{ config(materialized='table') }}select 1 as id",
    });
    const err = await buildModels({ ...suite(), projectDir: dir, select: ['nameless'] })
      .catch((e: unknown) => e)
      .finally(() => fs.rmSync(dir, { recursive: true, force: true }));
    expect((err as Error).message).toMatch(/generate_alias_name returned none for the model nameless/);
  });
});
