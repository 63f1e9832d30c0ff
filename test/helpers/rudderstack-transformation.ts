import * as fs from 'node:fs';
import * as path from 'node:path';
import * as vm from 'node:vm';

export type Event = Record<string, unknown>;
export type TransformEvent = (
  event: Event,
  metadata: (e: Event) => Record<string, unknown>,
) => Event | undefined;

const FILE = path.join(__dirname, '..', '..', 'transforms', 'rudderstack-transformation.js');

/**
 * Runs the file the way RudderStack does: as a self-contained module in a sandbox with no require, no
 * process and no imports. `export` is the only module syntax it may use. `lists` replaces the lists at the top
 * of the file, as a user edits them.
 */
export function loadRudderStackTransformation(lists: Record<string, string[]> = {}): TransformEvent {
  let source = fs.readFileSync(FILE, 'utf8');
  // as a user edits the file: replace a list's literal
  for (const [name, values] of Object.entries(lists)) {
    source = source.replace(
      new RegExp(`const ${name} = \\[[^\\]]*\\];`),
      `const ${name} = ${JSON.stringify(values)};`,
    );
  }
  expect(source).not.toMatch(/\b(import|require)\s*[(\s'"{]/);
  const sandbox: Record<string, unknown> = { exports: {} };
  vm.runInNewContext(source.replace(/^export function /m, 'exports.transformEvent = function '), sandbox);
  return (sandbox.exports as { transformEvent: TransformEvent }).transformEvent;
}
