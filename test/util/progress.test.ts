import { PassThrough } from 'node:stream';
import { createProgress } from '../../src/util/progress';

/** What a cron log gets: the plain lines written off a terminal. */
function lines(run: (p: ReturnType<typeof createProgress>) => void): string[] {
  const stream = new PassThrough();
  let text = '';
  stream.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
  // an interval of 0 writes every update, as the 5 s default does for long work
  run(createProgress('lines', stream as unknown as NodeJS.WriteStream, 0));
  return text.split('\n').filter(Boolean);
}

describe('progress lines off a terminal', () => {
  it('say that a load counts megabytes read out of the files’ size', () => {
    expect(
      lines((p) => {
        p.start(34_322_290, 'load', 'bytes');
        p.update(9_091_130, '78000 landed');
      }),
    ).toEqual(['load 9.1/34.3 MB, 78000 landed']);
  });

  it('name the unit counted when there is no total (stdin) and when there is one', () => {
    expect(
      lines((p) => {
        p.start(undefined, 'load', 'lines');
        p.update(12_000, '11990 landed');
      }),
    ).toEqual(['load 12000 lines, 11990 landed']);
    expect(
      lines((p) => {
        p.start(19, 'build', 'models');
        p.update(3);
      }),
    ).toEqual(['build 3/19 models']);
  });
});
