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
  return undefined;
}
