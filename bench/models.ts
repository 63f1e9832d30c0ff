/**
 * `npm run bench:models` — builds the lifecycle models on a generated DuckDB warehouse and prints the full
 * build time, the time of an incremental build after one more day of events, and both as ratios to the bare
 * scan of the raw tracks measured in the same run (the physical floor), plus peak memory.
 *
 *   npm run bench:models                                  # 1,000,000 users, 10,000,000 events, 365 days
 *   npm run bench:models -- --users 100000 --events 1000000 --days 365
 *   npm run bench:models -- --days 730 --events 20000000   # twice the history at the same events per day
 *   options: --file <path.duckdb> (default: a temp file, deleted), --seed <n>, --json
 *   --save-full <path> copies the warehouse after the full build; --from-full <path> starts from such a copy
 *   (same --users/--events/--days/--seed) and only times the incremental day: for iterating on incremental SQL.
 *   --trace <dir> writes each statement of the incremental build, with its time, to <dir>/NNN-<ms>.sql, and the
 *   warehouse as it was before that build to <dir>/before-incremental.duckdb.
 *   --warehouse postgres://… builds on PostgreSQL instead (schemas cdp_bench and lifecycle_bench, dropped first
 *   and at the end): the events are generated in DuckDB as usual and copied over with COPY; the bare scan runs
 *   on PostgreSQL, and only wall times are compared (the server's CPU is not this process's).
 *
 * Events are generated inside DuckDB with SQL (hash-based pseudo-random), so generation takes seconds: users
 * have a first day, sessions of 1-5 events concentrated after it with a long tail (so there are dormant,
 * churned and returning users), 15% of sessions anonymous before an identify, purchases with revenue, churn
 * signals, an identify per user with a plan and createdAt.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  openWarehouse,
  ensureRawTables,
  RAW_TABLES,
  type InsertValue,
  type Warehouse,
} from '../src/warehouse';
import { buildModels } from '../src/runner';

interface Options {
  users: number;
  events: number;
  days: number;
  seed: number;
  file?: string;
  saveFull?: string;
  fromFull?: string;
  trace?: string;
  warehouse?: string;
  json: boolean;
}

function parseArgs(argv: string[]): Options {
  const o: Options = { users: 1_000_000, events: 10_000_000, days: 365, seed: 42, json: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    if (a === '--users') o.users = Number(next());
    else if (a === '--events') o.events = Number(next());
    else if (a === '--days') o.days = Number(next());
    else if (a === '--seed') o.seed = Number(next());
    else if (a === '--file') o.file = next();
    else if (a === '--json') o.json = true;
    else if (a === '--save-full') o.saveFull = next();
    else if (a === '--from-full') o.fromFull = next();
    else if (a === '--trace') o.trace = next();
    else if (a === '--warehouse') o.warehouse = next();
    else throw new Error(`unknown option ${a} (see the header of bench/models.ts)`);
  }
  if (o.warehouse !== undefined && !/^postgres(ql)?:\/\//.test(o.warehouse))
    throw new Error('--warehouse takes a postgres:// URL (DuckDB is the default)');
  if (o.warehouse && (o.saveFull || o.fromFull || o.trace || o.file))
    throw new Error('--save-full, --from-full, --trace and --file work on DuckDB only');
  for (const k of ['users', 'events', 'days'] as const) {
    if (!Number.isInteger(o[k]) || o[k] <= 0) throw new Error(`--${k} must be a positive whole number`);
  }
  return o;
}

const DAY0 = '2024-01-01';

function addDays(ymd: string, n: number): string {
  return new Date(Date.parse(`${ymd}T00:00:00Z`) + n * 86400000).toISOString().slice(0, 10);
}

/** Pseudo-random in [0, 1) from DuckDB's hash of (expr, salt). */
const rnd = (expr: string, salt: number) => `((hash(${expr}, ${salt}) % 1000000007) / 1000000007.0)`;

