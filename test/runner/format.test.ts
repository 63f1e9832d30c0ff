import { formatBuildSummary, formatModelLine, formatTestLine, formatTestSummary } from '../../src/runner';

describe('runner output lines', () => {
  it('formats models like dbt', () => {
    const base = { file: 'models/marts/x.sql', incremental: false, message: undefined };
    expect(
      formatModelLine(
        {
          ...base,
          name: 'x',
          materialized: 'table',
          relation: '"lifecycle"."x"',
          status: 'success',
          rows: 1,
          ms: 420,
        },
        2,
        16,
      ),
    ).toBe('3 of 16 OK created table model "lifecycle"."x" [1 row in 0.42s]');
    expect(
      formatModelLine(
        {
          ...base,
          name: 'y',
          materialized: 'incremental',
          incremental: true,
          relation: '"lifecycle"."y"',
          status: 'success',
          rows: 20,
          ms: 1500,
        },
        0,
        2,
      ),
    ).toBe('1 of 2 OK merged incremental model "lifecycle"."y" [20 rows in 1.50s]');
    expect(
      formatModelLine(
        {
          ...base,
          name: 'v',
          materialized: 'view',
          relation: '"l"."v"',
          status: 'skipped',
          rows: null,
          ms: 0,
          message: 'skipped because x failed',
        },
        1,
        2,
      ),
    ).toBe('2 of 2 SKIP view model "l"."v" (skipped because x failed)');
    expect(
      formatBuildSummary({
        success: false,
        ms: 2000,
        models: [
          { ...base, name: 'a', materialized: 'view', relation: 'a', status: 'success', rows: null, ms: 1 },
          { ...base, name: 'b', materialized: 'view', relation: 'b', status: 'error', rows: null, ms: 1 },
        ],
      }),
    ).toBe('Built 2 models in 2.00s: 1 ok, 1 error, 0 skipped.');
  });

  it('formats test failures with their sample rows', () => {
    const t = {
      name: 'unique_x_id',
      type: 'unique',
      model: 'x',
      column: 'id',
      file: 'models/schema.yml',
      status: 'fail' as const,
      failures: 2,
      sample: [{ unique_field: 1, n_records: 2 }],
      sql: '',
      ms: 10,
    };
    expect(formatTestLine(t)).toBe(
      'FAIL 2 unique_x_id (models/schema.yml)\n    {"unique_field":1,"n_records":2}',
    );
    expect(formatTestLine({ ...t, status: 'pass', failures: 0, sample: [] })).toBe(
      'PASS unique_x_id [0.01s]',
    );
    expect(
      formatTestSummary({
        success: false,
        passed: 1,
        failed: 1,
        warned: 0,
        errored: 0,
        skipped: 0,
        tests: [t, t],
        ms: 50,
      }),
    ).toBe('Ran 2 tests in 0.05s: 1 passed, 1 failed, 0 warned, 0 errored, 0 skipped.');
  });
});
