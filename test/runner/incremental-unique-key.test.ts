import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// A single unique_key is "a column name or expression" in dbt: its delete+insert writes it as is, as
// `where (<key>) in (select (<key>) from <new rows>)` (dbt-adapters' get_delete_insert_merge_sql).
const FILES = oneSourceProject('ukexpr', 'events', {
  'by_expression.sql': `{{ config(materialized='incremental', unique_key="id || '-' || k") }}
select id, k, v from {{ source('raw', 'events') }}{% if is_incremental() %} where k = 'a'{% endif %}`,
  'by_function.sql': `{{ config(materialized='incremental', unique_key='upper(k)') }}
select k, count(*) as n from {{ source('raw', 'events') }}{% if is_incremental() %} where k = 'a'{% endif %} group by k`,
  'not_a_column.sql': `{{ config(materialized='incremental', unique_key='nope') }}
select id, k, v from {{ source('raw', 'events') }}`,
  'merged_expression.sql': `{{ config(materialized='incremental', incremental_strategy='merge', unique_key="id || '-' || k") }}
select id, k, v from {{ source('raw', 'events') }}`,
});

describeEachWarehouse('incremental unique_key expression', ({ tw }) => {
  const suite = projectSuite('ukexpr', FILES, () => tw().open(), [
    'create table src.events (id integer, k varchar(5), v varchar(10))',
    "insert into src.events values (1, 'a', 'x'), (1, 'b', 'y'), (2, 'a', 'z')",
  ]);
  const rows = async (sql: string) =>
    (await suite().warehouse.query<Record<string, unknown>>(sql)).map((r) => Object.values(r).join(':'));

  it('deletes the rows whose expression value comes again, on the second run too', async () => {
    const select = ['by_expression', 'by_function'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    await suite().warehouse.exec("update src.events set v = v || '2'");
    await suite().warehouse.exec("insert into src.events values (3, 'a', 'w')");
    const res = await buildModels({ ...suite(), select });
    expect(res.models.map((m) => [m.name, m.status, m.incremental])).toEqual([
      ['by_expression', 'success', true],
      ['by_function', 'success', true],
    ]);
    // (1, b) is not among the new rows: only the key 1-a is replaced, not every row of id 1
    expect(await rows('select id, k, v from marts.by_expression order by id, k')).toEqual([
      '1:a:x2',
      '1:b:y',
      '2:a:z2',
      '3:a:w',
    ]);
    expect(await rows('select k, n from marts.by_function order by k')).toEqual(['a:3', 'b:1']);
  });

  it('still names a plain unique_key that is not a column', async () => {
    const select = ['not_a_column'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    const err = await buildModels({ ...suite(), select }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(
      /the unique_key column nope is not a column of both the new rows and the existing table/,
    );
  });

  it('refuses an expression with merge, which cannot match on it', async () => {
    const err = await buildModels({ ...suite(), select: ['merged_expression'] }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(
      /incremental_strategy='merge' with the unique_key expression id \|\| '-' \|\| k/,
    );
  });
});
