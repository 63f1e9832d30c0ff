import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, testModels } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// A relationships test whose parent is an ephemeral model: it has no relation, so its SQL is inlined, as for
// a tested ephemeral model.
const FILES = oneSourceProject('eph', 'events', {
  'eph.sql': "{{ config(materialized='ephemeral') }}select id from {{ source('raw', 'events') }}",
  'child.sql':
    "{{ config(materialized='table') }}select id from {{ source('raw', 'events') }} union all select 99 as id",
  'schema.yml': `version: 2
models:
  - name: child
    columns:
      - name: id
        tests:
          - relationships:
              to: ref('eph')
              field: id
`,
});

describeEachWarehouse('runner relationships test to an ephemeral model', ({ tw }) => {
  const suite = projectSuite('eph', FILES, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1), (2)',
  ]);

  it('finds the child rows without a parent row', async () => {
    const base = suite();
    await buildModels(base);
    const res = await testModels(base);
    expect(res.tests.map((t) => [t.type, t.status, t.failures])).toEqual([['relationships', 'fail', 1]]);
  });
});

// dbt disables a test whose relationships parent is a disabled model (with a warning) instead of querying a
// relation that was never built.
const DISABLED = oneSourceProject('offparent', 'events', {
  'off.sql': "{{ config(enabled=false) }}select id from {{ source('raw', 'events') }}",
  'child.sql': "{{ config(materialized='table') }}select id from {{ source('raw', 'events') }}",
  'schema.yml': `version: 2
models:
  - name: child
    columns:
      - name: id
        tests:
          - not_null
          - relationships:
              to: ref('off')
              field: id
`,
});

describeEachWarehouse('runner relationships test to a disabled model', ({ tw }) => {
  const suite = projectSuite('offparent', DISABLED, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1), (2)',
  ]);

  it('skips that test, naming the disabled model, and runs the others', async () => {
    const base = suite();
    await buildModels(base);
    const res = await testModels(base);
    expect(res.tests.map((t) => [t.type, t.status])).toEqual([
      ['not_null', 'pass'],
      ['relationships', 'skipped'],
    ]);
    expect(res.tests[1].message).toMatch(/ref\('off'\).* is disabled/);
    expect(res.success).toBe(true);
  });
});
