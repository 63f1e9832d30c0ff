import * as fs from 'node:fs';
import * as path from 'node:path';
import { Command, Option } from 'commander';
import { UsageError, UserError, WarehouseUnavailableError } from '../errors';
import { openWarehouse, parseWarehouseUrl, type Warehouse } from '../warehouse';
import { resolveConfig, type ResolvedConfig } from './config';
import { Output } from './output';
import { SETTINGS } from './settings';

/** What every command action receives. */
export interface CommandContext {
  command: string;
  config: ResolvedConfig;
  out: Output;
  verbose: boolean;
  /** The command's own parsed options (flags that are not settings, e.g. --dry-run). */
  opts: Record<string, unknown>;
}

/** An action returns its exit code (0 when it returns nothing). */
export type Action = (ctx: CommandContext, args: string[]) => Promise<number | void>;

export interface CommandSpec {
  name: string;
  summary: string;
  /** Positional arguments in commander syntax, e.g. '<files...>'. */
  args?: string;
  /** Extra, command-specific options (settings flags are added from SETTINGS). */
  options?: Option[];
  examples: string[];
  /** Paragraph printed after the options in --help. */
  notes?: string;
  action: Action;
}

function defaultText(value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.join(',');
  if (typeof value === 'object') return '';
  return String(value);
}

/** Adds a command with its settings flags, --config and --verbose, and the examples to its help. */
export function addCommand(program: Command, spec: CommandSpec, onExit: (code: number) => void): Command {
  const cmd = program.command(spec.args ? `${spec.name} ${spec.args}` : spec.name).description(spec.summary);
  for (const setting of SETTINGS) {
    if (!setting.flag || !(setting.flagOn ?? setting.commands).includes(spec.name)) continue;
    const extras: string[] = [];
    // a flag-only setting of this command (the demo's location) does not read its environment variable
    if (setting.env && !setting.flagOnly?.includes(spec.name)) extras.push(`env: ${setting.env}`);
    const def = defaultText(setting.default);
    if (def) extras.push(`default: ${def}`);
    const desc = setting.help + (extras.length ? ` (${extras.join(', ')})` : '');
    const opt = new Option(setting.flag, desc);
    if (setting.choices) opt.choices([...setting.choices]);
    if (setting.type === 'string[]')
      opt.argParser((v: string, prev: string[] | undefined) => [...(prev ?? []), v]);
    cmd.addOption(opt);
  }
  for (const opt of spec.options ?? []) cmd.addOption(opt);
  cmd.option(
    '--config <file>',
    'settings file (default: ./cdp-lifecycle.yml when present; env: LIFECYCLE_CONFIG)',
  );
  cmd.option('--verbose', 'debug logs, and stack traces on errors');
  const help = ['', 'Examples:', ...spec.examples.map((e) => `  $ ${e}`)];
  if (spec.notes) help.push('', spec.notes);
  cmd.addHelpText('after', help.join('\n'));
  cmd.action(async (...received: unknown[]) => {
    // commander passes the positional arguments, then the options object, then the command.
    const command = received[received.length - 1] as Command;
    const opts = command.opts();
    const args = received.slice(0, -2).flatMap((a) => (Array.isArray(a) ? a.map(String) : [String(a)]));
    const verbose = Boolean(opts.verbose);
    const out = new Output(verbose);
    const config = resolveConfig({ command: spec.name, flags: opts });
    if (config.configFile) out.debug(`config file: ${config.configFile}`);
    let code: number | void;
    try {
      code = await spec.action({ command: spec.name, config, out, verbose, opts }, args);
    } catch (err) {
      throw namingVarSource(err, config.varSources);
    }
    onExit(code ?? 0);
  });
  return cmd;
}

/**
 * The package's macros refuse a bad var with "…: fix it in --vars or dbt_project.yml." (what a dbt user has);
 * a var set in cdp-lifecycle.yml or LIFECYCLE_VARS is named where it was set instead.
 */
export function namingVarSource(err: unknown, sources: Record<string, string>): unknown {
  if (!(err instanceof UsageError)) return err;
  const m = /^The var (\w+) (.*): fix it in --vars or dbt_project\.yml\.$/s.exec(err.message);
  const source = m ? sources[m[1]] : undefined;
  if (!m || source === undefined || source === '--vars') return err;
  return new UsageError(`The var ${m[1]} ${m[2]}: fix it in ${source}.`, { cause: err });
}

/** Commands that land events, so may create a new DuckDB file. */
const CREATES_WAREHOUSE = ['serve', 'load', 'demo'];

/** Commands that never write to the warehouse: they open a DuckDB file read-only, beside other readers. */
const READS_ONLY = ['report', 'test'];

