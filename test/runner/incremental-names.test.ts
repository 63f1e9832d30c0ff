import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// Column names a model may spell any way: one that is not a plain identifier ("Order Total"), and a unique_key
// whose case differs between the config and the stored table. The first build creates the table; the checks
// are on the incremental runs after it, which read the names back from the catalog.
const MODELS = {
  'spaced.sql': `{{ config(materialized='incremental', unique_key='id') }}
select id, v as "Order Total" from {{ source('raw', 'events') }}`,
  'cased.sql': `{{ config(materialized='incremental', unique_key='UserId', incremental_strategy='merge') }}
select id as "UserId", v as "Amount" from {{ source('raw', 'events') }}`,
  'cased_di.sql': `{{ config(materialized='incremental', unique_key='userid') }}
select id as "UserId", v from {{ source('raw', 'events') }}`,
};

describeEachWarehouse('runner incremental runs with unusual column names', ({ tw }) => {
  let wh: Warehouse;
  let dir: string;
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' });
  beforeAll(async () => {
    dir = tempProject('names', oneSourceProject('names', 'events', MODELS));
    wh = await tw().open();
    await wh.exec('create schema src');
    await wh.exec('create table src.events (id integer, v text)');
    await wh.exec(`insert into src.events values (1, 'a'), (2, 'b')`);
  });
  afterAll(async () => {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('applies delete+insert and merge on them, run after run', async () => {
    await buildModels(base());
    await wh.exec(`update src.events set v = 'B' where id = 2`);
    await wh.exec(`insert into src.events values (3, 'c')`);
    const again = await buildModels(base());
    expect(again.models.map((m) => [m.name, m.status]).sort()).toEqual([
      ['cased', 'success'],
      ['cased_di', 'success'],
      ['spaced', 'success'],
    ]);
    expect(await wh.query(`select id, "Order Total" as t from marts.spaced order by id`)).toEqual([
      { id: 1, t: 'a' },
      { id: 2, t: 'B' },
      { id: 3, t: 'c' },
    ]);
    expect(await wh.query(`select "UserId" as u, "Amount" as a from marts.cased order by 1`)).toEqual([
      { u: 1, a: 'a' },
      { u: 2, a: 'B' },
      { u: 3, a: 'c' },
    ]);
    expect(await wh.query(`select "UserId" as u, v from marts.cased_di order by 1`)).toEqual([
      { u: 1, v: 'a' },
      { u: 2, v: 'B' },
      { u: 3, v: 'c' },
    ]);
  });
});
