import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writableFileProblem, writeFileWhole } from '../../src/util/files';
import { writeHtmlFile } from '../../src/report/html';
import { RunResultsRecorder } from '../../src/runner/run-results';

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

describe('writeFileWhole', () => {
  let dir: string;
  beforeAll(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-whole-'));
  });
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('ignores a link planted under the temporary name a process id would predict', () => {
    const victim = path.join(dir, 'victim.txt');
    fs.writeFileSync(victim, 'untouched');
    const file = path.join(dir, 'report.html');
    // the names the previous scheme used (`<file>.<pid>.tmp`), all pointing at the victim
    for (let pid = process.pid - 5; pid <= process.pid + 5; pid++)
      fs.symlinkSync(victim, `${file}.${pid}.tmp`);
    // the report's page and run_results.json go through it
    writeHtmlFile(file, 'page');
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    expect(fs.lstatSync(file).isFile()).toBe(true);
    expect(fs.readFileSync(file, 'utf8')).toBe('page');
  });

  it('writes run_results.json past links planted under predictable names', () => {
    const victim = path.join(dir, 'victim2.txt');
    fs.writeFileSync(victim, 'untouched');
    const target = path.join(dir, 'target');
    fs.mkdirSync(target);
    const file = path.join(target, 'run_results.json');
    for (let pid = process.pid - 5; pid <= process.pid + 5; pid++)
      fs.symlinkSync(victim, `${file}.${pid}.tmp`);
    expect(new RunResultsRecorder('cdp_lifecycle', { which: 'build' }).write(target)).toBe(file);
    expect(fs.readFileSync(victim, 'utf8')).toBe('untouched');
    expect(JSON.parse(fs.readFileSync(file, 'utf8'))).toMatchObject({ results: [] });
  });

  it("writes through a link to its target and keeps an existing file's mode", () => {
    const target = path.join(dir, 'real.json');
    fs.writeFileSync(target, 'old');
    fs.chmodSync(target, 0o600);
    const link = path.join(dir, 'published.json');
    fs.symlinkSync(target, link);
    writeFileWhole(link, 'new');
    expect(fs.lstatSync(link).isSymbolicLink()).toBe(true);
    expect(fs.readFileSync(target, 'utf8')).toBe('new');
    expect(fs.statSync(target).mode & 0o777).toBe(0o600);
    // no temporary file left beside it
    expect(fs.readdirSync(dir).filter((f) => f.startsWith('.'))).toEqual([]);
  });

  it('writes /dev/stdout in place: into a pipe, and after what a redirected file or log already holds', () => {
    const write = (stdout: 'pipe' | number) =>
      spawnSync(
        process.execPath,
        [
          '-r',
          path.join(__dirname, '..', 'helpers', 'ts-register.js'),
          '-e',
          `require(${JSON.stringify(path.join(__dirname, '..', '..', 'src', 'util', 'files'))}).writeFileWhole('/dev/stdout', 'page')`,
        ],
        { stdio: ['ignore', stdout, 'pipe'], encoding: 'utf8' },
      );
    const piped = write('pipe');
    expect(piped.stderr).toBe('');
    expect(piped.stdout).toBe('page');
    const log = path.join(dir, 'app.log');
    fs.writeFileSync(log, 'IMPORTANT\n');
    const fd = fs.openSync(log, 'a');
    try {
      expect(write(fd).status).toBe(0);
    } finally {
      fs.closeSync(fd);
    }
    expect(fs.readFileSync(log, 'utf8')).toBe('IMPORTANT\npage');
    expect(fs.lstatSync('/dev/stdout').isSymbolicLink()).toBe(true);
  });

  it('writes a FIFO directly instead of replacing it with a file', async () => {
    const fifo = path.join(dir, 'out.fifo');
    execFileSync('mkfifo', [fifo]);
    const read = new Promise<string>((resolve, reject) => {
      let text = '';
      fs.createReadStream(fifo, 'utf8')
        .on('data', (c) => (text += String(c)))
        .on('end', () => resolve(text))
        .on('error', reject);
    });
    // the reader opens the FIFO first, or the synchronous write would wait for one forever
    await new Promise((r) => setTimeout(r, 100));
    try {
      writeFileWhole(fifo, 'streamed');
    } finally {
      // ends the reader whatever happened above, so that a failure cannot leave it waiting
      fs.closeSync(fs.openSync(fifo, 'w'));
    }
    expect(await read).toBe('streamed');
    expect(fs.lstatSync(fifo).isFIFO()).toBe(true);
  });
});
