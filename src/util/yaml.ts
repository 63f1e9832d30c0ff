import YAML from 'yaml';

/**
 * Why a tag is refused: `unknown`, not YAML's own (`!foo`, `!!js/function`); `misfit`, a tag the parser knows on a
 * value it cannot take (`!!int abc`, `!!int [a]`); `unsupported`, one of YAML's own types that PyYAML reads into a
 * Python type cdp-lifecycle has no use for (`!!binary`, `!!set`, `!!omap`, `!!pairs`, `!!merge` on a value).
 */
export type YamlTagProblem = 'unknown' | 'misfit' | 'unsupported';

/** A tag the YAML parser does not resolve (`!foo`, `!!js/function`), as written in the text, and where. */
export class UnresolvedYamlTag extends Error {
  constructor(
    readonly tag: string,
    readonly line?: number,
    readonly column?: number,
    readonly problem: YamlTagProblem = 'unknown',
  ) {
    super(`Unresolved YAML tag ${tag}`);
    this.name = 'UnresolvedYamlTag';
  }

  /** The one sentence the CLI prints, `source` naming the text (`--vars`, `The config file …`). */
  sentence(source: string): string {
    const at = this.line === undefined ? '' : ` (line ${this.line}, column ${this.column ?? 1})`;
    if (this.problem === 'misfit') {
      return `${source} tags a value ${this.tag}${at} that is not one: fix the value or remove the tag.`;
    }
    if (this.problem === 'unsupported') {
      return `${source} tags a value ${this.tag}${at}, a YAML type cdp-lifecycle does not support: remove the tag.`;
    }
    return `${source} uses the YAML tag ${this.tag}${at}, which cdp-lifecycle does not know: remove it.`;
  }
}

/**
 * YAML.parse for text a user wrote. The parser only warns about a tag it does not know and takes the value as if
 * untagged, so `!foo [a]` would be half-applied: that is thrown as UnresolvedYamlTag. Its other warnings (an
 * unknown directive, an ambiguous anchor) are thrown as parse errors. Never a Node process warning, which
 * would print a `(node:…) YAMLWarning` among the CLI's lines.
 */
export function parseYaml(text: string, options: { uniqueKeys?: boolean } = {}): unknown {
  // 'error' rather than 'silent', which would also drop errors, such as a second document
  const doc = YAML.parseDocument(text, {
    ...options,
    logLevel: 'error',
    customTags: keepAsWritten,
    // YAML 1.1's merge keys, which PyYAML (so dbt) applies: a schema.yml may share column configs through `<<: *base`
    merge: true,
  });
  if (doc.errors.length > 0) throw doc.errors[0];
  const warning = doc.warnings.find((w) => !standardTagMiss(w));
  if (!warning) {
    resolveStandardTags(doc, text);
    refuseRepeatedMergeKeys(doc, text);
  }
  if (warning) {
    if (warning.code === 'TAG_RESOLVE_FAILED' || warning.code === 'BAD_COLLECTION_TYPE') {
      const written = text.slice(warning.pos[0], warning.pos[1]).trim();
      const tag = written.startsWith('!') ? written : (/tag:? (\S+)/.exec(warning.message)?.[1] ?? written);
      const at = warning.linePos?.[0];
      const own = ownTagType(warning);
      const problem = own !== undefined && UNSUPPORTED_TAGS.has(own) ? 'unsupported' : 'unknown';
      throw new UnresolvedYamlTag(tag, at?.line, at?.col, problem);
    }
    throw warning;
  }
  // the project's own files and flags, not input from the network: a schema.yml that shares one column's config
  // through an anchor across 100 columns was refused as a "resource exhaustion attack" (PyYAML has no cap)
  return doc.toJS({ maxAliasCount: -1 });
}

/**
 * A mapping with more than one merge key (`<<: *a` then `<<: *b`) is refused: PyYAML merges them all, a later
 * key's mapping over an earlier one's, while the parser keeps what the first merge set, so the values would
 * silently differ from dbt's. One key merging a sequence, `<<: [*b, *a]` (the earlier mapping wins), is read
 * alike by both. (Folding the keys into such a sequence moved nodes, and an alias then came before its anchor.)
 */
