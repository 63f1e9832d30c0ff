import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// incremental_predicates narrow the rows of the table an incremental run touches, as dbt applies them: added
// with `and` to delete+insert's delete (dbt-adapters' get_delete_insert_merge_sql) and to merge's `on`
// (get_merge_sql), written against dbt's aliases DBT_INTERNAL_DEST and DBT_INTERNAL_SOURCE.
const FILES = oneSourceProject('predicates', 'events', {
  'deleted.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=['DBT_INTERNAL_DEST.part >= 2']) }}
select id, part, v from {{ source('raw', 'events') }}`,
  'merged.sql': `{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge',
    incremental_predicates=['DBT_INTERNAL_DEST.part >= 2', 'DBT_INTERNAL_SOURCE.part >= 2']) }}
select id, part, v from {{ source('raw', 'events') }}`,
  // a predicate on a column the update changes: a MERGE matches before it updates
  'merged_closed.sql': `{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge',
    incremental_predicates="DBT_INTERNAL_DEST.v <> 'closed'") }}
select id, part, v from {{ source('raw', 'events') }}`,
  // a predicate naming the table itself, as dbt's delete names it (no alias)
  'deleted_this.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=[this ~ '.part >= 2']) }}
select id, part, v from {{ source('raw', 'events') }}`,
  // an `or` in a predicate stays inside it, rather than deleting every row it holds for
  'deleted_or.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=["DBT_INTERNAL_DEST.part = 2 or DBT_INTERNAL_DEST.part = 3"]) }}
select id, part, v from {{ source('raw', 'events') }}{% if is_incremental() %} where id = 2{% endif %}`,
});

describeEachWarehouse('incremental_predicates', ({ tw }) => {
  const suite = projectSuite('predicates', FILES, () => tw().open(), [
    'create table src.events (id integer, part integer, v varchar(10))',
    "insert into src.events values (1, 1, 'a'), (2, 2, 'b'), (3, 3, 'c')",
  ]);
  const rows = async (model: string) =>
    (
      await suite().warehouse.query<{ id: number; v: string }>(
        `select id, v from marts.${model} order by id, v`,
      )
    ).map((r) => `${r.id}:${r.v}`);

  it('limits the rows delete+insert deletes and merge matches to those the predicates keep, as dbt does', async () => {
    expect((await buildModels(suite())).success).toBe(true);
    await suite().warehouse.exec("update src.events set v = case id when 2 then 'closed' else v || '2' end");
    expect((await buildModels(suite())).success).toBe(true);
    // id 1 (part 1) is out of the predicates: its row stays, and the new one comes beside it
    expect(await rows('deleted')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
    expect(await rows('deleted_this')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
    expect(await rows('merged')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
    expect(await rows('merged_closed')).toEqual(['1:a2', '2:closed', '3:c2']);
    expect(await rows('deleted_or')).toEqual(['1:a', '2:closed', '3:c']);
  });
});
