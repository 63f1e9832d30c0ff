import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { tmpName } from '../../src/runner/materialize';
import type { Warehouse } from '../../src/warehouse';

// Model names up to PostgreSQL's 63 characters are valid; the runner's intermediate `__dbt_tmp` relation must
// fit too, without two long names that share a prefix building into the same one.
const prefix = 'customer_lifetime_value_by_acquisition_channel_and_'; // 51 characters: both names are 63
const weekly = `${prefix}weekly_cohor`;
const daily = `${prefix}daily_cohort`;
let dir = '';
beforeAll(() => {
  expect(weekly.length).toBe(63);
  expect(daily.length).toBe(63);
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-runner-long-'));
  const files: Record<string, string> = {
    'dbt_project.yml': "name: longnames\nconfig-version: 2\nmodel-paths: ['models']\n",
    [`models/${weekly}.sql`]: `{{ config(materialized='table') }}
select id, v from {{ var('lifecycle__raw_schema') }}.events`,
    [`models/${daily}.sql`]: `{{ config(materialized='incremental', unique_key='id') }}
select id, v from {{ ref('${weekly}') }}`,
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describe('intermediate relation names', () => {
  it('fit in 63 characters and differ for two long names that share their first 51', () => {
    expect(tmpName('orders')).toBe('orders__dbt_tmp');
    const a = tmpName(weekly);
    const b = tmpName(daily);
    expect(a).toHaveLength(63);
    expect(b).toHaveLength(63);
    expect(a).not.toBe(b);
    expect(a.endsWith('__dbt_tmp')).toBe(true);
    expect(tmpName(weekly)).toBe(a);
  });
});

describeEachWarehouse('runner with 63-character model names', ({ tw }) => {
  let wh: Warehouse;
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'long_out', rawSchema: 'long_src' });
  beforeAll(async () => {
    wh = await tw().open();
    await wh.exec('create schema long_src');
    await wh.exec('create table long_src.events (id integer, v text)');
    await wh.exec(`insert into long_src.events values (1, 'a'), (2, 'b')`);
  });
  afterAll(async () => wh.close());

  it('builds, rebuilds and applies incremental rows, leaving only the two models', async () => {
    await buildModels(base());
    await wh.exec(`insert into long_src.events values (3, 'c')`);
    await wh.exec(`update long_src.events set v = 'B' where id = 2`);
    const second = await buildModels(base());
    expect(second.models.find((m) => m.name === daily)).toMatchObject({ incremental: true });
    for (const name of [weekly, daily]) {
      expect(await wh.query(`select id, v from long_out.${name} order by id`)).toEqual([
        { id: 1, v: 'a' },
        { id: 2, v: 'B' },
        { id: 3, v: 'c' },
      ]);
    }
    const left = await wh.query<{ name: string }>(
      'select table_name as name from information_schema.tables where table_schema = $1 order by 1',
      ['long_out'],
    );
    expect(left.map((r) => r.name)).toEqual([daily, weekly].sort());
  });
});
