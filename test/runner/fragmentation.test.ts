import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { defragment, isFragmented } from '../../src/warehouse/fragmentation';
import { runSync } from '../../src/sync';
import { build, landRaw, viewedItem } from '../models/helpers';
import { makeUsers, writeUserLifecycle } from '../sync/helpers/lifecycle-fixture';
import { startFakeCdp } from '../sync/helpers/fake-cdp';

/**
 * A scheduled `run` is one process per run: on DuckDB, whose checkpoint vacuum the warehouse turns off, each
 * process's few appended rows became a row group of their own (a 256 KB block at least), and the file grew by
 * about 0.5 MB a run with nothing changed. DuckDB only: PostgreSQL reuses its pages.
 */
describe('a DuckDB file appended to by many short processes', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-fragments-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  const groups = async (wh: Warehouse, schema: string, table: string) =>
    Number(
      (
        await wh.query<{ n: number }>(
          `select count(distinct row_group_id) as n from pragma_storage_info('${schema}.${table}')`,
        )
      )[0].n,
    );
  const withWarehouse = async <T>(file: string, fn: (wh: Warehouse) => Promise<T>): Promise<T> => {
    const wh = await openWarehouse(`duckdb://${file}`);
    try {
      return await fn(wh);
    } finally {
      await wh.close();
    }
  };

  it('rewrites a table whose rows sit in a row group each, and the file stops growing', async () => {
    const file = path.join(dir, 'appends.duckdb');
    const append = (i: number) =>
      withWarehouse(file, (wh) =>
        wh.exec(
          `create schema if not exists s; create table if not exists s.t (i integer, note text); insert into s.t values (${i}, 'x')`,
        ),
      );
    for (let i = 0; i < 20; i++) await append(i);
    const grown = fs.statSync(file).size;
    await withWarehouse(file, async (wh) => {
      expect(await groups(wh, 's', 't')).toBe(20);
      expect(await isFragmented(wh, 's', 't')).toBe(true);
      expect(await defragment(wh, 's', 't')).toBe(true);
      expect(await groups(wh, 's', 't')).toBe(1);
      expect(await isFragmented(wh, 's', 't')).toBe(false);
      expect(await wh.query('select count(*) as n, sum(i) as s from s.t')).toEqual([{ n: 20, s: 190 }]);
    });
    for (let i = 20; i < 40; i++) {
      await append(i);
      await withWarehouse(file, (wh) => defragment(wh, 's', 't'));
    }
    await withWarehouse(file, async (wh) => expect(await groups(wh, 's', 't')).toBeLessThanOrEqual(9));
    // twenty more appends took no more room than the first twenty left behind
    expect(fs.statSync(file).size).toBeLessThanOrEqual(grown);
  }, 60_000);

  it('keeps the build log and the sync tables in a few row groups across many processes', async () => {
    const file = path.join(dir, 'runs.duckdb');
    await withWarehouse(file, (wh) => landRaw(wh, { tracks: [viewedItem('u1', null, '2026-03-30')] }));
    for (let i = 0; i < 12; i++) {
      await withWarehouse(file, async (wh) => {
        expect((await build(wh, { vars: { lifecycle__as_of_date: '2026-03-31' } })).success).toBe(true);
      });
    }
    await withWarehouse(file, async (wh) => {
      expect(await wh.query('select count(*) as n from lifecycle.int_lifecycle__builds')).toEqual([
        { n: 12 },
      ]);
      expect(await groups(wh, 'lifecycle', 'int_lifecycle__builds')).toBeLessThanOrEqual(9);
      await writeUserLifecycle(wh, 'synced', makeUsers(5));
    });
    // real syncs that send everyone each time, so that every sync table is written by every process
    const cdp = await startFakeCdp();
    try {
      for (let i = 0; i < 12; i++) {
        await withWarehouse(file, async (wh) => {
          const s = await runSync({
            warehouse: wh,
            schema: 'synced',
            to: 'segment',
            endpoint: cdp.url,
            writeKey: 'wk',
            fullResync: true,
          });
          expect(s).toMatchObject({ sent: 5, failed: 0 });
        });
      }
    } finally {
      await cdp.close();
    }
    await withWarehouse(file, async (wh) => {
      expect(await wh.query('select count(*) as n from synced.sync_runs')).toEqual([{ n: 12 }]);
      expect(await wh.query('select count(*) as n from synced.sync_state')).toEqual([{ n: 5 }]);
      for (const t of ['sync_runs', 'sync_log', 'sync_state']) {
        expect(await groups(wh, 'synced', t)).toBeLessThanOrEqual(9);
      }
    });
  }, 180_000);
});
