import { StringDecoder } from 'node:string_decoder';
import type { Readable } from 'node:stream';

/** A line without the carriage return of a CRLF end. */
const withoutCr = (line: string): string => (line.endsWith('\r') ? line.slice(0, -1) : line);

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
  const decoder = new StringDecoder('utf8');
  // The pieces of a line that spans chunks: joined once at its end, as a string grown chunk by chunk is copied
  // whole by each search for the next line feed (quadratic in a line of hundreds of MB).
  const pending: string[] = [];
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
        pending.push(text.slice(start, lf));
        const line = pending.length === 1 ? pending[0] : pending.join('');
        pending.length = 0;
        start = lf + 1;
        yield withoutCr(line);
        if (signal?.aborted) return;
      }
      if (start < text.length) pending.push(text.slice(start));
    }
    pending.push(decoder.end());
    const last = pending.join('');
    if (last !== '') yield withoutCr(last);
  } catch (err) {
    // the premature close of the stream destroyed on abort is the stop asked for, not a read failure
    if (signal?.aborted) return;
    throw err;
  } finally {
    signal?.removeEventListener('abort', stop);
  }
}
