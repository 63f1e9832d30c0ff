/**
 * The CLI loads each part (collector, runner, sync, demo, report) only when a command needs it, so `--help`
 * and usage errors stay instant and never open DuckDB or load actions-core.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The repository (package) root, from src/cli/ or dist/src/cli/. */
export const PACKAGE_ROOT = (() => {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    dir = path.dirname(dir);
    if (path.basename(dir) !== 'dist' && fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return path.resolve(__dirname, '..', '..');
})();

// ---- The parts, loaded on first use. ----

export const collectorPart = (): Promise<typeof import('../collector')> => import('../collector');
export const runnerPart = (): Promise<typeof import('../runner')> => import('../runner');
export const syncPart = (): Promise<typeof import('../sync')> => import('../sync');
export const demoPart = (): Promise<typeof import('../demo')> => import('../demo');
export const reportPart = (): Promise<typeof import('../report')> => import('../report');

export interface PackageInfo {
  name: string;
  version: string;
  description: string;
  license?: string;
}

let pkg: PackageInfo | undefined;
export function packageInfo(): PackageInfo {
  pkg ??= JSON.parse(fs.readFileSync(path.join(PACKAGE_ROOT, 'package.json'), 'utf8')) as PackageInfo;
  return pkg;
}
