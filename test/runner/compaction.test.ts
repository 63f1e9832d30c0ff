import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { COMPACT_DEAD_SHARE } from '../../src/runner/materialize';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// DuckDB only: the warehouse turns the checkpoint's vacuum off, so the rows a delete+insert removes stay in
// the table file until the runner compacts the table (PostgreSQL has its own autovacuum).
let dir = '';
const files = oneSourceProject('compaction', 'events', {
  // rewrites the rows of the ids listed in src.touched on each incremental run
  'state.sql': `{{ config(materialized='incremental', unique_key='id') }}
select e.id, e.v from {{ source('raw', 'events') }} as e
{% if is_incremental() %}where e.id in (select t.id from {{ var('lifecycle__raw_schema') }}.touched as t){% endif %}`,
  'state_view.sql': `{{ config(materialized='view') }}
select id, v from {{ ref('state') }}`,
  // the comments persist_docs writes must survive the rewrite
  'schema.yml': `version: 2
models:
  - name: state
    description: "The state's rows."
    config:
      persist_docs: {relation: true, columns: true}
    columns:
      - name: id
        description: "The row's id."
`,
});

beforeAll(() => {
  dir = tempProject('compact', files);
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeEachWarehouse(
  'runner compaction of incremental tables',
  ({ tw }) => {
    let wh: Warehouse;
    const base = () => ({ warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' });
    const N = 10_000;
    const stored = async (): Promise<{ total: number; live: number }> => {
      const [r] = await wh.query<{ total: number; live: number }>(
        `select t.estimated_size as total, (select count(*) from marts.state) as live
         from duckdb_tables() as t where t.schema_name = 'marts' and t.table_name = 'state'`,
      );
      return { total: Number(r.total), live: Number(r.live) };
    };
    const touch = async (share: number) => {
      await wh.exec('delete from src.touched');
      await wh.exec(`insert into src.touched select id from src.events where id % 100 < ${share * 100}`);
      await wh.exec(`update src.events set v = v || '+' where id in (select id from src.touched)`);
    };

    beforeAll(async () => {
      wh = await tw().open();
      await wh.exec('create schema src');
      await wh.exec('create table src.events (id integer, v text)');
      await wh.exec(`insert into src.events select i, 'v' || i from range(${N}) as r(i)`);
      await wh.exec('create table src.touched (id integer)');
      await buildModels(base());
    });
    afterAll(async () => wh.close());

    it('keeps the deleted rows of a small rewrite in place, and rewrites the table past the dead-row share', async () => {
      // 25% of the rows rewritten: below the threshold, the table keeps its dead rows
      await touch(0.25);
      await buildModels(base());
      expect(await stored()).toEqual({ total: N + 0.25 * N, live: N });

      // another 25%: 0.5 / 1.5 of the stored rows are dead, past COMPACT_DEAD_SHARE, so the table is rewritten
      expect(0.5 / 1.5).toBeGreaterThan(COMPACT_DEAD_SHARE);
      await touch(0.25);
      await buildModels(base());
      expect(await stored()).toEqual({ total: N, live: N });
      expect(
        await wh.query(
          `select comment from duckdb_tables() where schema_name = 'marts' and table_name = 'state'
           union all
           select comment from duckdb_columns() where schema_name = 'marts' and table_name = 'state' and column_name = 'id'`,
        ),
      ).toEqual([{ comment: "The state's rows." }, { comment: "The row's id." }]);

      // nothing lost or duplicated, the rewritten rows carry their new values, and the view still reads it
      const rows = await wh.query<{ n: number; ids: number; plus: number }>(
        `select count(*) as n, count(distinct id) as ids, sum(case when v like '%+%' then 1 else 0 end) as plus
         from marts.state_view`,
      );
      expect(rows.map((r) => ({ n: Number(r.n), ids: Number(r.ids), plus: Number(r.plus) }))).toEqual([
        { n: N, ids: N, plus: 0.25 * N },
      ]);
    });
  },
  ['duckdb'],
);
