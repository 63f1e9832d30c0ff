import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/** A line without the carriage return of a CRLF end. */
const withoutCr = (line: string): string => (line.endsWith('\r') ? line.slice(0, -1) : line);

/** A line of `readLinesCapped`: its text, or its first `maxChars` characters when it was longer. */
export interface CappedLine {
  text: string;
  /** Set when the line was cut: its whole length in UTF-8 bytes (without its line feed). */
  cutBytes?: number;
}

/**
 * The lines of a text stream, split where `wc -l`, `tail -n` and `sed -n` split them: at each line feed, a
 * carriage return just before it dropped (CRLF files). A lone carriage return stays in its line, unlike
 * readline's split, so that the line numbers `load` reports and its resume command (`tail -n +N`) point at
 * the same lines.
 *
 * Aborting `signal` ends the lines at once, even while the stream waits for input (a quiet stdin): the stream
 * is destroyed then, as nothing more will be read from it.
 */
export async function* readLines(input: Readable, signal?: AbortSignal): AsyncGenerator<string> {
  for await (const line of readLinesCapped(input, signal, Infinity)) yield line.text;
}

/**
 * readLines, holding at most `maxChars` characters of a line: the rest of a longer line is read and dropped
 * (its bytes counted), so that one huge line (a whole export on one line, hundreds of MB) neither exhausts
 * memory nor passes the longest string V8 can hold (about 512 MiB), and the lines after it are still read.
 */
export async function* readLinesCapped(
  input: Readable,
  signal: AbortSignal | undefined,
  maxChars: number,
): AsyncGenerator<CappedLine> {
  const decoder = new StringDecoder('utf8');
  // The pieces of a line that spans chunks: joined once at its end, as a string grown chunk by chunk is copied
  // whole by each search for the next line feed (quadratic in a line of hundreds of MB).
  const pending: string[] = [];
  let held = 0;
  // bytes of the current line dropped past maxChars; -1 while nothing is dropped
  let dropped = -1;
  const add = (piece: string): void => {
    if (dropped >= 0) {
      dropped += Buffer.byteLength(piece);
      return;
    }
    if (held + piece.length <= maxChars) {
      pending.push(piece);
      held += piece.length;
      return;
    }
    let room = maxChars - held;
    // not between the two halves of a surrogate pair (an emoji): a lone half would be stored as U+FFFD
    const code = piece.charCodeAt(room - 1);
    if (room > 0 && code >= 0xd800 && code <= 0xdbff) room--;
    pending.push(piece.slice(0, room));
    held = maxChars;
    dropped = Buffer.byteLength(piece.slice(room));
  };
  const take = (): CappedLine => {
    const text = pending.length === 1 ? pending[0] : pending.join('');
    const line: CappedLine =
      dropped >= 0 ? { text, cutBytes: Buffer.byteLength(text) + dropped } : { text: withoutCr(text) };
    pending.length = 0;
    held = 0;
    dropped = -1;
    return line;
  };
  const stop = (): void => {
    input.destroy();
  };
  signal?.addEventListener('abort', stop, { once: true });
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      if (signal?.aborted) return;
      const text = typeof chunk === 'string' ? chunk : decoder.write(chunk);
      let start = 0;
      let lf: number;
      while ((lf = text.indexOf('\n', start)) !== -1) {
        add(text.slice(start, lf));
        start = lf + 1;
        yield take();
        if (signal?.aborted) return;
      }
      if (start < text.length) add(text.slice(start));
    }
    add(decoder.end());
    if (held > 0 || dropped > 0) yield take();
  } catch (err) {
    // the premature close of the stream destroyed on abort is the stop asked for, not a read failure
    if (signal?.aborted) return;
    throw err;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
