/**
 * The build, test and sync steps as `build`, `test`, `sync`, `run`, `serve --schedule` and `demo` use them:
 * each prints its summary and returns an exit code, so a chain can stop at the first failing step.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UsageError, UserError, errorMessage } from '../errors';
import type { ModelResult, RunResultsRecorder, SchemaTestResult } from '../runner';
import type { FailedSyncRun, SyncSummary } from '../sync';
import { describeInterruption, onInterruptExit } from './interrupt';
import { closest } from '../util/closest';
import { parseWarehouseUrl, quoteIdent, type Warehouse } from '../warehouse';
import { checkEndpoint } from '../sync/transport';
import { DEMO_MARKER_TABLE, refuseDemoSchemas } from '../demo/marker';
import type { CommandContext } from './context';
import { locationVarProblem } from './config';
import { plural, seconds } from './output';
import { packageInfo, reportPart, runnerPart, syncPart } from './parts';

export interface StepOptions {
  select?: string[];
  exclude?: string[];
  fullRefresh?: boolean;
  dryRun?: boolean;
  fullResync?: boolean;
  /** Vars on top of the configured ones (the demo pins its as-of date). */
  vars?: Record<string, unknown>;
  /** Summaries only, no line per model or test (the demo, for readers who are not data engineers). */
  brief?: boolean;
  /** Records the steps' results into `<target_path>/run_results.json` (see runResultsFor). */
  runResults?: RunResultsRecorder;
}

/**
 * A recorder for dbt's run_results.json of this invocation (`which`: build, test, run), with the arguments
 * dbt would list. The warehouse URL is left out: it may carry a password.
 */
export async function runResultsFor(
  ctx: CommandContext,
  which: string,
  o: StepOptions = {},
): Promise<RunResultsRecorder> {
  const { RunResultsRecorder, runResultsFile, loadProject, defaultProjectDir } = await runnerPart();
  const args: Record<string, string | boolean | string[] | Record<string, unknown>> = {
    which,
    cdp_lifecycle_version: packageInfo().version,
    schema: ctx.config.schema,
    raw_schema: ctx.config.rawSchema,
    vars: { ...ctx.config.vars, ...o.vars },
    target_path: ctx.config.targetPath,
  };
  if (o.fullRefresh) args.full_refresh = true;
  if (o.select) args.select = o.select;
  if (o.exclude) args.exclude = o.exclude;
  const recorder = new RunResultsRecorder(loadProject(defaultProjectDir()).name, args);
  // The previous invocation's file goes now: one that stops before writing its own (the schema locked by
  // another run, an unreachable warehouse) must not leave an older run's successes for a monitor to read.
  try {
    fs.rmSync(runResultsFile(path.resolve(ctx.config.targetPath)), { force: true });
  } catch {
    // a folder that cannot be written is said when the file is written
  }
  return recorder;
}

/** Writes the artifact; a folder that cannot be written is a warning, never a failed build. */
function writeRunResults(ctx: CommandContext, rec: RunResultsRecorder): void {
  try {
    const file = rec.write(path.resolve(ctx.config.targetPath));
    ctx.out.debug(`wrote ${path.relative(process.cwd(), file) || file}`);
  } catch (err) {
    ctx.out.warn(
      `could not write run_results.json into ${ctx.config.targetPath} (${errorMessage(err)}): set --target-path to a writable folder; the models are not affected.`,
    );
  }
}

/**
 * Vars that are valid but probably wrong, as warnings. dbt accepts any var, so a typo (`lifecycle__new_day`)
 * would silently keep the default: vars the package does not declare are named with the nearest one. And
 * inactivity thresholds out of order leave a status unreachable.
 */
