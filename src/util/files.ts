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
