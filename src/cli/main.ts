import { Command, CommanderError, type OutputConfiguration } from 'commander';
import { addCommand } from './context';
import { Output } from './output';
import { COMMANDS } from './commands';

import { packageInfo } from './parts';

/**
 * Builds the commander program with every command of SPEC §8. `onExit` receives an action's exit code;
 * `output` redirects commander's own output (help, usage errors), e.g. to capture help text.
 */
export function buildProgram(
  onExit: (code: number) => void = () => undefined,
  output?: OutputConfiguration,
): Command {
  const program = new Command('cdp-lifecycle')
    .description(
      'Lifecycle status, RFM segments and growth accounting for Segment and RudderStack users, ' +
        'computed in your warehouse (DuckDB or PostgreSQL) and synced back to the CDP as traits.',
    )
    .version(packageInfo().version, '-V, --version', 'print the version')
    .exitOverride()
    .configureOutput(output ?? {})
    .showHelpAfterError('(run `cdp-lifecycle --help` or `cdp-lifecycle <command> --help` for usage)')
    .addHelpText(
      'after',
      [
        '',
        'Getting started:',
        '  $ cdp-lifecycle demo                         # everything on sample data, in ./lifecycle.duckdb',
        '  $ cdp-lifecycle serve --write-key KEY --warehouse duckdb://./events.duckdb   # collect your events',
        '  $ cdp-lifecycle run --to segment --write-key KEY --warehouse duckdb://./events.duckdb',
        '',
        'Settings come from flags, then LIFECYCLE_* environment variables, then ./cdp-lifecycle.yml.',
        'Exit codes: 0 success, 1 failure, 2 usage error.',
      ].join('\n'),
    );
  for (const spec of COMMANDS) addCommand(program, spec, onExit);
  addHelpCommand(program);
  return program;
}

/**
 * `help [command]` in place of commander's own, which answers `help <unknown>` with the whole help and exit 2
 * but never says the command is unknown. Excess words and flags are let through, as commander's own does.
 */
function addHelpCommand(program: Command): void {
  program
    .command('help [command]')
    .description('display help for command')
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .action((_name: unknown, _options: unknown, help: Command) => {
      // flags are skipped, as commander's own does: `help --verbose` is the program's help
      const name = help.args.find((a) => !a.startsWith('-'));
      if (name === undefined) program.help();
      const command = program.commands.find((c) => c.name() === name);
      if (command) command.help();
      // a twin of the program parses the name alone, so the error and its suggestion are the very ones of
      // `cdp-lifecycle <name>` (the twin throws, being built with exitOverride)
      buildProgram(undefined, program.configureOutput()).parse([name], { from: 'user' });
    });
}

/** Runs the CLI and returns the exit code (SPEC §8: 0 success, 1 failure, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
  let code = 0;
  const program = buildProgram((c) => (code = c));
  const verbose = argv.includes('--verbose');
  const out = new Output(verbose);
  try {
    await program.parseAsync(unknownCommandFirst(program, argv));
    return code;
  } catch (err) {
    if (err instanceof CommanderError) {
      // commander has already printed its message (unknown command, bad option…); help exits 0.
      if (err.code === 'commander.excessArguments') modelArgumentHint(program, argv, out);
      return err.exitCode === 0 ? 0 : 2;
    }
    return out.failure(err);
  }
}

/**
 * `cdp-lifecycle buld --help`: commander answers the program's --help before it looks at the command, so a
 * mistyped command printed the whole help (exit 0) without a word about the typo. The unknown word alone is
 * parsed then, which gives the error and suggestion of `cdp-lifecycle buld`.
 */
function unknownCommandFirst(program: Command, argv: string[]): string[] {
  const args = argv.slice(2);
  const first = args[0];
  if (first === undefined || first.startsWith('-')) return argv;
  if (!args.some((a) => a === '--help' || a === '-h')) return argv;
  const known = program.commands.some((c) => c.name() === first || c.aliases().includes(first));
  return known ? argv : [...argv.slice(0, 2), first];
}

/**
 * `cdp-lifecycle build user_lifecycle`: dbt's habit of naming models goes through --select here, so the
 * "too many arguments" of a command that takes --select says so.
 */
function modelArgumentHint(program: Command, argv: string[], out: Output): void {
  const args = argv.slice(2);
  const at = args.findIndex((a) => program.commands.some((c) => c.name() === a));
  if (at < 0) return;
  const command = program.commands.find((c) => c.name() === args[at]) as Command;
  if (!command.options.some((o) => o.long === '--select')) return;
  // commander keeps the operands it was given, the excess ones included, in args
  const extra = command.args.find((a) => !a.startsWith('-'));
  if (extra === undefined) return;
  out.info(`hint: models are selected with --select: cdp-lifecycle ${command.name()} --select ${extra}`);
}
