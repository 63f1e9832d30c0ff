import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, BuildFailedError, type BuildResult, type ModelResult } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { UsageError } from '../../src/errors';

const BASIC = path.join(__dirname, 'fixtures', 'basic');

async function setupRaw(wh: Warehouse): Promise<void> {
  await wh.exec('create schema if not exists cdp');
  await wh.exec(
    'create table cdp.orders (id integer, user_id text, amount_cents integer, status text, ordered_at timestamp)',
  );
  await wh.exec(`insert into cdp.orders values
    (1, 'u1', 1000, 'completed', '2024-01-01 10:00:00'),
    (2, 'u1', 500, 'shipped', '2024-01-02 10:00:00'),
    (3, 'u2', 700, 'cancelled', '2024-01-03 10:00:00'),
    (4, 'u3', 250, 'completed', '2024-01-03 11:00:00')`);
  await wh.exec('create table cdp.users (user_id text, plan text)');
  await wh.exec(`insert into cdp.users values ('u1', 'pro'), ('u2', 'free'), ('u3', 'free')`);
}

function byName(res: BuildResult): Record<string, ModelResult> {
  return Object.fromEntries(res.models.map((m) => [m.name, m]));
}

describeEachWarehouse('runner build', ({ kind, tw }) => {
  let wh: Warehouse;
  const base = () => ({ warehouse: wh, projectDir: BASIC, schema: 'lifecycle', rawSchema: 'cdp' });

  beforeAll(async () => {
    wh = await tw().open();
    await setupRaw(wh);
  });
  afterAll(async () => wh.close());

  it('builds every model in DAG order with its materialization', async () => {
    const started: string[] = [];
    const res = await buildModels({ ...base(), onModel: (e) => e.phase === 'start' && started.push(e.name) });
    expect(res.success).toBe(true);
    const order = res.models.map((m) => m.name);
    expect(started).toEqual(order);
    const pos = (n: string) => order.indexOf(n);
    expect(order).toHaveLength(7);
    expect(pos('stg_orders')).toBeLessThan(pos('completed_orders'));
    expect(pos('completed_orders')).toBeLessThan(pos('user_revenue'));
    expect(pos('user_revenue')).toBeLessThan(pos('top_users'));
    expect(pos('stg_orders')).toBeLessThan(pos('orders_incremental'));
    const m = byName(res);
    expect(m.stg_orders).toMatchObject({ materialized: 'view', status: 'success', rows: null });
    expect(m.stg_orders.relation).toBe('"lifecycle"."stg_orders"');
    expect(m.stg_orders.file).toBe(path.join('basic', 'models', 'staging', 'stg_orders.sql'));
    expect(m.dim_users).toMatchObject({ materialized: 'table', rows: 3 });
    expect(m.user_revenue).toMatchObject({ materialized: 'table', rows: 2 });
    expect(m.completed_orders).toMatchObject({
      materialized: 'ephemeral',
      relation: '__dbt__cte__completed_orders',
    });
    expect(m.orders_incremental).toMatchObject({ materialized: 'incremental', incremental: false, rows: 4 });
    for (const r of res.models) expect(typeof r.ms).toBe('number');

    const kinds = await wh.query<{ table_name: string; table_type: string }>(
      `select table_name, table_type from information_schema.tables where table_schema = 'lifecycle' order by table_name`,
    );
    expect(kinds.map((k) => [k.table_name, /VIEW/i.test(k.table_type) ? 'view' : 'table'])).toEqual([
      ['dim_users', 'table'],
      ['orders_incremental', 'table'],
      ['orders_merged', 'table'],
      ['stg_orders', 'view'],
      ['top_users', 'view'],
      ['user_revenue', 'table'],
    ]);
  });

  it('creates the indexes config on PostgreSQL tables (dbt-postgres), and keeps them across rebuilds', async () => {
    const indexes = async () =>
      (
        await wh.query<{ indexdef: string }>(
          `select indexdef from pg_indexes where schemaname = 'lifecycle' and tablename = 'dim_users'`,
        )
      )
        .map((r) => r.indexdef.replace(/INDEX \S+ ON/, 'INDEX ON'))
        .sort();
    if (kind !== 'postgres') return;
    const expected = [
      'CREATE INDEX ON lifecycle.dim_users USING btree (plan, user_id)',
      'CREATE INDEX ON lifecycle.dim_users USING btree (user_id)',
    ];
    expect(await indexes()).toEqual(expected);
    await buildModels({ ...base(), select: ['dim_users'] });
    expect(await indexes()).toEqual(expected);
  });

  it('renders ref, source, var precedence, dispatch and the inlined ephemeral model', async () => {
    const rows = await wh.query('select * from lifecycle.user_revenue order by user_id');
    // Package-scoped var beats the global one; the flat global var applies when nothing scoped exists.
    expect(rows).toEqual([
      {
        user_id: 'u1',
        orders: 2,
        revenue: 15,
        var_source: 'from-package',
        greeting: 'hello-global',
        target_type: kind,
      },
      {
        user_id: 'u3',
        orders: 1,
        revenue: 2.5,
        var_source: 'from-package',
        greeting: 'hello-global',
        target_type: kind,
      },
    ]);
    expect(await wh.query('select user_id from lifecycle.top_users')).toEqual([{ user_id: 'u1' }]);
  });

  it('lets --vars override every project var', async () => {
    await buildModels({
      ...base(),
      select: ['user_revenue'],
      vars: { shadowed: 'from-cli', greeting: 'hi' },
    });
    const rows = await wh.query('select distinct var_source, greeting from lifecycle.user_revenue');
    expect(rows).toEqual([{ var_source: 'from-cli', greeting: 'hi' }]);
    await buildModels({ ...base(), select: ['user_revenue'] });
  });

  it('runs incremental models incrementally (delete+insert and merge), and from scratch with --full-refresh', async () => {
    // Changes behind the watermark (id 1) must not be picked up; rows on or after it are replaced or added.
    await wh.exec(`update cdp.orders set amount_cents = 9999 where id = 1`);
    await wh.exec(`update cdp.orders set amount_cents = 300 where id = 4`);
    await wh.exec(`insert into cdp.orders values (6, 'u1', 900, 'completed', '2024-01-05 09:00:00')`);
    const res = await buildModels({ ...base(), select: ['orders_incremental', 'orders_merged'] });
    const m = byName(res);
    expect(Object.keys(m).sort()).toEqual(['orders_incremental', 'orders_merged']);
    // ids 3, 4 (dated 2024-01-03 = the previous max) and 6 are reprocessed.
    expect(m.orders_incremental).toMatchObject({ incremental: true, rows: 3 });
    expect(m.orders_merged).toMatchObject({ incremental: true, rows: 3 });
    const expected = [
      { id: 1, amount: 10 },
      { id: 2, amount: 5 },
      { id: 3, amount: 7 },
      { id: 4, amount: 3 },
      { id: 6, amount: 9 },
    ];
    for (const t of ['orders_incremental', 'orders_merged']) {
      expect(await wh.query(`select id, amount from lifecycle.${t} order by id`)).toEqual(expected);
    }
    const full = await buildModels({
      ...base(),
      select: ['orders_incremental', 'orders_merged'],
      fullRefresh: true,
    });
    expect(byName(full).orders_incremental).toMatchObject({ incremental: false, rows: 5 });
    for (const t of ['orders_incremental', 'orders_merged']) {
      const rows = await wh.query<{ id: number; amount: number }>(
        `select id, amount from lifecycle.${t} order by id`,
      );
      expect(rows[0]).toEqual({ id: 1, amount: 99.99 });
      expect(rows).toHaveLength(5);
    }
  });

  /** A build with these vars, which must fail with a BuildFailedError. */
  const failedBuild = async (vars: Record<string, unknown>): Promise<BuildFailedError> => {
    const err: unknown = await buildModels({ ...base(), vars }).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(err).toBeInstanceOf(BuildFailedError);
    return err as BuildFailedError;
  };

  it('keeps the previous table when a model fails, names model, file and warehouse, and skips dependents', async () => {
    const before = await wh.query('select * from lifecycle.user_revenue order by user_id');
    const e = await failedBuild({ break_user_revenue: true });
    const file = path.join('basic', 'models', 'marts', 'user_revenue.sql');
    expect(e.message).toContain(`model user_revenue (${file}) failed on ${kind}: `);
    expect(e.message).toMatch(/no_such_column/);
    expect(e.exitCode).toBe(1);
    const m = byName(e.result);
    expect(m.user_revenue.status).toBe('error');
    expect(m.top_users).toMatchObject({ status: 'skipped', message: 'skipped because user_revenue failed' });
    // Models that do not depend on the failure still build.
    expect(m.dim_users.status).toBe('success');
    expect(m.orders_incremental.status).toBe('success');
    expect(e.result.success).toBe(false);
    expect(await wh.query('select * from lifecycle.user_revenue order by user_id')).toEqual(before);
    expect(await wh.tableExists('lifecycle', 'user_revenue__dbt_tmp')).toBe(false);
  });

  it('selects with +name, name+, tag: and unions; rejects unknown names with a usage error', async () => {
    const names = async (select: string[]) =>
      (await buildModels({ ...base(), select })).models
        .filter((x) => !x.message?.startsWith('rebuilt'))
        .map((x) => x.name)
        .sort();
    expect(await names(['+user_revenue'])).toEqual(['completed_orders', 'stg_orders', 'user_revenue']);
    expect(await names(['completed_orders+'])).toEqual(['completed_orders', 'top_users', 'user_revenue']);
    // `@`: the model, its descendants and every ancestor of both, so a leaf still brings its parents.
    expect(await names(['@completed_orders'])).toEqual([
      'completed_orders',
      'stg_orders',
      'top_users',
      'user_revenue',
    ]);
    expect(await names(['@top_users'])).toEqual([
      'completed_orders',
      'stg_orders',
      'top_users',
      'user_revenue',
    ]);
    expect(await names(['tag:incremental'])).toEqual(['orders_incremental']);
    expect(await names(['source:raw.users'])).toEqual(['dim_users']);
    expect(await names(['path:models/staging'])).toEqual(['completed_orders', 'dim_users', 'stg_orders']);
    // without a method, dbt reads a value with a slash as path: and a file name as file:
    expect(await names(['models/staging'])).toEqual(['completed_orders', 'dim_users', 'stg_orders']);
    expect(await names(['models/marts/top_users.sql'])).toEqual(['top_users']);
    expect(await names(['top_users.sql'])).toEqual(['top_users']);
    expect(await names(['file:top_users'])).toEqual(['top_users']);
    expect(await names(['file:orders_*.sql'])).toEqual(['orders_incremental', 'orders_merged']);
    expect(await names(['dim_users top_users'])).toEqual(['dim_users', 'top_users']);
    expect(await names(['tag:mart,+top_users'])).toEqual(['top_users', 'user_revenue']);
    // dbt's config selector, `config.<key>:<value>`, a list config matching on its members, and package:
    expect(await names(['config.materialized:incremental'])).toEqual(['orders_incremental', 'orders_merged']);
    expect(await names(['config.materialized:incremental'])).toEqual(['orders_incremental', 'orders_merged']);
    expect(await names(['config.tags:mart'])).toEqual(await names(['tag:mart']));
    expect(await names(['package:runner_basic'])).toEqual(await names(['*']));
    await expect(buildModels({ ...base(), select: ['dim_users,top_users'] })).rejects.toThrow(
      /"dim_users,top_users" matches no model: a comma keeps the models matched by every part; .*\("dim_users top_users"\)/,
    );
    await expect(buildModels({ ...base(), select: ['nope'] })).rejects.toThrow(UsageError);
    await expect(buildModels({ ...base(), select: ['nope'] })).rejects.toThrow(/"nope" matches no model/);
    // an exclusion that leaves nothing is the same slip as a selector that matches nothing
    await expect(
      buildModels({ ...base(), select: ['path:models/staging'], exclude: ['path:models'] }),
    ).rejects.toThrow(
      '--exclude path:models removes every model that --select path:models/staging picks: nothing would run; narrow --exclude.',
    );
    await expect(buildModels({ ...base(), exclude: ['*'] })).rejects.toThrow(
      /^--exclude \* removes every model of the project/,
    );
  });

  it('names the failed model, not a skipped one, for models further down, and counts errors and skips apart', async () => {
    const e = await failedBuild({ break_stg_orders: true });
    const m = byName(e.result);
    expect(m.stg_orders.status).toBe('error');
    // completed_orders (ephemeral) refs stg_orders; user_revenue refs completed_orders; top_users user_revenue
    expect(m.completed_orders.message).toBe('skipped because stg_orders failed');
    expect(m.user_revenue.message).toBe('skipped because stg_orders failed (upstream of completed_orders)');
    expect(m.top_users.message).toBe('skipped because stg_orders failed (upstream of user_revenue)');
    const skipped = e.result.models.filter((x) => x.status === 'skipped').length;
    expect(skipped).toBeGreaterThanOrEqual(5);
    expect(e.message).toMatch(new RegExp(`^model stg_orders .* \\(${skipped} skipped\\)$`));
    expect(m.dim_users.status).toBe('success');
  });

  it('never loses an unselected view that selects from a rebuilt table', async () => {
    const res = await buildModels({ ...base(), select: ['user_revenue'] });
    const names = res.models.map((m) => m.name);
    // PostgreSQL drops dependent views with the swapped table; the swap recreates them at once. DuckDB keeps them.
    expect(names).toEqual(['user_revenue']);
    expect(await wh.query('select user_id from lifecycle.top_users')).toEqual([{ user_id: 'u1' }]);
  });

  it('builds into another target schema, creating it, with the raw schema passed as a var', async () => {
    await wh.exec('create schema if not exists raw2');
    await wh.exec('create table raw2.orders as select * from cdp.orders where id = 4');
    await wh.exec('create table raw2.users as select * from cdp.users');
    const res = await buildModels({
      ...base(),
      schema: 'analytics',
      rawSchema: 'raw2',
      select: ['+user_revenue'],
    });
    expect(res.success).toBe(true);
    expect(await wh.query('select user_id, orders from analytics.user_revenue')).toEqual([
      { user_id: 'u3', orders: 1 },
    ]);
  });
});
