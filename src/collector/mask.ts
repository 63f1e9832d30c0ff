/**
 * Write keys in text the collector keeps as sent (rejected_events): a credential never lands, whichever path
 * the text came by (a request body, an NDJSON line of `load`).
 */
import { isJsonObject } from '../../transforms/events';

/**
 * Removes an event's own `writeKey` member before it is validated, by `serve` (each event of a request) and
 * `load` (each line) alike: a credential never lands, and it is no part of the event, so it never counts
 * toward the 32 KB an event may hold (a line the collector would take must land). `delete` only when present:
 * it de-optimises the object.
 */
export function stripWriteKey(event: unknown): void {
  if (isJsonObject(event) && event.writeKey !== undefined) delete event.writeKey;
}

/**
 * Text kept as sent (a body that does not parse, a rejected event), with every write key it shows masked: a
 * `"writeKey": "…"` member (its closing quote may be cut off) and a form-encoded `writeKey=…`.
 */
export function maskWriteKeys(text: string): string {
  const masked = text
    .replace(/("writeKey"\s*:\s*)"(?:[^"\\]|\\.)*"?/g, '$1"***"')
    .replace(/(^|[&?\s])writeKey=[^&\s]*/g, '$1writeKey=***');
  // "write\u004bey" is the same member to JSON.parse, which authorised the request with it
  return masked.includes('\\u') ? maskEscapedWriteKeys(masked) : masked;
}

/** A JSON string token whose escapes are all valid, so that JSON.parse of it cannot throw. */
const VALID_JSON_STRING = /^"(?:[^"\\\u0000-\u001f]|\\(?:u[0-9a-fA-F]{4}|["\\/bfnrt]))*"$/;

/**
 * Masks the string value of every member whose name decodes to writeKey, in one pass over the text (a regex
 * restarting at each quote took quadratic time: seconds for 80 KB of `\"`). Strings are read token by token;
 * one followed by `:` is a member name. Best effort on text that is not JSON, as the plain pattern above.
 */
function maskEscapedWriteKeys(text: string): string {
  const out: string[] = [];
  let copied = 0;
  let i = 0;
  const stringEnd = (from: number): number => {
    // from is the opening quote; returns the index after the closing quote, or text.length when cut off
    let j = from + 1;
    while (j < text.length) {
      const c = text.charCodeAt(j);
      if (c === 92 /* \ */) j += 2;
      else if (c === 34 /* " */) return j + 1;
      else j++;
    }
    return text.length;
  };
  const skipSpace = (from: number): number => {
    let j = from;
    while (j < text.length && /\s/.test(text[j])) j++;
    return j;
  };
  while (i < text.length) {
    if (text.charCodeAt(i) !== 34) {
      i++;
      continue;
    }
    const end = stringEnd(i);
    const colon = skipSpace(end);
    if (text[colon] !== ':') {
      i = end;
      continue;
    }
    const value = skipSpace(colon + 1);
    // Only a name that can spell writeKey (50 characters with every letter escaped) and whose escapes are all
    // valid is decoded: a failed parse costs microseconds, and a body of bad names would add up to seconds.
    const token = text.slice(i, end);
    const name = end - i <= 50 && VALID_JSON_STRING.test(token) ? (JSON.parse(token) as unknown) : undefined;
    if (name === 'writeKey' && text[value] === '"') {
      const valueEnd = stringEnd(value);
      out.push(text.slice(copied, value), '"***"');
      copied = valueEnd;
      i = valueEnd;
    } else {
      i = value;
    }
  }
  out.push(text.slice(copied));
  return out.join('');
}
