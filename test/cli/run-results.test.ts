/**
 * dbt's run_results.json from `build`, `test` and `run` (real CLI, real DuckDB file): every model and test with
 * the status, rows and failures the CLI printed, in the shape of dbt's schema v6, also when the build or a
 * test fails, and a folder that cannot be written only warns.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import Ajv2020 from 'ajv/dist/2020';
import { DuckDBInstance } from '@duckdb/node-api';
import { runCli } from '../helpers/cli';
import { expectExit, sampleEvents } from './fake-cdp';

/**
 * What dbt's v6 schema requires of each field (written from its documentation), closed like dbt's: a field
 * dbt does not know would fail tools that validate the artifact.
 */
const nullable = (type: string) => ({ anyOf: [{ type }, { type: 'null' }] });
const V6 = {
  type: 'object',
  additionalProperties: false,
  required: ['metadata', 'results', 'elapsed_time'],
  properties: {
    metadata: {
      type: 'object',
      additionalProperties: false,
      required: ['dbt_schema_version'],
      properties: {
        dbt_schema_version: { const: 'https://schemas.getdbt.com/dbt/run-results/v6.json' },
        dbt_version: { type: 'string' },
        generated_at: { type: 'string' },
        invocation_id: nullable('string'),
        env: { type: 'object', additionalProperties: { type: 'string' } },
      },
    },
    results: {
      type: 'array',
      items: {
        type: 'object',
        additionalProperties: false,
        required: [
          'status',
          'timing',
          'thread_id',
          'execution_time',
          'adapter_response',
          'message',
          'failures',
          'unique_id',
          'compiled',
          'compiled_code',
          'relation_name',
        ],
        properties: {
          status: {
            enum: ['success', 'error', 'skipped', 'partial success', 'pass', 'fail', 'warn', 'runtime error'],
          },
          timing: {
            type: 'array',
            items: {
              type: 'object',
              additionalProperties: false,
              required: ['name'],
              properties: {
                name: { type: 'string' },
                started_at: nullable('string'),
                completed_at: nullable('string'),
              },
            },
          },
          thread_id: { type: 'string' },
          execution_time: { type: 'number' },
          adapter_response: { type: 'object' },
          message: nullable('string'),
          failures: nullable('integer'),
          unique_id: { type: 'string' },
          compiled: nullable('boolean'),
          compiled_code: nullable('string'),
          relation_name: nullable('string'),
        },
      },
    },
    elapsed_time: { type: 'number' },
    args: { type: 'object' },
  },
};
const validate = new Ajv2020({ allErrors: true, strict: false }).compile(V6);

interface Entry {
  status: string;
  unique_id: string;
  execution_time: number;
  timing: Array<{ name: string; started_at: string; completed_at: string }>;
  adapter_response: { rows_affected?: number };
  failures: number | null;
  message: string | null;
  relation_name: string | null;
  compiled: boolean | null;
  compiled_code: string | null;
}
interface Artifact {
  metadata: { invocation_id: string; generated_at: string };
  results: Entry[];
  elapsed_time: number;
  args: Record<string, unknown>;
}

function readArtifact(file: string): Artifact {
  const doc: unknown = JSON.parse(fs.readFileSync(file, 'utf8'));
  expect({ valid: validate(doc), errors: validate.errors ?? null }).toEqual({ valid: true, errors: null });
  return doc as Artifact;
}

