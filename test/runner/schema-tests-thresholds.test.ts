import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, testModels } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// dbt's error_if / warn_if thresholds and a test's own name, on a model with 3 null ids
const schemaYml = (tests: string): string => `version: 2
models:
  - name: people
    columns:
      - name: id
        data_tests:
${tests}`;

const files = (tests: string): Record<string, string> =>
  oneSourceProject('thresholds', 'people', {
    'people.sql': "{{ config(materialized='table') }}\nselect * from {{ source('raw', 'people') }}\n",
    'schema.yml': schemaYml(tests),
  });

const TESTS = `          - not_null:
              name: warned_over_five
              config: {error_if: ">5"}
          - not_null:
              name: failed_over_two
              config: {error_if: ">2"}
          - not_null:
              name: passed_under_both
              config: {error_if: ">5", warn_if: ">5"}
          - not_null:
              name: warned_at_three
              config: {severity: warn, warn_if: ">=3"}
          - not_null:
              name: warned_in_dev
              config:
                severity: "{{ 'error' if target.name == 'prod' else 'warn' }}"
          - not_null:
              name: failed_between
              config: {error_if: "between 2 and 4"}
          - not_null:
              name: passed_outside
              config: {error_if: "between 5 and 10", warn_if: "> 3 and 1 = 1"}
          - not_null:
              name: limited_to_two
              config: {limit: 2, error_if: ">2"}
          - not_null:
              name: disabled_one
              enabled: false
          - unique:
              tags: [nightly]
              meta: {owner: me}
`;

describeEachWarehouse('schema test thresholds', ({ tw }) => {
  const opts = projectSuite('thresholds', files(TESTS), () => tw().open(), [
    'create table src.people (id integer)',
    'insert into src.people values (1), (null), (null), (null)',
  ]);

  it('warns, fails or passes on the count as dbt does, under the name given', async () => {
    await buildModels(opts());
    const res = await testModels(opts());
    expect(res.tests.map((t) => [t.name, t.status, t.failures])).toEqual([
      ['warned_over_five', 'warn', 3],
      ['failed_over_two', 'fail', 3],
      ['passed_under_both', 'pass', 3],
      ['warned_at_three', 'warn', 3],
      // dbt renders a test's config; its conditions are SQL on the count; limit caps the rows counted
      ['warned_in_dev', 'warn', 3],
      ['failed_between', 'fail', 3],
      ['passed_outside', 'pass', 3],
      ['limited_to_two', 'warn', 2],
      // config keys beside the arguments are config, as dbt's CONFIG_ARGS: not in the name; enabled: false
      // leaves the test out
      ['unique_people_id', 'pass', 0],
    ]);
    expect(res).toMatchObject({ success: false, failed: 2, warned: 4, passed: 3 });
  });
});

describeEachWarehouse(
  'a schema test threshold that is no condition',
  ({ tw }) => {
    const opts = projectSuite(
      'threshold-bad',
      files(`          - not_null:
              config: {error_if: "lots"}
          - not_null:
              name: bad_where
              config: {where: "{{ bogus( }}"}
`),
      () => tw().open(),
      ['create table src.people (id integer)', 'insert into src.people values (null)'],
    );
    it('is an error naming the test and the condition', async () => {
      await buildModels(opts());
      const res = await testModels(opts());
      expect(res.tests[0].status).toBe('error');
      // a Jinja error in a config is named with its test and file
      expect(res.tests[1].message).toMatch(
        /^bad_where \(.*schema\.yml\): unexpected token: \}\} \(line 1\)$/,
      );
      expect(res.tests[0].message).toMatch(
        /^not_null_people_id \(.*schema\.yml\): error_if "lots" is no condition dbt takes \(duckdb says: .+\): write a SQL condition on the failing-row count, such as ">10", "!=0" or "between 5 and 10"\.$/,
      );
    });
  },
  ['duckdb'],
);

// dbt's fail_calc: the failures are `select <fail_calc> from (<the test's rows>)`, count(*) by default
describeEachWarehouse('schema test fail_calc and store_failures', ({ tw }) => {
  const opts = projectSuite(
    'fail-calc',
    files(`          - unique:
              name: duplicated_rows
              config: {fail_calc: "sum(n_records)", error_if: ">2"}
          - unique:
              name: sum_over_no_rows
              config: {fail_calc: "sum(n_records)", where: "id = 2"}
          - not_null:
              name: weighted
              config: {fail_calc: "count(*) * 10", warn_if: ">5", error_if: ">20"}
          - not_null:
              name: stored
              config: {store_failures: true}
          - not_null:
              name: stored_nowhere
              config: {store_failures_as: ephemeral}
          - not_null:
              name: text_calc
              config: {fail_calc: "max('')"}
          - not_null:
              name: hex_calc
              config: {fail_calc: "max('0x10')"}
`),
    () => tw().open(),
    ['create table src.people (id integer)', 'insert into src.people values (1), (1), (1), (2), (null)'],
  );

  it('counts the failures with fail_calc, and says store_failures is not supported', async () => {
    await buildModels(opts());
    const logs: string[] = [];
    const res = await testModels({ ...opts(), log: (m) => logs.push(m) });
    expect(res.tests.map((t) => [t.name, t.status, t.failures])).toEqual([
      // one duplicated value held by 3 rows: count(*) would be 1
      ['duplicated_rows', 'fail', 3],
      // sum() over no rows is null, which no threshold holds for
      ['sum_over_no_rows', 'pass', 0],
      ['weighted', 'warn', 10],
      ['stored', 'fail', 1],
      ['stored_nowhere', 'fail', 1],
      // text is no number of failures (dbt's `!= 0` fails on it too): an error, not a pass or 16 failures
      ['text_calc', 'error', 0],
      ['hex_calc', 'error', 0],
    ]);
    expect(res.tests[5].message).toMatch(/fail_calc "max\(''\)" gives '', not a number of failures/);
    expect(res.tests[6].message).toMatch(/fail_calc "max\('0x10'\)" gives '0x10', not a number of failures/);
    expect(res.tests[0].message).toMatch(
      /^duplicated_rows \(.*schema\.yml\) failed: fail_calc sum\(n_records\) is 3 over the test's rows in people\.id$/,
    );
    expect(logs).toEqual([
      expect.stringMatching(
        /^warning: stored \(.*schema\.yml\) sets store_failures, which this runner does not support: its failing rows are not saved in a table/,
      ),
    ]);
  });
});
