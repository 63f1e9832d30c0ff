import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeEachWarehouse, pgAdmin } from '../helpers/warehouses';
import { buildModels, BuildFailedError } from '../../src/runner';
import { mergeGrants, parseGrants } from '../../src/runner/grants';
import type { Warehouse } from '../../src/warehouse';
import { tempProject } from './temp-project';

const hex = randomBytes(3).toString('hex');
const roleA = `cdpl_ga_${hex}`;
const roleB = `cdpl_gb_${hex}`;
const roleC = `Cdpl GC ${hex}`; // needs quotes: upper case and a space

// dbt's grants config: project-wide in dbt_project.yml, replaced per privilege by a model's own, or added to
// with `+select`. Role names land in dbt-postgres's SQL unquoted, so READER_A means reader_a.
const files: Record<string, string> = {
  'dbt_project.yml': [
    'name: grants_cfg',
    'config-version: 2',
    "model-paths: ['models']",
    'models:',
    '  grants_cfg:',
    '    +grants:',
    `      select: ['${roleA.toUpperCase()}']`,
    '',
  ].join('\n'),
  'models/sources.yml':
    'version: 2\nsources:\n  - name: raw\n    schema: "{{ var(\'lifecycle__raw_schema\') }}"\n    tables:\n      - name: orders\n',
  'models/schema.yml': `version: 2\nmodels:\n  - name: only_c\n    config:\n      grants:\n        select: ['"${roleC}"']\n`,
  'models/a_and_b.sql': `{{ config(materialized='table', grants={'+select': ['${roleB}']}) }}\nselect id, amount from {{ source('raw', 'orders') }}\n`,
  'models/only_c.sql': `{{ config(materialized='view') }}\nselect id from {{ ref('a_and_b') }}\n`,
  'models/inc.sql':
    "{{ config(materialized='incremental', unique_key='id') }}\nselect id, amount from {{ source('raw', 'orders') }}\n" +
    '{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n',
  'models/to_var.sql': `{{ config(materialized='table', grants={'select': [var('grantee', '${roleA}')]}) }}\nselect count(*) as n from {{ source('raw', 'orders') }}\n`,
};

describe('grants config parsing', () => {
  it('merges per privilege: a model replaces the inherited grantees, +privilege adds to them', () => {
    expect(mergeGrants({ select: ['a', 'b'], insert: 'x' }, { select: ['c'] })).toEqual({
      select: ['c'],
      insert: 'x',
    });
    expect(mergeGrants({ select: ['a', 'b'] }, { '+select': 'c', '+Insert': ['d'] })).toEqual({
      select: ['a', 'b', 'c'],
      insert: ['d'],
    });
  });

  it('names what to fix in a bad config', () => {
    const where = 'model m (models/m.sql)';
    expect(parseGrants(undefined, where)).toBeNull();
    expect(parseGrants({}, where)).toBeNull();
    expect(() => parseGrants(['select'], where)).toThrow(
      "model m (models/m.sql) has grants that are not a mapping: use {select: ['reporter']}.",
    );
    expect(() => parseGrants({ sellect: ['bi'] }, where)).toThrow(
      'model m (models/m.sql) grants the unknown privilege sellect: use select, insert, update, delete, truncate, references, trigger, maintain.',
    );
    expect(() => parseGrants({ select: ['bi; drop table x'] }, where)).toThrow(
      /^model m \(models\/m.sql\) grants to "bi; drop table x", which is not a role name/,
    );
    expect(() => parseGrants({ select: ['"unbalanced'] }, where)).toThrow(/which is not a role name/);
  });
});

