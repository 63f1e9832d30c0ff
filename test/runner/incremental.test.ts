import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { typeChanged } from '../../src/runner/materialize';
import type { Warehouse } from '../../src/warehouse';

// A small project written here: an append-only incremental model, one that fails on schema changes, and a
// disabled model.
let dir = '';
const files: Record<string, string> = {
  'dbt_project.yml': "name: inc\nconfig-version: 2\nmodel-paths: ['models']\n",
  'models/sources.yml':
    'version: 2\nsources:\n  - name: raw\n    schema: "{{ var(\'lifecycle__raw_schema\') }}"\n    tables:\n      - name: events\n',
  'models/appended.sql': `{{ config(materialized='incremental') }}
select id, v from {{ source('raw', 'events') }}
{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}`,
  'models/strict.sql': `{{ config(materialized='incremental', unique_key='id', on_schema_change='fail') }}
select id, v{% if var('extra_column', false) %}, v as w{% endif %} from {{ source('raw', 'events') }}`,
  'models/merged.sql': `{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge',
    merge_exclude_columns=['first_v']) }}
select id, v, v as first_v from {{ source('raw', 'events') }}`,
  'models/evolving.sql': `{{ config(materialized='incremental', unique_key='id', on_schema_change=var('osc', 'ignore')) }}
select id{% if not var('drop_v', false) %}, v{% endif %}{% if var('extra_column', false) %}, cast(id * 10 as decimal(12, 2)) as amount{% endif %}
from {{ source('raw', 'events') }}`,
  'models/retyped.sql': `{{ config(materialized='incremental', unique_key='id', on_schema_change=var('osc', 'ignore')) }}
select id, {% if var('decimals', false) %}cast(id / 4.0 as decimal(12, 2)){% else %}id * 2{% endif %} as amount
from {{ source('raw', 'events') }}`,
  'models/ev_inc.sql': `{{ config(materialized='incremental', unique_key='id') }}
select id, v from {{ source('raw', 'events') }}`,
  'models/history.sql': `{{ config(materialized='incremental', full_refresh=false) }}
select {{ var('run', 0) }} as run, count(*) as n from {{ ref('ev_inc') }}`,
  'models/below_history.sql': `{{ config(materialized='incremental') }}
select run, n from {{ ref('history') }}{% if is_incremental() %} where run > (select max(run) from {{ this }}){% endif %}`,
  'models/merged_twice.sql': `{{ config(materialized='incremental', unique_key='id', incremental_strategy='merge') }}
select id, v from {{ source('raw', 'events') }}
{% if var('dup', false) %}union all select id, 'dup' from {{ source('raw', 'events') }} where id = 1{% endif %}`,
  'models/kept_view.sql': `{{ config(materialized='view', full_refresh=false) }}
select * from {{ ref('ev_inc') }}`,
  'models/below_view.sql': `{{ config(materialized='incremental', unique_key='id') }}
select id, v from {{ ref('kept_view') }}`,
  'models/widened.sql': `{{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}
select id, cast(v as {% if var('wide', false) %}char(20){% else %}varchar(10){% endif %}) as v from {{ source('raw', 'events') }}`,
  'models/quoted_key.sql': `{{ config(materialized='incremental', unique_key='"MixedId"') }}
select id as "MixedId", v from {{ source('raw', 'events') }}`,
  'models/always.sql': `{{ config(materialized='incremental', unique_key='run', full_refresh=true) }}
select {{ var('run', 0) }} as run`,
  'models/hooked.sql': `{{ config(materialized='table',
    pre_hook="create table if not exists {{ var('lifecycle__raw_schema') }}.hook_log (model text, n integer)",
    post_hook=["insert into {{ var('lifecycle__raw_schema') }}.hook_log select '{{ this.identifier }}', count(*) from {{ this }}"]) }}
select id from {{ source('raw', 'events') }}`,
  'models/off.sql': '{{ config(enabled=false) }}select * from nowhere',
};
beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-runner-inc-'));
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

