import { describeEachWarehouse } from '../helpers/warehouses';
import { columnsOf } from '../../src/runner/materialize';
import type { Warehouse } from '../../src/warehouse';

// The runner reads a relation's columns before every incremental apply, schema check and persist_docs pass.
describeEachWarehouse('runner column lookups', ({ kind, tw }) => {
  let wh: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
    await wh.exec('create schema if not exists cols');
    await wh.exec('create table cols.t (b integer, a text, c decimal(18, 2))');
    await wh.exec('create view cols.v as select a, b from cols.t');
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('a table and a view give their columns in order', async () => {
    expect(await columnsOf(wh, 'cols', 't')).toEqual(['b', 'a', 'c']);
    expect(await columnsOf(wh, 'cols', 'v')).toEqual(['a', 'b']);
  });

  test('a missing relation or schema gives none, and an open transaction goes on', async () => {
    await wh.transaction(async (tx) => {
      await tx.exec("insert into cols.t (b, a, c) values (1, 'x', 1.5)");
      expect(await columnsOf(tx, 'cols', 'missing')).toEqual([]);
      expect(await columnsOf(tx, 'no_such_schema', 't')).toEqual([]);
      await tx.exec("insert into cols.t (b, a, c) values (2, 'y', 2.5)");
    });
    expect(
      (await wh.query<{ n: number }>('select count(*) as n from cols.t')).map((r) => Number(r.n)),
    ).toEqual([2]);
  });

  if (kind === 'duckdb') {
    test('a schema table is not mistaken for a temporary table of the same name, nor the other way', async () => {
      await wh.exec('create table main.same (persistent_col integer)');
      await wh.exec('create temp table same (temp_col integer)');
      expect(await columnsOf(wh, 'main', 'same')).toEqual(['persistent_col']);
      expect(await columnsOf(wh, 'main', 'same', true)).toEqual(['temp_col']);
      expect(await columnsOf(wh, 'main', 'only_in_schema', true)).toEqual([]);
    });
  }
});