const LOCK_ADVICE: Record<string, string> = {
  load: 'send the events to that collector (POST /v1/batch) instead, or stop it first',
  build: 'stop it, or let it build, test and sync itself with `cdp-lifecycle serve --schedule "<cron>"`',
  test: 'stop it, or let it build, test and sync itself with `cdp-lifecycle serve --schedule "<cron>"`',
  sync: 'stop it, or let it build, test and sync itself with `cdp-lifecycle serve --schedule "<cron>"`',
  run: 'stop it, or let it build, test and sync itself with `cdp-lifecycle serve --schedule "<cron>"`',
  serve: 'stop the other process first (a DuckDB file has one writer)',
  report: 'stop it for a moment, or run the report from a PostgreSQL warehouse',
  demo: 'stop it, or give the demo its own file, e.g. --warehouse duckdb://./demo.duckdb',
};

/**
 * What the process holding a DuckDB file runs, from /proc (Linux; undefined elsewhere or when it is gone):
 * `cdp-lifecycle <command>` for one of ours, else the program and its first argument.
 */
function lockHolder(pid: string): string | undefined {
  let argv: string[];
  try {
    argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean);
  } catch {
    return undefined;
  }
  // the installed bin, or the entry point itself (a checkout runs dist/cli/run.js or src/cli/run.ts)
  const bin = argv.findIndex((a) => /(^|\/)(cdp-lifecycle(\.js)?|cli\/run\.[jt]s)$/.test(a));
  if (bin >= 0) {
    const command = argv.slice(bin + 1).find((a) => !a.startsWith('-'));
    return command ? `cdp-lifecycle ${command}` : 'cdp-lifecycle';
  }
  // the program and what it runs, past its options (and the modules node preloads with -r / --import)
  const shown: string[] = [];
  for (let i = 0; i < argv.length && shown.length < 2; i++) {
    if (/^(-r|--require|--import|--loader|-e|--eval)$/.test(argv[i]!)) i++;
    else if (!argv[i]!.startsWith('-')) shown.push(path.basename(argv[i]!));
  }
  return shown.length ? shown.join(' ') : undefined;
}

/**
 * Opens the configured warehouse, runs `fn`, and always closes it. A DuckDB file locked by another process
 * (usually a running `serve`) becomes one sentence saying what to do instead for this command.
 */
export async function withWarehouse<T>(ctx: CommandContext, fn: (wh: Warehouse) => Promise<T>): Promise<T> {
  const loc = parseWarehouseUrl(ctx.config.warehouse);
  ctx.out.debug(`warehouse: ${loc.displayUrl}`);
  // Opening a DuckDB path creates the file: a mistyped --warehouse would leave an empty file behind and fail
  // later with "table … does not exist". Only the commands that land events may start a new file.
  if (
    loc.kind === 'duckdb' &&
    loc.path !== ':memory:' &&
    !CREATES_WAREHOUSE.includes(ctx.command) &&
    !fs.existsSync(path.resolve(loc.path))
  ) {
    throw new UserError(
      // demo takes its warehouse from its own flag only (never LIFECYCLE_WAREHOUSE): name the one it needs
      `There is no DuckDB file at ${path.resolve(loc.path)}: check ${ctx.config.warehouseFrom ?? '--warehouse (or LIFECYCLE_WAREHOUSE)'}, or land events there first with \`cdp-lifecycle serve\`, \`load\` or \`demo --warehouse ${loc.displayUrl}\`.`,
    );
  }
  let wh: Warehouse;
  try {
    wh = await openWarehouse(ctx.config.warehouse, { readOnly: READS_ONLY.includes(ctx.command) });
  } catch (err) {
    if (
      err instanceof WarehouseUnavailableError &&
      loc.kind === 'duckdb' &&
      /is locked by another process/.test(err.message)
    ) {
      const pid = /\(PID (\d+)\)/.exec(err.message)?.[1];
      const holder = pid ? lockHolder(pid) : undefined;
      // another command of ours finishes by itself; anything else (serve, or a program we cannot name) holds on
      const ours =
        holder !== undefined && holder.startsWith('cdp-lifecycle ') && holder !== 'cdp-lifecycle serve';
      throw new WarehouseUnavailableError(
        `The DuckDB file ${loc.path} is in use by another process${pid ? ` (PID ${pid})` : ''}, ` +
          (holder ? `\`${holder}\`` : 'probably `cdp-lifecycle serve`') +
          `: ${ours ? 'wait for it to finish, or stop it' : (LOCK_ADVICE[ctx.command] ?? 'stop it first')}.`,
        { cause: err },
      );
    }
    throw err;
  }
  try {
    return await fn(wh);
  } finally {
    await wh.close();
  }
}
