import YAML from 'yaml';

/** A tag the YAML parser does not resolve (`!foo`, `!!js/function`), as written in the text, and where. */
export class UnresolvedYamlTag extends Error {
  constructor(
    readonly tag: string,
    readonly line?: number,
    readonly column?: number,
  ) {
    super(`Unresolved YAML tag ${tag}`);
    this.name = 'UnresolvedYamlTag';
  }

  /** The one sentence the CLI prints, `source` naming the text (`--vars`, `The config file …`). */
  sentence(source: string): string {
    const at = this.line === undefined ? '' : ` (line ${this.line}, column ${this.column ?? 1})`;
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
 * `!!int 1_000`, `!!bool yes`. Such a value is taken as its text, as before this check existed, and the
 * setting's own validation judges it; refusing it as an unknown tag would turn away YAML dbt accepts.
 */
const STANDARD_SCALAR_TAGS = new Set(['bool', 'float', 'int', 'null', 'str', 'timestamp', 'binary']);

function standardTagMiss(w: { code: string; message: string }): boolean {
  if (w.code !== 'TAG_RESOLVE_FAILED') return false;
  const tag = /Unresolved tag: tag:yaml\.org,2002:(\S+)/.exec(w.message)?.[1];
  return tag !== undefined && STANDARD_SCALAR_TAGS.has(tag);
}