export class RepeatedMergeKey extends Error {
  constructor(readonly line?: number) {
    super(
      `a mapping${line === undefined ? '' : ` at line ${line}`} has more than one merge key (<<), which PyYAML, so dbt, applies in an order this parser does not: merge with one key, the mapping that should win first, as <<: [*later, *earlier]`,
    );
    this.name = 'RepeatedMergeKey';
  }
}

function refuseRepeatedMergeKeys(doc: YAML.Document, text: string): void {
  const isMerge = (p: YAML.Pair): boolean =>
    YAML.isScalar(p.key) && typeof p.key.value === 'symbol' && p.key.value.description === '<<';
  YAML.visit(doc, {
    Map(_, map) {
      const merges = map.items.filter(isMerge);
      if (merges.length < 2) return;
      const key = merges[1].key;
      const at = YAML.isNode(key) && key.range ? lineCol(text, key.range[0]) : undefined;
      throw new RepeatedMergeKey(at?.line);
    },
  });
}

/**
 * YAML's own scalar types, which PyYAML (so dbt) reads in forms this parser's core schema does not: `!!float 14`,
 * `!!int 1_000`, `!!bool yes`, `!!timestamp 2024-03-12`. Refusing them as unknown tags would turn away YAML dbt
 * accepts: they are read as PyYAML reads them (resolveStandardTags).
 */
const STANDARD_SCALAR_TAGS = new Set(['bool', 'float', 'int', 'null', 'str', 'timestamp']);
/**
 * YAML's own types that PyYAML reads into a Python type cdp-lifecycle has no use for (bytes, a set, a list of
 * tuples) or, for `!!merge` on a value, refuses: refused, but for a merge key (`!!merge <<: *base`), which the
 * parser merges as PyYAML does.
 */
const UNSUPPORTED_TAGS = new Set(['binary', 'merge', 'omap', 'pairs', 'set']);
const TAG_PREFIX = 'tag:yaml.org,2002:';

/**
 * The schema's tags, with `!!timestamp`, `!!binary`, `!!set`, `!!omap` and `!!pairs` keeping the value as
 * written for resolveStandardTags to read or refuse, where the parser would make a JS Date, Uint8Array, Set or Map
 * of it (so of an untagged date under `%YAML 1.1`) or stop at a value it cannot take.
 */
function keepAsWritten(tags: YAML.Tags): YAML.Tags {
  const kept = new Set(['timestamp', 'binary', 'set', 'omap', 'pairs'].map((t) => TAG_PREFIX + t));
  return [
    ...tags.filter((t) => typeof t === 'string' || !kept.has(t.tag)),
    { tag: `${TAG_PREFIX}timestamp`, resolve: (value: string) => value },
    { tag: `${TAG_PREFIX}binary`, resolve: (value: string) => value },
    { tag: `${TAG_PREFIX}set`, collection: 'map' },
    { tag: `${TAG_PREFIX}omap`, collection: 'seq' },
    { tag: `${TAG_PREFIX}pairs`, collection: 'seq' },
  ];
}

/** The type of YAML's own tag (`int` for `!!int`) that a parser warning names, if it names one. */
function ownTagType(w: { code: string; message: string }): string | undefined {
  if (w.code !== 'TAG_RESOLVE_FAILED' && w.code !== 'BAD_COLLECTION_TYPE') return undefined;
  return /^(?:Unresolved tag: )?tag:yaml\.org,2002:(\S+)/.exec(w.message)?.[1];
}

function standardTagMiss(w: { code: string; message: string }): boolean {
  const type = ownTagType(w);
  return type !== undefined && STANDARD_SCALAR_TAGS.has(type);
}

/**
 * The values of YAML's scalar tags, read from the text as PyYAML reads them (yes, no, on and off as booleans,
 * integers in bases 2, 8, 16 and 60, digits with underscores, a float written as an integer, inf, any text tagged
 * null, a timestamp as Python prints it); a value PyYAML refuses, or such a tag on a list or mapping, is refused,
 * where the parser would keep it half-applied. So is one of YAML's types that cdp-lifecycle does not support
 * (UNSUPPORTED_TAGS).
 */
