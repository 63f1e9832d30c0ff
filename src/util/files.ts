import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

/**
 * Why `file` cannot be written, or undefined when it can: checked before long work (the report's queries, the
 * demo's whole run), so a typo in an output path is not found only at the end.
 */
export function writableFileProblem(file: string): string | undefined {
  const abs = path.resolve(file);
  const dir = path.dirname(abs);
  if (!fs.existsSync(dir)) return `the folder ${dir} does not exist`;
  if (!fs.statSync(dir).isDirectory()) return `${dir} is not a folder`;
  if (fs.existsSync(abs) && fs.statSync(abs).isDirectory()) return `${abs} is a folder, not a file`;
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    if (fs.existsSync(abs)) fs.accessSync(abs, fs.constants.W_OK);
  } catch {
    return `${fs.existsSync(abs) ? abs : dir} is not writable`;
  }
  // access() says yes to root everywhere, /proc and read-only mounts included: opening the file is the proof.
  // Only for a path that is not there (created, then removed) or a regular file (append mode leaves it as it
  // is): a symbolic link, dangling or not, would have its target created and itself removed, and a FIFO
  // would block the open until someone reads it.
  let entry: fs.Stats | undefined;
  try {
    entry = fs.lstatSync(abs);
  } catch {
    entry = undefined;
  }
  if (entry !== undefined && !entry.isFile()) return undefined;
  try {
    fs.closeSync(fs.openSync(abs, 'a'));
  } catch (err) {
    return `${abs} cannot be written (${(err as NodeJS.ErrnoException).code ?? 'error'})`;
  }
  if (entry === undefined) fs.rmSync(abs, { force: true });
  return undefined;
}

/**
 * `mkdir -p` one level at a time. Node's `mkdirSync(dir, { recursive: true })` never returns for a path under
 * /proc (it retries ENOENT forever), so a mistyped --target-path or --out hung the command instead of failing.
 */
export function makeDirs(dir: string): void {
  const abs = path.resolve(dir);
  const missing: string[] = [];
  let cur = abs;
  while (!fs.existsSync(cur)) {
    missing.unshift(cur);
    const up = path.dirname(cur);
    if (up === cur) break;
    cur = up;
  }
  if (fs.existsSync(cur) && !fs.statSync(cur).isDirectory()) {
    throw Object.assign(new Error(`${cur} is not a folder`), { code: 'ENOTDIR' });
  }
  for (const d of missing) {
    try {
      fs.mkdirSync(d);
    } catch (err) {
      // created meanwhile by another process: fine, as with recursive
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw err;
    }
  }
}

/**
 * Writes `content` to `file` whole or not at all, so a reader (a monitor, a browser tab being refreshed) never
 * sees half of it: through a temporary file created exclusively under an unpredictable name beside the target
 * (a predictable one, planted as a link in a shared folder, would redirect the write), then renamed over it.
 * A link is written through to its target, as `>` does, and an existing file keeps its mode. What is not a
 * regular file (a FIFO, /dev/stdout, a device) is written directly: a rename would replace it.
 */
export function writeFileWhole(file: string, content: string): void {
  const given = path.resolve(file);
  // A descriptor of this process (/dev/stdout, /proc/self/fd/N) is written as it is: reopening it fails for a
  // socket (ENXIO), and would truncate a file the shell opened with `>>`.
  const fdMatch = /^\/(?:dev\/(?:std(out|err)|fd\/(\d+))|proc\/self\/fd\/(\d+))$/.exec(given);
  if (fdMatch) {
    const fd = fdMatch[1] === 'out' ? 1 : fdMatch[1] === 'err' ? 2 : Number(fdMatch[2] ?? fdMatch[3]);
    writeAllSync(fd, Buffer.from(content));
    return;
  }
  let target = given;
  try {
    target = fs.realpathSync(target);
  } catch {
    // not there yet (or a dangling link, whose own path is then replaced)
  }
  let existing: fs.Stats | undefined;
  try {
    existing = fs.statSync(target);
  } catch {
    existing = undefined;
  }
  // Anything else that is not a regular file (a FIFO, a device, another /proc or /dev entry) is written in
  // place, appending as `>>` does: a rename would replace it, and there may be no folder to put a file beside.
  const special = (p: string) => p.startsWith('/dev/') || p.startsWith('/proc/');
  if (special(given) || special(target) || (existing !== undefined && !existing.isFile())) {
    fs.writeFileSync(given, content, { flag: 'a' });
    return;
  }
  const tmp = path.join(
    path.dirname(target),
    `.${path.basename(target)}.${randomBytes(6).toString('hex')}.tmp`,
  );
  try {
    fs.writeFileSync(tmp, content, { flag: 'wx', mode: existing ? existing.mode & 0o777 : 0o666 });
    // the creation mode is masked by the umask: an existing file's own mode is put back as it was
    if (existing) fs.chmodSync(tmp, existing.mode & 0o7777);
    fs.renameSync(tmp, target);
  } catch (err) {
    fs.rmSync(tmp, { force: true });
    throw err;
  }
}

/** Writes all of `buf` to `fd`, waiting while a non-blocking pipe or socket is full (EAGAIN). */
function writeAllSync(fd: number, buf: Buffer): void {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, buf.length - off);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EAGAIN') throw err;
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 5);
    }
  }
}