export async function warnAboutVars(ctx: CommandContext, vars: Record<string, unknown>): Promise<void> {
  const names = Object.keys(vars);
  if (names.length === 0) return;
  const { name: packageName, defaults } = await packageVarDefaults();
  const declared = Object.keys(defaults);
  for (const name of names.filter((n) => !declared.includes(n))) {
    const hint = closest(name, declared);
    ctx.out.warn(
      `the var ${name} is not declared by the ${packageName} package, so it changes nothing${hint ? ` (did you mean ${hint}?)` : ''}.`,
    );
  }
  // SPEC 4.4 counts inactivity up through at_risk < dormant < churn days: out of order, a status is unreachable.
  const eff = { ...defaults, ...vars } as Record<string, unknown>;
  const steps: Array<[string, string, string]> = [
    ['lifecycle__at_risk_days', 'lifecycle__dormant_days', 'at_risk by inactivity'],
    ['lifecycle__dormant_days', 'lifecycle__churn_days', 'dormant'],
  ];
  // A typo in the year (2062 for 2026) makes every user inactive until then, and a sync would push that.
  const asOf = typeof vars.lifecycle__as_of_date === 'string' ? vars.lifecycle__as_of_date.trim() : '';
  if (/^\d{4}-\d{2}-\d{2}$/.test(asOf)) {
    const tz = timezoneOf(eff);
    let today: string | undefined;
    try {
      today = todayIn(tz);
    } catch {
      // not a time zone: checkVarValues says so, as a usage error
    }
    if (today !== undefined && asOf > today) {
      ctx.out.warn(
        `the var lifecycle__as_of_date (${asOf}) is after today (${today} in ${tz}): every user's status is computed for that day, inactive until then, and sync refuses statuses built for a day that has not begun anywhere yet.`,
      );
    }
  }
  // Rules whose window is fixed by SPEC 4.4 (28 days for power, a 21-day baseline for decline): a var past the
  // window is accepted by the models but can never hold, which a schedule would never reveal.
  const given = (name: string): number | undefined => {
    const v = Number(eff[name]);
    return name in vars && Number.isInteger(v) ? v : undefined;
  };
  const power = given('lifecycle__power_days');
  if (power !== undefined && power > 28) {
    ctx.out.warn(
      `lifecycle__power_days (${power}) is above the 28 days it counts activity in, so no user can be power: use 28 or less.`,
    );
  }
  const baseline = given('lifecycle__decline_min_baseline_days');
  if (baseline !== undefined && baseline > 21) {
    ctx.out.warn(
      `lifecycle__decline_min_baseline_days (${baseline}) is above the 21 days of the baseline it counts activity in, so the decline rule never marks anyone at_risk: use 21 or less.`,
    );
  }
  const ratio = given('lifecycle__decline_ratio_pct');
  if (ratio !== undefined && ratio > 100) {
    ctx.out.warn(
      `lifecycle__decline_ratio_pct (${ratio}) is above 100, so users more active this week than in the 3 weeks before count as declining (at_risk): use 100 or less.`,
    );
  }
  for (const [lo, hi, status] of steps) {
    const a = Number(eff[lo]);
    const b = Number(eff[hi]);
    if (Number.isInteger(a) && Number.isInteger(b) && a >= b && (lo in vars || hi in vars)) {
      ctx.out.warn(
        `${hi} (${b}) is not above ${lo} (${a}), so no user can be ${status}: the thresholds must grow in that order.`,
      );
    }
  }
}

/** The package's name and its vars' defaults (dbt_project.yml), which the build's vars override. */
async function packageVarDefaults(): Promise<{ name: string; defaults: Record<string, unknown> }> {
  const { loadProject, defaultProjectDir } = await runnerPart();
  const project = loadProject(defaultProjectDir());
  return {
    name: project.name,
    defaults: { ...project.globalVars, ...(project.packageVars[project.name] ?? {}) },
  };
}

/** lifecycle__timezone among the effective vars. */
function timezoneOf(eff: Record<string, unknown>): string {
  return typeof eff.lifecycle__timezone === 'string' ? eff.lifecycle__timezone.trim() : 'UTC';
}

/** Midnight UTC of a calendar date, years 0-99 included (Date.UTC reads them as 1900-1999). */
function utcDate(year: number, month: number, day: number): Date {
  const d = new Date(0);
  d.setUTCFullYear(year, month - 1, day);
  return d;
}

/** The IANA zone Node's time zone database takes `name` for (US/Pacific-New: America/Los_Angeles), or undefined. */
function intlZone(name: string): string | undefined {
  try {
    return new Intl.DateTimeFormat('en-US', { timeZone: name }).resolvedOptions().timeZone;
  } catch {
    return undefined;
  }
}

