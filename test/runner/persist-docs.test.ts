import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { parsePersistDocs } from '../../src/runner/persist-docs';
import { mergeConfig } from '../../src/runner/project';
import type { Warehouse } from '../../src/warehouse';
import { tempProject } from './temp-project';

// Text a naive literal would break: quotes, a backslash, PostgreSQL's dollar quoting, a newline.
const TRICKY = "it's the user's \\ $$ $cdp_comment$ total\nin cents $cdp_comment";

const files: Record<string, string> = {
  'dbt_project.yml': [
    'name: docs_proj',
    'config-version: 2',
    "model-paths: ['models']",
    'models:',
    '  docs_proj:',
    '    +persist_docs: {relation: true, columns: true}',
    '',
  ].join('\n'),
  'models/sources.yml':
    'version: 2\nsources:\n  - name: raw\n    schema: "{{ var(\'lifecycle__raw_schema\') }}"\n    tables:\n      - name: orders\n',
  'models/schema.yml': [
    'version: 2',
    'models:',
    '  - name: totals',
    '    description: One row per user.',
    '    columns:',
    '      - name: user_id',
    '        description: The user.',
    '      - name: total',
    `        description: ${JSON.stringify(TRICKY)}`,
    '      - name: not_there',
    '        description: A column the model does not have (skipped).',
    '  - name: totals_v',
    // Jinja in a description is rendered, as dbt renders it
    '    description: "The totals, as a view ({{ target.name }})."',
    '    columns:',
    '      - name: total',
    '        description: Same as totals.total.',
    '  - name: orders_inc',
    '    description: Every order.',
    '    config:',
    '      persist_docs: {relation: false, columns: true}',
    '    columns:',
    '      - name: id',
    '        description: The order id.',
    '',
  ].join('\n'),
  'models/totals.sql':
    "{{ config(materialized='table') }}\nselect user_id, sum(amount) as total from {{ source('raw', 'orders') }} group by user_id\n",
  'models/totals_v.sql':
    "{{ config(materialized='view') }}\nselect user_id, total from {{ ref('totals') }}\n",
  'models/orders_inc.sql':
    "{{ config(materialized='incremental', unique_key='id') }}\nselect id, amount from {{ source('raw', 'orders') }}\n" +
    '{% if is_incremental() %}where id > (select max(id) from {{ this }}){% endif %}\n',
};

describe('persist_docs config parsing', () => {
  it('merges key by key over the inherited config, as dbt does', () => {
    expect(
      mergeConfig({ persist_docs: { relation: true, columns: true } }, { persist_docs: { columns: false } })
        .persist_docs,
    ).toEqual({ relation: true, columns: false });
  });

  it('names what to fix', () => {
    const where = 'model m (models/m.sql)';
    expect(parsePersistDocs({ relation: true }, where)).toEqual({ relation: true, columns: false });
    expect(parsePersistDocs({ relation: false, columns: false }, where)).toBeNull();
    expect(() => parsePersistDocs(true, where)).toThrow(
      'model m (models/m.sql) has persist_docs that is not a mapping: use {relation: true, columns: true}.',
    );
    expect(() => parsePersistDocs({ relations: true }, where)).toThrow(
      'model m (models/m.sql) has an unknown persist_docs key relations: use relation and columns.',
    );
  });
});

describeEachWarehouse('runner persists schema.yml docs as comments', ({ kind, tw }) => {
  let wh: Warehouse;
  let dir: string;
  const build = () => buildModels({ warehouse: wh, projectDir: dir, schema: 'analytics', rawSchema: 'raw' });

  /** The comments the warehouse's catalog holds: `relation` and `relation.column`. */
  const comments = async (): Promise<Record<string, string>> => {
    const rows =
      kind === 'postgres'
        ? await wh.query<{ k: string; c: string }>(
            `select c.relname as k, obj_description(c.oid, 'pg_class') as c
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'analytics' and obj_description(c.oid, 'pg_class') is not null
             union all
             select c.relname || '.' || a.attname, col_description(c.oid, a.attnum)
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             join pg_attribute a on a.attrelid = c.oid and a.attnum > 0
             where n.nspname = 'analytics' and col_description(c.oid, a.attnum) is not null`,
          )
        : await wh.query<{ k: string; c: string }>(
            `select table_name as k, comment as c from duckdb_tables()
             where schema_name = 'analytics' and comment is not null
             union all
             select view_name, comment from duckdb_views() where schema_name = 'analytics' and comment is not null
             union all
             select table_name || '.' || column_name, comment from duckdb_columns()
             where schema_name = 'analytics' and comment is not null`,
          );
    return Object.fromEntries(rows.map((r) => [r.k, r.c]));
  };
  const expected = {
    totals: 'One row per user.',
    'totals.user_id': 'The user.',
    'totals.total': TRICKY,
    totals_v: 'The totals, as a view (dev).',
    'totals_v.total': 'Same as totals.total.',
    'orders_inc.id': 'The order id.',
  };

  beforeAll(async () => {
    dir = tempProject('docs', files);
    wh = await tw().open();
    await wh.exec('create schema raw');
    await wh.exec('create table raw.orders (id integer, user_id text, amount integer)');
    await wh.exec(`insert into raw.orders values (1, 'u1', 10), (2, 'u2', 20)`);
  });
  afterAll(async () => {
    await wh.close().catch(() => undefined);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('comments every relation and described column, exactly as written, and again after rebuilds', async () => {
    await build();
    expect(await comments()).toEqual(expected);
    await wh.exec(`insert into raw.orders values (3, 'u1', 30)`);
    const res = await build();
    expect(res.models.find((m) => m.name === 'orders_inc')).toMatchObject({ incremental: true, rows: 1 });
    expect(await comments()).toEqual(expected);
  });
});

describeEachWarehouse(
  "a description that calls dbt's doc()",
  ({ tw }) => {
    it('fails its model with what to write instead: this runner reads no docs blocks', async () => {
      const dir = tempProject('docs-doc', {
        ...files,
        'models/schema.yml': `version: 2\nmodels:\n  - name: totals\n    description: "{{ doc('totals') }}"\n`,
      });
      const wh = await tw().open();
      try {
        await wh.exec('create schema raw');
        await wh.exec('create table raw.orders (id integer, user_id text, amount integer)');
        const err = await buildModels({
          warehouse: wh,
          projectDir: dir,
          schema: 'analytics',
          rawSchema: 'raw',
          select: ['totals'],
        }).catch((e: unknown) => e);
        expect((err as Error).message).toMatch(
          /model totals \(.*totals\.sql\) .*doc\('totals'\) reads a \{% docs %\} block, which this runner does not read: write the text in the description itself/,
        );
      } finally {
        await wh.close();
        fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  },
  ['duckdb'],
);
