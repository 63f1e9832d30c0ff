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

// ---- The part APIs of docs/ARCHITECTURE.md, as the CLI uses them. ----
import type { Warehouse } from '../warehouse';
import type { Progress } from '../util/progress';

export interface IngestResult {
  landed: number;
  rejected: Array<{ index: number; messageId?: string; reason: string }>;
}
export interface IngestorLike {
  ingest(events: unknown[], meta?: { receivedAt?: Date }): Promise<IngestResult>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
export interface CollectorPart {
  Ingestor: new (opts: { warehouse: Warehouse; rawSchema: string; maxEventBytes?: number }) => IngestorLike;
  startCollector(opts: {
    warehouse: Warehouse;
    rawSchema: string;
    port: number;
    host: string;
    writeKeys: string[];
    maxRequestBytes?: number;
    maxEventBytes?: number;
  }): Promise<{ url: string; port: number; close(): Promise<void> }>;
  loadFiles(opts: {
    warehouse: Warehouse;
    rawSchema: string;
    files: string[];
    progress?: Progress;
  }): Promise<unknown>;
}

export function collectorPart(): CollectorPart {
  return requirePart<CollectorPart>('../collector', 'The collector');
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

export type RunnerDialect = 'duckdb' | 'postgres' | 'snowflake' | 'bigquery' | 'redshift';
export interface RunnerPart {
  buildModels(opts: {
    warehouse: Warehouse;
    projectDir?: string;
    schema: string;
    rawSchema: string;
    vars?: Record<string, unknown>;
    fullRefresh?: boolean;
    select?: string[];
    progress?: Progress;
  }): Promise<unknown>;
  testModels(opts: {
    warehouse: Warehouse;
    projectDir?: string;
    schema: string;
    rawSchema: string;
    vars?: Record<string, unknown>;
    select?: string[];
  }): Promise<unknown>;
  compileModels(opts: {
    dialect: RunnerDialect;
    projectDir?: string;
    outDir?: string;
    schema: string;
    rawSchema: string;
    vars?: Record<string, unknown>;
  }): Promise<unknown>;
}
export function runnerPart(): RunnerPart {
  return requirePart<RunnerPart>('../runner', 'The model runner');
}

export interface SyncPart {
  runSync(opts: {
    warehouse: Warehouse;
    schema: string;
    to: 'rudderstack' | 'segment';
    endpoint?: string;
    writeKey?: string;
    dryRun?: boolean;
    fullResync?: boolean;
    traits?: Record<string, string>;
    integrations?: Record<string, unknown>;
    rateLimit?: number;
    progress?: Progress;
  }): Promise<unknown>;
}
export function syncPart(): SyncPart {
  return requirePart<SyncPart>('../sync', 'The reverse sync');
}

export interface DemoPart {
  generateDemoEvents(opts: {
    users?: number;
    days?: number;
    seed?: number;
    endDate: string;
  }): Iterable<object>;
  retailSampleEvents(csvPath: string): Iterable<object>;
}
export function demoPart(): DemoPart {
  return requirePart<DemoPart>('../demo', 'The demo data generator');
}

export interface ReportPart {
  renderTerminalReport(opts: { warehouse: Warehouse; schema: string; color?: boolean }): Promise<string>;
  writeHtmlReport(opts: { warehouse: Warehouse; schema: string; file: string }): Promise<void>;
}
export function reportPart(): ReportPart {
  return requirePart<ReportPart>('../report', 'The report');
}
