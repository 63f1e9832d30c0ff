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
  'grown_keyed.sql': grown(", unique_key='id'"),
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
        /its columns changed \(s character varying\(3\) -> character varying\(6\)\), which PostgreSQL cannot apply while views read that column \(.*over_grown.*\): run it with --full-refresh/,
      );
    } else {
      expect(res).toMatchObject({ success: true });
    }
  });

  it('widens a column no view reads while views read other columns of the table, as PostgreSQL allows', async () => {
    const select = ['grown_keyed'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    // an analyst's view over the key alone, and one over the key through it
    await suite().warehouse.exec('create view src.keyed_ids as select id from marts.grown_keyed');
    await suite().warehouse.exec('create view src.keyed_ids_2 as select id from src.keyed_ids');
    const res = await buildModels({ ...suite(), select, vars: { s: 'abcdefg' } });
    expect(res.models.map((m) => [m.name, m.status, m.incremental])).toEqual([
      ['grown_keyed', 'success', true],
    ]);
    expect(await suite().warehouse.query('select id, s from marts.grown_keyed')).toEqual([
      { id: 1, s: 'abcdefg' },
    ]);
    expect(await lengthOf('grown_keyed')).toBe(kind === 'postgres' ? 7 : undefined);
    expect(await suite().warehouse.query('select id from src.keyed_ids_2')).toEqual([{ id: 1 }]);
    // a view that reads the column still stops a widening the new strings need, naming that view alone
    await suite().warehouse.exec('create view src.keyed_s as select s from marts.grown_keyed');
    const blocked = await buildModels({ ...suite(), select, vars: { s: 'abcdefghij' } }).catch(
      (e: unknown) => e,
    );
    if (kind === 'postgres') {
      expect(blocked).toBeInstanceOf(BuildFailedError);
      expect((blocked as Error).message).toMatch(
        /its columns changed \(s character varying\(7\) -> character varying\(10\)\), which PostgreSQL cannot apply while views read that column \(src\.keyed_s\): run it with --full-refresh/,
      );
    } else {
      expect(blocked).toMatchObject({ success: true });
    }
  });
});