/** Today's date (YYYY-MM-DD) in an IANA time zone. */
export function todayIn(timeZone: string, now: Date = new Date()): string {
  // en-CA formats as YYYY-MM-DD
  return new Intl.DateTimeFormat('en-CA', {
    timeZone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(now);
}

/**
 * Zone names of the IANA database without a slash that PostgreSQL reads as the same zone. Not CET, EET, WET,
 * MET, EST, MST or HST: PostgreSQL takes them as its fixed-offset abbreviations, while DuckDB's ICU follows the
 * zone (CET keeps summer time there; EST, MST and HST are links to America/Panama, America/Phoenix and
 * Pacific/Honolulu, whose history differs: Phoenix's summer time of 1967), so events would date differently.
 */
export const TZDB_SHORT_NAMES: ReadonlySet<string> = new Set([
  // countries the database names as zones (Japan is Asia/Tokyo for PostgreSQL too)
  'CUBA',
  'EGYPT',
  'EIRE',
  'IRAN',
  'JAPAN',
  'LIBYA',
  'UTC',
  'UCT',
  'GMT',
  'ZULU',
  'GB',
  'NZ',
  'PRC',
  'ROC',
  'ROK',
]);

/** The package's name in models/dbt_project.yml (test/cli/config.test.ts checks they agree). */
export const PACKAGE_NAME = 'cdp_lifecycle';

/**
 * The vars whose bad values would otherwise surface as a failed model with the warehouse's text (an unknown
 * time zone) or not at all (2024-02-30 becomes 1 March on some warehouses): a usage error before anything runs.
 */
export function checkVarValues(vars: Record<string, unknown>): void {
  // A NUL ends a SQL text early on DuckDB and is refused by PostgreSQL's protocol: either way the warehouse's
  // message would name neither the var nor the character.
  const hasNul = (v: unknown, depth = 0): boolean =>
    typeof v === 'string'
      ? v.includes('\u0000')
      : depth < 32 &&
        typeof v === 'object' &&
        v !== null &&
        Object.values(v).some((x) => hasNul(x, depth + 1));
  for (const [name, value] of Object.entries(vars)) {
    if (hasNul(value) || name.includes('\u0000'))
      throw new UsageError(
        `The var ${name.replace(/\u0000/g, '\\u0000')} holds a NUL character (\\u0000), which SQL texts cannot: remove it.`,
      );
  }
  // dbt reads --vars flat: nested under the package's name they would be one var nobody reads, and the build
  // would silently keep every default (D = today, UTC), while the checks below would not see them.
  const scoped = vars[PACKAGE_NAME];
  if (scoped !== null && typeof scoped === 'object' && !Array.isArray(scoped)) {
    const flat = JSON.stringify(scoped);
    throw new UsageError(
      `The var ${PACKAGE_NAME} nests other vars, which only dbt_project.yml scopes to a package: give them at the top level, as '${flat.length <= 120 ? flat : '{"lifecycle__new_days": 14}'}'.`,
    );
  }
  // The raw tables' schema and names become quoted identifiers: a bad one would fail the first model that
  // reads it, with the model blamed instead of the var.
  for (const [name, value] of Object.entries(vars)) {
    const problem = locationVarProblem(name, value);
    if (problem) throw new UsageError(problem);
  }
  const tz = vars.lifecycle__timezone;
  if (tz !== undefined && tz !== null) {
    const name = String(tz).trim();
    // the models use the var as given, and no warehouse knows ' UTC' as a zone
    if (name !== String(tz)) {
      throw new UsageError(
        `The var lifecycle__timezone "${String(tz)}" has white space around the zone's name: write it as "${name}".`,
      );
    }
    const zone = intlZone(name);
    if (zone === undefined) {
      const hint = closest(name, Intl.supportedValuesOf('timeZone'));
      throw new UsageError(
        `The var lifecycle__timezone "${name}" is not an IANA time zone${hint ? ` (did you mean ${hint}?)` : ': use a name such as Europe/Berlin or UTC'}.`,
      );
    }
    // Node takes PST or IST for a region; PostgreSQL reads them as fixed-offset abbreviations (IST as Israel's),
    // so the same var would date events differently on each warehouse.
    if (/^[A-Za-z]{2,5}$/.test(name) && !TZDB_SHORT_NAMES.has(name.toUpperCase())) {
      throw new UsageError(
        `The var lifecycle__timezone "${name}" is an abbreviation, which warehouses read differently (PostgreSQL as a fixed offset): use an IANA name such as ${zone === 'UTC' ? 'Europe/Berlin' : zone}.`,
      );
    }
  }
  const d = vars.lifecycle__as_of_date;
  if (d === undefined || d === null || d instanceof Date) return;
  const text = String(d).trim();
  if (text === '' || ['none', 'today'].includes(text.toLowerCase())) return;
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  // year 0000 is no date for PostgreSQL (it has no year 0), while DuckDB reads it as 1 BC
  const real =
    m !== null &&
    Number(m[1]) >= 1 &&
    utcDate(Number(m[1]), Number(m[2]), Number(m[3])).toISOString().slice(0, 10) === text;
  if (!real) {
    throw new UsageError(
      `The var lifecycle__as_of_date "${text}" is not a calendar date: use YYYY-MM-DD (or leave it out for today).`,
    );
  }
}

/**
 * A var the package refuses or a selector that matches no model is a usage error before the warehouse is
 * opened: both need only the project, and a connection error or a lock wait would otherwise hide the typo.
 */
export async function checkProject(
  ctx: CommandContext,
  o: Pick<StepOptions, 'select' | 'exclude'>,
  forTests = false,
): Promise<void> {
  checkVarValues(ctx.config.vars);
  const { checkSelection } = await runnerPart();
  checkSelection(
    {
      schema: ctx.config.schema,
      rawSchema: ctx.config.rawSchema,
      vars: ctx.config.vars,
      select: o.select,
      exclude: o.exclude,
    },
    parseWarehouseUrl(ctx.config.warehouse).kind,
    forTests,
  );
}

/**
 * The time zone var, checked against the warehouse's own time zone database: Node's (which checkVarValues asks)
 * may know a name the warehouse's does not (PostgreSQL dropped US/Pacific-New and Canada/East-Saskatchewan),
 * which would fail the first model that dates an event with the warehouse's message, far from the var.
 */
export async function checkTimezoneOnWarehouse(wh: Warehouse, vars: Record<string, unknown>): Promise<void> {
  const tz = vars.lifecycle__timezone;
  if (tz === undefined || tz === null) return;
  const name = String(tz);
  const sql =
    wh.dialect === 'postgres'
      ? 'select cast(current_timestamp at time zone $1 as date) as d'
      : 'select cast(timezone($1, current_timestamp) as date) as d';
  try {
    await wh.query(sql, [name]);
  } catch (err) {
    // PostgreSQL: invalid_parameter_value (22023), `time zone "x" not recognized` in English; DuckDB: Unknown TimeZone
    const code = (err as { code?: unknown }).code;
    if (code !== '22023' && !/time zone "[^"]*" not recognized|Unknown TimeZone/i.test(errorMessage(err)))
      throw err;
    const meant = intlZone(name);
    const instead = meant && meant.toLowerCase() !== name.toLowerCase() ? meant : 'America/Los_Angeles';
    throw new UsageError(
      `The var lifecycle__timezone "${name}" is not a time zone ${wh.dialect === 'postgres' ? 'PostgreSQL' : 'DuckDB'} knows (its time zone database has no such name): use a current IANA name such as ${instead}.`,
    );
  }
}

export async function buildStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const { buildModels, formatModelLine, formatBuildSummary, BuildFailedError } = await runnerPart();
  const out = ctx.out;
  await warnAboutVars(ctx, ctx.config.vars);
  checkVarValues({ ...ctx.config.vars, ...o.vars });
  await checkTimezoneOnWarehouse(wh, { ...ctx.config.vars, ...o.vars });
  if (!o.brief) out.print(`Building models into schema "${ctx.config.schema}" on ${wh.displayUrl}`);
  const rec = o.runResults;
  // Ctrl-C or a scheduler's SIGTERM mid-build: run_results.json still lists what finished and the model that
  // was running, as dbt writes it on an interrupt, so a monitor sees the failed run rather than no file.
  const finished: ModelResult[] = [];
  let running: { model: ModelResult; since: number } | undefined;
  const lastWords = rec
    ? onInterruptExit((signal) => {
        const models = [...finished];
        if (running) {
          rec.finishedAt.set(`model:${running.model.name}`, Date.now());
          models.push({
            ...running.model,
            status: 'error',
            ms: Date.now() - running.since,
            message: `interrupted (${signal}) while it ran: the warehouse rolls back what it had not committed, and the model keeps its previous build`,
          });
        }
        rec.addBuild({ models });
        writeRunResults(ctx, rec);
      })
    : undefined;
  const building = buildModels({
    warehouse: wh,
    schema: ctx.config.schema,
    rawSchema: ctx.config.rawSchema,
    vars: { ...ctx.config.vars, ...o.vars },
    fullRefresh: o.fullRefresh,
    select: o.select,
    exclude: o.exclude,
    // A partial build keeps its selection's semantics: the models it leaves out recompute when next built.
    // Only a clock behind the last build's stops it, as its rows would be stamped too early to be seen.
    decideFullRefresh:
      o.select?.length || o.exclude?.length
        ? async (probe) => {
            const { clockBehind } = await import('./full-refresh');
            const clock = await clockBehind(probe);
            if (clock !== null) {
              throw new UserError(
                `This machine's clock (${clock.next}) is not after the last build's start (${clock.last}), so the incremental models, which find the rows a build changed by its start time, would miss the rows this partial build writes: run a whole build, which rebuilds in full, or fix the clock.`,
              );
            }
            return null;
          }
        : async (probe) => {
            const { recomputeReason } = await import('./full-refresh');
            const reason = await recomputeReason(probe);
            const line = reason && `Rebuilding every model in full: ${reason.detail}`;
            // a clock problem should be seen, even in a scheduled run's brief output
            if (reason?.clock) out.warn(`${line}.`);
            else if (reason !== null && !o.brief) out.print(`${line}, which a full build does faster.`);
            return reason?.summary ?? null;
          },
    log: (message) => out.debug(message),
    // One line per model as it finishes is the progress here, as in dbt: a bar would hide the timings.
    onModel: (e) => {
      if (e.phase === 'start') {
        if (e.planned) running = { model: e.planned, since: Date.now() };
        out.running(`  ${e.index + 1} of ${e.total} running ${e.name} …`);
        return;
      }
      if (!e.result) return;
      running = undefined;
      finished.push(e.result);
      out.endRunning();
      rec?.finishedAt.set(`model:${e.name}`, Date.now());
      if (o.brief && e.result.status === 'success' && !out.verbose) return;
      const line = `  ${formatModelLine(e.result, e.index, e.total)}`;
      out.print(
        e.result.status === 'success'
          ? line
          : out.style(line, e.result.status === 'error' ? 'red' : 'yellow'),
      );
    },
  });
  let result;
  try {
    result = await building.finally(() => lastWords?.clear());
  } catch (err) {
    out.endRunning();
    if (rec && err instanceof BuildFailedError) {
      rec.addBuild(err.result);
      writeRunResults(ctx, rec);
    }
    throw err;
  }
  if (rec) {
    rec.addBuild(result);
    writeRunResults(ctx, rec);
  }
  out.print(formatBuildSummary(result));
  if (!o.brief) await printAsOf(ctx, wh, result.models, { ...ctx.config.vars, ...o.vars });
  // A build that succeeds with no user at all is almost always a setting, not the data: say which now, not
  // when a marketer finds the traits missing.
  if (!o.select?.length && !o.exclude?.length) {
    const { whyNoUsers, earliestDailyDay } = await reportPart();
    const why = await whyNoUsers(wh, ctx.config.schema).catch(() => null);
    if (why) out.warn(`the models hold no user: ${why}.`);
    const since = await earliestDailyDay(wh, ctx.config.schema).catch(() => null);
    if (since !== null && since < '1970-01-01') {
      out.warn(
        `the daily models start on ${since}: an event or a createdAt trait is dated that early (a client's default date?), so status_daily (and growth_accounting_daily, for an event) hold every day since; find it with \`select * from ${ctx.config.rawSchema}.tracks where timestamp < '1970-01-01'\` (or identifies, also by traits' createdAt; pages, screens).`,
      );
    }
  }
  return 0;
}

/**
 * The day the statuses describe and the zone that dates it, read back from the build log: without
 * lifecycle__as_of_date it is the warehouse's today, which a scheduler on another clock may not expect.
 */
async function printAsOf(
  ctx: CommandContext,
  wh: Warehouse,
  models: ReadonlyArray<{ name: string; status: string; relation: string }>,
  vars: Record<string, unknown>,
): Promise<void> {
  const builds = models.find((m) => m.name === 'int_lifecycle__builds' && m.status === 'success');
  if (!builds) return;
  // the date's parts, not its text: PostgreSQL prints a date in the session's DateStyle
  const [row] = await wh
    .query<{ y: unknown; m: unknown; d: unknown }>(
      `select extract(year from b.as_of_date) as y, extract(month from b.as_of_date) as m, extract(day from b.as_of_date) as d
from ${builds.relation} as b order by b.built_at desc limit 1`,
    )
    .catch(() => []);
  if (!row || row.y === null || row.y === undefined) return;
  const pad = (v: unknown, w: number) => String(Number(v)).padStart(w, '0');
  const asOf = `${pad(row.y, 4)}-${pad(row.m, 2)}-${pad(row.d, 2)}`;
  const tz = timezoneOf({ ...(await packageVarDefaults()).defaults, ...vars });
  const pinned = typeof vars.lifecycle__as_of_date === 'string' && vars.lifecycle__as_of_date.trim() !== '';
  ctx.out.print(
    pinned
      ? `Statuses as of ${asOf} (lifecycle__as_of_date), days dated in ${tz} (lifecycle__timezone).`
      : `Statuses as of ${asOf} (today in ${tz}, lifecycle__timezone).`,
  );
}

export async function testStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const { testModels, formatTestLine, formatTestSummary } = await runnerPart();
  const out = ctx.out;
  const rec = o.runResults;
  // as for an interrupted build: the tests that finished are recorded
  const finished: SchemaTestResult[] = [];
  const lastWords = rec
    ? onInterruptExit(() => {
        rec.addTests({ tests: finished });
        writeRunResults(ctx, rec);
      })
    : undefined;
  const result = await testModels({
    warehouse: wh,
    schema: ctx.config.schema,
    rawSchema: ctx.config.rawSchema,
    vars: { ...ctx.config.vars, ...o.vars },
    select: o.select,
    exclude: o.exclude,
    log: (message) => out.debug(message),
    onTest: (t) => {
      finished.push(t);
      rec?.finishedAt.set(`test:${t.name}`, Date.now());
    },
  }).finally(() => lastWords?.clear());
  if (rec) {
    rec.addTests(result);
    writeRunResults(ctx, rec);
  }
  // printed by the CLI as the one sentence naming the grant (see CliOutput.failure), as report and build do
  if (result.refusal !== undefined) throw result.refusal;
  if (
    result.tests.length > 0 &&
    result.tests.every((t) => t.status === 'error' && /is not built/.test(t.message ?? ''))
  ) {
    throw new UserError(
      `The models are not built in schema "${ctx.config.schema}" of ${wh.displayUrl}: run \`cdp-lifecycle build\` first (or pass the --schema they were built in).`,
    );
  }
  // after the tests ran (they print nothing as they go): an error that stops them is not preceded by a heading
  if (!o.brief) out.print(`Testing the models in schema "${ctx.config.schema}"`);
  const MAX_LISTED = 20;
  const problems = result.tests.filter((t) => t.status !== 'pass').length;
  let listed = 0;
  for (const t of result.tests) {
    if (t.status === 'pass' && !out.verbose) continue;
    if (t.status !== 'pass' && ++listed > MAX_LISTED && !out.verbose) continue;
    const line = formatTestLine(t)
      .split('\n')
      .map((l) => `  ${l}`)
      .join('\n');
    out.print(
      t.status === 'pass'
        ? line
        : out.style(line, t.status === 'fail' || t.status === 'error' ? 'red' : 'yellow'),
    );
  }
  if (listed > MAX_LISTED && !out.verbose)
    out.print(`  … and ${problems - MAX_LISTED} more (--verbose lists them all)`);
  out.print(formatTestSummary(result));
  if (!result.success) {
    // failures have rows to look at; errors (a model not built, a bad column) have only their message
    const what = [
      result.failed > 0 ? `${plural(result.failed, 'schema test')} failed (failing rows above)` : '',
      result.errored > 0
        ? `${plural(result.errored, 'schema test')} could not run (errors above: a model not built or a column missing)`
        : '',
    ].filter(Boolean);
    out.error(`${what.join('; ')}.`);
    return 1;
  }
  return 0;
}

