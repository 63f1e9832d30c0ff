import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// sync_all_columns drops and retypes columns: PostgreSQL refuses that only for a column a view reads, not
// because views read other columns of the table.
const FILES = oneSourceProject('viewcols', 'events', {
  'synced.sql': `{{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}
select id{% if not var('drop_v', false) %}, v{% endif %},
  {% if var('decimals', false) %}cast(id / 4.0 as decimal(12, 2)){% else %}id * 2{% endif %} as amount
from {{ source('raw', 'events') }}`,
});

describeEachWarehouse('incremental schema changes under views', ({ kind, tw }) => {
  const suite = projectSuite('viewcols', FILES, () => tw().open(), [
    'create table src.events (id integer, v varchar(10))',
    "insert into src.events values (1, 'a'), (2, 'b')",
  ]);
  const cols = async () =>
    (
      await suite().warehouse.query<{ c: string; t: string }>(
        `select column_name as c, data_type as t from information_schema.columns
         where table_schema = 'marts' and table_name = 'synced' order by ordinal_position`,
      )
    ).map((r) => `${r.c} ${r.t.toLowerCase()}`);

  it('drops and retypes columns no view reads while views read other columns, and names the views that read one', async () => {
    const select = ['synced'];
    expect((await buildModels({ ...suite(), select })).success).toBe(true);
    // an analyst's view over the key alone, and one over it
    await suite().warehouse.exec('create view src.synced_ids as select id from marts.synced');
    await suite().warehouse.exec('create view src.synced_ids_2 as select id from src.synced_ids');
    const res = await buildModels({ ...suite(), select, vars: { drop_v: true, decimals: true } });
    expect(res.models.map((m) => [m.name, m.status, m.incremental])).toEqual([['synced', 'success', true]]);
    expect(await cols()).toEqual(
      kind === 'postgres' ? ['id integer', 'amount numeric'] : ['id integer', 'amount decimal(12,2)'],
    );
    expect(
      (
        await suite().warehouse.query<{ id: number; amount: unknown }>(
          'select id, amount from marts.synced order by id',
        )
      ).map((r) => [r.id, Number(r.amount)]),
    ).toEqual([
      [1, 0.25],
      [2, 0.5],
    ]);
    expect(await suite().warehouse.query('select id from src.synced_ids_2 order by id')).toEqual([
      { id: 1 },
      { id: 2 },
    ]);
    // a view that reads the retyped column still stops the change on PostgreSQL, named alone
    await suite().warehouse.exec('create view src.synced_amount as select amount from marts.synced');
    const blocked = await buildModels({ ...suite(), select, vars: { drop_v: true } }).catch(
      (e: unknown) => e,
    );
    if (kind === 'postgres') {
      expect(blocked).toBeInstanceOf(BuildFailedError);
      expect((blocked as Error).message).toMatch(
        /its columns changed \(amount numeric\(12,2\) -> integer\), which PostgreSQL cannot apply while views read that column \(src\.synced_amount\): run it with --full-refresh/,
      );
      expect(await cols()).toEqual(['id integer', 'amount numeric']);
    }
  });
});
