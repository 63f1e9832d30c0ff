/**
 * The CLI loads each part (collector, runner, sync, demo, report) only when a command needs it, so `--help`
 * and usage errors stay instant and never open DuckDB or load actions-core.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';

/** The repository (package) root, from src/cli/ or dist/src/cli/. */
export const PACKAGE_ROOT = (() => {
  let dir = __dirname;
  for (let i = 0; i < 5; i++) {
    dir = path.dirname(dir);
    if (path.basename(dir) !== 'dist' && fs.existsSync(path.join(dir, 'package.json'))) return dir;
  }
  return path.resolve(__dirname, '..', '..');
})();

/** A part that has not landed in this build yet: say so plainly rather than crash. */
export function requirePart<T>(relative: string, what: string): T {
  try {
    return require(relative) as T;
  } catch (err) {
    const code = (err as { code?: string }).code;
    if (
      code === 'MODULE_NOT_FOUND' &&
      String((err as Error).message).includes(relative.replace(/^\.\.\//, ''))
    ) {
      throw new UserError(`${what} is not available in this build of cdp-lifecycle yet.`, { cause: err });
    }
    throw err;
  }
}

// ---- The parts, loaded on first use. ----
import type { Warehouse } from '../warehouse';

export const collectorPart = (): Promise<typeof import('../collector')> => import('../collector');
export const runnerPart = (): Promise<typeof import('../runner')> => import('../runner');
export const syncPart = (): Promise<typeof import('../sync')> => import('../sync');
export const demoPart = (): Promise<typeof import('../demo')> => import('../demo');

export interface ReportPart {
  renderTerminalReport(opts: { warehouse: Warehouse; schema: string; color?: boolean }): Promise<string>;
  writeHtmlReport(opts: { warehouse: Warehouse; schema: string; file: string }): Promise<void>;
}
export function reportPart(): ReportPart {
  return requirePart<ReportPart>('../report', 'The report');
}

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
