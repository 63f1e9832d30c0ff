import * as fs from 'node:fs';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, compileModels } from '../../src/runner';
import { oneSourceProject, projectSuite, tempProject } from './temp-project';

// dbt.listagg's limit_num keeps the first n values in the given order; without it, every value.
const FILES = oneSourceProject('listagg', 'events', {
  'lists.sql': `{{ config(materialized='table') }}
select
  user_id,
  {{ dbt.listagg('event', "', '", 'order by seq') }} as all_events,
  {{ dbt.listagg('event', "'|'", 'order by seq desc', 2) }} as last_two,
  {{ dbt.listagg('event', "'|'", none, 10) }} as up_to_ten
from {{ source('raw', 'events') }}
group by user_id`,
});

describeEachWarehouse('dbt.listagg', ({ tw }) => {
  const suite = projectSuite('listagg', FILES, () => tw().open(), [
    'create table src.events (user_id varchar(10), seq integer, event varchar(20))',
    "insert into src.events values ('a', 1, 'x'), ('a', 2, 'y'), ('a', 3, 'z'), ('b', 1, 'only')",
  ]);

  it('keeps the first limit_num values in order, and all of them without a limit', async () => {
    const base = suite();
    const res = await buildModels(base);
    expect(res.success).toBe(true);
    const rows = await base.warehouse.query<{
      user_id: string;
      all_events: string;
      last_two: string;
      up_to_ten: string;
    }>('select user_id, all_events, last_two, up_to_ten from marts.lists order by user_id');
    // up_to_ten has no order: only its values are certain
    expect(rows.map((r) => ({ ...r, up_to_ten: r.up_to_ten.split('|').sort().join('|') }))).toEqual([
      { user_id: 'a', all_events: 'x, y, z', last_two: 'z|y', up_to_ten: 'x|y|z' },
      { user_id: 'b', all_events: 'only', last_two: 'only', up_to_ten: 'only' },
    ]);
  });
});

