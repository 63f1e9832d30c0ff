import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// A view over two tables (like user_lifecycle over user_state and recent_activity) and a view over that view.
// PostgreSQL drops views with the table a swap replaces; none may vanish when a later model fails.
const files = oneSourceProject('failing', 'seed', {
  'a_table.sql': `{{ config(materialized='table') }}
select s.v as {% if var('rename_a', false) %}w{% else %}v{% endif %} from {{ source('raw', 'seed') }} as s`,
  'b_table.sql': `{{ config(materialized='table') }}
select s.v{% if var('break_b', false) %}, s.no_such_column{% endif %} from {{ source('raw', 'seed') }} as s`,
  'both_view.sql': `{{ config(materialized='view') }}
select a.*, b.v as b_v from {{ ref('a_table') }} as a cross join {{ ref('b_table') }} as b`,
  'chain_view.sql': `{{ config(materialized='view') }}
select * from {{ ref('both_view') }}`,
  // a post-hook naming a table without its schema, on a table a view selects from
  'logged_table.sql': `{{ config(materialized='table', post_hook=["insert into hook_log values ('{{ this.identifier }}')"]) }}
select s.v from {{ source('raw', 'seed') }} as s`,
  'logged_view.sql': `{{ config(materialized='view') }}
select v from {{ ref('logged_table') }}`,
  // a post-hook that cannot run inside a transaction block on PostgreSQL
  'vacuumed.sql': `{{ config(materialized='table', post_hook=[{'sql': "{% if target.type == 'postgres' %}vacuum analyze {{ this }}{% else %}checkpoint{% endif %}", 'transaction': false}]) }}
select s.v from {{ source('raw', 'seed') }} as s`,
  // post-hooks that fail when hook_column names no column
  'hooked_inc.sql': `{{ config(materialized='incremental', unique_key='v',
    post_hook=["delete from {{ this }} where {{ var('hook_column', 'v') }} = 'never'"]) }}
select s.v from {{ source('raw', 'seed') }} as s`,
  'hooked_table.sql': `{{ config(materialized='table',
    post_hook=["delete from {{ this }} where {{ var('hook_column', 'v') }} = 'never'"]) }}
select s.v from {{ source('raw', 'seed') }} as s`,
});

describeEachWarehouse('runner: a failed build keeps every view', ({ kind, tw }) => {
  let wh: Warehouse;
  let dir = '';
  const base = () => ({ warehouse: wh, projectDir: dir, schema: 'fb_out', rawSchema: 'fb_raw' });

  beforeAll(async () => {
    dir = tempProject('failed', files);
    wh = await tw().open();
    await wh.exec('create schema fb_raw');
    await wh.exec('create table fb_raw.seed (v text)');
    await wh.exec("insert into fb_raw.seed values ('one')");
    // in the connection's default schema (public, main), named without it by logged_table's post-hook
    await wh.exec('create table hook_log (name text)');
    await buildModels(base());
  });
  afterAll(async () => {
    await wh.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the views over a swapped table when a model after it fails; they read what each table holds', async () => {
    await wh.exec("update fb_raw.seed set v = 'two'");
    const err = await buildModels({ ...base(), vars: { break_b: true } }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BuildFailedError);
    const status = Object.fromEntries((err as BuildFailedError).result.models.map((m) => [m.name, m.status]));
    expect(status).toMatchObject({
      a_table: 'success',
      b_table: 'error',
      both_view: 'skipped',
      chain_view: 'skipped',
    });
    // a_table was swapped in, b_table kept its previous build: the views still answer, over both
    expect(await wh.query('select v, b_v from fb_out.both_view')).toEqual([{ v: 'two', b_v: 'one' }]);
    expect(await wh.query('select v, b_v from fb_out.chain_view')).toEqual([{ v: 'two', b_v: 'one' }]);

    await buildModels(base());
    expect(await wh.query('select v, b_v from fb_out.chain_view')).toEqual([{ v: 'two', b_v: 'two' }]);
  });

  it('rebuilds a view that no longer fits the new table from its model', async () => {
    const res = await buildModels({ ...base(), vars: { rename_a: true } });
    expect(res.success).toBe(true);
    expect(await wh.query('select w, b_v from fb_out.chain_view')).toEqual([{ w: 'two', b_v: 'two' }]);
  });

  it('rolls a model back when its post-hook fails: the hook runs in the transaction that applies it', async () => {
    const rows = async (t: string) =>
      (await wh.query<{ v: string }>(`select v from fb_out.${t} order by v`)).map((r) => r.v);
    const before = { inc: await rows('hooked_inc'), table: await rows('hooked_table') };
    await wh.exec("update fb_raw.seed set v = 'three'");
    const err = await buildModels({ ...base(), vars: { hook_column: 'no_such_column' } }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BuildFailedError);
    for (const name of ['hooked_inc', 'hooked_table']) {
      const m = (err as BuildFailedError).result.models.find((x) => x.name === name)!;
      expect(m.status).toBe('error');
      expect(m.message).toMatch(
        new RegExp(`^model ${name} \\(.*\\) failed on \\w+ in its post-hook: .*no_such_column`, 'i'),
      );
    }
    expect({ inc: await rows('hooked_inc'), table: await rows('hooked_table') }).toEqual(before);
    // the new table the failed hook rolled back is not left behind
    expect(await wh.tableExists('fb_out', 'hooked_table__dbt_tmp')).toBe(false);
    expect(before.table).not.toEqual(['three']);

    await buildModels(base());
    expect(await rows('hooked_table')).toEqual(['three']);
    expect(await rows('hooked_inc')).toContain('three');
  });

  it('resolves unqualified names in a post-hook as usual after the swap reads the dependent views', async () => {
    const logged = async () =>
      Number((await wh.query<{ n: number }>('select count(*) as n from hook_log'))[0].n);
    const before = await logged();
    const res = await buildModels({ ...base(), select: ['logged_table'] });
    expect(res.success).toBe(true);
    expect(await logged()).toBe(before + 1);
    expect(await wh.query('select v from fb_out.logged_view')).toEqual([{ v: 'three' }]);
  });

  it('runs a post-hook marked transaction: false after the commit, as dbt does', async () => {
    const res = await buildModels({ ...base(), select: ['vacuumed'] });
    expect(res.success).toBe(true);
    expect(await wh.query('select v from fb_out.vacuumed')).toEqual([{ v: 'three' }]);
  });

  it('rebuilds an unselected view that no longer fits the swapped table from its model', async () => {
    const res = await buildModels({ ...base(), select: ['a_table'], vars: { rename_a: true } });
    expect(res.success).toBe(true);
    // PostgreSQL could not recreate both_view's stored definition (it names a.v), so it and chain_view above it
    // are rebuilt from their models after the build; DuckDB binds views by name at query time.
    const rebuilt = res.models.filter((m) => m.message?.startsWith('rebuilt')).map((m) => m.name);
    expect(rebuilt).toEqual(kind === 'postgres' ? ['both_view', 'chain_view'] : []);
    expect(await wh.query('select w, b_v from fb_out.chain_view')).toEqual([{ w: 'three', b_v: 'three' }]);
  });
});
