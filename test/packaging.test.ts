/**
 * What `npm pack` ships is what an installed cdp-lifecycle runs: the package is unpacked outside the repository
 * (its dependencies found through NODE_PATH, as an install would place them) and its own bin loads events,
 * builds the models and writes the HTML report from there. Development files stay out of it.
 */
import { execFileSync, spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './helpers/cli';

interface PackedFile {
  path: string;
}

function packedFiles(): string[] {
  // --ignore-scripts: `prepare` would rebuild dist/ while other suites run its bin
  const out = execFileSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const [pack] = JSON.parse(out) as Array<{ files: PackedFile[] }>;
  return pack.files.map((f) => f.path).sort();
}

function walk(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = path.join(dir, e.name);
    return e.isDirectory() ? walk(p) : [p];
  });
}

function run(
  cwd: string,
  bin: string,
  args: string[],
  input?: string,
): Promise<{ code: number | null; out: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [bin, ...args], {
      cwd,
      env: { ...process.env, FORCE_COLOR: '0', NODE_PATH: path.join(REPO_ROOT, 'node_modules') },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, out }));
    child.stdin.end(input ?? '');
  });
}

describe('the npm package', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    main: string;
    types: string;
    bin: Record<string, string>;
    devDependencies: Record<string, string>;
  };

  it('ships the bin, the compiled code, the dbt package and the manifest, and no development files', () => {
    const files = packedFiles();
    const models = walk(path.join(REPO_ROOT, 'models')).map((f) => path.relative(REPO_ROOT, f));
    for (const needed of [
      ...Object.values(pkg.bin),
      pkg.main,
      pkg.types,
      'dist/src/cli/run.js',
      'dist/destinations/cdp-lifecycle/index.js',
      'transforms/rudderstack-transformation.js',
      'manifest.json',
      'manifest.schema.json',
      'cdp-lifecycle.example.yml',
      'README.md',
      ...models,
    ]) {
      expect(files).toContain(needed.replace(/^\.\//, ''));
    }
    const unwanted = files.filter((f) =>
      /^(test|bench|src|scripts|dist\/bench|node_modules)\/|(?<!\.d)\.ts$|generate-types|tsconfig|eslint|jest\.config/.test(
        f,
      ),
    );
    expect(unwanted).toEqual([]);
  });

  it('runs from an unpacked tarball: load, build, test and the HTML report', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-pack-'));
    try {
      const tgz = execFileSync('npm', ['pack', '--ignore-scripts', '--pack-destination', dir], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
      })
        .trim()
        .split('\n')
        .pop()!;
      execFileSync('tar', ['xzf', path.join(dir, tgz), '-C', dir]);
      const root = path.join(dir, 'package');
      const bin = path.join(root, pkg.bin['cdp-lifecycle']);
      const work = path.join(dir, 'work');
      fs.mkdirSync(work);
      const wh = ['--warehouse', 'duckdb://./w.duckdb'];
      const events = ['u1', 'u2']
        .map((u, i) =>
          JSON.stringify({
            type: 'track',
            event: 'Report Created',
            userId: u,
            messageId: `m${i}`,
            timestamp: '2026-12-01T10:00:00Z',
          }),
        )
        .join('\n');
      for (const [args, input] of [
        [['load', '-', ...wh], events],
        [['build', ...wh, '--vars', '{"lifecycle__as_of_date":"2026-12-03"}'], undefined],
        [['test', ...wh], undefined],
        [['report', ...wh, '--html', 'r.html'], undefined],
      ] as const) {
        const r = await run(work, bin, [...args], input);
        if (r.code !== 0) throw new Error(`${args[0]} exited ${String(r.code)}: ${r.out}`);
      }
      // the report embeds Chart.js from the package's dependencies
      expect(fs.readFileSync(path.join(work, 'r.html'), 'utf8')).toMatch(/Chart/);
      // the library entry loads from the package too
      const probe = execFileSync(
        process.execPath,
        ['-e', `const m = require(${JSON.stringify(root)}); console.log(Object.keys(m).sort().join(','))`],
        { encoding: 'utf8', env: { ...process.env, NODE_PATH: path.join(REPO_ROOT, 'node_modules') } },
      );
      expect(probe.trim()).toBe('collector,report,runner,sync,warehouse');
      // and it type-checks for a TypeScript host, strict and without skipLibCheck, installed as npm would place
      // it: beside the package's dependencies, not its devDependencies (a type the public API names from one
      // of those would be missing)
      const modules = path.join(dir, 'consumer', 'node_modules');
      fs.mkdirSync(modules, { recursive: true });
      fs.renameSync(root, path.join(modules, 'cdp-lifecycle'));
      const dev = new Set(Object.keys(pkg.devDependencies).filter((d) => d !== '@types/node'));
      const installed = path.join(REPO_ROOT, 'node_modules');
      for (const entry of fs.readdirSync(installed)) {
        if (entry.startsWith('.')) continue;
        const names = entry.startsWith('@')
          ? fs.readdirSync(path.join(installed, entry)).map((n) => `${entry}/${n}`)
          : [entry];
        for (const name of names.filter((n) => !dev.has(n))) {
          fs.mkdirSync(path.dirname(path.join(modules, name)), { recursive: true });
          fs.symlinkSync(path.join(installed, name), path.join(modules, name));
        }
      }
      const consumer = path.join(dir, 'consumer', 'consumer.ts');
      fs.writeFileSync(
        consumer,
        [
          "import { sync, warehouse } from 'cdp-lifecycle';",
          'export async function main(): Promise<number> {',
          "  const wh: warehouse.Warehouse = await warehouse.openWarehouse('duckdb://:memory:');",
          '  const traits: sync.TraitMapping = sync.DEFAULT_TRAITS;',
          '  // @ts-expect-error: the options are typed (not any), so a misspelt one is caught',
          '  await sync.runSync({ warehuse: wh, traits });',
          "  const s: sync.SyncSummary = await sync.runSync({ warehouse: wh, schema: 'lifecycle', to: 'segment', writeKey: 'k', traits, dryRun: true });",
          '  await wh.close();',
          '  return s.sent;',
          '}',
          '',
        ].join('\n'),
      );
      const tsc = path.join(installed, 'typescript', 'bin', 'tsc');
      const args = ['--strict', '--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext'];
      try {
        execFileSync(process.execPath, [tsc, ...args, '--types', 'node', consumer], {
          cwd: path.dirname(consumer),
          encoding: 'utf8',
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      } catch (err) {
        throw new Error(
          `a TypeScript host does not type-check: ${String((err as { stdout?: string }).stdout)}`,
        );
      }
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  }, 180_000);
});
