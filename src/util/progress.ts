import { SingleBar, Presets } from 'cli-progress';

/**
 * Progress for long work (loading files, building models, syncing). On a TTY it draws a bar on stderr; off a
 * TTY (CI, cron, logs) it prints a plain line at most every `intervalMs`, so scheduled runs still show life
 * without flooding the log. `silent` reports nothing (tests, library use).
 */
export interface Progress {
  /** `unit` names what is counted (`models`, `users`); `bytes` shows sizes in MB. */
  start(total: number | undefined, label: string, unit?: string): void;
  update(done: number, detail?: string): void;
  increment(by?: number, detail?: string): void;
  stop(summary?: string): void;
}

export type ProgressMode = 'auto' | 'bar' | 'lines' | 'silent';

export function createProgress(
  mode: ProgressMode = 'auto',
  stream: NodeJS.WriteStream = process.stderr,
  intervalMs = 5000,
): Progress {
  const effective = mode === 'auto' ? (stream.isTTY ? 'bar' : 'lines') : mode;
  if (effective === 'silent') return silentProgress;
  if (effective === 'bar') return new BarProgress(stream);
  return new LineProgress(stream, intervalMs);
}

/** A count with its unit, so a log line such as `load 9.1/34.3 MB` says what the numbers are. */
function counted(value: number, unit: string | undefined): string {
  return unit === 'bytes' ? (value / 1e6).toFixed(1) : String(value);
}

function unitSuffix(unit: string | undefined): string {
  if (unit === undefined) return '';
  return unit === 'bytes' ? ' MB' : ` ${unit}`;
}

export const silentProgress: Progress = {
  start: () => undefined,
  update: () => undefined,
  increment: () => undefined,
  stop: () => undefined,
};

class BarProgress implements Progress {
  private bar: SingleBar | undefined;
  private done = 0;
  constructor(private readonly stream: NodeJS.WriteStream) {}
  start(total: number | undefined, label: string, unit?: string): void {
    this.done = 0;
    const suffix = unitSuffix(unit);
    const format =
      total === undefined
        ? `${label} {value}${suffix} {detail}`
        : `${label} [{bar}] {percentage}% {value}/{total}${suffix} {detail} eta {eta_formatted}`;
    this.bar = new SingleBar(
      {
        format,
        stream: this.stream,
        hideCursor: true,
        clearOnComplete: false,
        formatValue: (v: number, _o: unknown, type: string) =>
          type === 'value' || type === 'total' ? counted(v, unit) : String(v),
      },
      Presets.shades_classic,
    );
    this.bar.start(total ?? 0, 0, { detail: '' });
  }
  update(done: number, detail = ''): void {
    this.done = done;
    this.bar?.update(done, { detail });
  }
  increment(by = 1, detail = ''): void {
    this.update(this.done + by, detail);
  }
  stop(summary?: string): void {
    this.bar?.stop();
    this.bar = undefined;
    if (summary) this.stream.write(summary + '\n');
  }
}

class LineProgress implements Progress {
  private label = '';
  private unit: string | undefined;
  private total: number | undefined;
  private done = 0;
  private last = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly intervalMs: number,
  ) {}
  start(total: number | undefined, label: string, unit?: string): void {
    this.label = label;
    this.unit = unit;
    this.total = total;
    this.done = 0;
    this.last = Date.now();
  }
  update(done: number, detail = ''): void {
    this.done = done;
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    const of = this.total === undefined ? '' : `/${counted(this.total, this.unit)}`;
    this.stream.write(
      `${this.label} ${counted(done, this.unit)}${of}${unitSuffix(this.unit)}${detail ? ', ' + detail : ''}\n`,
    );
  }
  increment(by = 1, detail = ''): void {
    this.update(this.done + by, detail);
  }
  stop(summary?: string): void {
    if (summary) this.stream.write(summary + '\n');
  }
}
