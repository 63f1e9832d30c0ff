import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option } from 'commander';
import { UsageError, UserError } from '../../errors';
import {
  ensureRawTables,
  isPasswordParam,
  listRelations,
  parseWarehouseUrl,
  quoteIdent,
  RAW_TABLES,
  type Warehouse,
} from '../../warehouse';
import type { CommandContext, CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { plural, seconds, shellQuote, shellWord } from '../output';
import type { Ingestor } from '../../collector';
import { PACKAGE_ROOT, collectorPart, demoPart } from '../parts';
import { htmlOption, printReport } from './report';
import { buildStep, checkProject, syncStep, testStep, todayIn } from '../steps';
import { DEMO_MARKER_TABLE } from '../../demo/marker';

/** The real sample beside the checkout (`../shared/datasets/`), as CI and the steering repo lay it out. */
export const RETAIL_SAMPLE = path.resolve(
  PACKAGE_ROOT,
  '..',
  'shared',
  'datasets',
  'online-retail-sample.csv',
);

const BATCH = 5000;

/** YYYY-MM-DD naming a day that exists (Date.parse takes 2024-02-30 as 1 March). */
function isCalendarDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.toISOString().slice(0, 10) === s;
}

function wholeNumberOption(flag: string, raw: unknown, min: number, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const text = String(raw).trim();
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < min || n > max) {
    throw new UsageError(`${flag} "${text}" is not a whole number from ${min} to ${max}.`);
  }
  return n;
}

/**
 * How to run `sql` on the warehouse from a shell. A DuckDB file opened directly names its catalog after the
 * file, so lifecycle.duckdb's catalog `lifecycle` clashes with the schema `lifecycle` ("Ambiguous reference to
 * catalog or schema"), inside the models' views too: attaching it under another name avoids that.
 */
export function queryHint(warehouseUrl: string, sql: string): string {
  const loc = parseWarehouseUrl(warehouseUrl);
  if (loc.kind === 'postgres') {
    // without the password (in the user part or a query parameter, whose name pg decodes): psql takes it from
    // PGPASSWORD or ~/.pgpass, and it stays out of the terminal
    const u = new URL(loc.url);
    u.password = '';
    for (const name of [...u.searchParams.keys()]) if (isPasswordParam(name)) u.searchParams.delete(name);
    return `psql ${shellQuote(u.toString())} -c "${sql}"`;
  }
  if (loc.path === ':memory:')
    return `use a DuckDB file (--warehouse duckdb://./demo.duckdb) to query the models afterwards`;
  return `duckdb -c "ATTACH '${path.resolve(loc.path).replace(/'/g, "''")}' AS db (READ_ONLY); USE db; ${sql}" (attach the file under another name: opened directly, its catalog takes the file's name, which clashes with a schema of the same name)`;
}

/**
 * The demo drops and recreates its raw and model schemas so that it is repeatable, but only schemas it made
 * (each marked by DEMO_MARKER_TABLE) or ones holding nothing: a raw schema with collected events, views over a
 * destination's tables or tables of any kind, or a model schema with built models, is refused. Each schema is
 * judged on its own mark: a marked model schema says nothing of the `--raw-schema` beside it, which may be a
 * real one. Dropping a schema of views would also drop, on PostgreSQL, every view elsewhere built on them.
 */