function resolveStandardTags(doc: YAML.Document, text: string): void {
  YAML.visit(doc, (key, node) => {
    if (!YAML.isNode(node) || !node.tag?.startsWith(TAG_PREFIX)) return;
    const type = node.tag.slice(TAG_PREFIX.length);
    const at = node.range ? lineCol(text, node.range[0]) : undefined;
    if (UNSUPPORTED_TAGS.has(type)) {
      if (type === 'merge' && key === 'key' && YAML.isScalar(node)) return;
      throw new UnresolvedYamlTag(`!!${type}`, at?.line, at?.col, 'unsupported');
    }
    if (!STANDARD_SCALAR_TAGS.has(type)) return;
    if (!YAML.isScalar(node)) throw new UnresolvedYamlTag(`!!${type}`, at?.line, at?.col, 'misfit');
    // the text as written (quotes and escapes resolved), which the parser may have read its own way: !!int 017 as 17
    const written = typeof node.source === 'string' ? node.source : node.value;
    if (type === 'str' || typeof written !== 'string') return;
    let value: unknown;
    if (type === 'null') value = null;
    else if (type === 'timestamp') value = pyTimestamp(written);
    else if (type === 'int') value = pyYamlInt(written);
    else if (type === 'float') value = pyYamlFloat(written);
    else value = PY_BOOLS.get(written.toLowerCase());
    if (value === undefined) throw new UnresolvedYamlTag(`!!${type}`, at?.line, at?.col, 'misfit');
    node.value = value;
  });
}

/** PyYAML's SafeConstructor.bool_values, which it looks the lower-cased text up in: neither y nor n, no blanks. */
const PY_BOOLS = new Map([
  ['yes', true],
  ['no', false],
  ['true', true],
  ['false', false],
  ['on', true],
  ['off', false],
]);

/** The blanks Python's int() and float() take around a number: Unicode white space but \x1c-\x1f. */
const PY_BLANK = '[\\t-\\r \\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]';
const PY_BLANKS = new RegExp(`^${PY_BLANK}+|${PY_BLANK}+$`, 'g');
const PY_INT_DIGITS = { 2: '(?:0b)?([01]+)', 8: '(?:0o)?([0-7]+)', 10: '([0-9]+)', 16: '(?:0x)?([0-9a-f]+)' };

/** Python's int(text, base) for ASCII digits; undefined where it raises. */
function pythonInt(text: string, base: 2 | 8 | 10 | 16): number | undefined {
  const m = new RegExp(`^([-+]?)${PY_INT_DIGITS[base]}$`, 'i').exec(text.replace(PY_BLANKS, ''));
  if (!m?.[2]) return undefined;
  return (m[1] === '-' ? -1 : 1) * parseInt(m[2], base);
}

/** Python's float(text) for ASCII digits; undefined where it raises. */
function pythonFloat(text: string): number | undefined {
  const s = text.replace(PY_BLANKS, '').toLowerCase();
  const m = /^([-+]?)(?:(inf|infinity|nan)|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:e[-+]?[0-9]+)?)$/.exec(s);
  if (!m) return undefined;
  if (m[2] === 'nan') return NaN;
  if (m[2] !== undefined) return m[1] === '-' ? -Infinity : Infinity;
  return Number(s);
}

/** The sign PyYAML takes off the front of an int or float, and the rest; undefined for an empty text (IndexError). */
function pySign(text: string): [number, string] | undefined {
  if (text === '') return undefined;
  return [text.startsWith('-') ? -1 : 1, /^[-+]/.test(text) ? text.slice(1) : text];
}

/** PyYAML's sexagesimal number (1:30 is 90), its parts read by `read`, added as PyYAML adds them. */
function pySexagesimal(text: string, read: (part: string) => number | undefined): number | undefined {
  const digits = text.split(':').map(read).reverse();
  let value = 0;
  let base = 1;
  for (const digit of digits) {
    if (digit === undefined) return undefined;
    value += digit * base;
    base *= 60;
  }
  return value;
}

