/**
 * Every row a build writes is stamped with the build's start on its machine's clock, and the incremental models
 * take the rows changed upstream as those stamped after the last build's start. A build whose clock is not
 * after it (another host lagging, NTP stepping back) would write rows nobody downstream sees: a whole build
 * rebuilds in full then, and says so as a warning; a partial build is refused.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import { runCli } from '../helpers/cli';
import { emptyRaw, landRaw, normalise, readMarts, viewedItem, type Raw } from '../models/helpers';
import { expectExit } from './fake-cdp';

// A Node preload standing in for a build host whose clock differs from the last one's by SHIFT_MS.
const SHIFT_CLOCK = `const off = Number(process.env.SHIFT_MS || 0);
const RealDate = Date;
class ShiftedDate extends RealDate {
  constructor(...a) { if (a.length === 0) super(RealDate.now() + off); else super(...a); }
  static now() { return RealDate.now() + off; }
}
globalThis.Date = ShiftedDate;
`;

describeEachWarehouse('build from a clock behind the last build', ({ tw }) => {
  let dir: string;
  let preload: string;
  // lookback 0: the marts would never heal from a missed row
  const vars = [
    '--vars',
    JSON.stringify({ lifecycle__as_of_date: '2024-03-12', lifecycle__lookback_hours: 0 }),
  ];
  const cli = (args: string[], shiftMs = 0) =>
    runCli([...args, '--warehouse', tw().url, ...vars], {
      cwd: dir,
      env: shiftMs
        ? {
            SHIFT_MS: String(shiftMs),
            NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --require ${preload}`.trim(),
          }
        : {},
    });
  const withWarehouse = async <T>(fn: (wh: Warehouse) => Promise<T>): Promise<T> => {
    const wh = await tw().open();
    try {
      return await fn(wh);
    } finally {
      await wh.close();
    }
  };
  const marts = () => withWarehouse((wh) => readMarts(wh)).then(normalise);
  const tenMinutesBehind = -10 * 60 * 1000;

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-clock-'));
    preload = path.join(dir, 'shift-clock.js');
    fs.writeFileSync(preload, SHIFT_CLOCK);
    const first: Raw = {
      ...emptyRaw(),
      tracks: Array.from({ length: 5 }, (_, i) => viewedItem('u1', null, `2024-03-0${i + 1}`)),
    };
    await withWarehouse((wh) => landRaw(wh, first));
  });
  afterAll(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('rebuilds every model in full, says so as a warning, and gives the marts of a full refresh', async () => {
    expectExit(await cli(['build']), 0);
    await withWarehouse((wh) =>
      landRaw(wh, {
        ...emptyRaw(),
        tracks: [viewedItem('u2', null, '2024-03-10'), viewedItem('u1', null, '2024-03-11')],
      }),
    );
    const r = await cli(['build'], tenMinutesBehind);
    expectExit(r, 0);
    // the marts first: an incremental build from that clock misses u2 and u1's new days
    const built = await marts();
    expect(built.user_lifecycle.map((u) => u.user_id).sort()).toEqual(['u1', 'u2']);
    expectExit(await cli(['build', '--full-refresh']), 0);
    expect(built).toEqual(await marts());
    expect(r.stderr).toMatch(
      /^warning: Rebuilding every model in full: this machine's clock \(.+\) is not after the last build's start \(.+\), and incremental models find the rows a build changed by its start time, so every model is rebuilt in full\.$/m,
    );
    expect(r.stdout).toMatch(/ OK created incremental model .*int_lifecycle__user_days/);
  });

  it('refuses a partial build from that clock, naming both times and what to do', async () => {
    const r = await cli(['build', '--select', 'int_lifecycle__user_days+'], tenMinutesBehind);
    expectExit(r, 1);
    expect(r.stderr).toMatch(
      /This machine's clock \(.+\) is not after the last build's start \(.+\), so the incremental models, which find the rows a build changed by its start time, would miss the rows this partial build writes: run a whole build, which rebuilds in full, or fix the clock\./,
    );
    expect(r.stdout).not.toMatch(/ OK /);
    // at the real clock the same selection builds
    expectExit(await cli(['build', '--select', 'int_lifecycle__user_days+']), 0);
  });
});