/** Checks the sync settings before anything runs, so `run` fails fast instead of after a long build. */
export function checkSyncSettings(ctx: CommandContext, dryRun: boolean): void {
  const s = ctx.config.sync;
  if (!s.to) {
    throw new UsageError(
      'No sync destination: pass --to segment or --to rudderstack (or set sync.to in cdp-lifecycle.yml).',
    );
  }
  if (!dryRun && !s.writeKey) {
    throw new UsageError(
      `Syncing to ${s.to} needs the write key of the source to send to: pass --write-key (or set LIFECYCLE_SYNC_WRITE_KEY), or use --dry-run.`,
    );
  }
  if (s.to === 'rudderstack' && !dryRun && !s.endpoint) {
    throw new UsageError(
      'Syncing to RudderStack needs your data plane URL: pass --endpoint https://<your-data-plane>.',
    );
  }
  // The same key on both sides is the loop of README "Sync back": every synced identify lands again here.
  if (!dryRun && s.writeKey && ctx.config.collectorKeys.includes(s.writeKey)) {
    throw new UsageError(
      'The sync write key is also a write key of this collector (serve.write_keys or LIFECYCLE_WRITE_KEYS), so the synced identifies would land back in this warehouse as events: use the write key of a source that does not load it.',
    );
  }
  // The sync checks it again; here `run` finds it before it builds and tests.
  if (s.endpoint) checkEndpoint(s.endpoint, s.to, s.endpointFrom);
}