describeEachWarehouse('runner incremental strategies', ({ kind, tw }) => {
  let wh: Warehouse;
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' });
  beforeAll(async () => {
    wh = await tw().open();
    await wh.exec('create schema src');
    await wh.exec('create table src.events (id integer, v text)');
    await wh.exec(`insert into src.events values (1, 'a'), (2, 'b')`);
  });
  afterAll(async () => wh.close());

  it('appends only new rows without a unique_key, skips disabled models', async () => {
    const first = await buildModels(base());
    expect(first.models.map((m) => m.name).sort()).toEqual([
      'always',
      'appended',
      'below_history',
      'below_view',
      'ev_inc',
      'evolving',
      'history',
      'hooked',
      'kept_view',
      'merged',
      'merged_twice',
      'quoted_key',
      'retyped',
      'strict',
      'widened',
    ]);
    await wh.exec(`insert into src.events values (3, 'c')`);
    const second = await buildModels({ ...base(), select: ['appended'] });
    expect(second.models[0]).toMatchObject({ incremental: true, rows: 1 });
    expect(await wh.query('select id, v from marts.appended order by id')).toEqual([
      { id: 1, v: 'a' },
      { id: 2, v: 'b' },
      { id: 3, v: 'c' },
    ]);
    expect(await wh.tableExists('marts', 'off')).toBe(false);
  });

  it('merges with merge_exclude_columns: matched rows keep the excluded columns', async () => {
    await wh.exec(`update src.events set v = 'B' where id = 2`);
    const res = await buildModels({ ...base(), select: ['merged'] });
    expect(res.models[0]).toMatchObject({ incremental: true });
    expect(await wh.query('select id, v, first_v from marts.merged order by id')).toEqual([
      { id: 1, v: 'a', first_v: 'a' },
      { id: 2, v: 'B', first_v: 'b' },
      { id: 3, v: 'c', first_v: 'c' },
    ]);
    await wh.exec(`update src.events set v = 'b' where id = 2`);
  });

  it('fails a merge whose new rows hold a key twice for one row of the table on PostgreSQL, as dbt-postgres does', async () => {
    const before = await wh.query('select id, v from marts.merged_twice order by id');
    const res = await buildModels({ ...base(), select: ['merged_twice'], vars: { dup: true } }).catch(
      (e) => e,
    );
    if (kind === 'postgres') {
      expect(res).toBeInstanceOf(BuildFailedError);
      expect((res as Error).message).toMatch(
        /failed on postgres: the new rows hold the unique_key id = 1 more than once for one row of the table, which a merge cannot apply/,
      );
      expect(await wh.query('select id, v from marts.merged_twice order by id')).toEqual(before);
    } else {
      // dbt-duckdb's MERGE takes one of them, and so does the runner
      expect(res).toMatchObject({ success: true });
    }
  });

  it('adds new columns with append_new_columns and drops old ones with sync_all_columns', async () => {
    const sel = { ...base(), select: ['evolving'] };
    const cols = async () =>
      (
        await wh.query<{ column_name: string }>(
          `select column_name from information_schema.columns where table_schema = 'marts' and table_name = 'evolving' order by ordinal_position`,
        )
      ).map((r) => r.column_name);
    // ignore (the default): the new column is not added.
    await buildModels({ ...sel, vars: { extra_column: true } });
    expect(await cols()).toEqual(['id', 'v']);
    await buildModels({ ...sel, vars: { extra_column: true, osc: 'append_new_columns' } });
    expect(await cols()).toEqual(['id', 'v', 'amount']);
    expect(await wh.query('select id, v, amount from marts.evolving order by id')).toEqual([
      { id: 1, v: 'a', amount: 10 },
      { id: 2, v: 'b', amount: 20 },
      { id: 3, v: 'c', amount: 30 },
    ]);
    // an analyst's view reads v: PostgreSQL refuses the drop, and the model says what to do (nothing lost)
    await wh.exec('create view src.evolving_v as select id, v from marts.evolving');
    const blocked = await buildModels({
      ...sel,
      vars: { extra_column: true, drop_v: true, osc: 'sync_all_columns' },
    }).catch((e: unknown) => e);
    if (kind === 'postgres') {
      expect(blocked).toBeInstanceOf(BuildFailedError);
      expect((blocked as Error).message).toMatch(
        /its columns changed \(v removed\), which PostgreSQL cannot apply while views read that column \(src\.evolving_v\): run it with --full-refresh, which rebuilds it and keeps the views over it where they still fit, or drop those views first/,
      );
      expect(await cols()).toEqual(['id', 'v', 'amount']);
    }
    await wh.exec('drop view src.evolving_v');
    await buildModels({ ...sel, vars: { extra_column: true, drop_v: true, osc: 'sync_all_columns' } });
    expect(await cols()).toEqual(['id', 'amount']);
    const type = await wh.query<{ t: string }>(
      `select data_type as t from information_schema.columns where table_schema = 'marts' and table_name = 'evolving' and column_name = 'amount'`,
    );
    expect(type[0].t.toLowerCase()).toMatch(/^(numeric|decimal\(12,2\))$/);
  });

  it('takes a quoted mixed-case unique_key as that column, as dbt does', async () => {
    const res = await buildModels({ ...base(), select: ['quoted_key'] });
    expect(res.models[0]).toMatchObject({ status: 'success', incremental: true });
    const n = (await wh.query<{ n: number }>('select count(*) as n from src.events'))[0].n;
    expect(await wh.query('select count(*) as n from marts.quoted_key')).toEqual([{ n }]);
  });

  it('widens a string column to a varchar, so stored values are not padded', async () => {
    const sel = { ...base(), select: ['widened'] };
    const res = await buildModels({ ...sel, vars: { wide: true } });
    expect(res.models[0]).toMatchObject({ status: 'success', incremental: true });
    const [{ t }] = await wh.query<{ t: string }>(
      `select data_type as t from information_schema.columns where table_schema = 'marts' and table_name = 'widened' and column_name = 'v'`,
    );
    // PostgreSQL: varchar(10) becomes varchar(20), not char(20); DuckDB has one string type
    expect(t.toLowerCase()).toBe(kind === 'postgres' ? 'character varying' : 'varchar');
    expect(await wh.query('select max(length(v)) as n from marts.widened')).toEqual([{ n: 1 }]);
  });

  it('fails on a column the model drops with ignore, and leaves it null in the new rows with append_new_columns, as dbt does', async () => {
    // evolving now has id and amount (see above); without extra_column the model no longer selects amount
    const before = await wh.query('select id, amount from marts.evolving order by id');
    const err = await buildModels({
      ...base(),
      select: ['evolving'],
      vars: { drop_v: true, osc: 'ignore' },
    }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `failed on ${kind}: the model no longer selects the column amount of the existing table, which on_schema_change='ignore' keeps \\(dbt fails here too\\): set on_schema_change='append_new_columns' to leave it null in the new rows or 'sync_all_columns' to drop it, or run with --full-refresh`,
      ),
    );
    // nothing written: no row lost its amount
    expect(await wh.query('select id, amount from marts.evolving order by id')).toEqual(before);
    // dbt inserts the new rows' own columns (process_schema_changes returns them): the column stays, null in
    // the rows this run wrote (here every row, as the model selects every event again under its unique_key)
    const res = await buildModels({
      ...base(),
      select: ['evolving'],
      vars: { drop_v: true, osc: 'append_new_columns' },
    });
    expect(res.models[0]).toMatchObject({ status: 'success', incremental: true });
    expect(await wh.query('select id, amount from marts.evolving order by id')).toEqual(
      (before as Array<{ id: number }>).map((r) => ({ id: r.id, amount: null })),
    );
  });

  it('keeps a full_refresh: false model incremental whatever, and rebuilds a full_refresh: true one always', async () => {
    const sel = { ...base(), select: ['ev_inc', 'history', 'always', 'below_history'] };
    await buildModels({ ...sel, vars: { run: 1 } });
    // --full-refresh rebuilds ev_inc, upstream of history: history keeps its rows, as dbt's config says
    const res = await buildModels({ ...sel, vars: { run: 2 }, fullRefresh: true });
    const byName = Object.fromEntries(res.models.map((m) => [m.name, m]));
    expect(byName.ev_inc).toMatchObject({ incremental: false });
    expect(byName.history).toMatchObject({
      incremental: true,
      message: 'kept incremental (full_refresh: false), though ev_inc was rebuilt in full upstream',
    });
    expect(await wh.query('select run from marts.history order by run')).toEqual([
      { run: 0 },
      { run: 1 },
      { run: 2 },
    ]);
    // rebuilt upstream by an earlier partial build: not queued for a rebuild, still kept
    // (nor is what lies below it: the kept table passes on no rebuild)
    const partial = await buildModels({ ...base(), select: ['ev_inc'], fullRefresh: true });
    expect(partial.models[0].message ?? '').not.toMatch(/history/);
    // full_refresh on a view means nothing to dbt: what is below it is queued as usual
    expect(partial.models[0].message).toMatch(/below_view/);
    const later = await buildModels({ ...sel, vars: { run: 3 } });
    expect(later.models.find((m) => m.name === 'history')).toMatchObject({ incremental: true });
    expect(await wh.query('select count(*) as n from marts.history')).toEqual([{ n: 4 }]);
    // full_refresh: true rebuilds without the flag: only the last run's row stays
    expect(later.models.find((m) => m.name === 'always')).toMatchObject({ incremental: false });
    expect(await wh.query('select run from marts.always')).toEqual([{ run: 3 }]);
  });

  it('fails on a column whose type changed with fail, and alters it with sync_all_columns, as dbt does', async () => {
    const sel = { ...base(), select: ['retyped'] };
    const typeOf = async () =>
      (
        await wh.query<{ t: string }>(
          `select data_type as t from information_schema.columns where table_schema = 'marts' and table_name = 'retyped' and column_name = 'amount'`,
        )
      )[0].t.toLowerCase();
    expect(await typeOf()).toBe('integer');
    // the stored integers would round 0.25 to 0: fail says so and keeps the rows
    const err = await buildModels({ ...sel, vars: { decimals: true, osc: 'fail' } }).catch((e) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(
      /the columns changed \(added: none; removed: none; type changed: amount (integer|INTEGER) -> (numeric|DECIMAL)\(12,2\)\) and on_schema_change is fail: run with --full-refresh/,
    );
    // (built by the first test, before the event with id 3 landed)
    expect(await wh.query('select id, amount from marts.retyped order by id')).toEqual([
      { id: 1, amount: 2 },
      { id: 2, amount: 4 },
    ]);
    // an analyst's view over the table: PostgreSQL refuses to retype a column a view reads
    await wh.exec('create view src.retyped_view as select id, amount from marts.retyped');
    const blocked = await buildModels({ ...sel, vars: { decimals: true, osc: 'sync_all_columns' } }).catch(
      (e: unknown) => e,
    );
    if (kind === 'postgres')
      expect((blocked as Error).message).toMatch(
        /its columns changed \(amount integer -> numeric\(12,2\)\), which PostgreSQL cannot apply while views read that column \(src\.retyped_view\)/,
      );
    await wh.exec('drop view src.retyped_view');
    const res = await buildModels({ ...sel, vars: { decimals: true, osc: 'sync_all_columns' } });
    expect(res.models[0]).toMatchObject({ status: 'success', incremental: true });
    expect(await typeOf()).toMatch(/^(numeric|decimal\(12,2\))$/);
    expect(
      (
        await wh.query<{ id: number; amount: unknown }>('select id, amount from marts.retyped order by id')
      ).map((r) => [r.id, Number(r.amount)]),
    ).toEqual([
      [1, 0.25],
      [2, 0.5],
      [3, 0.75],
    ]);
    // the same type again: nothing to alter
    const again = await buildModels({ ...sel, vars: { decimals: true, osc: 'fail' } });
    expect(again.models[0]).toMatchObject({ status: 'success', incremental: true });
  });

  it('rebuilds in full a sync_all_columns model whose stored table lacks a column schema.yml declares', async () => {
    // An upgrade that adds a column the model reads from {{ this }}: built incrementally against the old
    // table, the model would fail; the runner sees the declared column missing and rebuilds it instead.
    const proj = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-runner-upgrade-'));
    try {
      const write = (rel: string, text: string) => {
        fs.mkdirSync(path.dirname(path.join(proj, rel)), { recursive: true });
        fs.writeFileSync(path.join(proj, rel), text);
      };
      write('dbt_project.yml', files['dbt_project.yml']);
      write('models/sources.yml', files['models/sources.yml']);
      write(
        'models/upgraded.sql',
        `{{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}
select id, v from {{ source('raw', 'events') }}`,
      );
      const opts = { ...base(), projectDir: proj, select: ['upgraded'] };
      await buildModels(opts);
      write(
        'models/upgraded.sql',
        `{{ config(materialized='incremental', unique_key='id', on_schema_change='sync_all_columns') }}
select e.id, e.v, {% if is_incremental() %}(select count(t.seen) from {{ this }} as t){% else %}0{% endif %} as seen
from {{ source('raw', 'events') }} as e`,
      );
      write(
        'models/schema.yml',
        'version: 2\nmodels:\n  - name: upgraded\n    columns:\n      - name: id\n      - name: seen\n',
      );
      const res = await buildModels(opts);
      const m = res.models.find((r) => r.name === 'upgraded');
      expect(m?.incremental).toBe(false);
      expect(m?.message).toBe('rebuilt in full: the stored table lacks seen, declared in schema.yml');
      const n = (await wh.query<{ n: number }>('select count(*) as n from src.events'))[0].n;
      expect(await wh.query('select count(*) as n, max(seen) as s from marts.upgraded')).toEqual([
        { n, s: 0 },
      ]);
      // the next build is incremental again and reads the new column
      const again = await buildModels(opts);
      expect(again.models.find((r) => r.name === 'upgraded')?.incremental).toBe(true);
      expect(await wh.query('select max(seen) as s from marts.upgraded')).toEqual([{ s: n }]);
    } finally {
      fs.rmSync(proj, { recursive: true, force: true });
    }
  });

  it('runs pre- and post-hooks rendered with the model context', async () => {
    expect(await wh.query('select model, n from src.hook_log')).toEqual([{ model: 'hooked', n: 2 }]);
    await buildModels({ ...base(), select: ['hooked'] });
    expect(await wh.query('select model, n from src.hook_log order by n')).toEqual([
      { model: 'hooked', n: 2 },
      { model: 'hooked', n: 3 },
    ]);
  });

  it('fails an on_schema_change=fail model whose columns changed, keeping its rows, until --full-refresh', async () => {
    const err = await buildModels({ ...base(), select: ['strict'], vars: { extra_column: true } }).catch(
      (e) => e,
    );
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toMatch(
      new RegExp(
        `^model strict \\(.*strict\\.sql\\) failed on ${kind}: the columns changed \\(added: w; removed: none\\)`,
      ),
    );
    expect(await wh.query('select count(*) as n from marts.strict')).toEqual([{ n: 2 }]);
    expect(await wh.tableExists('marts', 'strict__dbt_tmp')).toBe(false);
    const ok = await buildModels({
      ...base(),
      select: ['strict'],
      vars: { extra_column: true },
      fullRefresh: true,
    });
    expect(ok.models[0]).toMatchObject({ status: 'success', incremental: false, rows: 3 });
    expect(await wh.query('select id, w from marts.strict order by id')).toEqual([
      { id: 1, w: 'a' },
      { id: 2, w: 'b' },
      { id: 3, w: 'c' },
    ]);
  });
});

describe('a stored column type that must change', () => {
  it.each([
    ['integer', 'integer', false],
    ['INTEGER', 'DECIMAL(12,2)', true],
    ['integer', 'bigint', true],
    ['numeric(12,2)', 'numeric(38,6)', true],
    // a string column only widens, as dbt's expand_target_column_types does
    ['text', 'character varying(10)', false],
    ['VARCHAR', 'VARCHAR', false],
    ['character varying(20)', 'character varying(10)', false],
    ['character varying(10)', 'character varying(20)', true],
    ['character varying(10)', 'text', true],
    // PostgreSQL's fixed-length strings are strings too: no narrowing that would cut stored values
    ['text', 'character(2)', false],
    ['character varying(20)', 'character(5)', false],
    ['character(2)', 'text', true],
    ['text', 'integer', true],
  ])('%s holding %s: %s', (from, to, changed) => {
    expect(typeChanged(from, to)).toBe(changed);
  });
});
