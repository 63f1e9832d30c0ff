/**
 * Run with `node --expose-gc` (see test/warehouse.test.ts): a bulk insert the warehouse refuses, then a garbage
 * collection inside the next transaction, which must still commit. Prints the table's rows, or FAILED.
 */
import { openWarehouse } from '../../src/warehouse';

async function main(file: string): Promise<void> {
  const wh = await openWarehouse(`duckdb://${file}`);
  try {
    await wh.exec("create table t (a varchar check (a <> 'x'))");
    const cols = [{ name: 'a', type: 'text' as const }];
    await wh
      .transaction((tx) => tx.insertRows('main', 't', cols, [['x']]))
      .then(
        () => console.log('FAILED: the refused row was written'),
        () => undefined,
      );
    await wh.transaction(async (tx) => {
      (globalThis as unknown as { gc: () => void }).gc();
      await new Promise((resolve) => setTimeout(resolve, 50));
      await tx.insertRows('main', 't', cols, [['ok']]);
    });
    console.log(JSON.stringify(await wh.query('select a from t')));
  } finally {
    await wh.close();
  }
}

main(process.argv[2]).catch((err: unknown) => {
  console.log(`FAILED: ${err instanceof Error ? err.message : String(err)}`);
  process.exitCode = 1;
});
