import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { runCli } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';
import { expectExit } from './fake-cdp';

// A build that succeeds with no user at all: the warning of build and the error of report name the setting
// or the data that caused it, instead of asking to land events that are there.
describeEachWarehouse('cli on models that hold no user', ({ tw }) => {
  let dir: string;
  const cli = (args: string[], schemas: string[]) =>
    runCli([...args, '--warehouse', tw().url, '--raw-schema', schemas[0], '--schema', schemas[1]], {
      cwd: dir,
    });
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-cli-empty-'));
    const event = (id: string, extra: Record<string, unknown>) =>
      JSON.stringify({
        type: 'track',
        event: 'Viewed Item',
        messageId: id,
        timestamp: '2024-03-10T10:00:00.000Z',
        receivedAt: '2024-03-10T10:00:01.000Z',
        ...extra,
      });
    fs.writeFileSync(path.join(dir, 'known.ndjson'), event('k1', { userId: 'u1' }) + '\n');
    fs.writeFileSync(path.join(dir, 'anonymous.ndjson'), event('a1', { anonymousId: 'anon-1' }) + '\n');
    fs.writeFileSync(
      path.join(dir, 'future.ndjson'),
      event('f1', { userId: 'u1', timestamp: '2099-01-01T10:00:00.000Z' }) + '\n',
    );
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('names an as-of date before every event', async () => {
    const schemas = ['empty_raw', 'empty_models'];
    expectExit(await cli(['load', 'known.ndjson'], schemas), 0);
    const build = await cli(['build', '--vars', '{"lifecycle__as_of_date": "2024-01-01"}'], schemas);
    expectExit(build, 0);
    const why =
      'no event is dated on or before the as-of date 2024-01-01 (the first is dated 2024-03-10): build with a later lifecycle__as_of_date, or without it for today.';
    expect(build.stderr).toContain(`warning: the models hold no user: ${why}`);
    const report = await cli(['report'], schemas);
    expectExit(report, 1);
    expect(report.stderr).toContain(`error: The models in empty_models hold no user: ${why}`);
    // at a D after the event there is a user, and no warning
    const later = await cli(['build', '--vars', '{"lifecycle__as_of_date": "2024-03-12"}'], schemas);
    expectExit(later, 0);
    expect(later.stderr).not.toMatch(/hold no user/);
  });

  it('names events all dated after today, when the build is as of today', async () => {
    const schemas = ['future_raw', 'future_models'];
    expectExit(await cli(['load', 'future.ndjson'], schemas), 0);
    const build = await cli(['build'], schemas);
    expectExit(build, 0);
    expect(build.stderr).toMatch(
      /warning: the models hold no user: every event is dated after the as-of date \d{4}-\d{2}-\d{2} \(the first 2099-01-01\): check the clocks/,
    );
  });

  it('names events that are all anonymous', async () => {
    const schemas = ['anon_raw', 'anon_models'];
    expectExit(await cli(['load', 'anonymous.ndjson'], schemas), 0);
    const build = await cli(['build', '--vars', '{"lifecycle__as_of_date": "2024-03-12"}'], schemas);
    expectExit(build, 0);
    expect(build.stderr).toMatch(/warning: the models hold no user: every event is anonymous/);
  });
});
