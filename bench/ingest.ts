/**
 * `npm run bench:ingest [-- --events N] [--warehouse duckdb|postgres|both] [--concurrency C] [--batch B]`
 * (defaults: 1,000,000 events, both warehouses, 64 connections, batches of 100)
 *
 * Sends N spec events (default 1,000,000) in SDK-sized batches (100) over HTTP, from a separate load-generator
 * process with several keep-alive connections, to a collector running in this process; then measures, in the
 * same run, the raw bulk rate of the warehouse for exactly the rows that landed (DuckDB appender /
 * PostgreSQL COPY through `insertRows`) and prints events/s, the raw rate, their ratio, and the collector
 * process's peak RSS. A benchmark, not a test: it prints figures and asserts nothing.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { spawn } from 'node:child_process';
import { Client } from 'pg';
import pino from 'pino';
import {
  openWarehouse,
  RAW_TABLES,
  ensureRawTables,
  type Warehouse,
  type InsertValue,
} from '../src/warehouse';
import { startCollector } from '../src/collector';

const REGISTER = path.join(__dirname, '..', 'test', 'helpers', 'ts-register.js');
const PG_ADMIN = process.env.LIFECYCLE_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const TABLES = ['tracks', 'identifies', 'pages', 'screens'] as const;

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] ? process.argv[i + 1] : fallback;
}

interface Target {
  kind: 'duckdb' | 'postgres';
  url: string;
  drop(): Promise<void>;
}

async function target(kind: 'duckdb' | 'postgres'): Promise<Target> {
  if (kind === 'duckdb') {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-bench-'));
    return {
      kind,
      url: `duckdb://${path.join(dir, 'bench.duckdb')}`,
      drop: async () => fs.rmSync(dir, { recursive: true, force: true }),
    };
  }
  const db = `cdpl_bench_${process.pid}`;
  const admin = new Client({ connectionString: PG_ADMIN });
  await admin.connect();
  await admin.query(`drop database if exists ${db}`);
  await admin.query(`create database ${db}`);
  await admin.end();
  const u = new URL(PG_ADMIN);
  u.pathname = `/${db}`;
  return {
    kind,
    url: u.toString(),
    drop: async () => {
      const c = new Client({ connectionString: PG_ADMIN });
      await c.connect();
      await c.query(`drop database if exists ${db} with (force)`);
      await c.end();
    },
  };
}

/** The load generator, compiled next to this file when run from `.bench/` (no TypeScript loader in memory). */
function clientCommand(): string[] {
  const compiled = path.join(__dirname, 'ingest', 'client.js');
  if (fs.existsSync(compiled)) return [compiled];
  return ['-r', REGISTER, path.join(__dirname, 'ingest', 'client.ts')];
}

function runClient(
  url: string,
  key: string,
  events: number,
  batch: number,
  conc: number,
): Promise<{ sent: number; ms: number; statuses: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [...clientCommand(), url, key, String(events), String(batch), String(conc), `run${Date.now()}`],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const rl = readline.createInterface({ input: child.stdout });
    let line = '';
    rl.on('line', (l) => (line = l));
    child.on('error', reject);
    child.on('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(line) as { sent: number; ms: number; statuses: Record<string, number> })
        : reject(new Error(`load generator exited with ${String(code)}`)),
    );
  });
}

/** Rows exactly as the Ingestor hands them to insertRows: JSON as text, timestamps as ISO strings. */
function asInsertRow(
  row: Record<string, unknown>,
  columns: readonly { name: string; type: string }[],
): InsertValue[] {
  return columns.map((c) => {
    const v = row[c.name];
    if (v === null || v === undefined) return null;
    if (v instanceof Date) return v.toISOString();
    if (c.type === 'json') return JSON.stringify(v);
    return v as InsertValue;
  });
}

function cpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

async function rawBulkRate(wh: Warehouse): Promise<{ rows: number; ms: number; cpuMs: number }> {
  await ensureRawTables(wh, 'bench_raw');
  let rows = 0;
  let ms = 0;
  let cpu = 0;
  for (const table of TABLES) {
    const cols = RAW_TABLES[table].columns;
    for await (const page of wh.stream<Record<string, unknown>>(`select * from cdp.${table}`, [], 50_000)) {
      const prepared = page.map((r) => asInsertRow(r, cols));
      const t = process.hrtime.bigint();
      const c = cpuMs();
      await wh.insertRows('bench_raw', table, cols, prepared);
      cpu += cpuMs() - c;
      ms += Number(process.hrtime.bigint() - t) / 1e6;
      rows += prepared.length;
    }
  }
  return { rows, ms, cpuMs: cpu };
}

