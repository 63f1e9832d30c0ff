import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject, writeFiles } from './temp-project';

// dbt takes the DAG from a parse with is_incremental() false, so a ref() reached only inside
// {% if is_incremental() %} is an edge it does not know. `reader` sorts before `z_upstream` by name: without the
// edge it would run first and read last run's z_upstream.
const READER = `{{ config(materialized='incremental', unique_key='id') }}
select u.id, u.v from {{ source('raw', 'seed') }} as u
{% if is_incremental() %}
union all
select z.id, z.v from {{ ref('z_upstream') }} as z
{% endif %}`;

function writeProject(dir: string, reader: string): void {
  writeFiles(
    dir,
    oneSourceProject('deps', 'seed', {
      'reader.sql': reader,
      'z_upstream.sql': `{{ config(materialized='table') }}
select s.id + 100 as id, s.v from {{ source('raw', 'seed') }} as s`,
    }),
  );
}

describeEachWarehouse('runner refs that only incremental runs reach', ({ tw }) => {
  let wh: Warehouse;
  let dir = '';
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'deps_out', rawSchema: 'deps_raw' });

  beforeAll(async () => {
    dir = tempProject('deps', {});
    wh = await tw().open();
    await wh.exec('create schema deps_raw');
    await wh.exec('create table deps_raw.seed (id integer, v text)');
    await wh.exec("insert into deps_raw.seed values (1, 'first')");
  });
  afterAll(async () => {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('refuses the incremental run of a model whose ref the DAG lacks, naming the line to add', async () => {
    writeProject(dir, READER);
    const first = await buildModels(base());
    expect(first.success).toBe(true);
    expect(first.models.map((m) => m.name)).toEqual(['reader', 'z_upstream']);

    const err = await buildModels(base()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const second = (err as BuildFailedError).result;
    const reader = second.models.find((m) => m.name === 'reader')!;
    expect(reader.status).toBe('error');
    expect(reader.message).toBe(
      `model reader (${path.join(path.basename(dir), 'models', 'reader.sql')}) refs z_upstream only on this run ` +
        '(e.g. inside {% if is_incremental() %}), so the DAG does not know it depends on it: add ' +
        `"-- depends_on: {{ ref('z_upstream') }}" at the top of the file.`,
    );
    // the failed model keeps its table as it was
    expect(await wh.query('select id, v from deps_out.reader order by id')).toEqual([{ id: 1, v: 'first' }]);
  });

  it('with the depends_on hint, runs the model after what it reads and reads this run of it', async () => {
    writeProject(dir, `-- depends_on: {{ ref('z_upstream') }}\n${READER}`);
    await wh.exec("update deps_raw.seed set v = 'second'");
    const res = await buildModels(base());
    expect(res.success).toBe(true);
    expect(res.models.map((m) => m.name)).toEqual(['z_upstream', 'reader']);
    expect(await wh.query('select id, v from deps_out.reader order by id')).toEqual([
      { id: 1, v: 'second' },
      { id: 101, v: 'second' },
    ]);
  });
});
