import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { readLines, readLinesCapped } from '../../src/util/lines';

async function collect(input: Readable, signal?: AbortSignal): Promise<string[]> {
  const out: string[] = [];
  for await (const line of readLines(input, signal)) out.push(line);
  return out;
}

describe('readLines', () => {
  it('splits where tail and sed split: at line feeds, CRLF ends dropped, a lone CR kept in its line', async () => {
    const text = 'one\r\ntwo\rstill two\n\nfour\r\n\r\nsix';
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-lines-'));
    try {
      const file = path.join(dir, 'f.txt');
      fs.writeFileSync(file, text);
      const lines = await collect(fs.createReadStream(file));
      expect(lines).toEqual(['one', 'two\rstill two', '', 'four', '', 'six']);
      // line n is what `sed -n np` prints, so a resume command `tail -n +n` starts at the right line
      for (const [i, line] of lines.entries()) {
        const sed = execFileSync('sed', ['-n', `${i + 1}p`, file], { encoding: 'utf8' });
        expect(sed.replace(/\r?\n$/, '')).toBe(line);
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('joins a line split across chunks, also inside a UTF-8 character and between CR and LF', async () => {
    const bytes = Buffer.from('héllo wörld 🎉\r\nnext\n', 'utf8');
    // one byte per chunk: every character and the CRLF are cut
    const chunks = Array.from(bytes, (b) => Buffer.from([b]));
    expect(await collect(Readable.from(chunks))).toEqual(['héllo wörld 🎉', 'next']);
  });

  it('reads a long line made of many chunks whole', async () => {
    const long = 'x'.repeat(3_000_000);
    const chunks: Buffer[] = [];
    for (let i = 0; i < long.length; i += 1000) chunks.push(Buffer.from(long.slice(i, i + 1000)));
    chunks.push(Buffer.from('\nend'));
    const lines = await collect(Readable.from(chunks));
    expect(lines.map((l) => l.length)).toEqual([3_000_000, 3]);
  });

  it('ends at once when aborted while the input is quiet, and destroys the input', async () => {
    const input = new PassThrough();
    input.write('first\n');
    const controller = new AbortController();
    const seen: string[] = [];
    const done = (async () => {
      for await (const line of readLines(input, controller.signal)) {
        seen.push(line);
        setTimeout(() => controller.abort(), 20);
      }
    })();
    await done;
    expect(seen).toEqual(['first']);
    expect(input.destroyed).toBe(true);
  });

  it('passes on a read failure', async () => {
    const input = new PassThrough();
    setTimeout(() => input.destroy(new Error('disk gone')), 10);
    await expect(collect(input)).rejects.toThrow('disk gone');
  });
  it('holds at most maxChars of a line: the rest is dropped and its bytes counted, the next lines read as usual', async () => {
    // a 3-byte character straddles the cut, and the long line spans many chunks
    const long = `${'é'.repeat(10)}${'x'.repeat(5000)}`;
    const bytes = Buffer.from(`short\r\n${long}\r\nafter\n${'y'.repeat(20)}`, 'utf8');
    const chunks: Buffer[] = [];
    for (let i = 0; i < bytes.length; i += 7) chunks.push(bytes.subarray(i, i + 7));
    const out = [];
    for await (const line of readLinesCapped(Readable.from(chunks), undefined, 12)) out.push(line);
    expect(out).toEqual([
      { text: 'short' },
      // the line's bytes, its CR included (what was cut is not looked at)
      { text: `${'é'.repeat(10)}xx`, cutBytes: Buffer.byteLength(long) + 1 },
      { text: 'after' },
      { text: 'y'.repeat(12), cutBytes: 20 },
    ]);
  });
  it('does not cut between the two halves of an emoji', async () => {
    const out = [];
    for await (const line of readLinesCapped(Readable.from([Buffer.from('ab🎉cd\n', 'utf8')]), undefined, 3))
      out.push(line);
    expect(out).toEqual([{ text: 'ab', cutBytes: Buffer.byteLength('ab🎉cd') }]);
  });
});
