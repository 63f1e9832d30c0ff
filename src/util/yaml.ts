import YAML from 'yaml';

/** A tag the YAML parser does not resolve (`!foo`, `!!js/function`), as written in the text, and where. */
export class UnresolvedYamlTag extends Error {
  constructor(
    readonly tag: string,
    readonly line?: number,
    readonly column?: number,
    /** A tag the parser knows, on a value it cannot take (`!!int abc`, `!!int [a]`). */
    readonly misfit = false,
  ) {
    super(`Unresolved YAML tag ${tag}`);
    this.name = 'UnresolvedYamlTag';
  }

  /** The one sentence the CLI prints, `source` naming the text (`--vars`, `The config file …`). */
  sentence(source: string): string {
    const at = this.line === undefined ? '' : ` (line ${this.line}, column ${this.column ?? 1})`;
    if (this.misfit) {
      return `${source} tags a value ${this.tag}${at} that is not one: fix the value or remove the tag.`;
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
  const doc = YAML.parseDocument(text, { ...options, logLevel: 'error' });
  if (doc.errors.length > 0) throw doc.errors[0];
  const warning = doc.warnings.find((w) => !standardTagMiss(w));
  if (!warning) resolveStandardTags(doc, text);
  if (warning) {
    if (warning.code === 'TAG_RESOLVE_FAILED' || warning.code === 'BAD_COLLECTION_TYPE') {
      const written = text.slice(warning.pos[0], warning.pos[1]).trim();
      const tag = written.startsWith('!') ? written : (/tag:? (\S+)/.exec(warning.message)?.[1] ?? written);
      const at = warning.linePos?.[0];
      throw new UnresolvedYamlTag(tag, at?.line, at?.col);
    }
    throw warning;
  }
  return doc.toJS();
}

/**
 * YAML's own scalar types, which PyYAML (so dbt) reads in forms this parser's core schema does not: `!!float 14`,
 * `!!int 1_000`, `!!bool yes`. Refusing them as unknown tags would turn away YAML dbt accepts: they are read
 * as PyYAML reads them (resolveStandardTags).
 */
const STANDARD_SCALAR_TAGS = new Set(['bool', 'float', 'int', 'null', 'str', 'timestamp', 'binary']);
const TAG_PREFIX = 'tag:yaml.org,2002:';

function standardTagMiss(w: { code: string; message: string }): boolean {
  if (w.code !== 'TAG_RESOLVE_FAILED') return false;
  const tag = /Unresolved tag: tag:yaml\.org,2002:(\S+)/.exec(w.message)?.[1];
  return tag !== undefined && STANDARD_SCALAR_TAGS.has(tag);
}

/**
 * The values of YAML's scalar tags that this parser left as text, read as PyYAML does (YAML 1.1 booleans,
 * digits with underscores, a float written as an integer, any text tagged null); a value PyYAML refuses, or such
 * a tag on a list or mapping, is refused, where the parser would keep it half-applied.
 */
function resolveStandardTags(doc: YAML.Document, text: string): void {
  YAML.visit(doc, (_key, node) => {
    if (!YAML.isNode(node) || !node.tag?.startsWith(TAG_PREFIX)) return;
    const type = node.tag.slice(TAG_PREFIX.length);
    if (!STANDARD_SCALAR_TAGS.has(type)) return;
    const at = node.range ? lineCol(text, node.range[0]) : undefined;
    if (!YAML.isScalar(node)) throw new UnresolvedYamlTag(`!!${type}`, at?.line, at?.col, true);
    if (typeof node.value !== 'string') return;
    const v = node.value.trim();
    const digits = v.replace(/_/g, '');
    let value: unknown = node.value;
    if (type === 'null') value = null;
    else if (type === 'bool' && /^(y|yes|true|on)$/i.test(v)) value = true;
    else if (type === 'bool' && /^(n|no|false|off)$/i.test(v)) value = false;
    else if (type === 'int' && /^[-+]?[0-9]+$/.test(digits)) value = Number(digits);
    else if (type === 'float' && /^[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$/.test(digits))
      value = Number(digits);
    else if (type === 'bool' || type === 'int' || type === 'float')
      throw new UnresolvedYamlTag(`!!${type}`, at?.line, at?.col, true);
    node.value = value;
  });
}

function lineCol(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset).split('\n');
  return { line: before.length, col: (before[before.length - 1] ?? '').length + 1 };
}
