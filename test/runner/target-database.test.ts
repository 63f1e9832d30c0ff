import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';

// dbt fills target.database and this.database with the warehouse's database: the PostgreSQL database, a DuckDB
// file's stem (dbt-duckdb). The runner printed them as nothing, and as 'None' once {{ }} printed like Jinja2.
let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-runner-db-'));
  fs.mkdirSync(path.join(dir, 'models'));
  fs.writeFileSync(
    path.join(dir, 'dbt_project.yml'),
    "name: dbname\nconfig-version: 2\nmodel-paths: ['models']\n",
  );
  fs.writeFileSync(
    path.join(dir, 'models', 'names.sql'),
    "{{ config(materialized='table') }}select '{{ target.database }}' as target_db, '{{ this.database }}' as this_db",
  );
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeEachWarehouse('target.database', ({ kind, tw }) => {
  it('is the database of the warehouse URL', async () => {
    const url = tw().url;
    // from the URL itself: the path after the host, or the file name without .duckdb
    const expected =
      kind === 'postgres' ? new URL(url).pathname.slice(1) : path.basename(url).replace(/\.duckdb$/, '');
    expect(expected).toMatch(/^\w+$/);
    const wh = await tw().open();
    try {
      await buildModels({ warehouse: wh, projectDir: dir, schema: 'db_out', rawSchema: 'db_src' });
      expect(await wh.query('select target_db, this_db from db_out.names')).toEqual([
        { target_db: expected, this_db: expected },
      ]);
    } finally {
      await wh.close();
    }
  });
});