describeEachWarehouse('runner applies the grants config', ({ kind, tw }) => {
  let wh: Warehouse;
  let dir: string;
  const logs: string[] = [];
  const build = (extra: { vars?: Record<string, unknown>; select?: string[] } = {}) =>
    buildModels({
      warehouse: wh,
      projectDir: dir,
      schema: 'analytics',
      rawSchema: 'raw',
      log: (m) => logs.push(m),
      ...extra,
    });
  /** `relation: the roles that may select from it` (and insert, when one may). */
  const privileges = async () => {
    const out: Record<string, string[]> = {};
    for (const r of ['a_and_b', 'only_c', 'inc', 'to_var']) {
      const rows = await wh.query<{ who: string }>(
        `select p.who from (values ($2, 'A'), ($3, 'B'), ($4, 'C')) as p(role, who)
         where has_table_privilege(p.role, $1, 'select') order by 1`,
        [`analytics.${r}`, roleA, roleB, roleC],
      );
      const ins = await wh.query<{ ok: boolean }>(`select has_table_privilege($1, $2, 'insert') as ok`, [
        roleA,
        `analytics.${r}`,
      ]);
      out[r] = [...rows.map((x) => x.who), ...(ins[0].ok ? ['A:insert'] : [])];
    }
    return out;
  };

  beforeAll(async () => {
    if (kind === 'postgres') {
      for (const r of [roleA, roleB, roleC]) await pgAdmin(`create role "${r}" nologin`);
    }
    dir = tempProject('grants', files);
    wh = await tw().open();
    await wh.exec('create schema raw');
    await wh.exec('create table raw.orders (id integer, amount integer)');
    await wh.exec('insert into raw.orders values (1, 10), (2, 20)');
    await wh.exec('create schema analytics');
    if (kind === 'postgres') {
      for (const r of [roleA, roleB, roleC]) await wh.exec(`grant usage on schema analytics to "${r}"`);
      // C also reads every new relation through default privileges, which a rebuild leaves as dbt-postgres
      // does; only an incremental run, which keeps its table, revokes what its config does not list
      await wh.exec(`alter default privileges in schema analytics grant select on tables to "${roleC}"`);
    }
  });
  afterAll(async () => {
    await wh.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
    if (kind === 'postgres') {
      for (const r of [roleA, roleB, roleC]) await pgAdmin(`drop role if exists "${r}"`);
    }
  });

  if (kind === 'duckdb') {
    it('builds the project and says the grants are not applied', async () => {
      const res = await build();
      expect(res.success).toBe(true);
      expect(logs).toEqual(['grants configs are not applied on DuckDB, which has no privileges']);
    });
    return;
  }

  it('grants what each model config says: inherited, replaced, added to', async () => {
    await build();
    expect(await privileges()).toEqual({
      a_and_b: ['A', 'B', 'C'],
      only_c: ['C'],
      inc: ['A', 'C'],
      to_var: ['A', 'C'],
    });
    expect(logs).toEqual([]);
  });

  it('revokes what the config does not list when an incremental table is kept, as dbt-postgres does', async () => {
    await wh.exec(`grant select on analytics.inc to "${roleB}"`);
    await wh.exec(`grant insert on analytics.inc to "${roleA}"`);
    await wh.exec(`grant insert on analytics.a_and_b to "${roleA}"`);
    // only_c, a view with the same columns, is replaced in place: kept, like inc, so A's grant goes
    await wh.exec(`grant select on analytics.only_c to "${roleA}"`);
    await wh.exec('insert into raw.orders values (3, 30)');
    const res = await build();
    expect(res.models.find((m) => m.name === 'inc')).toMatchObject({ incremental: true, rows: 1 });
    // inc keeps its table: B's select, A's insert and C's default select are revoked; only_c, kept too,
    // loses A's. The rebuilt tables are new relations: the hand-made insert grant went with the old one,
    // the default privileges stay.
    expect(await privileges()).toEqual({
      a_and_b: ['A', 'B', 'C'],
      only_c: ['C'],
      inc: ['A'],
      to_var: ['A', 'C'],
    });
  });

  it('fails the model on a missing role and leaves its previous table and grants', async () => {
    await wh.exec('insert into raw.orders values (4, 40)');
    const err = await build({ vars: { grantee: `cdpl_nobody_${hex}` }, select: ['to_var'] }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(BuildFailedError);
    expect((err as Error).message).toBe(
      `model to_var (${path.basename(dir)}/models/to_var.sql) failed on postgres applying its grants: role "cdpl_nobody_${hex}" does not exist`,
    );
    expect(await wh.query('select n::int as n from analytics.to_var')).toEqual([{ n: 3 }]);
    expect((await privileges()).to_var).toEqual(['A', 'C']);
    // the same model with a role that exists: a new table, granted to that role (and C by default)
    await build({ vars: { grantee: roleB }, select: ['to_var'] });
    expect(await wh.query('select n::int as n from analytics.to_var')).toEqual([{ n: 4 }]);
    expect((await privileges()).to_var).toEqual(['B', 'C']);
  });
});
