import * as fs from 'node:fs';
import { Client } from 'pg';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, type BuildResult } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// A table model swapped in under views (a mart view over an intermediate table, as the package's marts are),
// and a view over that view.
const FILES = oneSourceProject('swap_readers', 'events', {
  't.sql': "{{ config(materialized='table') }}\nselect id from {{ source('raw', 'events') }}\n",
  'vw.sql': "{{ config(materialized='view') }}\nselect id from {{ ref('t') }}\n",
  'vw2.sql': "{{ config(materialized='view') }}\nselect count(*) as n from {{ ref('vw') }}\n",
});

/**
 * Analysts and BI tools read the marts while a build runs. A reader locks a view before the tables it reads;
 * a swap that locked the table first, then the views over it, met a reader that came while the swap waited
 * in the opposite order, and the build failed with `deadlock detected`.
 */
describeEachWarehouse(
  'runner swaps a table under views that sessions are reading',
  ({ tw }) => {
    let wh: Warehouse;
    let dir: string;
    const clients: Client[] = [];
    const base = () => ({ warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' });

    const session = async (): Promise<Client> => {
      const c = new Client({ connectionString: tw().url });
      c.on('error', () => undefined);
      await c.connect();
      clients.push(c);
      return c;
    };
    /** Resolves once `pids` (else the build's connections) wait for a lock. */
    const waitingForLock = async (pid?: number): Promise<void> => {
      for (let i = 0; i < 200; i++) {
        const rows = await wh.query<{ n: number }>(
          `select count(*)::int as n from pg_stat_activity
           where datname = current_database() and wait_event_type = 'Lock'
             and ${pid === undefined ? "application_name = 'cdp-lifecycle'" : `pid = ${pid}`}`,
        );
        if (rows[0].n > 0) return;
        await new Promise((r) => setTimeout(r, 50));
      }
      throw new Error(`${pid === undefined ? 'the build' : `backend ${pid}`} never waited for a lock`);
    };
    const pidOf = async (c: Client): Promise<number> =>
      (await c.query<{ pid: number }>('select pg_backend_pid() as pid')).rows[0].pid;
    const outcome = (p: Promise<BuildResult>): Promise<string> =>
      p.then(
        (r) => (r.success ? 'success' : 'failed'),
        (e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`,
      );

    beforeAll(async () => {
      dir = tempProject('swap-readers', FILES);
      wh = await tw().open();
      await wh.exec('create schema src');
      await wh.exec('create table src.events (id integer)');
      await wh.exec('insert into src.events values (1), (2), (3)');
      expect((await buildModels(base())).success).toBe(true);
    });
    afterEach(async () => {
      for (const c of clients.splice(0)) await c.end().catch(() => undefined);
    });
    afterAll(async () => {
      await wh.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('waits for a reader of a view over the table while another one comes, and builds', async () => {
      // an analyst's open transaction that read the view over the view
      const first = await session();
      await first.query('begin');
      await first.query('select n from marts.vw2');
      const building = outcome(buildModels(base()));
      await waitingForLock();
      // a dashboard reads it too while the build waits
      const second = await session();
      const secondPid = await pidOf(second);
      const read = second.query<{ n: string }>('select n from marts.vw2').then(
        (r) => r.rows,
        (e: unknown) => `failed: ${e instanceof Error ? e.message : String(e)}`,
      );
      await waitingForLock(secondPid);
      // the analyst's transaction goes on a while (PostgreSQL looks for a deadlock after a second of waiting)
      await new Promise((r) => setTimeout(r, 1500));
      await first.query('commit');
      expect(await building).toBe('success');
      expect(await read).toEqual([{ n: '3' }]);
      expect(await wh.query('select n from marts.vw2')).toEqual([{ n: 3 }]);
    });

    it('gives way to a transaction that read the table, then a view over it, and builds once it ends', async () => {
      // the order no swap can share: the table first, then the view (the build is the one PostgreSQL stops,
      // as it waited first, and it tries the swap again)
      const reader = await session();
      await reader.query('begin');
      await reader.query('select count(*) from marts.t');
      const building = outcome(buildModels(base()));
      await waitingForLock();
      expect((await reader.query<{ n: string }>('select count(*) as n from marts.vw')).rows).toEqual([
        { n: '3' },
      ]);
      await reader.query('commit');
      expect(await building).toBe('success');
      expect(await wh.query('select n from marts.vw2')).toEqual([{ n: 3 }]);
    });
  },
  ['postgres'],
);
