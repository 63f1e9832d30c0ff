import { describeEachWarehouse } from '../helpers/warehouses';
import { Ingestor } from '../../src/collector';
import { RAW_TABLES, type SqlRunner, type Warehouse } from '../../src/warehouse';
import { createTableSql } from '../../src/warehouse/raw-tables';
import { UsageError } from '../../src/errors';

/** The real warehouse, with its transactions counted (every call is passed through unchanged). */
function counting(wh: Warehouse): { wh: Warehouse; transactions: () => number } {
  let n = 0;
  const proxy = new Proxy(wh, {
    get(target, prop, receiver) {
      if (prop === 'transaction') {
        return <T>(fn: (tx: SqlRunner) => Promise<T>): Promise<T> => {
          n++;
          return target.transaction(fn);
        };
      }
      const v = Reflect.get(target, prop, receiver) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { wh: proxy, transactions: () => n };
}

const events = (caller: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({
    type: 'track',
    userId: `caller-${caller}`,
    event: 'Grouped',
    messageId: `c${caller}-${i}`,
  }));

describeEachWarehouse('Ingestor', ({ tw, kind }) => {
  let wh: Warehouse;
  let reader: Warehouse;
  beforeAll(async () => {
    wh = await tw().open();
    // PostgreSQL: a second connection sees only committed rows. DuckDB (one process per file): the same handle.
    reader = kind === 'postgres' ? await tw().open() : wh;
  });
  afterAll(async () => {
    if (reader !== wh) await reader.close();
    await wh.close();
  });

  it('groups concurrent callers into fewer transactions and answers each only once its rows are committed', async () => {
    const c = counting(wh);
    const ingestor = new Ingestor({ warehouse: c.wh, rawSchema: 'cdp', batchWindowMs: 20 });
    const seen: number[] = [];
    await Promise.all(
      Array.from({ length: 20 }, (_, k) =>
        ingestor.ingest(events(k, 10)).then(async (r) => {
          expect(r).toEqual({ landed: 10, rejected: [] });
          const [row] = await reader.query<{ n: number }>(
            'select count(*) as n from cdp.tracks where user_id = $1',
            [`caller-${k}`],
          );
          seen.push(row.n);
        }),
      ),
    );
    await ingestor.close();
    expect(seen).toEqual(Array(20).fill(10));
    expect(c.transactions()).toBeGreaterThanOrEqual(1);
    expect(c.transactions()).toBeLessThan(20);
  });

  it('lands nothing of any caller when the transaction fails, and reports the failure to each', async () => {
    // A landing table with every column plus one the collector cannot fill passes the shape check made before
    // the first write, then makes the write itself fail.
    const ingestor = new Ingestor({ warehouse: wh, rawSchema: 'blocked_schema', batchWindowMs: 20 });
    await wh.exec('create schema if not exists blocked_schema');
    await wh.exec(
      createTableSql(wh.dialect, 'blocked_schema', RAW_TABLES.tracks).replace(
        /\)$/,
        ', must_have integer not null)',
      ),
    );
    const results = await Promise.allSettled([
      ingestor.ingest(events(100, 3)),
      ingestor.ingest(events(101, 3)),
    ]);
    expect(results.map((r) => r.status)).toEqual(['rejected', 'rejected']);
    await ingestor.close();
    const [row] = await reader.query<{ n: number }>('select count(*) as n from blocked_schema.tracks');
    expect(row.n).toBe(0);
    expect(await reader.query('select count(*) as n from blocked_schema.rejected_events')).toEqual([
      { n: 0 },
    ]);
  });

  it('refuses an invalid raw schema name up front', () => {
    expect(() => new Ingestor({ warehouse: wh, rawSchema: 'cdp; drop table x' })).toThrow(UsageError);
  });
});
