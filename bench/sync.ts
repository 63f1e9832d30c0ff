// npm run bench:sync [-- --users N --changed-pct P --to rudderstack|segment --warehouse URL --batch-size B]
//
// The reverse sync against a local CDP endpoint (a node:http server in a separate process that acks at once):
// N users in user_lifecycle, all previously delivered, P% of them changed. Reports identifies per second of
// the whole sync (count + diff + send + state writes), the same identifies sent by the raw SDK without any
// diffing or state, measured in the same run (the physical limit of this machine and SDK), their ratio, and
// the sync's peak RSS. Not a test: nothing is asserted, figures are printed.
import { fork, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as ts from 'typescript';
import { openWarehouse, type Warehouse } from '../src/warehouse';
import { DEFAULT_TRAITS } from '../src/sync';
import { ensureSyncTables, mappingSignature, sourceColumns, traitsHashSql } from '../src/sync/state';

interface Args {
  users: number;
  changedPct: number;
  to: 'rudderstack' | 'segment';
  warehouse?: string;
  batchSize?: number;
  /** Prepare the warehouse (given with --warehouse) and stop: for profiling the sync by hand. */
  setupOnly?: boolean;
}

function parseArgs(argv: string[]): Args {
  const a: Args = { users: 1_000_000, changedPct: 10, to: 'rudderstack' };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--users':
        a.users = Number(v);
        i++;
        break;
      case '--changed-pct':
        a.changedPct = Number(v);
        i++;
        break;
      case '--to':
        a.to = v as Args['to'];
        i++;
        break;
      case '--warehouse':
        a.warehouse = v;
        i++;
        break;
      case '--batch-size':
        a.batchSize = Number(v);
        i++;
        break;
      case '--setup-only':
        a.setupOnly = true;
        break;
      default:
        throw new Error(`unknown argument ${argv[i]}`);
    }
  }
  if (!(a.users > 0) || !(a.changedPct > 0 && a.changedPct <= 100))
    throw new Error('bad --users/--changed-pct');
  return a;
}

const REPO = path.resolve(__dirname, '..');
// The measured processes run plain JavaScript, as the installed CLI does (from dist/): loading the TypeScript
// compiler to run sources would add ~100 MB to the peak RSS being measured. Transpiled into .bench/ (ignored
// by git) inside the repo, so node_modules resolve as usual.
const JS_DIR = path.join(REPO, '.bench', 'sync-js');

function transpileTree(): void {
  fs.rmSync(JS_DIR, { recursive: true, force: true });
  const files: string[] = [
    path.join('bench', 'sync', 'worker.ts'),
    path.join('bench', 'sync', 'ack-server.ts'),
  ];
  const walk = (dir: string): void => {
    for (const e of fs.readdirSync(path.join(REPO, dir), { withFileTypes: true })) {
      const rel = path.join(dir, e.name);
      if (e.isDirectory()) walk(rel);
      else if (e.name.endsWith('.ts') && !e.name.endsWith('.d.ts')) files.push(rel);
    }
  };
  walk('src');
  for (const rel of files) {
    const out = ts.transpileModule(fs.readFileSync(path.join(REPO, rel), 'utf8'), {
      fileName: rel,
      compilerOptions: {
        module: ts.ModuleKind.CommonJS,
        target: ts.ScriptTarget.ES2022,
        esModuleInterop: true,
        resolveJsonModule: true,
      },
    });
    const dest = path.join(JS_DIR, rel.replace(/\.ts$/, '.js'));
    fs.mkdirSync(path.dirname(dest), { recursive: true });
    fs.writeFileSync(dest, out.outputText);
  }
}

type Stats = { events: number; requests: number; maxBodyBytes: number; maxEventsPerRequest: number };

function startServer(): Promise<{ child: ChildProcess; url: string; call(cmd: string): Promise<Stats> }> {
  const child = fork(path.join(JS_DIR, 'bench', 'sync', 'ack-server.js'), []);
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('message', (m: { port: number }) => {
      resolve({
        child,
        url: `http://127.0.0.1:${m.port}`,
        call: (cmd) =>
          new Promise((res) => {
            child.once('message', (r) => res(r as Stats));
            child.send({ cmd });
          }),
      });
    });
  });
}

const STATUSES = ['new', 'active', 'power', 'at_risk', 'dormant', 'churned', 'resurrected'];

