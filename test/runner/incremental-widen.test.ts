import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// dbt's incremental materialization widens the table's string columns to the new rows' longer ones on every
// run (adapter.expand_target_column_types), whatever on_schema_change says: only PostgreSQL keeps lengths.
const grown = (config: string) => `{{ config(materialized='incremental'${config}) }}
select id, cast('{{ var('s', 'abc') }}' as varchar({{ var('s', 'abc')|length }})) as s from {{ source('raw', 'events') }}`;
const FILES = oneSourceProject('widen', 'events', {
  'grown.sql': grown(''),
  'grown_fail.sql': grown(", on_schema_change='fail'"),
  'grown_merged.sql': grown(", unique_key='id', incremental_strategy='merge'"),
  'grown_viewed.sql': grown(''),
  'over_grown.sql': "{{ config(materialized='view') }}\nselect * from {{ ref('grown_viewed') }}",
});

describeEachWarehouse('incremental string widening', ({ kind, tw }) => {
  const suite = projectSuite('widen', FILES, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1)',
  ]);
  // PostgreSQL's stored length of column s; DuckDB keeps none
  const lengthOf = async (table: string) =>
    kind === 'postgres'
      ? (
          await suite().warehouse.query<{ n: number }>(
            `select character_maximum_length as n from information_schema.columns
             where table_schema = 'marts' and table_name = '${table}' and column_name = 's'`,
          )
        )[0]?.n
      : undefined;

  it('widens a varchar column the new rows need longer, with ignore and fail too, as dbt does', async () => {
    const select = ['grown', 'grown_fail', 'grown_merged'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    const res = await buildModels({ ...suite(), select, vars: { s: 'abcdef' } });
    expect(res.models.map((m) => [m.name, m.status, m.incremental])).toEqual([
      ['grown', 'success', true],
      ['grown_fail', 'success', true],
      ['grown_merged', 'success', true],
    ]);
    expect(await suite().warehouse.query('select s from marts.grown order by s')).toEqual([
      { s: 'abc' },
      { s: 'abcdef' },
    ]);
    expect(await suite().warehouse.query('select s from marts.grown_merged')).toEqual([{ s: 'abcdef' }]);
    expect(await lengthOf('grown_fail')).toBe(kind === 'postgres' ? 6 : undefined);
    // shorter values keep the wider column
    expect((await buildModels({ ...suite(), select, vars: { s: 'ab' } })).success).toBe(true);
    expect(await lengthOf('grown')).toBe(kind === 'postgres' ? 6 : undefined);
  });

  it('widens under a view only when the new strings do not fit, and then names the view on PostgreSQL', async () => {
    const select = ['grown_viewed', 'over_grown'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    // varchar(2) rows fit varchar(3): nothing to alter, the view stays
    expect((await buildModels({ ...suite(), select, vars: { s: 'ab' } })).success).toBe(true);
    const res = await buildModels({ ...suite(), select, vars: { s: 'abcdef' } }).catch((e: unknown) => e);
    if (kind === 'postgres') {
      expect(res).toBeInstanceOf(BuildFailedError);
      expect((res as Error).message).toMatch(
        /its columns changed \(s character varying\(3\) -> character varying\(6\)\), which PostgreSQL cannot apply while views read the table \(.*over_grown.*\): run it with --full-refresh/,
      );
    } else {
      expect(res).toMatchObject({ success: true });
    }
  });
});
