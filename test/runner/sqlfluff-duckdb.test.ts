import * as fs from 'node:fs';
import { spawnSync } from 'node:child_process';
import { compileAll, sqlfluffAvailable, sqlfluffParseErrors } from './compiled-projects';

// SPEC §1: every model must render to valid SQL in its dialect. sqlfluff is slow, so each dialect has its own
// test file (jest runs them in parallel) and parses all files in one sqlfluff run.
// The 10-minute timeout: one dialect parses in about 2 minutes alone and took over 5 once beside the other
// suites on 2 cores.
// Debian's sqlfluff (1.4) predates its duckdb dialect: then compile.test.ts parses the files with DuckDB itself.
const hasDialect =
  sqlfluffAvailable() &&
  /\bduckdb\b/.test(spawnSync('sqlfluff', ['dialects'], { encoding: 'utf8' }).stdout ?? '');
const run = hasDialect ? describe : describe.skip;

run('compiled models parse as duckdb SQL (sqlfluff)', () => {
  it('has no unparsable section in any model', async () => {
    const { root, dir, models } = await compileAll('duckdb');
    try {
      expect(models.length).toBeGreaterThan(0);
      expect(await sqlfluffParseErrors('duckdb', dir)).toEqual([]);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }, 600_000);
});
