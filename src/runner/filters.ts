import type * as nunjucks from 'nunjucks';
import { jinjaToJson } from './pyjson';

/**
 * Python's `str()` as Jinja2 applies it (`| string`, `~`): None, True, False, lists and dicts print the
 * Python way, so templates that compare `var(x) | string` behave as in dbt.
 */
export function pyStr(v: unknown): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return `[${v.map(pyRepr).join(', ')}]`;
  if (typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    return `{${Object.entries(v as Record<string, unknown>)
      .map(([k, x]) => `${pyRepr(k)}: ${pyRepr(x)}`)
      .join(', ')}}`;
  }
  return String(v);
}

function pyRepr(v: unknown): string {
  if (typeof v === 'string') return `'${v.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  return pyStr(v);
}

export function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype)
    return Object.keys(v).length > 0;
  return Boolean(v);
}

function attr(v: unknown, path: string): unknown {
  let cur = v;
  for (const p of path.split('.')) cur = cur == null ? undefined : (cur as Record<string, unknown>)[p];
  return cur;
}

/**
 * Jinja2 filters nunjucks lacks or implements differently (`string` returns the object itself in nunjucks),
 * plus dbt's `as_text`/`as_bool`/`as_number`/`as_native`.
 */
export function installFilters(env: nunjucks.Environment): void {
  env.addFilter('string', (v: unknown) => pyStr(v));
  env.addFilter('as_text', (v: unknown) => pyStr(v));
  env.addFilter('as_native', (v: unknown) => v);
  env.addFilter('as_bool', (v: unknown) => (typeof v === 'string' ? v.toLowerCase() === 'true' : truthy(v)));
  env.addFilter('as_number', (v: unknown) => Number(v));
  env.addFilter('tojson', (v: unknown) => jinjaToJson(v));
  env.addFilter('unique', (v: unknown) => (Array.isArray(v) ? [...new Set(v)] : v));
  env.addFilter('min', (v: unknown) =>
    Array.isArray(v) && v.length ? v.reduce((a, b) => (b < a ? b : a)) : undefined,
  );
  env.addFilter('max', (v: unknown) =>
    Array.isArray(v) && v.length ? v.reduce((a, b) => (b > a ? b : a)) : undefined,
  );
  env.addFilter('map', function (this: unknown, v: unknown, ...args: unknown[]) {
    if (!Array.isArray(v)) return [];
    const kw = args[args.length - 1] as { __keywords?: boolean; attribute?: string } | undefined;
    if (kw && typeof kw === 'object' && kw.__keywords && kw.attribute)
      return v.map((x) => attr(x, kw.attribute!));
    const name = String(args[0]);
    const f = (env as unknown as { getFilter(n: string): (...a: unknown[]) => unknown }).getFilter(name);
    return v.map((x) => f.call(this, x, ...args.slice(1)));
  });
}
