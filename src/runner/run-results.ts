/**
 * dbt's `run_results.json` (schema v6) for a build, a test run, or both: what orchestrators, CI checks and
 * observability tools (which already read dbt's artifact) need to see each model's and test's status,
 * timing, rows and failures without parsing the CLI's output.
 *
 * Only the fields of the v6 schema are written (its objects admit no others); cdp-lifecycle's own version
 * goes in `args`, since `metadata.dbt_version` would claim a dbt release.
 */
import { randomUUID } from 'node:crypto';
import * as path from 'node:path';
import type { BuildResult, ModelResult } from './build';
import { makeDirs, writeFileWhole } from '../util/files';
import type { SchemaTestResult, TestResult } from './schema-tests';

export const RUN_RESULTS_SCHEMA = 'https://schemas.getdbt.com/dbt/run-results/v6.json';

export interface RunResultTiming {
  name: 'execute';
  started_at: string;
  completed_at: string;
}

export interface RunResultEntry {
  status: ModelResult['status'] | SchemaTestResult['status'];
  timing: RunResultTiming[];
  thread_id: string;
  /** Seconds. */
  execution_time: number;
  adapter_response: { _message?: string; rows_affected?: number };
  message: string | null;
  /** Failing rows of a test; null for models. */
  failures: number | null;
  /** `model.<package>.<name>` or `test.<package>.<test name>`. */
  unique_id: string;
  compiled: boolean | null;
  /** A model's SELECT as it ran, or the test query that selects the failing rows; null when never rendered. */
  compiled_code: string | null;
  relation_name: string | null;
}

export interface RunResultsArtifact {
  metadata: {
    dbt_schema_version: string;
    generated_at: string;
    invocation_id: string;
    env: Record<string, string>;
  };
  results: RunResultEntry[];
  /** Seconds from the first step's start to the artifact. */
  elapsed_time: number;
  args: Record<string, string | number | boolean | string[] | Record<string, unknown>>;
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * Collects the results of one invocation (`build`, `test`, or `run`'s both) and writes them, after each step,
 * so a failed build still leaves its artifact. `finishedAt` maps a model or test name to the clock time its
 * result arrived; its start is that minus its duration.
 */
export class RunResultsRecorder {
  readonly invocationId = randomUUID();
  private readonly started = Date.now();
  private readonly entries: RunResultEntry[] = [];
  readonly finishedAt = new Map<string, number>();

  constructor(
    private readonly projectName: string,
    private readonly args: RunResultsArtifact['args'],
  ) {}

  private timing(key: string, ms: number): RunResultTiming[] {
    const end = this.finishedAt.get(key) ?? Date.now();
    return [{ name: 'execute', started_at: iso(end - ms), completed_at: iso(end) }];
  }

  addBuild(result: Pick<BuildResult, 'models'>): void {
    for (const m of result.models) {
      this.entries.push({
        status: m.status,
        timing: this.timing(`model:${m.name}`, m.ms),
        thread_id: 'Thread-1',
        execution_time: m.ms / 1000,
        adapter_response: m.rows === null ? {} : { _message: 'OK', rows_affected: m.rows },
        message: m.message ?? (m.status === 'success' ? 'OK' : null),
        failures: null,
        unique_id: `model.${this.projectName}.${m.name}`,
        compiled: m.compiledSql === undefined ? null : true,
        compiled_code: m.compiledSql ?? null,
        relation_name: m.materialized === 'ephemeral' ? null : m.relation,
      });
    }
  }

  addTests(result: Pick<TestResult, 'tests'>): void {
    for (const t of result.tests) {
      this.entries.push({
        status: t.status,
        timing: this.timing(`test:${t.name}`, t.ms),
        thread_id: 'Thread-1',
        execution_time: t.ms / 1000,
        adapter_response: {},
        message: t.message ?? null,
        failures: t.status === 'error' || t.status === 'skipped' ? null : t.failures,
        unique_id: `test.${this.projectName}.${t.name}`,
        compiled: t.status === 'skipped' ? null : true,
        compiled_code: t.sql,
        relation_name: null,
      });
    }
  }

  artifact(): RunResultsArtifact {
    return {
      metadata: {
        dbt_schema_version: RUN_RESULTS_SCHEMA,
        generated_at: new Date().toISOString(),
        invocation_id: this.invocationId,
        env: {},
      },
      results: [...this.entries],
      elapsed_time: (Date.now() - this.started) / 1000,
      args: this.args,
    };
  }

  /** Writes `<dir>/run_results.json` through a temporary file, so a reader never sees half of it. */
  write(dir: string): string {
    makeDirs(dir);
    const file = runResultsFile(dir);
    writeFileWhole(file, `${JSON.stringify(this.artifact(), null, 2)}\n`);
    return file;
  }
}

/** Where an invocation writes its artifact in `dir` (dbt's name, which tools look for). */
export function runResultsFile(dir: string): string {
  return path.join(dir, 'run_results.json');
}
