/**
 * The Python methods of str and dict that dbt projects call in their macros (`', '.join(cols)`,
 * `name.upper()`, `d.items()`, `d.get('k', 'x')`), which nunjucks' JavaScript values lack or spell
 * differently: JavaScript's `'a-b-c'.replace('-', '_')` replaces the first match only and `'a b'.split()`
 * does not split, where Python gives `a_b_c` and `['a', 'b']`. The package itself keeps to the portable
 * subset and calls none of them; a project built through the library may.
 */

type Method = (...args: unknown[]) => unknown;

const WHITESPACE = /\s+/;

function typeName(v: unknown): string {
  if (v === null || v === undefined) return 'NoneType';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'boolean') return 'bool';
  if (Array.isArray(v)) return 'list';
  return typeof v === 'object' ? 'dict' : typeof v;
}

function stripChars(s: string, chars: unknown, left: boolean, right: boolean): string {
  if (chars === undefined || chars === null) {
    let out = s;
    if (left) out = out.replace(/^\s+/, '');
    if (right) out = out.replace(/\s+$/, '');
    return out;
  }
  const set = new Set(Array.from(String(chars)));
  const cps = Array.from(s);
  let a = 0;
  let b = cps.length;
  if (left) while (a < b && set.has(cps[a])) a++;
  if (right) while (b > a && set.has(cps[b - 1])) b--;
  return cps.slice(a, b).join('');
}

function affix(s: string, test: unknown, at: 'start' | 'end'): boolean {
  const options = Array.isArray(test) ? test : [test];
  return options.some((o) => (at === 'start' ? s.startsWith(String(o)) : s.endsWith(String(o))));
}

/** Python's str.split: on runs of whitespace without a separator; maxsplit keeps the rest in the last part. */
function split(s: string, sep?: unknown, maxsplit?: unknown): string[] {
  const max = typeof maxsplit === 'number' && maxsplit >= 0 ? maxsplit : Infinity;
  if (sep === undefined || sep === null) {
    const out: string[] = [];
    let rest = s.replace(/^\s+/, '');
    while (rest !== '') {
      if (out.length === max) {
        out.push(rest);
        break;
      }
      const m = WHITESPACE.exec(rest);
      if (!m) {
        out.push(rest);
        break;
      }
      out.push(rest.slice(0, m.index));
      rest = rest.slice(m.index + m[0].length);
    }
    return out;
  }
  const by = String(sep);
  if (by === '') throw new Error('empty separator');
  const parts = s.split(by);
  return parts.length - 1 <= max ? parts : [...parts.slice(0, max), parts.slice(max).join(by)];
}

function stringMethod(s: string, name: string): Method | undefined {
  switch (name) {
    case 'upper':
      return () => s.toUpperCase();
    case 'lower':
      return () => s.toLowerCase();
    case 'capitalize':
      return () => (s === '' ? s : s[0].toUpperCase() + s.slice(1).toLowerCase());
    case 'strip':
      return (chars?: unknown) => stripChars(s, chars, true, true);
    case 'lstrip':
      return (chars?: unknown) => stripChars(s, chars, true, false);
    case 'rstrip':
      return (chars?: unknown) => stripChars(s, chars, false, true);
    case 'startswith':
      return (p: unknown) => affix(s, p, 'start');
    case 'endswith':
      return (p: unknown) => affix(s, p, 'end');
    case 'replace':
      return (old: unknown, repl: unknown, count?: unknown) => {
        const parts = s.split(String(old));
        const n = typeof count === 'number' && count >= 0 ? count : Infinity;
        if (parts.length - 1 <= n) return parts.join(String(repl));
        return parts.slice(0, n + 1).join(String(repl)) + String(old) + parts.slice(n + 1).join(String(old));
      };
    case 'split':
      return (sep?: unknown, maxsplit?: unknown) => split(s, sep, maxsplit);
    case 'join':
      return (items: unknown) => {
        const list = Array.isArray(items) ? items : typeof items === 'string' ? Array.from(items) : [];
        list.forEach((x, i) => {
          if (typeof x !== 'string')
            throw new Error(`sequence item ${i}: expected str instance, ${typeName(x)} found`);
        });
        return list.join(s);
      };
    default:
      return undefined;
  }
}

function isPlainDict(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}

function dictMethod(d: Record<string, unknown>, name: string): Method | undefined {
  switch (name) {
    case 'items':
      return () => Object.entries(d);
    case 'keys':
      return () => Object.keys(d);
    case 'values':
      return () => Object.values(d);
    case 'get':
      return (key: unknown, fallback: unknown = null) =>
        Object.prototype.hasOwnProperty.call(d, String(key)) ? d[String(key)] : fallback;
    default:
      return undefined;
  }
}

/**
 * The Python method `name` of `obj` when it is a str or a plain dict without a key of that name, else
 * undefined (the lookup then goes on as nunjucks does). `replace` and `split` take precedence over
 * JavaScript's own, which differ.
 */
export function pythonMethod(obj: unknown, name: string): Method | undefined {
  if (typeof obj === 'string') return stringMethod(obj, name);
  if (isPlainDict(obj) && !Object.prototype.hasOwnProperty.call(obj, name)) return dictMethod(obj, name);
  return undefined;
}