/** Sessions of `dayFrom..dayTo` (offsets from DAY0) into cdp.tracks, as INSERT … SELECT inside DuckDB. */
function eventsSql(
  o: Options,
  sessions: number,
  firstSession: number,
  dayFrom: number,
  dayTo: number | null,
): string {
  const s = 'sess.s';
  // the first `users` sessions give every user one; the rest are skewed toward heavy (low-numbered) users
  const user = `case when ${s} < ${o.users} and ${dayTo === null ? 'true' : 'false'} then ${s} else cast(floor(pow(${rnd(s, o.seed + 1)}, 1.7) * ${o.users}) as bigint) end`;
  const firstDay = `cast(hash(u.u, ${o.seed + 2}) % ${o.days} as integer)`;
  const day =
    dayTo === null
      ? `least(${o.days - 1}, ${firstDay} + cast(floor(pow(${rnd(s, o.seed + 3)}, 2.5) * (${o.days} - ${firstDay})) as integer))`
      : `${dayFrom}`;
  return `
insert into cdp.tracks
with sess as (
    select range as s from range(${firstSession}, ${firstSession + sessions})
),
sessions as (
    select sess.s, u.u, ${day} as day_offset,
        1 + cast(hash(sess.s, ${o.seed + 4}) % 5 as integer) as n_events,
        ${rnd(s, o.seed + 5)} < 0.15 as anonymous
    from sess, lateral (select ${user} as u) as u
),
events as (
    select s, u, day_offset, anonymous, e.range as k
    from sessions, range(5) as e
    where e.range < n_events
),
shaped as (
    select
        'e' || s || '_' || k as id,
        u, anonymous, k, day_offset,
        cast('${DAY0}' as timestamp) + to_days(day_offset) + to_seconds(cast(hash(s, ${o.seed + 6}) % 86000 as bigint) + k * 30) as ts,
        ${rnd('s * 7 + k', o.seed + 7)} as r
    from events
)
select
    id,
    case when anonymous and k < 2 then null else 'user' || u end as user_id,
    'anon' || u as anonymous_id,
    case when r < 0.03 then 'order_completed' when r < 0.0315 then 'account_deleted' when r < 0.05 then 'email_delivered' when r < 0.5 then 'viewed_item' else 'searched' end,
    case when r < 0.03 then 'Order Completed' when r < 0.0315 then 'Account Deleted' when r < 0.05 then 'Email Delivered' when r < 0.5 then 'Viewed Item' else 'Searched' end,
    timezone('UTC', ts), timezone('UTC', ts), timezone('UTC', ts), timezone('UTC', ts + interval 2 second),
    case when r < 0.03 then cast('{"revenue": ' || cast(round(r * 3000, 2) as varchar) || ', "currency": "USD"}' as json) else cast('{}' as json) end,
    cast('{"library": {"name": "bench"}}' as json)
from shaped
order by ts
`;
}

function identifiesSql(o: Options): string {
  return `
insert into cdp.identifies
select
    'i' || range, 'user' || range, 'anon' || range,
    timezone('UTC', ts), timezone('UTC', ts), timezone('UTC', ts), timezone('UTC', ts + interval 2 second),
    cast('{"plan": "' || (case hash(range, ${o.seed + 9}) % 3 when 0 then 'free' when 1 then 'pro' else 'team' end) || '", "createdAt": "' || strftime(ts - interval 3 day, '%Y-%m-%dT%H:%M:%SZ') || '"}' as json),
    cast('{}' as json)
from (
    select range, cast('${DAY0}' as timestamp) + to_days(cast(hash(range, ${o.seed + 2}) % ${o.days} as integer)) + interval 1 hour as ts
    from range(${o.users})
)
order by ts
`;
}

