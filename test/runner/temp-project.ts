import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Warehouse } from '../../src/warehouse';

/**
 * The files of a small dbt project whose models read one source table, `source('raw', <table>)`, in the schema
 * given by `--raw-schema` (the var lifecycle__raw_schema); `models` maps paths under models/ to their text.
 */
export function oneSourceProject(
  name: string,
  table: string,
  models: Record<string, string>,
): Record<string, string> {
  const files: Record<string, string> = {
    'dbt_project.yml': `name: ${name}\nconfig-version: 2\nmodel-paths: ['models']\n`,
    'models/sources.yml': `version: 2\nsources:\n  - name: raw\n    schema: "{{ var('lifecycle__raw_schema') }}"\n    tables:\n      - name: ${table}\n`,
  };
  for (const [rel, text] of Object.entries(models)) files[`models/${rel}`] = text;
  return files;
}

/** Writes `files` (paths relative to `dir`), creating the folders. */
export function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [rel, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
    fs.writeFileSync(path.join(dir, rel), text);
  }
}

/** A new temp folder holding `files`; the caller removes it. */
export function tempProject(prefix: string, files: Record<string, string>): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `cdp-runner-${prefix}-`));
  writeFiles(dir, files);
  return dir;
}

/**
 * Sets up a suite: before all, `files` in a temp folder and the suite's warehouse with the source schema `src`
 * made by `sql`; after all, both gone. Returns the build and test options over them (schema `marts`).
 */
export function projectSuite(
  prefix: string,
  files: Record<string, string>,
  open: () => Promise<Warehouse>,
  sql: string[],
): () => { warehouse: Warehouse; projectDir: string; schema: string; rawSchema: string } {
  let wh: Warehouse | undefined;
  let dir = '';
  beforeAll(async () => {
    dir = tempProject(prefix, files);
    wh = await open();
    await wh.exec('create schema src');
    for (const s of sql) await wh.exec(s);
  });
  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  return () => {
    if (!wh) throw new Error('the suite has not started');
    return { warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' };
  };
}
