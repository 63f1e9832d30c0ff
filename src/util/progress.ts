import { SingleBar, Presets } from 'cli-progress';

/**
 * Progress for long work (loading files, building models, syncing). On a TTY it draws a bar on stderr; off a
 * TTY (CI, cron, logs) it prints a plain line at most every `intervalMs`, so scheduled runs still show life
 * without flooding the log. `silent` reports nothing (tests, library use).
 */
export interface Progress {
  start(total: number | undefined, label: string): void;
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
  start(total: number | undefined, label: string): void {
    this.done = 0;
    const format =
      total === undefined
        ? `${label} {value} {detail}`
        : `${label} [{bar}] {percentage}% {value}/{total} {detail} eta {eta_formatted}`;
    this.bar = new SingleBar(
      { format, stream: this.stream, hideCursor: true, clearOnComplete: false },
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
  private total: number | undefined;
  private done = 0;
  private last = 0;
  constructor(
    private readonly stream: NodeJS.WriteStream,
    private readonly intervalMs: number,
  ) {}
  start(total: number | undefined, label: string): void {
    this.label = label;
    this.total = total;
    this.done = 0;
    this.last = Date.now();
  }
  update(done: number, detail = ''): void {
    this.done = done;
    const now = Date.now();
    if (now - this.last < this.intervalMs) return;
    this.last = now;
    const of = this.total === undefined ? '' : `/${this.total}`;
    this.stream.write(`${this.label} ${done}${of}${detail ? ' ' + detail : ''}\n`);
  }
  increment(by = 1, detail = ''): void {
    this.update(this.done + by, detail);
  }
  stop(summary?: string): void {
    if (summary) this.stream.write(summary + '\n');
  }
}
