import type { BuildResult, ModelResult } from './build';
import type { SchemaTestResult, TestResult } from './schema-tests';

const secs = (ms: number): string => `${(ms / 1000).toFixed(2)}s`;

/** One dbt-style line per model: `3 of 16 OK created table model "lifecycle"."user_lifecycle" [1204 rows in 0.42s]`. */
export function formatModelLine(r: ModelResult, index: number, total: number): string {
  const n = `${index + 1} of ${total}`;
  if (r.status === 'skipped')
    return `${n} SKIP ${r.materialized} model ${r.relation} (${r.message ?? 'skipped'})`;
  if (r.status === 'error')
    return `${n} ERROR ${r.materialized} model ${r.relation} [${secs(r.ms)}]: ${r.message ?? ''}`;
  const what =
    r.materialized === 'ephemeral'
      ? 'compiled ephemeral model'
      : r.materialized === 'incremental'
        ? `${r.incremental ? 'merged' : 'created'} incremental model`
        : `created ${r.materialized} model`;
  const rows = r.rows === null ? '' : `${r.rows} row${r.rows === 1 ? '' : 's'} in `;
  const note = r.message ? ` (${r.message})` : '';
  return `${n} OK ${what} ${r.relation} [${rows}${secs(r.ms)}]${note}`;
}

export function formatBuildSummary(res: BuildResult): string {
  const count = (s: ModelResult['status']) => res.models.filter((m) => m.status === s).length;
  return `Built ${res.models.length} model${res.models.length === 1 ? '' : 's'} in ${secs(res.ms)}: ${count('success')} ok, ${count('error')} error, ${count('skipped')} skipped.`;
}

/** The test's message, which names the test and its file already (for run_results.json), else both. */
function named(t: SchemaTestResult): string {
  const message = t.message ?? '';
  return message.startsWith(`${t.name} `) ? message : `${t.name}: ${message}`;
}

/** One line per test: `PASS not_null_user_lifecycle_user_id` or `FAIL 3 unique_… (models/marts/schema.yml)`. */
export function formatTestLine(t: SchemaTestResult): string {
  switch (t.status) {
    case 'pass':
      return `PASS ${t.name} [${secs(t.ms)}]`;
    case 'fail':
    case 'warn': {
      const head = `${t.status === 'fail' ? 'FAIL' : 'WARN'} ${t.failures} ${t.name} (${t.file})`;
      const sample = t.sample.map((row) => `    ${JSON.stringify(row)}`);
      return [head, ...sample].join('\n');
    }
    case 'error':
      return `ERROR ${named(t)}`;
    default:
      return `SKIP ${named(t)}`;
  }
}

export function formatTestSummary(res: TestResult): string {
  return `Ran ${res.tests.length} test${res.tests.length === 1 ? '' : 's'} in ${secs(res.ms)}: ${res.passed} passed, ${res.failed} failed, ${res.warned} warned, ${res.errored} errored, ${res.skipped} skipped.`;
}