/**
 * The trait mapping against the columns `user_lifecycle` declares in the package's schema.yml, so `run` finds
 * a mapped column that does not exist before it builds and tests (the sync checks the built table again).
 */
export async function checkTraitColumns(ctx: CommandContext): Promise<void> {
  const traits = ctx.config.sync.traits;
  if (!traits) return;
  const { loadProject, defaultProjectDir } = await runnerPart();
  const model = loadProject(defaultProjectDir()).models.get('user_lifecycle');
  if (!model || model.columns.length === 0) return;
  const { validateMapping } = await import('../sync/traits');
  validateMapping(
    traits,
    model.columns.map((c) => c.name),
    `${ctx.config.schema}.user_lifecycle`,
  );
}

/**
 * Refuses to land real events where the demo's are: they would mix with generated users, and the next
 * `cdp-lifecycle demo` resets its schemas, dropping them.
 */
export async function refuseDemoWarehouse(ctx: CommandContext, wh: Warehouse): Promise<void> {
  // the raw schema events would land in, or the model schema they would be built into
  await refuseDemoSchemas(
    wh,
    [ctx.config.rawSchema, ctx.config.schema],
    '--warehouse duckdb://./events.duckdb',
  );
}

/**
 * Statuses computed for a day that has not begun anywhere yet (a future lifecycle__as_of_date) would mark
 * users inactive or churned in the CDP: refused, or a warning on a dry run. Compared with today in the zone
 * furthest ahead (UTC+14), so a build in any time zone on its own today passes.
 */
