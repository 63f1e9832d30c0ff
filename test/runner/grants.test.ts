import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describeEachWarehouse, pgAdmin } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';

const BASIC = path.join(__dirname, 'fixtures', 'basic');

// Every build creates each table and view anew and swaps it in, so a GRANT on a relation lasts one build.
// PostgreSQL's answer, which docs/runner.md gives: default privileges on the schema, which every relation the
// runner creates there (the swapped tables and views, the views a swap recreates) receives.
describeEachWarehouse(
  'runner builds under PostgreSQL default privileges',
  ({ tw }) => {
    let wh: Warehouse;
    const role = `cdpl_bi_${randomBytes(3).toString('hex')}`;
    const base = () => ({ warehouse: wh, projectDir: BASIC, schema: 'analytics', rawSchema: 'cdp' });

    beforeAll(async () => {
      await pgAdmin(`create role ${role} nologin`);
      wh = await tw().open();
      await wh.exec('create schema cdp');
      await wh.exec(
        'create table cdp.orders (id integer, user_id text, amount_cents integer, status text, ordered_at timestamp)',
      );
      await wh.exec(`insert into cdp.orders values (1, 'u1', 1000, 'completed', '2024-01-01 10:00:00')`);
      await wh.exec('create table cdp.users (user_id text, plan text)');
      await wh.exec(`insert into cdp.users values ('u1', 'pro')`);
      await wh.exec('create schema analytics');
      await wh.exec(`grant usage on schema analytics to ${role}`);
      await wh.exec(`alter default privileges in schema analytics grant select on tables to ${role}`);
    });
    // runs after the suite's database is dropped (with its grants and default privileges), so the role can go
    afterAll(async () => {
      await wh.close().catch(() => undefined);
      await pgAdmin(`drop role if exists ${role}`);
    });

    it('keeps the role able to read every table and view across rebuilds and swaps', async () => {
      const readable = async () =>
        (
          await wh.query<{ name: string; ok: boolean }>(
            `select c.relname as name, has_table_privilege($1, c.oid, 'select') as ok
             from pg_class c join pg_namespace n on n.oid = c.relnamespace
             where n.nspname = 'analytics' and c.relkind in ('r', 'v') order by 1`,
            [role],
          )
        ).map((r) => `${r.name}:${r.ok}`);
      await buildModels(base());
      const first = await readable();
      expect(first).toEqual(
        expect.arrayContaining(['top_users:true', 'user_revenue:true', 'orders_incremental:true']),
      );
      expect(first.every((x) => x.endsWith(':true'))).toBe(true);
      // a second build swaps every table and view in again; top_users is recreated by user_revenue's swap
      await buildModels({ ...base(), select: ['user_revenue'] });
      await buildModels(base());
      expect(await readable()).toEqual(first);
    });

    it('reaches a role added after the first build with the documented grant on what exists, as views stay', async () => {
      const late = `${role}_late`;
      await pgAdmin(`create role ${late} nologin`);
      try {
        await buildModels(base());
        await wh.exec(`grant usage on schema analytics to ${late}`);
        await wh.exec(`alter default privileges in schema analytics grant select on tables to ${late}`);
        const denied = async () =>
          (
            await wh.query<{ name: string }>(
              `select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
               where n.nspname = 'analytics' and c.relkind in ('r', 'v')
                 and not has_table_privilege($1, c.oid, 'select') order by 1`,
              [late],
            )
          ).map((r) => r.name);
        await buildModels({ ...base(), fullRefresh: true });
        // the views a build replaces in place never get the default privileges set after they were created
        expect(await denied()).not.toEqual([]);
        await wh.exec(`grant select on all tables in schema analytics to ${late}`);
        await buildModels({ ...base(), fullRefresh: true });
        await buildModels(base());
        expect(await denied()).toEqual([]);
      } finally {
        await wh.exec(`drop owned by ${late}`).catch(() => undefined);
        await pgAdmin(`drop role if exists ${late}`).catch(() => undefined);
      }
    });
  },
  ['postgres'],
);
