import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { openWarehouse } from '../../src/warehouse';
import { expectExit, sampleEvents } from './fake-cdp';

describe('cdp-lifecycle test', () => {
  let dir: string;
  let url: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-test-'));
    url = `duckdb://${path.join(dir, 'w.duckdb')}`;
    const events = sampleEvents(['a', 'b'], (i) => i * 3).map((e) => JSON.stringify(e));
    fs.writeFileSync(path.join(dir, 'e.ndjson'), events.join('\n'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('says to build first, passes on fresh marts, then exits 1 naming the failing test and its rows', async () => {
    // a mistyped path: nothing is created, and the message points at --warehouse
    const typo = await runCli(['test', '--warehouse', url], { cwd: dir });
    expectExit(typo, 1);
    expect(typo.stderr).toMatch(/^error: There is no DuckDB file at .*w\.duckdb: check --warehouse/m);
    // demo reads no LIFECYCLE_WAREHOUSE: the hint names the flag it needs for this file
    expect(typo.stderr).toMatch(/`demo --warehouse duckdb:\/\/.*w\.duckdb`\.$/m);
    expect(fs.existsSync(path.join(dir, 'w.duckdb'))).toBe(false);

    expectExit(await runCli(['load', 'e.ndjson', '--warehouse', url], { cwd: dir }), 0);
    const early = await runCli(['test', '--warehouse', url], { cwd: dir });
    expectExit(early, 1);
    expect(early.stderr).toMatch(
      /^error: The models are not built in schema "lifecycle" of .*: run `cdp-lifecycle build` first/m,
    );
    expect(early.stdout).not.toMatch(/ERROR/);
    // the error alone: no heading announcing tests that did not run
    expect(early.stdout).not.toMatch(/Testing the models/);
    expectExit(await runCli(['build', '--warehouse', url], { cwd: dir }), 0);
    const ok = await runCli(['test', '--warehouse', url], { cwd: dir });
    expect(ok.stdout).toMatch(/^Testing the models in schema "lifecycle"$/m);
    expectExit(ok, 0);
    expect(ok.stdout).toMatch(/Ran \d+ tests in .*: \d+ passed, 0 failed/);

    // Break the grain of user_lifecycle (one row per user) behind the models' back: it is a view over
    // int_lifecycle__user_state, so duplicate the user there.
    const wh = await openWarehouse(url);
    try {
      await wh.exec(
        "insert into lifecycle.int_lifecycle__user_state select * from lifecycle.int_lifecycle__user_state where user_id = 'a'",
      );
    } finally {
      await wh.close();
    }
    const bad = await runCli(['test', '--warehouse', url, '--select', 'user_lifecycle'], { cwd: dir });
    expectExit(bad, 1);
    expect(bad.stdout).toMatch(/FAIL 1 unique_user_lifecycle_user_id/);
    expect(bad.stdout).toMatch(/"a"/); // the sample row names the duplicated user
    expect(bad.stderr).toMatch(/^error: 1 schema test failed \(failing rows above\)\.$/m);

    // A model that is not there: its tests error (no rows to show), and the last line says so apart.
    const wh2 = await openWarehouse(url);
    try {
      await wh2.exec('drop table lifecycle.int_lifecycle__status_daily');
    } finally {
      await wh2.close();
    }
    const mixed = await runCli(['test', '--warehouse', url], { cwd: dir });
    expectExit(mixed, 1);
    expect(mixed.stdout).toMatch(
      /ERROR \S+int_lifecycle__status_daily\S* \(\S+schema\.yml\): .*is not built/,
    );
    // the test is named once per line
    for (const line of mixed.stdout.split('\n').filter((l) => l.startsWith('ERROR '))) {
      const name = line.split(' ')[1]!;
      expect(line.split(name).length - 1).toBe(1);
    }
    expect(mixed.stderr).toMatch(
      /^error: \d+ schema tests? failed \(failing rows above\); \d+ schema tests? could not run \(errors above: a model not built or a column missing\)\.$/m,
    );
  });
});