async function checkSyncedAsOf(ctx: CommandContext, wh: Warehouse, dryRun: boolean): Promise<void> {
  const { schema } = ctx.config;
  if (!(await wh.tableExists(schema, 'user_lifecycle'))) return;
  // today in the zones furthest ahead and behind: a D outside them is wrong in every time zone
  const latestToday = todayIn('Pacific/Kiritimati');
  const earliestToday = todayIn('Etc/GMT+12');
  // compared as dates by the warehouse: a date's text depends on PostgreSQL's DateStyle
  const [row] = await wh.query<{ d: string | null; future: boolean | number | null }>(
    `select cast(u.as_of_date as varchar) as d, case when u.as_of_date > cast($1 as date) then 1 else 0 end as future
from ${quoteIdent(schema)}.user_lifecycle as u
where u.as_of_date > cast($1 as date) or u.as_of_date < cast($2 as date)
limit 1`,
    [latestToday, earliestToday],
  );
  const asOf = row?.d ?? null;
  if (asOf === null) return;
  if (Number(row.future) !== 1) {
    // a backfill or what-if build: its statuses would replace today's in the CDP
    ctx.out.warn(
      `the models in schema ${schema} were built as of ${asOf}, a day that has passed everywhere: the CDP ${dryRun ? 'would get' : 'gets'} the statuses of that day; rebuild without lifecycle__as_of_date for today's.`,
    );
    return;
  }
  const what = `models in schema ${schema} were built as of ${asOf}, a day that has not begun anywhere yet`;
  if (dryRun) {
    ctx.out.warn(`the ${what}: a real sync refuses to send these statuses.`);
    return;
  }
  throw new UserError(
    `The ${what}, so every status is computed for then: rebuild without lifecycle__as_of_date (today) or with a past date before syncing.`,
  );
}