describe('dbt.listagg on the warehouses without a test server', () => {
  let dir = '';
  beforeAll(() => {
    dir = tempProject('listagg-compile', FILES);
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const compiled = async (dialect: 'snowflake' | 'redshift') =>
    (
      await compileModels({
        dialect,
        projectDir: dir,
        schema: 'marts',
        rawSchema: 'src',
        outDir: path.join(dir, 'out'),
      })
    ).models[0].sql;

  it('slices the ordered array on Snowflake, as dbt-core does', async () => {
    const sql = await compiled('snowflake');
    expect(sql).toContain("listagg(event, ', ') within group (order by seq) as all_events");
    expect(sql).toContain(
      "array_to_string(array_slice(array_agg(event) within group (order by seq desc), 0, 2), '|') as last_two",
    );
  });

  it('says what to write instead on Redshift, which has no array slice', async () => {
    await expect(compiled('redshift')).rejects.toThrow(
      /dbt\.listagg with limit_num is not supported for redshift by this runner: keep the first rows with row_number\(\) in a CTE and aggregate those/,
    );
  });
});

/**
 * dbt.datediff(…, 'week') means what dbt-postgres and dbt-duckdb (since 1.8.4) mean: the Sundays crossed
 * (their formula counts date_part('dow') boundaries), not ISO weeks nor DuckDB's own whole weeks. The expected
 * numbers come from the calendar here, not from the SQL, with one quirk of dbt's formula kept: a backward span
 * that starts and ends on the same weekday counts one Sunday more.
 */
const PAIRS: Array<[string, string]> = [
  ['2024-01-06', '2024-01-07'], // Saturday to Sunday
  ['2024-01-07', '2024-01-08'], // Sunday to Monday
  ['2024-01-08', '2024-01-14'], // Monday to the next Sunday
  ['2024-01-01', '2024-01-08'], // a week to the day
  ['2024-01-10', '2024-01-08'], // backwards within a week
  ['2024-01-14', '2024-01-06'], // backwards across a Sunday
  ['2024-01-15', '2024-01-08'], // backwards a week to the day (dbt's quirk)
  ['2023-12-25', '2024-03-04'],
];
const DAY = 86_400_000;
const days = (a: string, b: string) => (Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / DAY;
// weeks numbered from the Sunday 1970-01-04
const sundayWeek = (d: string) => Math.floor(days('1970-01-04', d) / 7);
const dbtWeeks = (a: string, b: string) =>
  sundayWeek(b) - sundayWeek(a) - (days(a, b) < 0 && days(a, b) % 7 === 0 ? 1 : 0);

const WEEK_FILES = oneSourceProject('weeks', 'pairs', {
  'weeks.sql': `{{ config(materialized='table') }}
select n, {{ dbt.datediff('a', 'b', 'week') }} as weeks
from {{ source('raw', 'pairs') }}`,
});

describeEachWarehouse('dbt.datediff in weeks', ({ tw }) => {
  const suite = projectSuite('weeks', WEEK_FILES, () => tw().open(), [
    'create table src.pairs (n integer, a date, b date)',
    `insert into src.pairs values ${PAIRS.map(([a, b], i) => `(${i}, date '${a}', date '${b}')`).join(', ')}`,
  ]);

  it('counts the Sundays crossed, as dbt-postgres and dbt-duckdb do', async () => {
    const base = suite();
    expect((await buildModels(base)).success).toBe(true);
    const rows = await base.warehouse.query<{ n: number; weeks: number }>(
      'select n, weeks from marts.weeks order by n',
    );
    expect(rows.map((r) => Number(r.weeks))).toEqual(PAIRS.map(([a, b]) => dbtWeeks(a, b)));
  });
});

// dbt.last_day by quarter: dbt-postgres (and dbt-duckdb) add 3 months, as PostgreSQL has no quarter interval.
const LAST_DAY_FILES = oneSourceProject('lastday', 'days', {
  'last_days.sql': `{{ config(materialized='table') }}
select
  n,
  {{ dbt.last_day('d', 'quarter') }} as quarter_end,
  {{ dbt.last_day('d', 'month') }} as month_end,
  {{ dbt.last_day('d', 'year') }} as year_end
from {{ source('raw', 'days') }}`,
});

describeEachWarehouse('dbt.last_day', ({ tw }) => {
  const suite = projectSuite('lastday', LAST_DAY_FILES, () => tw().open(), [
    'create table src.days (n integer, d date)',
    "insert into src.days values (1, date '2024-01-01'), (2, date '2024-02-29'), (3, date '2024-11-15')",
  ]);

  it('ends a quarter on its last day, as dbt-postgres does', async () => {
    const base = suite();
    expect((await buildModels(base)).success).toBe(true);
    const rows = await base.warehouse.query<{ quarter_end: string; month_end: string; year_end: string }>(
      `select cast(quarter_end as varchar) as quarter_end, cast(month_end as varchar) as month_end,
              cast(year_end as varchar) as year_end
       from marts.last_days order by n`,
    );
    expect(rows).toEqual([
      { quarter_end: '2024-03-31', month_end: '2024-01-31', year_end: '2024-12-31' },
      { quarter_end: '2024-03-31', month_end: '2024-02-29', year_end: '2024-12-31' },
      { quarter_end: '2024-12-31', month_end: '2024-11-30', year_end: '2024-12-31' },
    ]);
  });
});

describe("the adapters' own cross-database macros on the warehouses without a test server", () => {
  let dir = '';
  beforeAll(() => {
    dir = tempProject(
      'adapter-macros',
      oneSourceProject('adapter_macros', 'events', {
        'm.sql': `select
  {{ dbt.cast_bool_to_text('is_paid') }} as paid,
  {{ dbt.split_part('path', "'/'", 2) }} as second_part,
  {{ dbt.split_part('path', "'/'", -1) }} as last_part,
  {{ dbt.current_timestamp() }} as now_at,
  {{ dbt.last_day('d', 'quarter') }} as quarter_end
from {{ source('raw', 'events') }}`,
      }),
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  const compiled = async (dialect: 'snowflake' | 'redshift') =>
    (
      await compileModels({
        dialect,
        projectDir: dir,
        schema: 'marts',
        rawSchema: 'src',
        outDir: path.join(dir, 'out'),
      })
    ).models[0].sql;

  it("casts a boolean to text, splits from the end and takes the quarter's last day as dbt-redshift does", async () => {
    const sql = await compiled('redshift');
    expect(sql).toContain(
      "case when is_paid is true then 'true' when is_paid is false then 'false' end::text as paid",
    );
    expect(sql).toContain("split_part(path, '/', 2) as second_part");
    // Redshift's split_part takes no negative part: dbt counts the delimiters to find it
    expect(sql).toContain(
      "split_part(path, '/', length(path) - length(replace(path, '/', '')) + 2 + -1) as last_part",
    );
    expect(sql).toContain('getdate() as now_at');
    expect(sql).toContain(
      "cast(dateadd(day, -1, dateadd(quarter, 1, date_trunc('quarter', d))) as date) as quarter_end",
    );
  });

  it("stamps the current time in UTC on Snowflake, as dbt-snowflake's current_timestamp does", async () => {
    const sql = await compiled('snowflake');
    expect(sql).toContain("convert_timezone('UTC', current_timestamp()) as now_at");
    expect(sql).toContain('cast(is_paid as varchar) as paid');
  });
});
