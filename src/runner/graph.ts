import { UserError } from '../errors';
import type { GraphNode } from './dag';
import { topoSort } from './dag';
import type { Project } from './project';
import { Renderer, type RendererOptions } from './render';

/** A project rendered once in parse mode: configs and refs of every enabled model, in DAG order. */
export interface ParsedProject {
  project: Project;
  renderer: Renderer;
  graph: Map<string, GraphNode>;
  order: string[];
}

export function parseProject(opts: RendererOptions): ParsedProject {
  const renderer = new Renderer(opts);
  const graph = new Map<string, GraphNode>();
  const project = opts.project;
  for (const node of project.models.values()) {
    const r = renderer.render(node, 'parse');
    if (r.config.enabled === false) continue;
    graph.set(node.name, { node, refs: r.refs, sources: r.sources, config: r.config });
  }
  for (const [name, g] of graph) {
    for (const ref of g.refs) {
      if (!graph.has(ref)) {
        throw new UserError(
          `model ${name} (${g.node.file}) refs ${ref}, which is disabled: enable ${ref} or remove the ref.`,
        );
      }
    }
    const m = g.config.materialized ?? 'view';
    if (!['view', 'table', 'incremental', 'ephemeral'].includes(String(m))) {
      throw new UserError(
        `model ${name} (${g.node.file}) has materialized='${String(m)}': use view, table, incremental or ephemeral.`,
      );
    }
  }
  // Two models writing one relation (an alias equal to another model's name) would overwrite each other and
  // test each other's rows: dbt refuses such a project at parse time, and so does the runner.
  const owners = new Map<string, string>();
  for (const [name, g] of graph) {
    if (g.config.materialized === 'ephemeral') continue;
    const key = renderer.relationFor(name, g.config).render().toLowerCase();
    const other = owners.get(key);
    if (other) {
      throw new UserError(
        `models ${other} and ${name} (${g.node.file}) both build ${key}: give one of them another alias or schema.`,
      );
    }
    owners.set(key, name);
  }
  const order = topoSort(graph);
  return { project, renderer, graph, order };
}

/** Prepends the CTEs of the ephemeral models `sql` refers to (directly or through each other), as dbt does. */
export function injectCtes(
  sql: string,
  direct: readonly string[],
  ephemeral: (name: string) => { sql: string; ephemeralRefs: readonly string[] },
): string {
  const ordered: string[] = [];
  const seen = new Set<string>();
  const visit = (n: string): void => {
    if (seen.has(n)) return;
    seen.add(n);
    for (const d of ephemeral(n).ephemeralRefs) visit(d);
    ordered.push(n);
  };
  for (const d of direct) visit(d);
  if (ordered.length === 0) return sql;
  const ctes = ordered.map((n) => `__dbt__cte__${n} as (\n${ephemeral(n).sql}\n)`).join(',\n');
  // Insert after a leading WITH (keeping RECURSIVE) so the model's own CTEs still follow; comments first.
  const lead = /^(\s*(?:--[^\n]*\n|\/\*[\s\S]*?\*\/\s*)*\s*)with(\s+recursive)?\s/i.exec(sql);
  if (lead) {
    const at = lead[0].length;
    return `${sql.slice(0, at - 1)}\n${ctes},\n${sql.slice(at)}`;
  }
  return `with ${ctes}\n${sql}`;
}

/** Strips what makes a SELECT unusable inside `create … as (…)`: trailing semicolons and blank space. */
export function cleanSql(sql: string): string {
  return sql.replace(/[\s;]+$/, '').replace(/^\s*\n/, '');
}
