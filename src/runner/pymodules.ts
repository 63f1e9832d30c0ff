/**
 * The small part of Python's `datetime` that dbt exposes as `run_started_at` and `modules.datetime`, enough
 * for the usual `run_started_at.strftime('%Y-%m-%d')` and `modules.datetime.date.today()`. All in UTC, as
 * dbt's `run_started_at` is.
 */
const pad = (n: number, w = 2): string => String(n).padStart(w, '0');

function strftime(d: Date, fmt: string, dateOnly: boolean): string {
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
        return dateOnly ? '000000' : pad(d.getUTCMilliseconds(), 3) + '000';
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
    return strftime(this.d, fmt, false);
  }
  date(): PyDate {
    return new PyDate(this.d);
  }
  timestamp(): number {
    return this.d.getTime() / 1000;
  }
  override isoformat(): string {
    return this.d
      .toISOString()
      .replace('Z', '+00:00')
      .replace(/\.(\d{3})/, '.$1000');
  }
  /** Python's str(datetime): `2024-01-02 03:04:05.678000+00:00`. */
  override toString(): string {
    return this.isoformat().replace('T', ' ');
  }
}

export function createModules(now: () => Date = () => new Date()): Record<string, unknown> {
  return {
    datetime: {
      datetime: {
        now: () => new PyDateTime(now()),
        utcnow: () => new PyDateTime(now()),
      },
      date: {
        today: () => new PyDate(now()),
      },
    },
  };
}