describe('run_results.json (dbt schema v6)', () => {
  let dir: string;
  let db: string;
  const cli = (args: string[], env: Record<string, string> = {}) =>
    runCli([...args, '--warehouse', `duckdb://${db}`], { cwd: dir, env, timeoutMs: 180_000 });
  const sql = async (statement: string): Promise<void> => {
    const inst = await DuckDBInstance.create(db);
    const con = await inst.connect();
    try {
      await con.run(statement);
    } finally {
      con.closeSync();
      inst.closeSync();
    }
  };

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-run-results-'));
    db = path.join(dir, 'w.duckdb');
    const events = sampleEvents(['u1', 'u2', 'u3'], (i) => [0, 40, 100][i]);
    fs.writeFileSync(path.join(dir, 'events.ndjson'), events.map((e) => JSON.stringify(e)).join('\n') + '\n');
    expectExit(await cli(['load', 'events.ndjson']), 0);
  }, 120_000);
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('build writes every model, in build order, with the rows and relation the CLI printed', async () => {
    const before = Date.now();
    const r = await cli(['build', '--vars', '{lifecycle__timezone: UTC}']);
    expectExit(r, 0);
    const art = readArtifact(path.join(dir, 'target', 'run_results.json'));
    const models = art.results.map((e) => e.unique_id);
    expect(models).toContain('model.cdp_lifecycle.user_lifecycle');
    expect(models).toContain('model.cdp_lifecycle.int_lifecycle__status_runs');
    // the order of the CLI's lines
    const lineOrder = models.map((m) => r.stdout.indexOf(`."${m.split('.')[2]}" `));
    expect(lineOrder.every((p) => p >= 0)).toBe(true);
    expect([...lineOrder].sort((a, b) => a - b)).toEqual(lineOrder);
    for (const e of art.results) expect(e.status).toBe('success');

    const state = art.results.find((e) => e.unique_id.endsWith('.int_lifecycle__user_state'))!;
    expect(state.relation_name).toBe('"lifecycle"."int_lifecycle__user_state"');
    expect(state.adapter_response.rows_affected).toBe(3);
    const view = art.results.find((e) => e.unique_id.endsWith('.user_lifecycle'))!;
    expect(view.adapter_response).toEqual({});
    // the SELECT as it ran: refs resolved to relations, no template left
    expect(state.compiled).toBe(true);
    expect(state.compiled_code).toContain('"lifecycle"."int_lifecycle__user_facts"');
    expect(state.compiled_code).not.toMatch(/\{\{|\{%|ref\(/);
    expect(view.compiled_code).toMatch(/\bfrom "lifecycle"\."int_lifecycle__user_state"/);

    const [t] = state.timing;
    expect(Date.parse(t.started_at)).toBeGreaterThanOrEqual(before - 1000);
    expect(Date.parse(t.completed_at) - Date.parse(t.started_at)).toBeCloseTo(
      state.execution_time * 1000,
      -1,
    );
    expect(art.args).toMatchObject({
      which: 'build',
      schema: 'lifecycle',
      vars: { lifecycle__timezone: 'UTC' },
    });
    expect(JSON.stringify(art)).not.toContain(db);
  });

  it('test writes every schema test with its failures and query, and a failing one as fail', async () => {
    // a second row for u1 breaks the unique tests on user_id downstream of user_state
    await sql(
      "insert into lifecycle.int_lifecycle__user_state select * from lifecycle.int_lifecycle__user_state where user_id = 'u1'",
    );
    const r = await cli(['test', '--target-path', 'artifacts/ci']);
    expectExit(r, 1);
    const art = readArtifact(path.join(dir, 'artifacts', 'ci', 'run_results.json'));
    expect(art.results.length).toBeGreaterThan(10);
    const unique = art.results.find(
      (e) => e.unique_id === 'test.cdp_lifecycle.unique_user_lifecycle_user_id',
    );
    expect(unique).toMatchObject({ status: 'fail', failures: 1 });
    expect(unique?.compiled_code).toMatch(/user_lifecycle/);
    const failedPrinted = (r.stdout.match(/\bFAIL\b/g) ?? []).length;
    expect(art.results.filter((e) => e.status === 'fail').length).toBe(failedPrinted);
    expect(art.results.filter((e) => e.status === 'pass').every((e) => e.failures === 0)).toBe(true);
    expect(art.args).toMatchObject({ which: 'test' });
  });

  it('a failed build still writes its artifact: the failing model as error, the ones after it skipped', async () => {
    // A column of the wrong type (the build checks beforehand that the declared columns exist, not their types).
    await sql('alter table cdp.tracks alter column "timestamp" set data type varchar');
    try {
      const r = await cli(['build', '--full-refresh']);
      expectExit(r, 1);
      const art = readArtifact(path.join(dir, 'target', 'run_results.json'));
      const byId = new Map(art.results.map((e) => [e.unique_id.split('.')[2], e]));
      expect(byId.get('stg_lifecycle__tracks')).toMatchObject({ status: 'error' });
      expect(byId.get('stg_lifecycle__tracks')?.message).toMatch(/VARCHAR/);
      expect(byId.get('stg_lifecycle__tracks')?.compiled_code).toMatch(/\bproperties\b/);
      expect(byId.get('user_lifecycle')).toMatchObject({
        status: 'skipped',
        compiled: null,
        compiled_code: null,
      });
      expect(byId.get('stg_lifecycle__aliases')?.status).toBe('success');
      expect(art.args).toMatchObject({ which: 'build', full_refresh: true });
    } finally {
      await sql('alter table cdp.tracks alter column "timestamp" set data type timestamptz');
    }
  });

  it('run writes one artifact for its build and test steps', async () => {
    await sql("delete from lifecycle.int_lifecycle__user_state where user_id = 'u1'");
    const r = await cli(['run', '--to', 'segment', '--dry-run', '--full-refresh']);
    expectExit(r, 0);
    // a dry run is how a setup is checked: it names what the real run would still need
    expect(r.stderr).toMatch(/^warning: a real sync to segment also needs --write-key/m);
    const art = readArtifact(path.join(dir, 'target', 'run_results.json'));
    const kinds = new Set(art.results.map((e) => e.unique_id.split('.')[0]));
    expect(kinds).toEqual(new Set(['model', 'test']));
    expect(art.results.every((e) => e.status === 'success' || e.status === 'pass')).toBe(true);
    expect(art.args).toMatchObject({ which: 'run' });
  });

  it("a build that stops before its first model leaves no older run's results behind", async () => {
    const file = path.join(dir, 'target', 'run_results.json');
    expect(readArtifact(file).args).toMatchObject({ which: 'run' });
    // a missing source table: every selected model skipped, with the reason
    await sql('alter table cdp.screens rename to screens_away');
    try {
      const r = await cli(['build']);
      expectExit(r, 1);
      expect(r.stderr).toMatch(/cdp\.screens/);
      const art = readArtifact(file);
      expect(art.args).toMatchObject({ which: 'build' });
      expect(art.results.length).toBeGreaterThan(10);
      expect(new Set(art.results.map((e) => e.status))).toEqual(new Set(['skipped']));
      expect(art.results[0].message).toMatch(/^not built: .*cdp\.screens/);
    } finally {
      await sql('alter table cdp.screens_away rename to screens');
    }
    // a warehouse that cannot be opened: no artifact, rather than the previous one
    const gone = await runCli(
      ['build', '--warehouse', `duckdb://${path.join(dir, 'no-such-folder', 'w.duckdb')}`],
      {
        cwd: dir,
        timeoutMs: 60_000,
      },
    );
    expectExit(gone, 1);
    expect(fs.existsSync(file)).toBe(false);
  });

  it('a target path that cannot be written is a warning: the build succeeds', async () => {
    fs.writeFileSync(path.join(dir, 'not-a-folder'), 'x');
    const r = await cli(['build'], { LIFECYCLE_TARGET_PATH: 'not-a-folder' });
    expectExit(r, 0);
    expect(r.stderr).toMatch(
      /could not write run_results\.json into not-a-folder .*set --target-path to a writable folder/,
    );
    expect(r.stdout).toMatch(/Built \d+ models/);
    // under /proc, where Node's recursive mkdir never returns
    const proc = await cli(['build', '--select', 'int_lifecycle__builds'], {
      LIFECYCLE_TARGET_PATH: '/proc/cdp-lifecycle-x',
    });
    expectExit(proc, 0);
    expect(proc.stderr).toMatch(/could not write run_results\.json into \/proc\/cdp-lifecycle-x \(ENOENT/);
  });
});
