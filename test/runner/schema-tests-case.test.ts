import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, testModels } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// dbt writes a tested column unquoted unless it has `quote: true`: the warehouse folds its case, so `User_ID`
// in schema.yml tests the column user_id; a quoted mixed-case column is matched exactly.
const FILES = oneSourceProject('casecols', 'events', {
  'people.sql': `{{ config(materialized='table') }}
select id as user_id, id as "MixedCase", parent_id from {{ source('raw', 'events') }}`,
  'schema.yml': `version: 2
models:
  - name: people
    columns:
      - name: User_ID
        tests: [not_null, unique]
      - name: MixedCase
        quote: true
        tests: [not_null]
      - name: Parent_Id
        tests:
          - relationships:
              to: ref('people')
              field: User_Id
`,
});

describeEachWarehouse('runner schema tests on mixed-case column names', ({ tw }) => {
  const suite = projectSuite('casecols', FILES, () => tw().open(), [
    'create table src.events (id integer, parent_id integer)',
    'insert into src.events values (1, null), (2, 1), (2, 7)',
  ]);

  it('tests the folded column, or the exact one with quote: true', async () => {
    const base = suite();
    await buildModels(base);
    const res = await testModels(base);
    expect(res.tests.map((t) => [t.type, t.column, t.status, t.failures])).toEqual([
      ['not_null', 'User_ID', 'pass', 0],
      ['unique', 'User_ID', 'fail', 1],
      ['not_null', 'MixedCase', 'pass', 0],
      ['relationships', 'Parent_Id', 'fail', 1],
    ]);
  });
});
