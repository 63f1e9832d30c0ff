import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writableFileProblem } from '../../src/util/files';

describe('writableFileProblem', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-writable-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('proves a new path by creating it, and leaves nothing behind', () => {
    const file = path.join(dir, 'new.html');
    expect(writableFileProblem(file)).toBeUndefined();
    expect(fs.existsSync(file)).toBe(false);
  });

  it('leaves an existing file as it is', () => {
    const file = path.join(dir, 'old.html');
    fs.writeFileSync(file, 'kept');
    expect(writableFileProblem(file)).toBeUndefined();
    expect(fs.readFileSync(file, 'utf8')).toBe('kept');
  });

  it('neither creates the target of a dangling link nor removes the link', () => {
    const link = path.join(dir, 'link.html');
    fs.symlinkSync(path.join(dir, 'target.html'), link);
    expect(writableFileProblem(link)).toBeUndefined();
    expect(fs.existsSync(path.join(dir, 'target.html'))).toBe(false);
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
  });

  it('does not block on a FIFO nobody reads', () => {
    const fifo = path.join(dir, 'fifo.html');
    execFileSync('mkfifo', [fifo]);
    // an open for writing would wait for a reader forever: the test would time out
    expect(writableFileProblem(fifo)).toBeUndefined();
  });

  it('names a folder that takes no files', () => {
    expect(writableFileProblem('/proc/x.html')).toMatch(
      /^(\/proc\/x\.html cannot be written \(ENOENT\)|\/proc is not writable)$/,
    );
  });
});