async function setup(wh: Warehouse, users: number, changedPct: number, destination: string): Promise<number> {
  const series =
    wh.dialect === 'duckdb' ? `range(0, ${users}) as t(i)` : `generate_series(0, ${users - 1}) as t(i)`;
  const statusCase = `case i % 7 ${STATUSES.map((s, k) => `when ${k} then '${s}'`).join(' ')} end`;
  await wh.exec('drop schema if exists lifecycle cascade');
  await wh.exec('create schema lifecycle');
  await wh.exec(`create table lifecycle.user_lifecycle as
    select 'user_' || lpad(cast(i as varchar), 8, '0') as user_id, date '2024-06-30' as as_of_date,
      ${statusCase} as lifecycle_status, date '2024-06-01' + cast(i % 28 as integer) as status_since,
      case when i % 3 = 0 then null else 'active' end as previous_status,
      case when i % 2 = 0 then 'champions' else null end as rfm_segment
    from ${series}`);
  await ensureSyncTables(wh, 'lifecycle');
  // Everyone delivered before: sync_state written with the very hash the sync computes.
  const cols = await sourceColumns(wh, 'lifecycle');
  const hash = traitsHashSql(
    wh.dialect,
    'u',
    { ...DEFAULT_TRAITS },
    new Map(cols.map((c) => [c.name, c.type])),
    '$2',
  );
  const obj = wh.dialect === 'duckdb' ? 'json_object' : 'jsonb_build_object';
  await wh.query(
    `insert into lifecycle.sync_state (destination, user_id, traits_hash, traits, delivered_at, status, attempts)
     select $1, u.user_id, ${hash}, ${obj}('lifecycle_status', u.lifecycle_status), now(), 'delivered', 1
     from lifecycle.user_lifecycle as u`,
    [destination, mappingSignature({ ...DEFAULT_TRAITS })],
  );
  const every = Math.round(100 / changedPct);
  await wh.exec(`update lifecycle.user_lifecycle
    set lifecycle_status = case when lifecycle_status = 'dormant' then 'churned' else 'dormant' end
    where cast(substr(user_id, 6) as integer) % ${every} = 0`);
  const [c] = await wh.query<{ n: number }>(
    `select count(*) as n from lifecycle.user_lifecycle where cast(substr(user_id, 6) as integer) % ${every} = 0`,
  );
  return c.n;
}

const mb = (kb: number): string => `${(kb / 1024).toFixed(0)} MB`;

interface WorkerResult {
  mode: 'sync' | 'raw';
  seconds: number;
  sent: number;
  maxRssKb: number;
  summary?: { considered: number; changed: number; sent: number; failed: number };
}

/** Runs one measured phase in a fresh process, so its peak RSS is its own and not the setup's. */
function runWorker(params: Record<string, unknown>): Promise<WorkerResult> {
  // BENCH_CPU_PROF=<dir> writes a V8 CPU profile of each measured process there.
  const prof = process.env.BENCH_CPU_PROF;
  const child = fork(path.join(JS_DIR, 'bench', 'sync', 'worker.js'), [JSON.stringify(params)], {
    execArgv: prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : [],
  });
  return new Promise((resolve, reject) => {
    child.once('message', (m) => resolve(m as WorkerResult));
    child.once('exit', (code) => reject(new Error(`bench worker exited with ${code}`)));
  });
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  transpileTree();
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-bench-sync-'));
  const url = args.warehouse ?? `duckdb://${path.join(dir, 'bench.duckdb')}`;
  const server = await startServer();
  const batch = args.batchSize ?? (args.to === 'segment' ? 500 : 50);
  const name = 'bench';
  try {
    const wh = await openWarehouse(url);
    const t = Date.now();
    const changed = await setup(wh, args.users, args.changedPct, name);
    await wh.close();
    if (args.setupOnly) {
      console.log(`prepared ${url}: ${changed} of ${args.users} users changed`);
      return;
    }
    console.log(
      `setup: ${args.users.toLocaleString()} users, ${changed.toLocaleString()} changed, ${url.replace(/:[^:@/]*@/, ':***@')} (${((Date.now() - t) / 1000).toFixed(1)} s)`,
    );

    const sync = await runWorker({ mode: 'sync', url, endpoint: server.url, to: args.to, name, batch });
    const st = await server.call('stats');
    const syncRate = sync.sent / sync.seconds;
    console.log(
      `sync (${args.to}): considered ${sync.summary?.considered}, changed ${sync.summary?.changed}, sent ${sync.sent}, failed ${sync.summary?.failed}; ` +
        `${st.events} identifies received in ${st.requests} requests (max ${st.maxEventsPerRequest} events, ${(st.maxBodyBytes / 1000).toFixed(0)} kB); ` +
        `${sync.seconds.toFixed(2)} s = ${Math.round(syncRate).toLocaleString()} identifies/s; peak RSS ${mb(sync.maxRssKb)}`,
    );
    const again = await runWorker({ mode: 'sync', url, endpoint: server.url, to: args.to, name, batch });
    console.log(`second sync (nothing changed): sent ${again.sent} in ${again.seconds.toFixed(2)} s`);

    await server.call('reset');
    const every = Math.round(100 / args.changedPct);
    const raw = await runWorker({ mode: 'raw', endpoint: server.url, to: args.to, n: changed, every, batch });
    const rawRate = raw.sent / raw.seconds;
    const rst = await server.call('stats');
    console.log(
      `raw ${args.to === 'rudderstack' ? '@rudderstack/rudder-sdk-node' : '@segment/analytics-node'}: ${rst.events} identifies in ${rst.requests} requests, ` +
        `${raw.seconds.toFixed(2)} s = ${Math.round(rawRate).toLocaleString()} identifies/s; peak RSS ${mb(raw.maxRssKb)}`,
    );
    console.log(
      `RESULT users=${args.users} changed=${changed} to=${args.to} sync=${Math.round(syncRate)}/s raw=${Math.round(rawRate)}/s ` +
        `ratio=${(syncRate / rawRate).toFixed(2)} (target >= 0.7) peak_rss=${mb(sync.maxRssKb)} (target <= 300 MB)`,
    );
  } finally {
    server.child.send({ cmd: 'stop' });
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
