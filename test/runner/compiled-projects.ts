import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { spawn, spawnSync } from 'node:child_process';
import { compileModels, defaultProjectDir, type CompiledModel, type TargetType } from '../../src/runner';

/** The projects whose every model must compile to valid SQL: the shipped package and the runner's fixture. */
export const COMPILE_PROJECTS: Array<{ label: string; dir: string }> = [
  { label: 'package', dir: defaultProjectDir() },
  { label: 'fixture', dir: path.join(__dirname, 'fixtures', 'basic') },
];

/** Compiles every project for `dialect` into a fresh temp folder (no connection); the caller removes `root`. */
export async function compileAll(
  dialect: TargetType,
  vars?: Record<string, unknown>,
  incremental = false,
): Promise<{ root: string; dir: string; models: Array<CompiledModel & { project: string }> }> {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), `cdp-compile-${dialect}-`));
  const models: Array<CompiledModel & { project: string }> = [];
  for (const p of COMPILE_PROJECTS) {
    const res = await compileModels({
      dialect,
      projectDir: p.dir,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      outDir: path.join(root, p.label),
      vars,
      incremental,
    });
    models.push(...res.models.map((m) => ({ ...m, project: p.label })));
  }
  // One folder per dialect holding every project's files, so sqlfluff runs once per dialect.
  const dir = path.join(root, 'all');
  fs.mkdirSync(dir);
  for (const m of models) fs.copyFileSync(m.path, path.join(dir, `${m.project}__${m.name}.sql`));
  return { root, dir, models };
}

export function sqlfluffAvailable(): boolean {
  return spawnSync('sqlfluff', ['--version'], { encoding: 'utf8' }).status === 0;
}

interface Segment {
  [k: string]: unknown;
}

function rawText(v: unknown): string {
  if (typeof v === 'string') return v;
  if (Array.isArray(v)) return v.map(rawText).join('');
  if (v && typeof v === 'object')
    return Object.values(v as Segment)
      .map(rawText)
      .join('');
  return '';
}

function findUnparsable(v: unknown, out: string[]): void {
  if (Array.isArray(v)) for (const x of v) findUnparsable(x, out);
  else if (v && typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Segment)) {
      if (k === 'unparsable') out.push(rawText(x).replace(/\s+/g, ' ').slice(0, 160));
      else findUnparsable(x, out);
    }
  }
}

function runSqlfluff(dialect: string, dir: string): Promise<Array<{ filepath: string; segments: unknown }>> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      'sqlfluff',
      ['parse', '--dialect', dialect, '--templater', 'raw', '--format', 'json', '.'],
      {
        cwd: dir,
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      try {
        resolve(
          JSON.parse(Buffer.concat(out).toString('utf8')) as Array<{ filepath: string; segments: unknown }>,
        );
      } catch {
        reject(new Error(`sqlfluff parse --dialect ${dialect} failed (exit ${code}): ${err.slice(0, 500)}`));
      }
    });
  });
}

/**
 * Parses every .sql file of `dir` with `sqlfluff parse` and returns one line per file that has an unparsable
 * section (empty when all parse). sqlfluff is slow and single-threaded: the files are split by size into two
 * folders parsed by two concurrent runs when the machine has two cores.
 */
export async function sqlfluffParseErrors(dialect: string, dir: string): Promise<string[]> {
  const sqlFiles = fs.readdirSync(dir).filter((f) => f.endsWith('.sql'));
  const groups = Math.max(1, Math.min(2, os.availableParallelism()));
  const buckets: Array<{ size: number; files: string[] }> = Array.from({ length: groups }, () => ({
    size: 0,
    files: [],
  }));
  const sized = sqlFiles
    .map((f) => ({ f, size: fs.statSync(path.join(dir, f)).size }))
    .sort((a, b) => b.size - a.size);
  for (const { f, size } of sized) {
    const b = buckets.reduce((x, y) => (y.size < x.size ? y : x));
    b.files.push(f);
    b.size += size;
  }
  const runs = buckets
    .filter((b) => b.files.length > 0)
    .map((b, i) => {
      const sub = path.join(dir, `part${i}`);
      fs.mkdirSync(sub);
      // sqlfluff skips files over 20,000 bytes by default; the biggest models come close
      fs.writeFileSync(path.join(sub, '.sqlfluff'), '[sqlfluff]\nlarge_file_skip_byte_limit = 0\n');
      for (const f of b.files) fs.copyFileSync(path.join(dir, f), path.join(sub, f));
      return runSqlfluff(dialect, sub);
    });
  const parsed = (await Promise.all(runs)).flat();
  const errors: string[] = [];
  const files = new Set(sqlFiles);
  for (const f of parsed) {
    files.delete(path.basename(f.filepath));
    const found: string[] = [];
    if (f.segments === null || f.segments === undefined) found.push('no parse tree');
    findUnparsable(f.segments, found);
    for (const s of new Set(found))
      errors.push(`${path.basename(f.filepath)}: unparsable in ${dialect}: ${s}`);
  }
  for (const missing of files) errors.push(`${missing}: sqlfluff returned no parse for it`);
  return errors;
}
