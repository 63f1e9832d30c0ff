import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { replaceDestAlias } from '../../src/runner/materialize';
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
  // a predicate ending in a line comment
  'deleted_comment.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=['DBT_INTERNAL_DEST.part >= 2 -- recent parts only']) }}
select id, part, v from {{ source('raw', 'events') }}`,
  // an `or` in a predicate stays inside it, rather than deleting every row it holds for
  'deleted_or.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=["DBT_INTERNAL_DEST.part = 2 or DBT_INTERNAL_DEST.part = 3"]) }}
select id, part, v from {{ source('raw', 'events') }}{% if is_incremental() %} where id = 2{% endif %}`,
  // DBT_INTERNAL_DEST. in a string or a comment of a predicate stays as written in the delete
  'deleted_literal.sql': `{{ config(materialized='incremental', unique_key='id',
    incremental_predicates=["DBT_INTERNAL_DEST.note <> 'DBT_INTERNAL_DEST.x' /* DBT_INTERNAL_DEST. */"]) }}
select id, part, v, case when id = 1 then 'DBT_INTERNAL_DEST.x' else 'n' end as note from {{ source('raw', 'events') }}`,
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
    expect(await rows('deleted_comment')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
    expect(await rows('merged')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
    expect(await rows('merged_closed')).toEqual(['1:a2', '2:closed', '3:c2']);
    expect(await rows('deleted_or')).toEqual(['1:a', '2:closed', '3:c']);
    // id 1's note is the string 'DBT_INTERNAL_DEST.x': the predicate keeps its row
    expect(await rows('deleted_literal')).toEqual(['1:a', '1:a2', '2:closed', '3:c2']);
  });
});

describe('replaceDestAlias', () => {
  it('rewrites DBT_INTERNAL_DEST. in SQL only, not in strings, quoted identifiers or comments', () => {
    const t = '"marts"."t".';
    expect(replaceDestAlias("DBT_INTERNAL_DEST.note <> 'DBT_INTERNAL_DEST.x'", t)).toBe(
      `"marts"."t".note <> 'DBT_INTERNAL_DEST.x'`,
    );
    expect(
      replaceDestAlias("dbt_internal_dest.a = 'it''s DBT_INTERNAL_DEST.' and DBT_INTERNAL_DEST.b = 1", t),
    ).toBe(`"marts"."t".a = 'it''s DBT_INTERNAL_DEST.' and "marts"."t".b = 1`);
    expect(replaceDestAlias('DBT_INTERNAL_DEST."DBT_INTERNAL_DEST.c" > 0', t)).toBe(
      `"marts"."t"."DBT_INTERNAL_DEST.c" > 0`,
    );
    expect(replaceDestAlias('DBT_INTERNAL_DEST.a -- DBT_INTERNAL_DEST.b\nand DBT_INTERNAL_DEST.c', t)).toBe(
      `"marts"."t".a -- DBT_INTERNAL_DEST.b\nand "marts"."t".c`,
    );
    expect(
      replaceDestAlias('/* DBT_INTERNAL_DEST. /* nested */ DBT_INTERNAL_DEST. */ DBT_INTERNAL_DEST.a', t),
    ).toBe(`/* DBT_INTERNAL_DEST. /* nested */ DBT_INTERNAL_DEST. */ "marts"."t".a`);
    expect(
      replaceDestAlias(
        "DBT_INTERNAL_DEST.a <> E'\\' DBT_INTERNAL_DEST.' and $q$DBT_INTERNAL_DEST.$q$ <> $$DBT_INTERNAL_DEST.$$",
        t,
      ),
    ).toBe(
      `"marts"."t".a <> E'\\' DBT_INTERNAL_DEST.' and $q$DBT_INTERNAL_DEST.$q$ <> $$DBT_INTERNAL_DEST.$$`,
    );
    // a name ending in e before a quote is no E'' string; $1 is no dollar quote
    expect(replaceDestAlias("note'x' = $1 and DBT_INTERNAL_DEST.a = 1", t)).toBe(
      `note'x' = $1 and "marts"."t".a = 1`,
    );
  });
});
