import * as path from 'node:path';
import { parseProject } from '../../src/runner/graph';
import { defaultProjectDir, loadProject } from '../../src/runner/project';
import { TARGET_TYPES } from '../../src/runner/render';
import { MinijinjaRenderer } from './minijinja-harness';

/**
 * Every model must render to the same SQL under nunjucks (the runner) and minijinja (dbt's newer engine
 * family), with the same context: the portable-Jinja-subset rule of the package, enforced.
 */
const PROJECTS = [defaultProjectDir(), path.join(__dirname, 'fixtures', 'basic')];

const normalise = (sql: string): string => sql.replace(/\s+/g, ' ').trim();

describe.each(PROJECTS)('nunjucks / minijinja parity: %s', (dir) => {
  const project = loadProject(dir);

  it('has models to compare', () => {
    expect(project.models.size).toBeGreaterThan(0);
  });

  it.each(TARGET_TYPES.map((t) => [t]))('renders every model identically for %s', (dialect) => {
    const parsed = parseProject({
      project,
      targetType: dialect,
      schema: 'lifecycle',
      rawSchema: 'cdp',
      runStartedAt: new Date('2024-03-31T12:34:56.789Z'),
    });
    const mj = new MinijinjaRenderer(parsed.renderer, project);
    let compared = 0;
    for (const name of parsed.order) {
      const g = parsed.graph.get(name)!;
      const modes = g.config.materialized === 'incremental' ? [false, true] : [false];
      for (const inc of modes) {
        const viaNunjucks = normalise(parsed.renderer.render(g.node, 'run', inc).sql);
        let viaMinijinja: string;
        try {
          viaMinijinja = normalise(mj.render(g.node, inc));
        } catch (e) {
          throw new Error(
            `minijinja failed on ${g.node.file} (${dialect}, incremental=${inc}): ${String(e)}`,
          );
        }
        // The file name in the message tells which model broke the portable subset.
        expect({ file: g.node.file, incremental: inc, sql: viaMinijinja }).toEqual({
          file: g.node.file,
          incremental: inc,
          sql: viaNunjucks,
        });
        compared++;
      }
    }
    expect(compared).toBeGreaterThanOrEqual(parsed.order.length);
  });
});

describe('the parity check itself', () => {
  it('notices a template that renders differently outside the portable subset', () => {
    const dir = path.join(__dirname, 'fixtures', 'basic');
    const project = loadProject(dir);
    const parsed = parseProject({ project, targetType: 'duckdb', schema: 'lifecycle', rawSchema: 'cdp' });
    const mj = new MinijinjaRenderer(parsed.renderer, project);
    const node = { ...parsed.graph.get('stg_orders')!.node, name: 'probe' };
    // Printing none: the runner prints 'None' as Jinja2 does, minijinja 'none'.
    node.raw = "select '{{ none }}' as x, {{ ref('dim_users') }}";
    expect(normalise(mj.render(node))).toBe(`select 'none' as x, "lifecycle"."dim_users"`);
    expect(normalise(parsed.renderer.render(node, 'run').sql)).toBe(
      `select 'None' as x, "lifecycle"."dim_users"`,
    );
  });
});