/**
 * An `!!int` as PyYAML's construct_yaml_int reads it: underscores dropped, a sign, then 0, 0b… (base 2), 0x… (base
 * 16), 0… (base 8: 017 is 15), a:b (sexagesimal: 1:30 is 90) or base 10, each read by Python's int(), so `09`
 * and `0B1` are refused. Undefined where PyYAML raises.
 */
function pyYamlInt(written: string): number | undefined {
  const signed = pySign(written.replace(/_/g, ''));
  if (!signed) return undefined;
  const [sign, value] = signed;
  let n: number | undefined;
  if (value === '0') n = 0;
  else if (value.startsWith('0b')) n = pythonInt(value.slice(2), 2);
  else if (value.startsWith('0x')) n = pythonInt(value.slice(2), 16);
  else if (value.startsWith('0')) n = pythonInt(value, 8);
  else if (value.includes(':')) n = pySexagesimal(value, (part) => pythonInt(part, 10));
  else n = pythonInt(value, 10);
  // `|| 0`: Python's -0 is 0
  return n === undefined ? undefined : sign * n || 0;
}

/**
 * A `!!float` as PyYAML's construct_yaml_float reads it: underscores dropped, lower-cased, a sign, then .inf, .nan,
 * a:b (sexagesimal) or what Python's float() reads (1e3, 5., inf, nan). Undefined where PyYAML raises.
 */
function pyYamlFloat(written: string): number | undefined {
  const signed = pySign(written.replace(/_/g, '').toLowerCase());
  if (!signed) return undefined;
  const [sign, value] = signed;
  if (value === '.inf') return sign * Infinity;
  if (value === '.nan') return NaN;
  const n = value.includes(':') ? pySexagesimal(value, pythonFloat) : pythonFloat(value);
  return n === undefined ? undefined : sign * n;
}

/** PyYAML's SafeConstructor.timestamp_regexp; Python's `$` also matches before a final newline. */
const TIMESTAMP =
  /^([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})(?:(?:[Tt]|[ \t]+)([0-9]{1,2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]*))?(?:[ \t]*(Z|([-+])([0-9]{1,2})(?::([0-9]{2}))?))?)?\n?$/;

/**
 * A `!!timestamp` as PyYAML's construct_yaml_timestamp reads it, printed as Python's str() (so Jinja, so dbt)
 * prints the date or datetime it makes: `2024-03-12`, `2024-03-12 10:00:00`, `2024-03-12 10:00:00.500000+01:30`.
 * Undefined where PyYAML raises: no match, a day, hour, minute or second out of range, an offset of a day or more.
 */
function pyTimestamp(text: string): string | undefined {
  const m = TIMESTAMP.exec(text);
  if (!m) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const [fraction, zone, sign, zoneHour, zoneMinute] = m.slice(7);
  const leap = year % 4 === 0 && (year % 100 !== 0 || year % 400 === 0);
  const monthDays = [31, leap ? 29 : 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1];
  if (year < 1 || monthDays === undefined || day < 1 || day > monthDays) return undefined;
  const pad = (n: number, width = 2) => String(n).padStart(width, '0');
  const date = `${pad(year, 4)}-${pad(month)}-${pad(day)}`;
  if (m[4] === undefined) return date;
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  // microseconds: the fraction's first six digits
  const micro = (fraction ?? '').slice(0, 6).padEnd(6, '0');
  let offset = '';
  if (sign !== undefined) {
    const minutes = Number(zoneHour) * 60 + Number(zoneMinute ?? 0);
    if (minutes >= 24 * 60) return undefined;
    offset = `${sign === '-' && minutes > 0 ? '-' : '+'}${pad(Math.floor(minutes / 60))}:${pad(minutes % 60)}`;
  } else if (zone !== undefined) offset = '+00:00';
  return `${date} ${pad(hour)}:${pad(minute)}:${pad(second)}${Number(micro) === 0 ? '' : `.${micro}`}${offset}`;
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before[before.length - 1] ?? '').length + 1 };
}