/** The warehouse with every exec/query written to `dir` with its duration (the statements to EXPLAIN ANALYZE). */
function traced(wh: Warehouse, dir: string): Warehouse {
  fs.mkdirSync(dir, { recursive: true });
  let n = 0;
  const wrap =
    <A extends unknown[], R>(fn: (sql: string, ...rest: A) => Promise<R>) =>
    async (sql: string, ...rest: A): Promise<R> => {
      const t0 = Date.now();
      try {
        return await fn(sql, ...rest);
      } finally {
        const ms = Date.now() - t0;
        // bound parameters go on a first comment line, so a replay can pass them again
        const params = rest[0];
        const head = Array.isArray(params) && params.length ? `-- params: ${JSON.stringify(params)}\n` : '';
        fs.writeFileSync(path.join(dir, `${String(++n).padStart(3, '0')}-${ms}ms.sql`), head + sql);
      }
    };
  const proxy = <T extends object>(obj: T): T =>
    new Proxy(obj, {
      get(target, prop, receiver) {
        const v: unknown = Reflect.get(target, prop, receiver);
        if ((prop === 'exec' || prop === 'query') && typeof v === 'function')
          return wrap((v as (sql: string, ...rest: unknown[]) => Promise<unknown>).bind(target));
        if (prop === 'transaction' && typeof v === 'function')
          // the commit is no statement of its own here: a last file times the whole transaction, so that a
          // commit (and the checkpoint it may trigger) shows as the gap between it and its statements
          return async <R>(fn: (tx: Warehouse) => Promise<R>) => {
            const t0 = Date.now();
            const first = n + 1;
            try {
              return await (v as (f: (tx: Warehouse) => Promise<R>) => Promise<R>).call(target, (tx) =>
                fn(proxy(tx)),
              );
            } finally {
              const ms = Date.now() - t0;
              const name = `${String(++n).padStart(3, '0')}-${ms}ms.sql`;
              fs.writeFileSync(
                path.join(dir, name),
                `-- the transaction of statements ${first}..${n - 1}, commit included\n`,
              );
            }
          };
        return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
      },
    });
  return proxy(wh);
}

/** Wall time, and the CPU time of this process (DuckDB runs in-process), which a busy shared machine disturbs less. */
let lastCpuS = 0;
async function timed<T>(fn: () => Promise<T>): Promise<[T, number]> {
  const t0 = process.hrtime.bigint();
  const c0 = process.cpuUsage();
  const r = await fn();
  const c = process.cpuUsage(c0);
  lastCpuS = (c.user + c.system) / 1e6;
  return [r, Number(process.hrtime.bigint() - t0) / 1e9];
}

/**
 * Copies the raw rows of `from` (DuckDB) with a rowid above `after[table]` into `to`, in chunks through the
 * warehouse layer's bulk path (COPY on PostgreSQL); returns the highest rowid copied per table.
 */
async function copyRaw(
  from: Warehouse,
  to: Warehouse,
  toSchema: string,
  after: Record<string, number>,
): Promise<Record<string, number>> {
  const last: Record<string, number> = {};
  for (const table of ['tracks', 'pages', 'screens', 'identifies', 'aliases'] as const) {
    const cols = RAW_TABLES[table].columns;
    const select = cols
      .map((c) =>
        c.type === 'timestamptz'
          ? // in UTC whatever the machine's zone, which DuckDB formats a timestamptz in
            `strftime(timezone('UTC', "${c.name}"), '%Y-%m-%dT%H:%M:%S.%fZ') as "${c.name}"`
          : `cast("${c.name}" as varchar) as "${c.name}"`,
      )
      .join(', ');
    let from0 = after[table] ?? -1;
    for (;;) {
      const rows = await from.query<Record<string, unknown>>(
        `select rowid as _r, ${select} from cdp.${table} where rowid > ${from0} order by rowid limit 200000`,
      );
      if (!rows.length) break;
      await to.insertRows(
        toSchema,
        table,
        cols,
        rows.map((r) => cols.map((c) => (r[c.name] ?? null) as InsertValue)),
      );
      from0 = Number(rows[rows.length - 1]._r);
    }
    last[table] = from0;
  }
  return last;
}

