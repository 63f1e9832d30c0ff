/**
 * Text from events or from a CDP's answers (a user id, a rejection reason, an error body), made safe to print
 * on a terminal or into a log: control characters (escape sequences that clear the screen or recolour it,
 * newlines that forge a log line), DEL, C1 controls, the Unicode line separators and the bidirectional
 * overrides that reorder what is shown are spelt out as \uXXXX escapes. Anyone who can send an event can set
 * a user id, and browser write keys are public.
 */
const UNPRINTABLE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

export function printable(text: string): string {
  return text.replace(UNPRINTABLE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}
