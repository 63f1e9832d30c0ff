/**
 * The source text of each element of a JSON array inside a request body, so that a rejected event is kept as
 * it was sent (its layout, a number beyond 2^53 as written) instead of re-serialised from the parsed value.
 * Only called once an event of the request is rejected: the hot path never scans a body twice.
 */

const WS = new Set([' ', '\t', '\n', '\r']);

/** Where `text[from]` starts a value, the index just after it; -1 when the text is not JSON there. */
function skipValue(text: string, from: number): number {
  const c = text[from];
  if (c === '"') return skipString(text, from);
  if (c === '{' || c === '[') {
    let depth = 0;
    for (let i = from; i < text.length; i++) {
      const ch = text[i];
      if (ch === '"') {
        i = skipString(text, i) - 1;
        if (i < 0) return -1;
      } else if (ch === '{' || ch === '[') depth++;
      else if (ch === '}' || ch === ']') {
        depth--;
        if (depth === 0) return i + 1;
      }
    }
    return -1;
  }
  // a number, true, false or null: up to the next delimiter
  let i = from;
  while (i < text.length && !WS.has(text[i]) && text[i] !== ',' && text[i] !== '}' && text[i] !== ']') i++;
  return i > from ? i : -1;
}

function skipString(text: string, from: number): number {
  for (let i = from + 1; i < text.length; i++) {
    if (text[i] === '\\') i++;
    else if (text[i] === '"') return i + 1;
  }
  return -1;
}

function skipWs(text: string, i: number): number {
  while (i < text.length && WS.has(text[i])) i++;
  return i;
}

/** The text of each element of the array starting at `text[from]` (`[`), or null. */
function elements(text: string, from: number): string[] | null {
  const out: string[] = [];
  let i = skipWs(text, from + 1);
  if (text[i] === ']') return out;
  for (;;) {
    const end = skipValue(text, i);
    if (end < 0) return null;
    out.push(text.slice(i, end));
    i = skipWs(text, end);
    if (text[i] === ']') return out;
    if (text[i] !== ',') return null;
    i = skipWs(text, i + 1);
  }
}

/**
 * The elements of the body's array: the body itself (`key` null, a webhook's array) or the member `key` of the
 * body's object (`batch`; the last one when repeated, as JSON.parse takes it). Null when the body is not
 * shaped so (the caller then re-serialises).
 */
export function arrayElementTexts(text: string, key: string | null): string[] | null {
  let i = skipWs(text, text.charCodeAt(0) === 0xfeff ? 1 : 0);
  if (key === null) return text[i] === '[' ? elements(text, i) : null;
  if (text[i] !== '{') return null;
  let found: string[] | null = null;
  i = skipWs(text, i + 1);
  if (text[i] === '}') return null;
  for (;;) {
    if (text[i] !== '"') return null;
    const keyEnd = skipString(text, i);
    if (keyEnd < 0) return null;
    let name: unknown;
    try {
      name = JSON.parse(text.slice(i, keyEnd));
    } catch {
      return null;
    }
    i = skipWs(text, keyEnd);
    if (text[i] !== ':') return null;
    i = skipWs(text, i + 1);
    const end = skipValue(text, i);
    if (end < 0) return null;
    if (name === key) found = text[i] === '[' ? elements(text, i) : null;
    i = skipWs(text, end);
    if (text[i] === '}') return found;
    if (text[i] !== ',') return null;
    i = skipWs(text, i + 1);
  }
}
