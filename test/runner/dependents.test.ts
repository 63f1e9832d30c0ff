import * as fs from 'node:fs';
import { randomBytes } from 'node:crypto';
import { describeEachWarehouse, pgAdmin } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// PostgreSQL binds a view to the relation it reads, so a rebuild that dropped the old table would take every
// view over it along, an analyst's views in other schemas included, with their grants, comments and owner.
// These are objects the project does not know about: each rebuild must leave them as they were.
const files = oneSourceProject('dependents', 'orders', {
  'base_orders.sql':
    "{{ config(materialized='table') }}\n" +
    "select id, user_id, cast(amount as {{ var('amount_type', 'integer') }}) as amount from {{ source('raw', 'orders') }}\n",
  'user_totals.sql':
    "{{ config(materialized='view') }}\nselect user_id, sum(amount) as total from {{ ref('base_orders') }} group by user_id\n",
});

describeEachWarehouse(
  "runner rebuilds keep other people's views over the models",
  ({ tw }) => {
    let wh: Warehouse;
    let dir: string;
    const hex = randomBytes(3).toString('hex');
    const reader = `cdpl_reader_${hex}`;
    const owner = `cdpl_owner_${hex}`;
    // a build role that is not a superuser, and not a member of the analyst's role
    const builder = `cdpl_builder_${hex}`;
    const build = (vars: Record<string, unknown> = {}) =>
      buildModels({ warehouse: wh, projectDir: dir, schema: 'analytics', rawSchema: 'raw', vars });

    /** What a user of each object sees: its oid, owner, options, grants, comments and indexes. */
    const describeObject = async (qualified: string) => {
      const [row] = await wh.query<{
        oid: number;
        kind: string;
        owner: string;
        options: string[] | null;
        readable: boolean;
        comment: string | null;
        amount_comment: string | null;
        indexes: string[];
      }>(
        `select c.oid::int as oid, c.relkind::text as kind, pg_get_userbyid(c.relowner) as owner,
                c.reloptions as options, has_table_privilege($2, c.oid, 'select') as readable,
                obj_description(c.oid, 'pg_class') as comment,
                (select col_description(c.oid, a.attnum) from pg_attribute a
                 where a.attrelid = c.oid and a.attname = 'amount') as amount_comment,
                array(select pg_get_indexdef(i.indexrelid) from pg_index i where i.indrelid = c.oid) as indexes
         from pg_class c where c.oid = to_regclass($1)`,
        [qualified, reader],
      );
      return row;
    };

    beforeAll(async () => {
      await pgAdmin(`create role ${reader} nologin`);
      await pgAdmin(`create role ${owner} nologin`);
      await pgAdmin(`create role ${builder} login`);
      dir = tempProject('dependents', files);
      wh = await tw().open();
      await wh.exec('create schema raw');
      await wh.exec('create table raw.orders (id integer, user_id text, amount integer)');
      await wh.exec(`insert into raw.orders values (1, 'u1', 10), (2, 'u2', 20)`);
      // the analyst reads the models through default privileges (docs/runner.md), so every rebuilt table too
      await wh.exec('create schema analytics');
      await wh.exec(`grant usage on schema analytics to ${owner}`);
      await wh.exec(`alter default privileges in schema analytics grant select on tables to ${owner}`);
      await build();
      // an analyst's objects, in a schema of their own, over a model table and a model view
      await wh.exec(`create schema bi`);
      await wh.exec(`grant usage on schema bi to ${owner}`);
      await wh.exec(`grant create on schema bi to ${owner}`);
      await wh.exec(
        `create view bi.orders_v with (security_barrier = true) as select id, user_id, amount from analytics.base_orders`,
      );
      await wh.exec(`create view bi.big_orders as select id, amount from bi.orders_v where amount >= 20`);
      await wh.exec(`create view bi.totals as select user_id, total from analytics.user_totals`);
      await wh.exec(
        `create materialized view bi."Order Count" as select count(*) as n, max(id) as id from analytics.base_orders`,
      );
      await wh.exec(`create unique index order_count_id on bi."Order Count" (id)`);
      for (const o of ['bi.orders_v', 'bi.big_orders', 'bi.totals', 'bi."Order Count"']) {
        await wh.exec(`grant select on ${o} to ${reader}`);
      }
      await wh.exec(`comment on view bi.orders_v is 'orders for the BI tool; ask ''data'' first'`);
      await wh.exec(`comment on column bi.orders_v.amount is 'in cents'`);
      await wh.exec(`comment on materialized view bi."Order Count" is 'refreshed by the build'`);
      await wh.exec(`alter view bi.orders_v owner to ${owner}`);
      // the analyst's materialized view: its query must run with the analyst's rights when it is recreated,
      // never the build's (a superuser here)
      await wh.exec(
        `create materialized view bi.whoami as select current_user::text as u, count(*)::int as n from analytics.base_orders`,
      );
      await wh.exec(`alter materialized view bi.whoami owner to ${owner}`);
    });
    afterAll(async () => {
      await wh.close().catch(() => undefined);
      fs.rmSync(dir, { recursive: true, force: true });
      await pgAdmin(`drop role if exists ${reader}`);
      await pgAdmin(`drop role if exists ${owner}`);
      await pgAdmin(`drop role if exists ${builder}`);
    });

    it('keeps the same views (grants, comments, owner, options) and recreates a materialized view with its rows', async () => {
      const before = {
        ordersV: await describeObject('bi.orders_v'),
        bigOrders: await describeObject('bi.big_orders'),
        totals: await describeObject('bi.totals'),
        count: await describeObject('bi."Order Count"'),
      };
      expect(before.ordersV).toMatchObject({ owner, readable: true, options: ['security_barrier=true'] });
      await wh.exec(`insert into raw.orders values (3, 'u1', 30)`);
      await build();

      // the views over the table and over the model view are the same objects, reading the new rows
      expect(await describeObject('bi.orders_v')).toEqual(before.ordersV);
      expect(await describeObject('bi.big_orders')).toEqual(before.bigOrders);
      expect(await describeObject('bi.totals')).toEqual(before.totals);
      expect(await wh.query('select id from bi.big_orders order by id')).toEqual([{ id: 2 }, { id: 3 }]);
      expect(await wh.query(`select user_id, total::int as total from bi.totals order by 1`)).toEqual([
        { user_id: 'u1', total: 40 },
        { user_id: 'u2', total: 20 },
      ]);
      // a materialized view holds rows of the old table: it is created again, as it was, with the new rows
      const count = await describeObject('bi."Order Count"');
      expect(count).toMatchObject({
        kind: 'm',
        readable: true,
        comment: 'refreshed by the build',
        indexes: [
          expect.stringMatching(/^CREATE UNIQUE INDEX order_count_id ON bi\."Order Count" .*\(id\)$/),
        ],
      });
      expect(await wh.query(`select n::int as n from bi."Order Count"`)).toEqual([{ n: 3 }]);
      // created again by its owner: its query ran as the analyst, and the analyst still owns it
      expect(await wh.query('select u, n from bi.whoami')).toEqual([{ u: owner, n: 3 }]);
      expect(await describeObject('bi.whoami')).toMatchObject({ kind: 'm', owner });
    });

    it('as a build role that may not act as the analyst: drops their view and says how to keep it; as a member, keeps it', async () => {
      // the builder's own model schema, fed from raw; the analyst reads its tables by default privileges
      await wh.exec(`create schema analytics_b authorization ${builder}`);
      await wh.exec(`grant usage on schema raw to ${builder}`);
      await wh.exec(`grant select on raw.orders to ${builder}`);
      await wh.exec(`grant usage on schema analytics_b to ${owner}`);
      await wh.exec(
        `alter default privileges for role ${builder} in schema analytics_b grant select on tables to ${owner}`,
      );
      const url = new URL(tw().url);
      url.username = builder;
      const asBuilder = await openWarehouse(url.toString());
      const mine = async () => {
        await wh.exec(`create view bi_b.mine as select id, amount from analytics_b.base_orders`);
        await wh.exec(`alter view bi_b.mine owner to ${owner}`);
        await wh.exec(`grant select on bi_b.mine to ${reader}`);
      };
      try {
        const buildB = () =>
          buildModels({
            warehouse: asBuilder,
            projectDir: dir,
            schema: 'analytics_b',
            rawSchema: 'raw',
            vars: { amount_type: 'bigint' },
          });
        await buildB();
        await wh.exec(`create schema bi_b`);
        await wh.exec(`grant usage, create on schema bi_b to ${owner}`);
        await wh.exec(`grant usage, create on schema bi_b to ${builder}`);
        await mine();
        // over the model view: rebuilt with the same columns, the model view is replaced in place, so a view
        // over it is never touched, whoever owns it
        await wh.exec(`create view bi_b.totals as select user_id, total from analytics_b.user_totals`);
        await wh.exec(`alter view bi_b.totals owner to ${owner}`);
        await wh.exec(`grant select on bi_b.totals to ${reader}`);
        const totals = await describeObject('bi_b.totals');

        // the builder may neither replace the analyst's view nor create it as them: created as the builder,
        // it would read with the builder's rights, so it goes, and the model's line says so
        let res = await buildB();
        expect(res.models.find((m) => m.name === 'base_orders')?.message).toBe(
          `dropped the view bi_b.mine over it: only its owner ${owner} may create it again (grant ${owner} to the build's role to keep it)`,
        );
        expect(await wh.query(`select to_regclass('bi_b.mine') as r`)).toEqual([{ r: null }]);
        expect(res.models.find((m) => m.name === 'user_totals')?.message).toBeUndefined();
        expect(await describeObject('bi_b.totals')).toEqual(totals);
        expect(totals).toMatchObject({ owner, readable: true });

        // as the line says: with the builder a member of the analyst's role, the view stays the same object
        await mine();
        await pgAdmin(`grant ${owner} to ${builder}`);
        const before = await describeObject('bi_b.mine');
        res = await buildB();
        expect(res.models.find((m) => m.name === 'base_orders')?.message).toBeUndefined();
        expect(await describeObject('bi_b.mine')).toEqual(before);
        expect(before).toMatchObject({ owner, readable: true });
      } finally {
        await asBuilder.close();
      }
    });

    it('recreates a view that cannot be replaced (a column changed type) with its grants, comments, owner and options', async () => {
      const before = await describeObject('bi.orders_v');
      // amount becomes bigint: create or replace view cannot change a column's type, so bi.orders_v (and
      // bi.big_orders over it) go with the old table and are created again from their stored definitions
      await build({ amount_type: 'bigint' });
      const after = await describeObject('bi.orders_v');
      expect(after.oid).not.toEqual(before.oid);
      expect({ ...after, oid: 0 }).toEqual({ ...before, oid: 0 });
      expect(after).toMatchObject({
        owner,
        readable: true,
        options: ['security_barrier=true'],
        comment: "orders for the BI tool; ask 'data' first",
        amount_comment: 'in cents',
      });
      expect(await describeObject('bi.big_orders')).toMatchObject({ readable: true });
      expect(
        await wh.query(
          `select data_type from information_schema.columns where table_schema = 'bi' and table_name = 'orders_v' and column_name = 'amount'`,
        ),
      ).toEqual([{ data_type: 'bigint' }]);
      expect(await wh.query('select id from bi.big_orders order by id')).toEqual([{ id: 2 }, { id: 3 }]);
      expect(await wh.query(`select user_id, total::int as total from bi.totals order by 1`)).toEqual([
        { user_id: 'u1', total: 40 },
        { user_id: 'u2', total: 20 },
      ]);
    });
  },
  ['postgres'],
);