async function resetSchemas(ctx: CommandContext, wh: Warehouse): Promise<void> {
  const { rawSchema, schema } = ctx.config;
  if (!(await wh.tableExists(rawSchema, DEMO_MARKER_TABLE))) {
    const raw = await listRelations(wh, rawSchema);
    // every call table, so that the count says how much would be lost (identifies and pages count too)
    const calls = raw.filter(
      (r) => !r.view && r.name !== RAW_TABLES.rejected_events.name && Object.hasOwn(RAW_TABLES, r.name),
    );
    if (calls.length > 0) {
      const [{ n }] = await wh.query<{ n: number }>(
        `select ${calls.map((r) => `(select count(*) from ${quoteIdent(rawSchema)}.${quoteIdent(r.name)})`).join(' + ')} as n`,
      );
      if (Number(n) > 0) {
        throw new UserError(
          `The warehouse ${wh.displayUrl} already holds ${plural(Number(n), 'collected event')} in schema ${rawSchema} ` +
            'that the demo did not write: give the demo its own file, e.g. --warehouse duckdb://./demo.duckdb, or another --raw-schema.',
        );
      }
    }
    if (raw.length > 0) {
      const views = raw.filter((r) => r.view).map((r) => r.name);
      const shown = (views.length ? views : raw.map((r) => r.name)).slice(0, 5).join(', ');
      throw new UserError(
        `The schema ${rawSchema} of ${wh.displayUrl} already holds ${views.length ? `views (${shown})` : `tables (${shown})`} ` +
          'the demo did not create: give the demo its own file, e.g. --warehouse duckdb://./demo.duckdb, or another --raw-schema.',
      );
    }
  }
  // Built marts and the sync's delivery state are not the demo's to drop either.
  if (!(await wh.tableExists(schema, DEMO_MARKER_TABLE)) && (await listRelations(wh, schema)).length > 0) {
    throw new UserError(
      `The schema ${schema} of ${wh.displayUrl} already holds tables the demo did not create: ` +
        'give the demo its own file, e.g. --warehouse duckdb://./demo.duckdb, or another --schema.',
    );
  }
  for (const s of [schema, rawSchema]) await wh.exec(`drop schema if exists ${quoteIdent(s)} cascade`);
  // Each marker goes in before anything else of its schema: a demo stopped part-way may still be re-run.
  // The raw schema's also makes serve and load refuse it under any --schema (refuseDemoWarehouse).
  for (const s of [schema, rawSchema]) {
    await wh.exec(`create schema if not exists ${quoteIdent(s)}`);
    await wh.exec(
      `create table if not exists ${quoteIdent(s)}.${quoteIdent(DEMO_MARKER_TABLE)} (created_at timestamptz, as_of_date date)`,
    );
  }
  await ensureRawTables(wh, rawSchema);
}

async function land(
  ctx: CommandContext,
  ingestor: Ingestor,
  events: Iterable<object>,
  label: string,
): Promise<{ landed: number; rejected: number }> {
  const progress = ctx.out.progress();
  progress.start(undefined, label, 'events');
  let landed = 0;
  let rejected = 0;
  let batch: object[] = [];
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const r = await ingestor.ingest(batch);
    landed += r.landed;
    rejected += r.rejected.length;
    batch = [];
    progress.update(landed + rejected);
  };
  for (const e of events) {
    batch.push(e);
    if (batch.length >= BATCH) await flush();
  }
  await flush();
  await ingestor.flush();
  progress.stop();
  return { landed, rejected };
}

/** The vars that say where the raw events are (the package's sources). */
function isLocationVar(name: string): boolean {
  return name === 'lifecycle__raw_schema' || /^lifecycle__\w+_table$/.test(name);
}