async function benchOne(
  kind: 'duckdb' | 'postgres',
  events: number,
  batch: number,
  conc: number,
): Promise<void> {
  const t = await target(kind);
  let wh: Warehouse | undefined;
  try {
    wh = await openWarehouse(t.url);
    const key = 'bench-key';
    const collector = await startCollector({
      warehouse: wh,
      rawSchema: 'cdp',
      port: 0,
      host: '127.0.0.1',
      writeKeys: [key],
      logger: pino({ level: 'warn' }),
    });
    const rssBefore = process.memoryUsage().rss;
    const cpu0 = cpuMs();
    const client = await runClient(collector.url, key, events, batch, conc);
    const serverCpu = cpuMs() - cpu0;
    const peakRssMb = process.resourceUsage().maxRSS / 1024;
    await collector.close();
    let landed = 0;
    for (const table of TABLES) {
      const [r] = await wh.query<{ n: number }>(`select count(*) as n from cdp.${table}`);
      landed += r.n;
    }
    const httpRate = (landed / client.ms) * 1000;
    const raw = await rawBulkRate(wh);
    const rawRate = (raw.rows / raw.ms) * 1000;
    console.log(
      JSON.stringify({
        warehouse: kind,
        events,
        batch,
        connections: conc,
        landed,
        statuses: client.statuses,
        seconds: +(client.ms / 1000).toFixed(2),
        http_events_per_s: Math.round(httpRate),
        raw_rows_per_s: Math.round(rawRate),
        ratio: +(httpRate / rawRate).toFixed(3),
        // CPU time per 1,000 events of this process (the collector) against the raw insert's: on a machine
        // shared with other work this ratio is steadier than the wall-clock one.
        collector_cpu_ms_per_1k: +((serverCpu / landed) * 1000).toFixed(1),
        raw_cpu_ms_per_1k: +((raw.cpuMs / raw.rows) * 1000).toFixed(1),
        cpu_ratio: +(raw.cpuMs / raw.rows / (serverCpu / landed)).toFixed(3),
        peak_rss_mb: Math.round(peakRssMb),
        malloc_arena_max: process.env.MALLOC_ARENA_MAX ?? null,
        rss_at_start_mb: Math.round(rssBefore / 1024 / 1024),
      }),
    );
  } finally {
    await wh?.close();
    await t.drop();
  }
}

async function main(): Promise<void> {
  const events = Number(arg('events', '1000000'));
  const batch = Number(arg('batch', '100'));
  // 64 SDK batches in flight: a modest production load for a collector fed by many app servers. Fewer
  // connections mean smaller grouped writes, which DuckDB pays for (see docs/collect.md).
  const conc = Number(arg('concurrency', '64'));
  const which = arg('warehouse', 'both');
  if (which === 'both') {
    // One process per warehouse, so that each peak RSS is its own.
    for (const kind of ['duckdb', 'postgres']) {
      const args = [
        __filename,
        '--events',
        String(events),
        '--batch',
        String(batch),
        '--concurrency',
        String(conc),
      ];
      const code = await new Promise<number | null>((resolve) => {
        const child = spawn(process.execPath, [...process.execArgv, ...args, '--warehouse', kind], {
          stdio: 'inherit',
          // The glibc setting docs/collect.md recommends for `serve`: DuckDB's threads otherwise each keep
          // a malloc arena, which inflates RSS without being used.
          env: { ...process.env, MALLOC_ARENA_MAX: process.env.MALLOC_ARENA_MAX ?? '2' },
        });
        child.on('exit', resolve);
      });
      if (code !== 0) throw new Error(`the ${kind} benchmark exited with ${String(code)}`);
    }
    return;
  }
  if (which !== 'duckdb' && which !== 'postgres')
    throw new Error('--warehouse takes duckdb, postgres or both');
  await benchOne(which, events, batch, conc);
}

let finished = false;
// A promise nothing will settle (a write waiting on a lock its caller holds) lets Node exit 0 with nothing
// printed: the parent would then report the other warehouse alone, as if this one had run.
process.on('exit', () => {
  if (!finished && process.exitCode === undefined) {
    console.error('the benchmark stopped without finishing: something it awaited never settled');
    process.exitCode = 1;
  }
});
main()
  .then(() => (finished = true))
  .catch((err: unknown) => {
    finished = true;
    console.error(err);
    process.exitCode = 1;
  });
