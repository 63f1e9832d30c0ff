import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';

// The package's portable date spine (default__date_spine: Snowflake and Redshift use it) run on both local
// warehouses, with the package's own macros: a span back to 0001-01-01 (a createdAt clients send as a
// default) must reach D, and a short span must not multiply out to the whole digit table.
const macros = fs.readFileSync(path.join(__dirname, '../../models/macros/cross_database.sql'), 'utf8');

function spineModel(start: string, end: string): string {
  return `{{ config(materialized='table') }}
with bounds as (
    select {{ date_literal('${start}') }} as start_date, {{ date_literal('${end}') }} as end_date
)
select count(*) as n, count(distinct s.date_day) as days, min(s.date_day) as first_day, max(s.date_day) as last_day
from ({{ default__date_spine('bounds') }}) as s`;
}

// Days between the two dates, both counted, from the calendar (not from the macro).
function daysInclusive(start: string, end: string): number {
  return Math.round((Date.parse(`${end}T00:00:00Z`) - Date.parse(`${start}T00:00:00Z`)) / 86_400_000) + 1;
}

let dir = '';
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-spine-'));
  const files: Record<string, string> = {
    // named like the package, so its adapter.dispatch(…, 'cdp_lifecycle') calls resolve here
    'dbt_project.yml':
      "name: cdp_lifecycle\nconfig-version: 2\nmodel-paths: ['models']\nmacro-paths: ['macros']\n",
    'macros/cross_database.sql': macros,
    'models/spine_long.sql': spineModel('0001-01-01', '2024-01-05'),
    'models/spine_year.sql': spineModel('2024-01-01', '2024-12-31'),
    'models/spine_one.sql': spineModel('2024-03-01', '2024-03-01'),
    'models/spine_none.sql': spineModel('2024-03-02', '2024-03-01'),
  };
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeEachWarehouse('the portable date spine', ({ tw }) => {
  let wh: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
    await buildModels({ warehouse: wh, projectDir: dir, schema: 'spine_out', rawSchema: 'spine_src' });
  }, 120_000);
  afterAll(async () => wh.close());

  const read = async (model: string) => {
    const [row] = await wh.query<{
      n: number;
      days: number;
      first_day: string | null;
      last_day: string | null;
    }>(
      `select cast(n as integer) as n, cast(days as integer) as days, cast(first_day as varchar) as first_day, cast(last_day as varchar) as last_day from spine_out.${model}`,
    );
    return { ...row, n: Number(row.n), days: Number(row.days) };
  };

  it('covers every day from 0001-01-01 to a recent D, once each', async () => {
    const expected = daysInclusive('0001-01-01', '2024-01-05');
    expect(expected).toBeGreaterThan(700_000);
    expect(await read('spine_long')).toEqual({
      n: expected,
      days: expected,
      first_day: '0001-01-01',
      last_day: '2024-01-05',
    });
  });

  it('gives a year, one day, and nothing for a reversed span', async () => {
    expect(await read('spine_year')).toEqual({
      n: 366,
      days: 366,
      first_day: '2024-01-01',
      last_day: '2024-12-31',
    });
    expect(await read('spine_one')).toEqual({
      n: 1,
      days: 1,
      first_day: '2024-03-01',
      last_day: '2024-03-01',
    });
    expect((await read('spine_none')).n).toBe(0);
  });
});
