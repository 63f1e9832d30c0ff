import YAML from 'yaml';
import { UsageError } from '../errors';
import { closest } from '../util/closest';
import { isValidIdent } from '../warehouse';

/** trait name -> column of `user_lifecycle`. Order is the order traits appear in the identify. */
export type TraitMapping = Record<string, string>;

/** SPEC §6 default: what marketers see in their CDP unless `--traits` says otherwise. */
export const DEFAULT_TRAITS: Readonly<TraitMapping> = Object.freeze({
  lifecycle_status: 'lifecycle_status',
  lifecycle_status_since: 'status_since',
  lifecycle_previous_status: 'previous_status',
  rfm_segment: 'rfm_segment',
});

// Trait names become keys of user profiles in every downstream tool (Braze, HubSpot, Amplitude…), several
// of which only accept plain identifiers; refusing anything else early beats a silent drop downstream.
const TRAIT_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,99}$/;

/**
 * Parses `--traits`: either `trait=column,trait=column` or a JSON object `{"trait":"column"}`. A bare name
 * (`rfm_segment`) means trait and column share that name. Names are checked here; columns are checked
 * against the table by `validateMapping`. `label` names where the mapping came from in errors (the
 * environment variable or the config file key, when not the flag), so the message points at what to fix.
 */
export function parseTraitsOption(input: string, label = '--traits'): TraitMapping {
  const text = input.trim();
  if (text === '') {
    throw new UsageError(
      `${label} is empty: give trait=column pairs, e.g. lifecycle_status=lifecycle_status,rfm=rfm_segment.`,
    );
  }
  let pairs: Array<[string, unknown]>;
  if (text.startsWith('{') || text.startsWith('[')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new UsageError(
        `${label} is not valid JSON (${(err as Error).message}): use {"trait":"column",…}.`,
      );
    }
    if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
      throw new UsageError(`${label} JSON must be an object mapping trait names to column names.`);
    }
    // JSON.parse keeps the last of a repeated key; the yaml package (JSON is YAML) keeps every key in order, so
    // a trait given twice is refused, as in the trait=column form, instead of losing its first column unsaid
    const values = parsed as Record<string, unknown>;
    const doc = YAML.parseDocument(text, { uniqueKeys: false });
    const keys = YAML.isMap(doc.contents)
      ? doc.contents.items.map((p) => String(YAML.isScalar(p.key) ? p.key.value : p.key))
      : [];
    pairs = keys.map((k): [string, unknown] => [k, values[k]]);
  } else {
    pairs = text
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p !== '')
      .map((p): [string, unknown] => {
        const eq = p.indexOf('=');
        return eq < 0 ? [p, p] : [p.slice(0, eq).trim(), p.slice(eq + 1).trim()];
      });
  }
  const mapping: TraitMapping = {};
  for (const [trait, column] of pairs) {
    if (typeof column !== 'string') {
      throw new UsageError(`${label} maps "${trait}" to a non-string value: each trait must name a column.`);
    }
    checkTraitName(trait, label);
    if (Object.prototype.hasOwnProperty.call(mapping, trait)) {
      throw new UsageError(`${label} names the trait "${trait}" twice: give each trait once.`);
    }
    mapping[trait] = column;
  }
  if (Object.keys(mapping).length === 0) {
    throw new UsageError(`${label} maps no trait: give at least one trait=column pair.`);
  }
  return mapping;
}

/** `label`: where the name was given (--traits, its environment variable, a config key), when known. */
function checkTraitName(trait: string, label?: string): void {
  // `__proto__` would silently vanish from a plain object instead of becoming a trait.
  if (!TRAIT_NAME.test(trait) || trait === '__proto__') {
    throw new UsageError(
      `The trait name "${trait}"${label ? ` in ${label}` : ''} is not valid: use letters, digits and underscores, starting with a letter or underscore.`,
    );
  }
}

/**
 * Checks every mapped column exists in `user_lifecycle` (whose columns are given, lower-cased), so a typo is
 * a usage error before anything is read or sent rather than a SQL error halfway.
 */
export function validateMapping(mapping: TraitMapping, columns: readonly string[], table: string): void {
  const known = new Set(columns);
  const entries = Object.entries(mapping);
  if (entries.length === 0)
    throw new UsageError('The trait mapping is empty: map at least one trait to a column.');
  for (const [trait, column] of entries) {
    checkTraitName(trait);
    if (!isValidIdent(column) || !known.has(column)) {
      const near = closest(column, [...known]);
      // `status` for lifecycle_status: too far for an edit, but a part of the names meant
      const containing =
        column.length >= 3 ? [...known].filter((k) => k.includes(column.toLowerCase())).sort() : [];
      throw new UsageError(
        near
          ? `The trait "${trait}" maps to "${column}", which is not a column of ${table}: did you mean ${near}?`
          : containing.length > 0
            ? `The trait "${trait}" maps to "${column}", which is not a column of ${table}: did you mean ${containing.length === 1 ? containing[0] : `one of ${containing.join(', ')}`}?`
            : `The trait "${trait}" maps to "${column}", which is not a column of ${table}: use one of ${[...known].sort().join(', ')}.`,
      );
    }
  }
}

/** A trait value as it goes into the identify JSON. */
export type TraitValue = string | number | boolean | null;

/** Turns a normalised warehouse value (see `Row`) into a JSON trait value. DATE is already `YYYY-MM-DD`. */
export function toTraitValue(v: unknown): TraitValue {
  if (v === null || v === undefined) return null;
  if (typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') return Number.isFinite(v) ? v : null;
  if (typeof v === 'bigint') {
    // Beyond 2^53 a JSON number would silently lose digits in every consumer; text keeps them.
    return v <= BigInt(Number.MAX_SAFE_INTEGER) && v >= BigInt(Number.MIN_SAFE_INTEGER)
      ? Number(v)
      : v.toString();
  }
  if (v instanceof Date) return v.toISOString();
  return JSON.stringify(v);
}
