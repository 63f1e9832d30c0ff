import * as fs from 'node:fs';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { TARGET_TYPES } from '../../src/runner';
import { compileAll, COMPILE_PROJECTS } from './compiled-projects';
import { loadProject } from '../../src/runner/project';
import { parseProject } from '../../src/runner/graph';

describe('compileModels', () => {
  const roots: string[] = [];
  afterAll(() => roots.forEach((r) => fs.rmSync(r, { recursive: true, force: true })));

  it.each(TARGET_TYPES.map((t) => [t]))(
    'writes every enabled model for %s without a connection',
    async (dialect) => {
      const { root, models } = await compileAll(dialect);
      roots.push(root);
      // Every enabled model (disabled ones are left out, as dbt compile does).
      const enabled = (dir: string) =>
        parseProject({
          project: loadProject(dir),
          targetType: dialect,
          schema: 'lifecycle',
          rawSchema: 'cdp',
        }).graph;
      const expected = COMPILE_PROJECTS.flatMap((p) =>
        [...enabled(p.dir).keys()].map((m) => `${p.label}/${m}`),
      );
      expect(models.map((m) => `${m.project}/${m.name}`).sort()).toEqual(expected.sort());
      for (const m of models) {
        expect(m.path.endsWith(`/${dialect}/${m.name}.sql`)).toBe(true);
        const text = fs.readFileSync(m.path, 'utf8');
        expect(text).toBe(m.sql);
        // Nothing of Jinja may survive compilation.
        expect(text).not.toMatch(/\{\{|\{%|\{#/);
      }
      const inc = models.find((m) => m.project === 'fixture' && m.name === 'orders_incremental')!;
      // Compiled as a first run: no is_incremental() branch.
      expect(inc.sql).not.toMatch(/max\(order_date\)/);
      const quoted = models.find((m) => m.project === 'fixture' && m.name === 'completed_orders')!.sql;
      const rel = {
        duckdb: '"lifecycle"."stg_orders"',
        postgres: '"lifecycle"."stg_orders"',
        redshift: '"lifecycle"."stg_orders"',
        snowflake: 'lifecycle.stg_orders',
        bigquery: '`lifecycle`.`stg_orders`',
      }[dialect];
      expect(quoted).toContain(`from ${rel}`);
    },
  );

  it.each([
    ['a first run', false],
    ['a daily run', true],
  ])(
    'renders the package for Redshift without the PostgreSQL syntax Redshift lacks (%s)',
    async (_, daily) => {
      // dbt-redshift falls back to postgres__ macros; sqlfluff's redshift dialect accepts these too, so look.
      const { root, models } = await compileAll('redshift', undefined, daily);
      roots.push(root);
      if (daily) {
        // the incremental branch really rendered: it reads the model's own table
        const runs = models.find((m) => m.project === 'package' && m.name === 'int_lifecycle__status_runs')!;
        expect(runs.sql).toMatch(/restarted_sweep/);
      }
      const found = models
        .filter((m) => m.project === 'package')
        .flatMap((m) =>
          [
            /->>/, // no JSON operators: json_extract_path_text
            /\bas\s+(not\s+)?materialized\s*\(/i, // WITH … AS [NOT] MATERIALIZED
            /generate_series/i, // leader-node only: cannot read a table
            /\bas text\)/i, // text is varchar(256) there
            /\bcollate\s+"/i, // no COLLATE clause: only the COLLATE(…, 'case_sensitive') function
            /\brange\s+between\b/i, // window frames are ROWS only
            // an ordered aggregate window needs an explicit frame there
            /\b(sum|count|min|max|avg)\([^()]*\)\s+over\s*\((?![^()]*\brows\b)[^()]*\border\s+by\b/i,
          ]
            .filter((re) => re.test(m.sql))
            .map((re) => `${m.name}: ${String(re)}`),
        );
      expect(found).toEqual([]);
      expect(models.filter((m) => m.project === 'package').length).toBeGreaterThan(15);
    },
  );

  it('escapes a quote in a var for BigQuery, which reads two adjacent literals instead of a doubled quote', async () => {
    const { root, models } = await compileAll('bigquery', {
      lifecycle__purchase_events: ["Customer's Order"],
      lifecycle__plan_trait: 'pl\\an',
    });
    roots.push(root);
    const source = models.find(
      (m) => m.project === 'package' && m.name === 'int_lifecycle__source_days',
    )!.sql;
    expect(source).toContain("in ('Customer\\'s Order')");
    expect(source).not.toContain("Customer''s");
    const builds = models.find((m) => m.project === 'package' && m.name === 'int_lifecycle__builds')!.sql;
    // the fingerprint escapes the backslash (pl\\an), and BigQuery's literal doubles both
    expect(builds).toContain('plan=pl\\\\\\\\an|');
  });

  it('trims only spaces around a revenue text on BigQuery, as DuckDB and PostgreSQL do (its TRIM strips tabs too)', async () => {
    const { root, models } = await compileAll('bigquery');
    roots.push(root);
    const source = models.find(
      (m) => m.project === 'package' && m.name === 'int_lifecycle__source_days',
    )!.sql;
    const casts = source.match(/safe_cast\(trim\([^()]*(?:\([^()]*\)[^()]*)*\) as bignumeric\)/g) ?? [];
    expect(casts.length).toBeGreaterThan(0);
    for (const cast of casts) expect(cast).toMatch(/, ' '\) as bignumeric\)$/);
  });

  it.each(TARGET_TYPES.map((t) => [t]))(
    "materializes the package's incremental models as dbt-%s can run them",
    async (dialect) => {
      const { root, models } = await compileAll(dialect, undefined, true);
      roots.push(root);
      const pkg = (name: string) => models.find((m) => m.project === 'package' && m.name === name)!;
      // dbt-bigquery has no delete+insert strategy: there the models are tables, rebuilt on each run
      const expected = dialect === 'bigquery' ? 'table' : 'incremental';
      for (const name of [
        'int_lifecycle__source_days',
        'int_lifecycle__status_runs',
        'int_lifecycle__builds',
      ])
        expect(pkg(name).materialized).toBe(expected);
      // a daily run's branch (reading the model's own table) only where the model is incremental
      expect(/affected_pairs/.test(pkg('int_lifecycle__source_days').sql)).toBe(dialect !== 'bigquery');
    },
  );

  it('doubles a backslash in a var for Redshift, whose literals read it as an escape', async () => {
    const { root, models } = await compileAll('redshift', {
      lifecycle__purchase_events: ['Order\\', "Customer's Order"],
    });
    roots.push(root);
    const source = models.find(
      (m) => m.project === 'package' && m.name === 'int_lifecycle__source_days',
    )!.sql;
    expect(source).toContain("in ('Order\\\\', 'Customer''s Order')");
  });

  describe('DuckDB (sqlfluff 1.4 has no duckdb dialect: DuckDB parses the files itself)', () => {
    let db: Warehouse;
    beforeAll(async () => {
      db = await openWarehouse('duckdb://:memory:');
    });
    afterAll(async () => db.close());

    it('parses every compiled model with DuckDB’s own parser, and notices a broken one', async () => {
      const { root, models } = await compileAll('duckdb');
      roots.push(root);
      const parseError = async (sql: string): Promise<string | null> => {
        const [row] = await db.query<{ j: { error?: boolean; error_message?: string } }>(
          'select json_serialize_sql($1::varchar) as j',
          [sql],
        );
        return row.j.error ? (row.j.error_message ?? 'parse error') : null;
      };
      const errors: string[] = [];
      for (const m of models) {
        const e = await parseError(m.sql);
        if (e) errors.push(`${m.project}/${m.name}: ${e}`);
      }
      expect(errors).toEqual([]);
      expect(await parseError('select a from t where union select')).toMatch(/syntax error/i);
    });
  });
});
