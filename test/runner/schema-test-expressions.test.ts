import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, testModels } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// dbt takes a model-level test's column_name as SQL, so a key over several columns can be tested as one
// expression; a column listed under columns: stays an identifier (quoted, validated).
const files = oneSourceProject('expr', 'runs', {
  'runs.sql':
    "{{ config(materialized='table') }}\nselect user_id, valid_from from {{ source('raw', 'runs') }}",
  'schema.yml': `version: 2
models:
  - name: runs
    data_tests:
      - unique:
          column_name: "user_id || '|' || cast(valid_from as varchar)"
      - not_null:
          column_name: user_id
    columns:
      - name: "user_id || 'x'"
        tests: [not_null]
`,
});

describeEachWarehouse('runner schema tests on a column_name expression', ({ tw }) => {
  let wh: Warehouse;
  let dir = '';
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'expr_out', rawSchema: 'expr_raw' });

  beforeAll(async () => {
    dir = tempProject('expr', files);
    wh = await tw().open();
    await wh.exec('create schema expr_raw');
    await wh.exec('create table expr_raw.runs (user_id text, valid_from date)');
    await wh.exec(
      `insert into expr_raw.runs values ('u1', '2024-01-01'), ('u1', '2024-01-05'), ('u2', '2024-01-01')`,
    );
    await buildModels(base());
  });
  afterAll(async () => {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('runs the expression as SQL, finds its duplicates, and still refuses an expression under columns:', async () => {
    const status = async () =>
      Object.fromEntries((await testModels(base())).tests.map((t) => [t.name, [t.status, t.failures ?? 0]]));
    const before = await status();
    expect(before.unique_runs_user_id_cast_valid_from_as_varchar_).toEqual(['pass', 0]);
    expect(before.not_null_runs_user_id).toEqual(['pass', 0]);
    const refused = (await testModels(base())).tests.find((t) => t.name === 'not_null_runs_user_id_x_')!;
    expect(refused.status).toBe('error');
    expect(refused.message).toMatch(/is not a plain SQL identifier/);

    await wh.exec(`insert into expr_raw.runs values ('u1', '2024-01-05')`);
    await buildModels(base());
    expect((await status()).unique_runs_user_id_cast_valid_from_as_varchar_).toEqual(['fail', 1]);
  });
});
