import { Command, CommanderError } from 'commander';
import { UserError, errorMessage } from '../errors';

/** Builds the CLI program; commands are registered by their modules. */
export function buildProgram(): Command {
  const program = new Command('cdp-lifecycle')
    .description('Lifecycle status, RFM and growth accounting for Segment and RudderStack users')
    .option('--verbose', 'show stack traces and debug logs')
    .exitOverride();
  program
    .command('demo')
    .description('land sample events into the embedded DuckDB, then build, test, report and a dry-run sync')
    .action(() => {
      console.log('cdp-lifecycle demo: not implemented yet');
    });
  return program;
}

/** Runs the CLI and returns the exit code (SPEC §8: 0 success, 1 failure, 2 usage error). */
export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      if (
        err.code === 'commander.helpDisplayed' ||
        err.code === 'commander.version' ||
        err.code === 'commander.help'
      )
        return 0;
      return 2;
    }
    if (err instanceof UserError) {
      console.error(`error: ${err.message}`);
      return err.exitCode;
    }
    console.error(`error: ${errorMessage(err)}`);
    if (argv.includes('--verbose') && err instanceof Error) console.error(err.stack);
    return 1;
  }
}
