import { UserError, errorMessage, warehouseRefusal } from '../errors';
import { createProgress, type Progress } from '../util/progress';

const CODES = {
  bold: [1, 22],
  dim: [2, 22],
  red: [31, 39],
  green: [32, 39],
  yellow: [33, 39],
  cyan: [36, 39],
} as const;
export type Style = keyof typeof CODES;

/** Where output goes: a terminal, a pipe, or (for scheduled runs inside `serve`) the structured log. */
export type OutStream = Pick<NodeJS.WriteStream, 'write'> &
  Partial<Pick<NodeJS.WriteStream, 'isTTY' | 'hasColors' | 'columns'>>;

/**
 * Colour when the stream is a terminal that wants it (`hasColors` honours NO_COLOR and FORCE_COLOR there), or
 * anywhere FORCE_COLOR asks for it (a CI log that renders ANSI, `| less -R`), as in Node itself.
 */
export function wantsColor(
  stream: OutStream,
  env: Record<string, string | undefined> = process.env,
): boolean {
  // Node's own reading (tty.getColorDepth): '', 1, true, 2 and 3 turn colour on, any other value off
  const force = env.FORCE_COLOR;
  if (force !== undefined) return ['', '1', 'true', '2', '3'].includes(force);
  return Boolean(stream.isTTY) && typeof stream.hasColors === 'function' && stream.hasColors();
}

/**
 * The CLI's voice. Results (reports, summaries) go to stdout so they can be piped; progress, logs and errors
 * go to stderr.
 */
/**
 * The width results should wrap to: the terminal's, else a positive COLUMNS (as `ls` reads it), else none
 * (a pipe keeps long lines whole).
 */
export function outputWidth(
  stream: OutStream,
  env: Record<string, string | undefined> = process.env,
): number | undefined {
  if (stream.isTTY && typeof stream.columns === 'number' && stream.columns > 0) return stream.columns;
  const fromEnv = Number(env.COLUMNS);
  return Number.isInteger(fromEnv) && fromEnv > 0 ? fromEnv : undefined;
}

export class Output {
  readonly color: boolean;
  readonly errColor: boolean;
  /** See outputWidth. */
  readonly width: number | undefined;
  constructor(
    readonly verbose = false,
    readonly stdout: OutStream = process.stdout,
    readonly stderr: OutStream = process.stderr,
    /** false: plain text whatever the environment says (output that becomes log records). */
    color?: false,
  ) {
    this.color = color ?? wantsColor(stdout);
    this.errColor = color ?? wantsColor(stderr);
    this.width = outputWidth(stdout);
  }

  style(text: string, style: Style, forStderr = false): string {
    if (!(forStderr ? this.errColor : this.color)) return text;
    const [open, close] = CODES[style];
    return `\u001b[${open}m${text}\u001b[${close}m`;
  }

  /**
   * A result as data, for a structured log (a scheduled run inside `serve` logs each step's figures as
   * fields, so that an alert needs no parsing of the text); the terminal has the printed summary instead.
   */
  record(_level: 'info' | 'error', _fields: Record<string, unknown>, _message: string): void {
    // the text summary printed beside it says the same for a reader
  }

  private runningShown = false;

  /**
   * What is running now, on a terminal only: one line on stderr, replaced by the next one and cleared before
   * anything else is written, so that a step of a minute (a model on a large warehouse) does not leave the
   * screen still. Logs and pipes get only the lines written when a step ends.
   */
  running(text: string): void {
    if (!this.stderr.isTTY) return;
    const cols =
      typeof this.stderr.columns === 'number' && this.stderr.columns > 1 ? this.stderr.columns : 80;
    // one screen line: \r clears only the line it is on
    const line = text.length >= cols ? `${text.slice(0, cols - 2)}…` : text;
    this.stderr.write(`\r\u001b[2K${line}`);
    this.runningShown = true;
  }

  /** Clears the line of running(), if one is shown. */
  endRunning(): void {
    if (!this.runningShown) return;
    this.runningShown = false;
    this.stderr.write('\r\u001b[2K');
  }

  /** A result line on stdout. */
  print(text = ''): void {
    this.endRunning();
    this.stdout.write(text + '\n');
  }

  /** A section heading on stdout. */
  heading(text: string): void {
    this.print();
    this.print(this.style(text, 'bold'));
  }

  /** A status line on stderr (what is happening now). */
  info(text: string): void {
    this.endRunning();
    this.stderr.write(text + '\n');
  }

  warn(text: string): void {
    this.endRunning();
    this.stderr.write(`${this.style('warning:', 'yellow', true)} ${text}\n`);
  }

  debug(text: string): void {
    if (!this.verbose) return;
    this.endRunning();
    this.stderr.write(this.style(text, 'dim', true) + '\n');
  }

  error(text: string): void {
    this.endRunning();
    this.stderr.write(`${this.style('error:', 'red', true)} ${text}\n`);
  }

  /**
   * Prints an error the way SPEC §8 asks (one sentence naming what to fix, no stack trace unless --verbose)
   * and returns its exit code.
   */
  failure(err: unknown): number {
    // the database's own set-up (read-only, a timeout, a missing grant) is the user's to fix, not a defect
    const refusal = err instanceof UserError ? undefined : warehouseRefusal(err);
    const message = refusal ?? firstLine(errorMessage(err));
    this.error(message);
    if (this.verbose) this.printStack(err);
    else if (!(err instanceof UserError) && refusal === undefined) {
      this.info(
        'This was unexpected: re-run with --verbose to see the details, and report it if it persists.',
      );
    }
    return err instanceof UserError ? err.exitCode : 1;
  }

  private printStack(err: unknown): void {
    let e: unknown = err;
    for (let depth = 0; e instanceof Error && depth < 5; depth++) {
      this.info(this.style(e.stack ?? e.message, 'dim', true));
      e = e.cause;
      if (e instanceof Error) this.info('caused by:');
    }
  }

  progress(): Progress {
    if (process.env.JEST_WORKER_ID) return createProgress('silent');
    if (this.stderr === process.stderr) return createProgress('auto', process.stderr);
    return createProgress('lines', this.stderr as NodeJS.WriteStream, 60_000);
  }
}

export function plural(n: number, word: string, many = `${word}s`): string {
  return `${n.toLocaleString('en-US')} ${n === 1 ? word : many}`;
}

export function seconds(ms: number): string {
  return ms < 1000 ? `${ms} ms` : `${(ms / 1000).toFixed(1)} s`;
}

function firstLine(message: string): string {
  const line = message.trim().split('\n')[0];
  return line === '' ? 'unknown error' : line;
}

/** POSIX single quotes, so the printed command runs as printed. */
export function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

/** A word of a printed shell command: as it is when the shell reads it so, else quoted (a space, a quote…). */
export function shellWord(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : shellQuote(s);
}
