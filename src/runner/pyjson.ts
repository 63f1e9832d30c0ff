/**
 * Python's `json.dumps` as dbt's `tojson` and Jinja2's `|tojson` print it: `", "` and `": "` separators,
 * non-ASCII escaped (`ensure_ascii`), floats as Python's repr (`1e-05`, `1e+16`), NaN and Infinity bare.
 * JSON text a model renders into SQL or hashes then matches what dbt-core renders for the same project.
 */

/** Python's repr of a float; integral numbers print as Python ints do (a var of 3 is an int there). */
function pyNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? 'Infinity' : '-Infinity';
  if (Number.isInteger(n)) return Object.is(n, -0) ? '-0.0' : BigInt(n).toString();
  // toExponential() without digits gives the shortest round-trip digits, the same ones Python's repr uses
  const [mantissa, expText] = n.toExponential().split('e');
  const exp = Number(expText);
  if (exp < -4 || exp >= 16)
    return `${mantissa}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  return String(n);
}

function pyString(s: string): string {
  // JSON.stringify escapes the quote, the backslash and control characters as Python does (\n, \t, \u0000…);
  // ensure_ascii also escapes DEL and everything past it, one UTF-16 unit at a time, as Python does
  return JSON.stringify(s).replace(
    /[\u007f-\uffff]/g,
    (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/** Where Python raises TypeError (a value JSON has no form for): an error in dbt too. */
export class PyJsonTypeError extends Error {}

/** Where Python raises ValueError (a circular reference): dbt's `tojson` then returns its `default`. */
export class PyJsonValueError extends Error {}

function dumps(v: unknown, sortKeys: boolean, seen: Set<unknown>): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return pyNumber(v);
  if (typeof v === 'string') return pyString(v);
  if (typeof v === 'object') {
    if (seen.has(v)) throw new PyJsonValueError('Circular reference detected');
    seen.add(v);
    try {
      if (Array.isArray(v)) return `[${v.map((x) => dumps(x, sortKeys, seen)).join(', ')}]`;
      const proto = Object.getPrototypeOf(v) as unknown;
      if (proto !== Object.prototype && proto !== null) {
        throw new PyJsonTypeError(
          `Object of type ${(v as object).constructor?.name ?? 'object'} is not JSON serializable`,
        );
      }
      const keys = Object.keys(v).filter((k) => k !== '__keywords');
      if (sortKeys) keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      return `{${keys.map((k) => `${pyString(k)}: ${dumps((v as Record<string, unknown>)[k], sortKeys, seen)}`).join(', ')}}`;
    } finally {
      seen.delete(v);
    }
  }
  throw new PyJsonTypeError(`Object of type ${typeof v} is not JSON serializable`);
}

/** `json.dumps(v, sort_keys=sortKeys)`; throws where Python raises. */
export function pyJsonDumps(v: unknown, sortKeys = false): string {
  return dumps(v, sortKeys, new Set());
}

/** Jinja2's `|tojson`: sorted keys, and the characters HTML gives meaning to escaped. */
export function jinjaToJson(v: unknown): string {
  return pyJsonDumps(v, true)
    .replace(/</g, '\\u003c')
    .replace(/>/g, '\\u003e')
    .replace(/&/g, '\\u0026')
    .replace(/'/g, '\\u0027');
}