/** A sync run's figures as the log's `sync` record carries them, whether the run finished or ended in an error. */
function syncFigures(r: FailedSyncRun | SyncSummary) {
  const { runId, destination, status, dryRun, considered, changed, sent, failed, invalid } = r;
  return { runId, destination, status, dryRun, considered, changed, sent, failed, invalid };
}

/**
 * What the sync step would refuse from the warehouse's sync state alone (a keyless dry run that cannot tell
 * which destination to compare with): a usage error, found before the steps ahead of it build and test.
 */
export async function checkSyncStep(ctx: CommandContext, wh: Warehouse, dryRun: boolean): Promise<void> {
  const s = ctx.config.sync;
  if (!s.to) return;
  const { checkSyncDestination } = await syncPart();
  await checkSyncDestination({
    warehouse: wh,
    schema: ctx.config.schema,
    to: s.to,
    endpoint: s.endpoint,
    writeKey: s.writeKey,
    // a dry run without --endpoint is allowed (the sync step warns that a real one needs it)
    dryRun,
  });
}

export async function syncStep(ctx: CommandContext, wh: Warehouse, o: StepOptions = {}): Promise<number> {
  const dryRun = Boolean(o.dryRun);
  checkSyncSettings(ctx, dryRun);
  const s = ctx.config.sync;
  if (!dryRun && (await wh.tableExists(ctx.config.schema, DEMO_MARKER_TABLE))) {
    // Its users are generated: sent for real they would become profiles in the customer's CDP.
    throw new UserError(
      `The schema ${ctx.config.schema} of ${wh.displayUrl} holds the demo's generated users (cdp-lifecycle demo made it): sync a schema built from your own events, or use --dry-run.`,
    );
  }
  await checkSyncedAsOf(ctx, wh, dryRun);
  const { runSync, formatSyncSummary, failedSyncRunOf } = await syncPart();
  // Ctrl-C: no new request leaves, the answers in flight are awaited and recorded (see run.ts), so that the
  // line printed then is exact; a second signal stops at once, and the next run resends what is in doubt.
  const stop = new AbortController();
  let syncing: Promise<SyncSummary> | undefined;
  let stopped: SyncSummary | undefined;
  const interruption = describeInterruption(
    (uncertain) => {
      if (uncertain || !stopped)
        return `the sync stopped before recording every answer of the CDP; the next sync resends what it cannot be sure of.`;
      // rows sent without an answer are recorded failed: said, as the CDP may hold them
      const failed =
        stopped.failed > 0
          ? `, ${stopped.failed.toLocaleString('en-US')} marked failed there (refused, or sent without an answer)`
          : '';
      return `${plural(stopped.sent, 'user')} delivered and recorded in ${ctx.config.schema}.sync_state${failed}; the next sync sends ${failed ? 'those and ' : ''}the rest.`;
    },
    async () => {
      stop.abort();
      stopped = await syncing?.catch(() => undefined);
    },
  );
  let summary: SyncSummary;
  try {
    summary = await (syncing = runSync({
      warehouse: wh,
      schema: ctx.config.schema,
      to: s.to!,
      endpoint: s.endpoint,
      writeKey: s.writeKey,
      dryRun,
      fullResync: o.fullResync,
      traits: s.traits,
      integrations: s.integrations,
      rateLimit: s.rateLimit,
      progress: ctx.out.progress(),
      // a warning, not a debug line: a sync slowed down by retries says why in a cron or serve log
      onRetry: (r) =>
        ctx.out.warn(
          `retry ${r.attempt} in ${seconds(r.delayMs)} (${plural(r.events, 'event')}): ${r.message}`,
        ),
      signal: stop.signal,
    }));
  } catch (err) {
    interruption.clear();
    const run = failedSyncRunOf(err);
    if (run)
      ctx.out.record(
        'error',
        { sync: { ...syncFigures(run), error: run.error } },
        `sync error: ${run.sent} sent, ${run.failed} failed, ${run.invalid} invalid`,
      );
    throw err;
  }
  // the signal handler (run.ts) says what was delivered, with this description, and exits: this never returns
  if (stop.signal.aborted) return await new Promise<number>(() => undefined);
  interruption.clear();
  ctx.out.print(formatSyncSummary(summary));
  ctx.out.record(
    summary.exitCode === 0 ? 'info' : 'error',
    {
      sync: {
        ...syncFigures(summary),
        problems: summary.problemGroups.map((g) => ({ status: g.status, error: g.error, rows: g.count })),
      },
    },
    `sync ${summary.status}: ${summary.sent} sent, ${summary.failed} failed, ${summary.invalid} invalid`,
  );
  if (dryRun && ctx.command !== 'demo') {
    // A dry run is how a setup gets checked: after its diff, say what the real run would still need.
    if (!s.writeKey)
      ctx.out.warn(`a real sync to ${s.to} also needs --write-key (or LIFECYCLE_SYNC_WRITE_KEY).`);
    if (s.to === 'rudderstack' && !s.endpoint) {
      ctx.out.warn(
        'a real sync to RudderStack also needs your data plane URL: --endpoint https://<your-data-plane>.',
      );
    }
  }
  if (summary.exitCode !== 0) {
    ctx.out.error(
      `${plural(summary.failed, 'user')} could not be delivered to ${s.to}: they are retried on the next sync (details in ${ctx.config.schema}.sync_log).`,
    );
  }
  return summary.exitCode;
}
