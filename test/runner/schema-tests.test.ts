import * as path from 'node:path';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, testModels, type TestResult } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';

const BASIC = path.join(__dirname, 'fixtures', 'basic');

function byName(res: TestResult) {
  return Object.fromEntries(res.tests.map((t) => [t.name, t]));
}

describeEachWarehouse('runner schema tests', ({ tw }) => {
  let wh: Warehouse;
  const base = () => ({ warehouse: wh, projectDir: BASIC, schema: 'lifecycle', rawSchema: 'cdp' });

  beforeAll(async () => {
    wh = await tw().open();
    await wh.exec('create schema cdp');
    await wh.exec(
      'create table cdp.orders (id integer, user_id text, amount_cents integer, status text, ordered_at timestamp)',
    );
    await wh.exec(`insert into cdp.orders values
      (1, 'u1', 1000, 'completed', '2024-01-01 10:00:00'),
      (2, 'u1', 500, 'shipped', '2024-01-02 10:00:00'),
      (3, 'u2', 700, 'cancelled', '2024-01-03 10:00:00')`);
    await wh.exec('create table cdp.users (user_id text, plan text)');
    await wh.exec(`insert into cdp.users values ('u1', 'pro'), ('u2', 'free')`);
  });
  afterAll(async () => wh.close());

  it('reports a model that is not built yet as an error, not a pass', async () => {
    const res = await testModels({ ...base(), select: ['dim_users'] });
    expect(res.success).toBe(false);
    // dbt's eager indirect selection: the relationships test of stg_orders reads dim_users, so it runs too
    expect(res.tests.map((t) => [t.name, t.status])).toEqual([
      ['relationships_stg_orders_user_id__user_id__ref_dim_users_', 'error'],
      ['unique_dim_users_user_id', 'error'],
    ]);
    expect(res.tests[1].message).toMatch(/model dim_users is not built .*run build first/);
    // and a test is left out when any model it reads is excluded
    const excluded = await testModels({ ...base(), select: ['dim_users'], exclude: ['stg_orders'] });
    expect(excluded.tests.map((t) => t.name)).toEqual(['unique_dim_users_user_id']);
  });

  it('passes every test on clean data', async () => {
    await buildModels(base());
    const res = await testModels(base());
    expect(res.tests.map((t) => [t.name, t.status])).toEqual([
      ['unique_stg_orders_id', 'pass'],
      ['not_null_stg_orders_id', 'pass'],
      ['not_null_stg_orders_user_id', 'pass'],
      ['relationships_stg_orders_user_id__user_id__ref_dim_users_', 'pass'],
      ['accepted_values_stg_orders_status__completed__shipped__cancelled', 'pass'],
      ['unique_user_revenue_user_id', 'pass'],
      ['not_null_user_revenue_user_id', 'pass'],
      ['accepted_values_user_revenue_orders__False__1__2', 'pass'],
      ['unique_orders_incremental_id', 'pass'],
      ['unique_dim_users_user_id', 'pass'],
      ['source_not_null_raw_orders_id', 'pass'],
    ]);
    expect(res).toMatchObject({ success: true, passed: 11, failed: 0, warned: 0, errored: 0 });
  });

  it('catches each kind of violation with its count and a sample of at most 5 rows', async () => {
    await wh.exec(`insert into cdp.orders values
      (1, 'u1', 100, 'completed', '2024-01-04 10:00:00'),
      (7, null, 100, 'completed', '2024-01-04 10:00:00'),
      (8, null, 100, 'void', '2024-01-04 10:00:00'),
      (9, 'u404', 100, 'refunded', '2024-01-04 10:00:00'),
      (10, 'u405', 100, 'refunded', '2024-01-04 10:00:00'),
      (11, 'u405', 100, 'lost', '2024-01-04 10:00:00')`);
    await wh.exec(`insert into cdp.users values ('u1', 'again')`);
    for (let i = 0; i < 6; i++)
      await wh.exec(`insert into cdp.users values ('dup${i}', 'x'), ('dup${i}', 'y')`);
    await buildModels({ ...base(), fullRefresh: true });
    const res = await testModels(base());
    const t = byName(res);
    expect(res.success).toBe(false);

    expect(t.unique_stg_orders_id).toMatchObject({ status: 'fail', failures: 1 });
    expect(t.unique_stg_orders_id.sample).toEqual([{ unique_field: 1, n_records: 2 }]);
    expect(t.not_null_stg_orders_id.status).toBe('pass');

    // `where: status <> 'void'` keeps order 8 out of the not_null test.
    expect(t.not_null_stg_orders_user_id).toMatchObject({ status: 'fail', failures: 1 });
    expect(t.not_null_stg_orders_user_id.sample).toHaveLength(1);
    expect(t.not_null_stg_orders_user_id.sample[0]).toMatchObject({
      id: 7,
      user_id: null,
      status: 'completed',
    });

    const rel = t.relationships_stg_orders_user_id__user_id__ref_dim_users_;
    expect(rel).toMatchObject({ status: 'fail', failures: 3 });
    expect(rel.sample.map((r) => r.from_field).sort()).toEqual(['u404', 'u405', 'u405']);

    const av = t.accepted_values_stg_orders_status__completed__shipped__cancelled;
    expect(av).toMatchObject({ status: 'fail', failures: 3 });
    expect(av.sample.map((r) => [r.value_field, r.n_records]).sort()).toEqual([
      ['lost', 1],
      ['refunded', 2],
      ['void', 1],
    ]);
    expect(av.message).toBe(
      `accepted_values_stg_orders_status__completed__shipped__cancelled (${path.join('basic', 'models', 'schema.yml')}) failed: 3 failing rows in stg_orders.status`,
    );
    expect(av.sql).toContain(`not in ('completed', 'shipped', 'cancelled')`);

    // Order 7 has no user: user_revenue gets a null user_id row.
    expect(t.not_null_user_revenue_user_id).toMatchObject({ status: 'fail', failures: 1 });
    expect(t.unique_user_revenue_user_id.status).toBe('pass');

    // u1 now has 3 completed orders: severity warn turns the failure into a warning.
    expect(t.accepted_values_user_revenue_orders__False__1__2).toMatchObject({ status: 'warn', failures: 1 });
    expect(t.accepted_values_user_revenue_orders__False__1__2.sample).toEqual([
      { value_field: 3, n_records: 1 },
    ]);

    // Model-level test with column_name.
    expect(t.unique_orders_incremental_id).toMatchObject({ status: 'fail', failures: 1 });

    const dims = t.unique_dim_users_user_id;
    expect(dims).toMatchObject({ status: 'fail', failures: 7 });
    expect(dims.sample).toHaveLength(5);
    expect(res).toMatchObject({ failed: 7, warned: 1, errored: 0, passed: 3 });
  });

  it('runs only the tests of the selected models', async () => {
    const res = await testModels({ ...base(), select: ['user_revenue'] });
    expect(res.tests.map((t) => t.model)).toEqual(['user_revenue', 'user_revenue', 'user_revenue']);
    expect(res).toMatchObject({ success: false, failed: 1, warned: 1, passed: 1 });
  });

  it('tests source tables, selected with source:<name>', async () => {
    await wh.exec(`insert into cdp.orders values (null, 'u1', 1, 'completed', '2024-01-05 10:00:00')`);
    const res = await testModels({ ...base(), select: ['source:raw'] });
    expect(res.tests.map((t) => [t.name, t.status, t.failures])).toEqual([
      ['source_not_null_raw_orders_id', 'fail', 1],
    ]);
    expect(res.tests[0].sample[0]).toMatchObject({ id: null, user_id: 'u1' });
    // an --exclude of every model leaves the source's tests to run
    const sourcesOnly = await testModels({ ...base(), select: ['source:raw'], exclude: ['*'] });
    expect(sourcesOnly.tests.map((t) => t.name)).toEqual(['source_not_null_raw_orders_id']);
  });

  // dbt's `source:raw.orders+`: the source's tests and those of every model downstream of it, which `test` and
  // `run` left out (a CI job selecting that way tested the source only, and passed on broken models)
  it('tests the source and the models it reaches with source:<source>.<table>+', async () => {
    const res = await testModels({ ...base(), select: ['source:raw.orders+'] });
    const models = [...new Set(res.tests.map((t) => t.model))].sort();
    expect(models).toEqual(['orders_incremental', 'raw.orders', 'stg_orders', 'user_revenue']);
    expect(res.tests.map((t) => t.name)).toContain('source_not_null_raw_orders_id');
    expect(res.tests.map((t) => t.name)).not.toContain('unique_dim_users_user_id');
  });

  it('refuses a source selector that names no source, as build does', async () => {
    await expect(testModels({ ...base(), select: ['source:nope+'] })).rejects.toThrow(
      'The selector "source:nope+" names no source table the models read: check the name (sources: raw.orders, raw.users).',
    );
  });
});