async function main(): Promise<void> {
  const o = parseArgs(process.argv.slice(2));
  const dir = o.file ? undefined : fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-lifecycle-bench-'));
  const file = o.file ?? path.join(dir as string, 'bench.duckdb');
  let peakRss = 0;
  const sampler = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage().rss);
  }, 50);
  const log = (msg: string) => {
    if (!o.json) console.log(msg);
  };
  let wh: Warehouse | undefined;
  // where the events are generated (DuckDB); `wh` is where the models build: the same, or PostgreSQL
  let gen: Warehouse | undefined;
  const pg = o.warehouse !== undefined;
  const raw = pg ? 'cdp_bench' : 'cdp';
  const target = pg ? 'lifecycle_bench' : 'lifecycle';
  const dropPg = async () => {
    await wh!.exec(`drop schema if exists ${target} cascade`);
    await wh!.exec(`drop schema if exists ${raw} cascade`);
  };
  // DuckDB only: copies the database file, which needs it closed. `gen` is the same connection here, so it
  // must follow, or the next day's events go to a closed connection.
  const reopenCopying = async (to: string) => {
    await wh!.exec('checkpoint');
    await wh!.close();
    fs.copyFileSync(file, to);
    wh = await openWarehouse(`duckdb://${file}`);
    gen = wh;
  };
  try {
    if (o.fromFull) fs.copyFileSync(o.fromFull, file);
    wh = await openWarehouse(`duckdb://${file}`);
    await ensureRawTables(wh, 'cdp');
    gen = wh;
    const sessions = Math.round(o.events / 3);
    const D = addDays(DAY0, o.days - 1);
    const D1 = addDays(DAY0, o.days);
    if (!o.fromFull) {
      log(
        `generating ${o.users.toLocaleString()} users, ~${o.events.toLocaleString()} events over ${o.days} days (D = ${D}) …`,
      );
      const [, genS] = await timed(async () => {
        await wh!.exec(eventsSql(o, sessions, 0, 0, null));
        await wh!.exec(identifiesSql(o));
        await wh!.exec('checkpoint');
      });
      log(`  generated in ${genS.toFixed(1)} s`);
    }
    const [[{ n: events }]] = await timed(() =>
      wh!.query<{ n: number }>('select count(*) as n from cdp.tracks'),
    );
    log(`  ${events.toLocaleString()} tracks`);
    let copied: Record<string, number> = {};
    if (pg) {
      wh = await openWarehouse(o.warehouse!);
      await dropPg();
      await ensureRawTables(wh, raw);
      const [, copyS] = await timed(async () => {
        copied = await copyRaw(gen!, wh!, raw, {});
        await wh!.exec('analyze');
      });
      log(`  copied to PostgreSQL (${raw}) in ${copyS.toFixed(1)} s`);
    }

    const scanSql = `select user_id, count(*), min(timestamp), max(timestamp) from ${raw}.tracks group by 1`;
    // the floor: one pass over the raw events; best of three so a cold cache does not flatter the ratios.
    // Measured again right before the incremental build, which uses that one: this machine's speed drifts by
    // up to 20% within minutes, and a ratio should compare two timings taken under the same conditions.
    const measureScan = async (): Promise<[number, number]> => {
      let wall = Infinity;
      let cpu = Infinity;
      for (let i = 0; i < 3; i++) {
        wall = Math.min(wall, (await timed(() => wh!.query(`select count(*) from (${scanSql}) as s`)))[1]);
        cpu = Math.min(cpu, lastCpuS);
      }
      return [wall, cpu];
    };
    const [scanS, scanCpuS] = await measureScan();
    log(`bare scan (${scanSql}): ${scanS.toFixed(3)} s wall${pg ? '' : `, ${scanCpuS.toFixed(3)} s CPU`}`);

    const rssBefore = peakRss;
    let fullS = NaN;
    let fullCpuS = NaN;
    if (!o.fromFull) {
      const [full, fullWall] = await timed(() =>
        buildModels({
          warehouse: wh!,
          schema: target,
          rawSchema: raw,
          vars: { lifecycle__as_of_date: D },
          fullRefresh: true,
        }),
      );
      fullS = fullWall;
      fullCpuS = lastCpuS;
      log(
        `full build at ${D}: ${fullS.toFixed(2)} s = ${(fullS / scanS).toFixed(1)}x the scan (target <= 40x)` +
          (pg ? '' : `; CPU ${fullCpuS.toFixed(2)} s = ${(fullCpuS / scanCpuS).toFixed(1)}x the scan's CPU`),
      );
      for (const m of full.models)
        log(`    ${m.name.padEnd(40)} ${(m.ms / 1000).toFixed(2).padStart(7)} s ${m.rows ?? ''}`);
      if (o.saveFull) {
        await reopenCopying(o.saveFull);
        log(`  saved the fully built warehouse to ${o.saveFull}`);
      }
    }

    // one more day of events (about events/days), received the next day
    const perDay = Math.max(1, Math.round(sessions / o.days));
    await gen.exec(eventsSql(o, perDay, sessions + 1, o.days, o.days));
    await gen.exec('checkpoint');
    if (pg) {
      await copyRaw(gen, wh, raw, copied);
      await wh.exec('analyze');
    }
    if (o.trace) {
      fs.mkdirSync(o.trace, { recursive: true });
      await reopenCopying(path.join(o.trace, 'before-incremental.duckdb'));
    }
    const [incScanS, incScanCpuS] = await measureScan();
    log(
      `bare scan again, before the incremental build: ${incScanS.toFixed(3)} s wall` +
        (pg ? '' : `, ${incScanCpuS.toFixed(3)} s CPU`),
    );
    const [inc, incS] = await timed(() =>
      buildModels({
        warehouse: o.trace ? traced(wh!, o.trace) : wh!,
        schema: target,
        rawSchema: raw,
        vars: { lifecycle__as_of_date: D1 },
      }),
    );
    const incCpuS = lastCpuS;
    log(
      `incremental build at ${D1} after one more day: ${incS.toFixed(2)} s = ${(incS / incScanS).toFixed(1)}x the scan ` +
        `(target <= 5x)` +
        (pg ? '' : `; CPU ${incCpuS.toFixed(2)} s = ${(incCpuS / incScanCpuS).toFixed(1)}x the scan's CPU`),
    );
    for (const m of inc.models)
      log(`    ${m.name.padEnd(40)} ${(m.ms / 1000).toFixed(2).padStart(7)} s ${m.rows ?? ''}`);
    const [[counts]] = await timed(() =>
      wh!.query<{ users: number; runs: number }>(
        `select (select count(*) from ${target}.user_lifecycle) as users, (select count(*) from ${target}.user_status_history) as runs`,
      ),
    );
    log(`  ${counts.users.toLocaleString()} users, ${counts.runs.toLocaleString()} status runs`);
    log(
      `peak RSS${pg ? ' of this process (not the server)' : ''}: ${(peakRss / 2 ** 20).toFixed(0)} MiB (${(rssBefore / 2 ** 20).toFixed(0)} MiB before building)`,
    );
    if (o.json) {
      console.log(
        JSON.stringify({
          ...o,
          generatedEvents: events,
          scanS,
          scanCpuS,
          fullS,
          fullCpuS,
          fullRatio: fullS / scanS,
          incS,
          incCpuS,
          incScanS,
          incScanCpuS,
          incRatio: incS / incScanS,
          peakRssMiB: peakRss / 2 ** 20,
        }),
      );
    }
  } finally {
    clearInterval(sampler);
    if (pg && wh) await dropPg().catch(() => undefined);
    await wh?.close();
    if (gen && gen !== wh) await gen.close();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : String(err));
  process.exit(1);
});