export const demoCommand: CommandSpec = {
  name: 'demo',
  summary: 'land sample events in the embedded DuckDB, then build, test, report and a dry-run sync',
  options: [
    new Option('--as-of <date>', 'the demo’s as-of date D (YYYY-MM-DD, default: today in UTC)'),
    new Option(
      '--users <n>',
      'number of generated users (1 to 1000000, default 3000), besides the Online Retail sample’s customers',
    ),
    new Option('--seed <n>', 'seed of the generator (same seed, same events)'),
    new Option(
      '--retail <csv>',
      'the Online Retail sample to add (default: shared/datasets/online-retail-sample.csv beside the cdp-lifecycle folder, used when present)',
    ),
    new Option('--no-retail', 'leave the Online Retail sample out: only the --users generated users'),
    new Option('--html <file>', 'where to write the HTML report').default('lifecycle-report.html'),
  ],
  examples: [
    'cdp-lifecycle demo',
    'cdp-lifecycle demo --warehouse duckdb://./demo.duckdb --as-of 2024-06-30',
  ],
  notes:
    'The demo recreates its schemas (--raw-schema, --schema) on every run, and refuses to touch a warehouse\n' +
    'holding events it did not write.',
  action: async (given) => {
    // The demo builds from the events it lands, in its own --raw-schema under the default table names: vars
    // that point the package at other tables (meant for the real warehouse, from the config file or the
    // environment) would build it from those instead.
    const moved = Object.keys(given.config.vars).filter(isLocationVar);
    const ctx: typeof given = {
      ...given,
      config: {
        ...given.config,
        vars: Object.fromEntries(Object.entries(given.config.vars).filter(([k]) => !isLocationVar(k))),
      },
    };
    // Every option is checked before the warehouse is opened: the demo recreates its schemas first thing.
    const asOf = (ctx.opts.asOf as string | undefined) ?? todayIn('UTC');
    if (!isCalendarDate(asOf)) {
      throw new UsageError(`--as-of "${asOf}" is not a date: use YYYY-MM-DD.`);
    }
    const users = wholeNumberOption('--users', ctx.opts.users, 1, 1_000_000);
    const seed = wholeNumberOption('--seed', ctx.opts.seed, 0, Number.MAX_SAFE_INTEGER);
    // --no-retail sets it to false; --retail <csv> to the file
    const noRetail = ctx.opts.retail === false;
    const retailCsv = typeof ctx.opts.retail === 'string' ? path.resolve(ctx.opts.retail) : undefined;
    if (retailCsv && !fs.existsSync(retailCsv)) {
      throw new UsageError(`--retail ${String(ctx.opts.retail)}: there is no file ${retailCsv}.`);
    }
    const html = htmlOption(ctx)!;
    // a var the package refuses stops the demo before it resets its schemas and lands a quarter million events
    await checkProject(ctx, {});
    const out = ctx.out;
    const started = Date.now();
    return withWarehouse(ctx, async (wh) => {
      out.heading(`cdp-lifecycle demo — as of ${asOf}`);
      if (moved.length > 0) {
        out.warn(
          `the demo builds from the events it lands in "${ctx.config.rawSchema}"; ${moved.join(', ')} from your vars ${moved.length === 1 ? 'is' : 'are'} not used.`,
        );
      }
      out.print(
        `Warehouse: ${wh.displayUrl} (raw events in "${ctx.config.rawSchema}", models in "${ctx.config.schema}")`,
      );
      await resetSchemas(ctx, wh);

      out.heading('1. Collect');
      const { Ingestor } = await collectorPart();
      const { generateDemoEvents, retailSampleEvents, demoVars, DEMO_DEFAULTS } = await demoPart();
      const userCount = users ?? DEMO_DEFAULTS.users;
      // The demo's event lists are defaults: a var the user set (--vars, env, config file) wins, except the
      // as-of date, which is --as-of here (the generated personas are placed around it).
      const userVars = ctx.config.vars;
      if (userVars.lifecycle__as_of_date !== undefined) {
        out.warn(
          `the demo builds as of ${asOf} (its --as-of); lifecycle__as_of_date from your vars is not used.`,
        );
      }
      const vars = Object.fromEntries(
        Object.entries(demoVars(asOf)).filter(
          ([k]) => k === 'lifecycle__as_of_date' || userVars[k] === undefined,
        ),
      );
      const ingestor = new Ingestor({
        warehouse: wh,
        rawSchema: ctx.config.rawSchema,
        maxEventBytes: ctx.config.serve.maxEventBytes,
      });
      try {
        const app = await land(
          ctx,
          ingestor,
          generateDemoEvents({
            endDate: asOf,
            users: userCount,
            seed,
          }),
          'landing demo events',
        );
        out.print(
          `  ${plural(app.landed, 'event')} from a simulated app (${plural(userCount, 'user')} over ${DEMO_DEFAULTS.days} days) landed through the collector’s ingest path` +
            (app.rejected
              ? ` (${plural(app.rejected, 'event')} rejected on purpose, see rejected_events)`
              : ''),
        );
        const csv = retailCsv ?? RETAIL_SAMPLE;
        if (noRetail) {
          out.print('  (the Online Retail sample is left out: --no-retail)');
        } else if (fs.existsSync(csv)) {
          const retail = await land(
            ctx,
            ingestor,
            retailSampleEvents(csv, { shiftTo: asOf }),
            'landing the Online Retail sample',
          );
          out.print(
            `  ${plural(retail.landed, 'event')} from the real Online Retail sample (${path.basename(csv)}), its dates moved so that the last orders fall this week`,
          );
        } else {
          out.print(
            `  (the Online Retail sample is not at ${csv}, so only generated events are used: pass --retail <csv> to add a copy from elsewhere)`,
          );
        }
      } finally {
        await ingestor.close();
      }
      await wh.query(
        `insert into ${quoteIdent(ctx.config.schema)}.${quoteIdent(DEMO_MARKER_TABLE)} values (current_timestamp, cast($1 as date))`,
        [asOf],
      );

      out.heading('2. Build the lifecycle models');
      let code = await buildStep(ctx, wh, { vars, brief: true });
      if (code !== 0) return code;
      out.heading('3. Test them');
      code = await testStep(ctx, wh, { vars, brief: true });
      if (code !== 0) return code;

      out.heading('4. Report');
      await printReport(ctx, wh, html);

      out.heading('5. What a sync would push (dry run, nothing sent)');
      const dry = {
        ...ctx,
        config: { ...ctx.config, sync: { ...ctx.config.sync, to: ctx.config.sync.to ?? 'segment' } },
      };
      code = await syncStep(dry, wh, { dryRun: true });

      out.heading('Next steps');
      out.print(`  • Open ${html} in a browser for the charts.`);
      out.print(
        `  • Query the models: ${queryHint(ctx.config.warehouse, `select lifecycle_status, count(*) from ${ctx.config.schema}.user_lifecycle group by 1`)}`,
      );
      // The demo reads its location from its flags alone; the printed commands pass it whole, so a config
      // file or environment meant for the real warehouse does not redirect them.
      const at = `--warehouse ${shellWord(wh.displayUrl)} --raw-schema ${shellWord(ctx.config.rawSchema)} --schema ${shellWord(ctx.config.schema)}`;
      // An in-memory warehouse is gone with this process: another command would find nothing there.
      const loc = parseWarehouseUrl(ctx.config.warehouse);
      const inMemory = loc.kind === 'duckdb' && loc.path === ':memory:';
      if (inMemory) {
        out.print(
          '  • Run the demo on a DuckDB file (--warehouse duckdb://./demo.duckdb) to report, rebuild or query it again afterwards: this in-memory warehouse is gone when the demo ends.',
        );
      } else {
        out.print(`  • See the report again at any time: cdp-lifecycle report ${at}`);
        // A plain `build` would use the package defaults (no non-activity or core events): say what the demo set.
        out.print(
          `  • Rebuild as the demo did: cdp-lifecycle build ${at} --vars ${shellQuote(JSON.stringify({ ...userVars, ...vars }))}`,
        );
      }
      out.print(
        '  • Collect your own events, in a warehouse of their own: cdp-lifecycle serve --warehouse <url> --write-key <key>, then point Segment or RudderStack at it.',
      );
      out.print(
        '  • Once they are built, push the traits: cdp-lifecycle sync --warehouse <url> --to segment --write-key <key of a separate source> (a real sync refuses the demo’s generated users).',
      );
      out.print(`\nDone in ${seconds(Date.now() - started)}.`);
      return code;
    });
  },
};
