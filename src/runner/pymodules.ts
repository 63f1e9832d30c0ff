/**
 * The small part of Python's `datetime` that dbt exposes as `run_started_at` and `modules.datetime`, enough
 * for the usual `run_started_at.strftime('%Y-%m-%d')`, `modules.datetime.date.today()` and
 * `modules.datetime.date(2024, 1, 31)`. All in UTC, as dbt's `run_started_at` is.
 */
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function strftime(d: Date, fmt: string, dateOnly: boolean, micro = d.getUTCMilliseconds() * 1000): string {
  return fmt.replace(/%([a-zA-Z%])/g, (_, c: string) => {
    switch (c) {
      case 'Y':
        return String(d.getUTCFullYear());
      case 'm':
        return pad(d.getUTCMonth() + 1);
      case 'd':
        return pad(d.getUTCDate());
      case 'H':
        return dateOnly ? '00' : pad(d.getUTCHours());
      case 'M':
        return dateOnly ? '00' : pad(d.getUTCMinutes());
      case 'S':
        return dateOnly ? '00' : pad(d.getUTCSeconds());
      case 'f':
        return dateOnly ? '000000' : pad(micro, 6);
      case 'j': {
        const start = Date.UTC(d.getUTCFullYear(), 0, 1);
        return pad(Math.floor((d.getTime() - start) / 86400000) + 1, 3);
      }
      case 'z':
        return '+0000';
      case 'Z':
        return 'UTC';
      case '%':
        return '%';
      default:
        return '%' + c;
    }
  });
}

export class PyDate {
  constructor(protected readonly d: Date) {}
  get year(): number {
    return this.d.getUTCFullYear();
  }
  get month(): number {
    return this.d.getUTCMonth() + 1;
  }
  get day(): number {
    return this.d.getUTCDate();
  }
  strftime(fmt: string): string {
    return strftime(this.d, fmt, true);
  }
  isoformat(): string {
    return this.d.toISOString().slice(0, 10);
  }
  toString(): string {
    return this.isoformat();
  }
}

export class PyDateTime extends PyDate {
  /**
   * `naive`: made by the `datetime(…)` constructor without a tzinfo, so it prints without an offset, as Python
   * does; `micro`: its microseconds (a JS Date holds milliseconds only).
   */
  constructor(
    d: Date,
    private readonly naive = false,
    private readonly micro = d.getUTCMilliseconds() * 1000,
  ) {
    super(d);
  }
  get microsecond(): number {
    return this.micro;
  }
  get hour(): number {
    return this.d.getUTCHours();
  }
  get minute(): number {
    return this.d.getUTCMinutes();
  }
  get second(): number {
    return this.d.getUTCSeconds();
  }
  override strftime(fmt: string): string {
    return strftime(this.d, fmt, false, this.micro);
  }
  date(): PyDate {
    return new PyDate(this.d);
  }
  timestamp(): number {
    return this.d.getTime() / 1000;
  }
  /** Python's: the microseconds only when not 0, the offset only when aware. */
  override isoformat(): string {
    return (
      this.d.toISOString().slice(0, 19) +
      (this.micro ? `.${pad(this.micro, 6)}` : '') +
      (this.naive ? '' : '+00:00')
    );
  }
  /** Python's str(datetime): `2024-01-02 03:04:05.678000+00:00`. */
  override toString(): string {
    return this.isoformat().replace('T', ' ');
  }
}

const FIELDS = ['year', 'month', 'day', 'hour', 'minute', 'second', 'microsecond'] as const;

/**
 * `date(2024, 1, 31)` and `datetime(2024, 1, 31, 6, 0, 0)`, positional or by keyword (nunjucks passes keywords
 * as a last object marked __keywords), checked as Python checks them (ValueError: month must be in 1..12…).
 */
function construct(args: unknown[], withTime: boolean): { date: Date; micro: number } {
  const last = args[args.length - 1] as Record<string, unknown> | undefined;
  const kw = last && typeof last === 'object' && last.__keywords === true ? last : {};
  const pos = kw === last ? args.slice(0, -1) : args;
  const names = withTime ? FIELDS : FIELDS.slice(0, 3);
  const v = names.map((name, i) => {
    const raw = i < pos.length ? pos[i] : kw[name];
    if (raw === undefined) {
      if (i < 3) throw new Error(`${withTime ? 'datetime' : 'date'}() is missing its ${name}`);
      return 0;
    }
    if (typeof raw !== 'number' || !Number.isInteger(raw))
      throw new Error(`${name} must be an integer, not ${String(raw)}`);
    return raw;
  });
  const [year, month, day, hour = 0, minute = 0, second = 0, micro = 0] = v;
  const check = (name: string, x: number, lo: number, hi: number): void => {
    if (x < lo || x > hi) throw new Error(`${name} must be in ${lo}..${hi}`);
  };
  check('year', year, 1, 9999);
  check('month', month, 1, 12);
  const monthDays = month === 2 ? (isLeap(year) ? 29 : 28) : [4, 6, 9, 11].includes(month) ? 30 : 31;
  check('day', day, 1, monthDays);
  check('hour', hour, 0, 23);
  check('minute', minute, 0, 59);
  check('second', second, 0, 59);
  check('microsecond', micro, 0, 999999);
  const d = new Date(Date.UTC(2000, month - 1, day, hour, minute, second, Math.floor(micro / 1000)));
  d.setUTCFullYear(year); // Date.UTC reads years 0-99 as 1900-1999
  return { date: d, micro };
}

function isLeap(y: number): boolean {
  return (y % 4 === 0 && y % 100 !== 0) || y % 400 === 0;
}

/**
 * The datetime module dbt exposes: the classes are callable (constructors) and carry their class methods.
 * No timedelta: nunjucks has no operator overloading, so `d - timedelta(days=1)` could not work; date
 * arithmetic belongs in SQL (`dbt.dateadd`).
 */
export function createModules(now: () => Date = () => new Date()): Record<string, unknown> {
  const datetime = Object.assign(
    (...args: unknown[]) => {
      const { date, micro } = construct(args, true);
      return new PyDateTime(date, true, micro);
    },
    {
      now: () => new PyDateTime(now(), true),
      utcnow: () => new PyDateTime(now(), true),
    },
  );
  const date = Object.assign((...args: unknown[]) => new PyDate(construct(args, false).date), {
    today: () => new PyDate(now()),
  });
  return { datetime: { datetime, date } };
}
