import { runCli } from './helpers/cli';

describe('cli entry point', () => {
  it('exits 2 on an unknown command', async () => {
    const r = await runCli(['no-such-command']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown command/);
  });
});
