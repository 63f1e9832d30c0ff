import { UsageError, UserError } from '../errors';
import { closest } from '../util/closest';
import type { ModelConfig, ModelNode } from './project';

/** A parsed model: its refs (edges) and its final config. */
export interface GraphNode {
  node: ModelNode;
  refs: string[];
  /** `<source>.<table>` keys the model reads. */
  sources?: string[];
  config: ModelConfig;
}

/**
 * Orders models so every model comes after the models it refs (Kahn's algorithm, ties broken by name so the
 * order is stable). A cycle is a UserError that spells the cycle out.
 */
export function topoSort(graph: Map<string, GraphNode>): string[] {
  const indeg = new Map<string, number>();
  const children = new Map<string, string[]>();
  for (const name of graph.keys()) {
    indeg.set(name, 0);
    children.set(name, []);
  }
  for (const [name, g] of graph) {
    for (const r of new Set(g.refs)) {
      if (!graph.has(r)) continue;
      indeg.set(name, indeg.get(name)! + 1);
      children.get(r)!.push(name);
    }
  }
  const ready = [...graph.keys()].filter((n) => indeg.get(n) === 0).sort();
  const order: string[] = [];
  while (ready.length) {
    const n = ready.shift()!;
    order.push(n);
    for (const c of children.get(n)!) {
      indeg.set(c, indeg.get(c)! - 1);
      if (indeg.get(c) === 0) {
        ready.push(c);
        ready.sort();
      }
    }
  }
  if (order.length !== graph.size) {
    const cycle = findCycle(graph);
    throw new UserError(
      `The models form a cycle: ${cycle.join(' -> ')}; remove one of these ref() calls (${cycle
        .slice(0, -1)
        .map((m) => graph.get(m)!.node.file)
        .join(', ')}).`,
    );
  }
  return order;
}

function findCycle(graph: Map<string, GraphNode>): string[] {
  const state = new Map<string, 1 | 2>();
  const stack: string[] = [];
  let found: string[] | undefined;
  const visit = (n: string): void => {
    if (found) return;
    state.set(n, 1);
    stack.push(n);
    for (const r of [...new Set(graph.get(n)!.refs)].sort()) {
      if (!graph.has(r) || found) continue;
      if (state.get(r) === 1) {
        // The stack from r to n is the cycle; print it in data-flow order (upstream first).
        const i = stack.indexOf(r);
        const cyc = stack.slice(i).reverse();
        // Start at the alphabetically first model so the message is the same whatever the walk order.
        const k = cyc.indexOf([...cyc].sort()[0]);
        const rotated = [...cyc.slice(k), ...cyc.slice(0, k)];
        found = [...rotated, rotated[0]];
        return;
      }
      if (!state.has(r)) visit(r);
    }
    stack.pop();
    state.set(n, 2);
  };
  for (const n of [...graph.keys()].sort()) if (!state.has(n) && !found) visit(n);
  return found ?? [];
}

/**
 * The models within `depth` refs of `name`, upwards (its parents) or downwards (the models that ref it), by
 * breadth: a model reached by a long path and a short one is as near as the short one makes it, as in dbt's
 * `2+x` (networkx's bfs_edges with a depth limit). Found afresh, then added to `out`, so that what `out`
 * already holds never cuts a walk short.
 */
function near(
  graph: Map<string, GraphNode>,
  name: string,
  depth: number,
  up: boolean,
  out: Set<string>,
  through: (model: string) => boolean = () => true,
): void {
  const children = new Map<string, string[]>();
  if (!up)
    for (const [m, g] of graph) for (const r of g.refs) children.set(r, [...(children.get(r) ?? []), m]);
  const found = new Set<string>([name]);
  let frontier = [name];
  for (let level = 0; level < depth && frontier.length > 0; level++) {
    const next: string[] = [];
    for (const n of frontier) {
      const around = up ? (graph.get(n)?.refs ?? []).filter((r) => graph.has(r)) : (children.get(n) ?? []);
      for (const m of around) {
        if (found.has(m)) continue;
        found.add(m);
        if (through(m)) next.push(m);
      }
    }
    frontier = next;
  }
  found.delete(name);
  for (const m of found) out.add(m);
}

function ancestors(graph: Map<string, GraphNode>, name: string, depth: number, out: Set<string>): void {
  near(graph, name, depth, true, out);
}

/**
 * Adds to `out` the models that ref `name`, down to `depth` levels (Infinity: all of them); the walk goes on
 * below a model only when `through` says so (the model itself is added either way).
 */
export function descendants(
  graph: Map<string, GraphNode>,
  name: string,
  depth: number,
  out: Set<string>,
  through?: (model: string) => boolean,
): void {
  near(graph, name, depth, false, out, through);
}

/** The configs dbt gives every model, which `config.<key>:<value>` matches when a model leaves them unset. */
const CONFIG_DEFAULTS: Record<string, unknown> = {
  materialized: 'view',
  enabled: true,
  on_schema_change: 'ignore',
};

/** Models matched by one selector atom: a name, `tag:x`, `path:dir`, `fqn:` or `*`, without graph operators. */
function matchAtom(graph: Map<string, GraphNode>, atom: string, projectName: string): Set<string> {
  const out = new Set<string>();
  const [rawMethod, rawValue] = atom.includes(':')
    ? [atom.slice(0, atom.indexOf(':')), atom.slice(atom.indexOf(':') + 1)]
    : ['', atom];
  // dbt's form `config.materialized:view`, beside this runner's older `config:materialized:view`
  // Without a method, dbt reads a value with a path separator as path: and a file name as file:, so that
  // `-s models/marts/user_lifecycle.sql` or `-s user_lifecycle.sql` select that model.
  const implied =
    rawMethod !== ''
      ? rawMethod
      : /[\\/]/.test(rawValue)
        ? 'path'
        : /\.(sql|py|csv)$/i.test(rawValue)
          ? 'file'
          : '';
  const [method, value] = implied.startsWith('config.')
    ? ['config', `${implied.slice('config.'.length)}:${rawValue}`]
    : [implied, rawValue];
  const glob = (pattern: string): RegExp =>
    new RegExp(
      '^' +
        pattern
          .replace(/[.+^${}()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '.*')
          .replace(/\?/g, '.') +
        '$',
    );
  for (const [name, g] of graph) {
    switch (method) {
      case '':
      case 'fqn': {
        if (value === '*' || glob(value).test(name)) out.add(name);
        else {
          // `marts` or `cdp_lifecycle.marts` selects a folder, as dbt's fqn method does.
          const fqn = [projectName, ...g.node.fqn, name];
          const parts = value.split('.');
          for (let i = 0; i + parts.length <= fqn.length; i++) {
            if (i > 1) break;
            if (parts.every((p, j) => glob(p).test(fqn[i + j])) && (i === 0 || fqn[0] === projectName)) {
              out.add(name);
              break;
            }
          }
        }
        break;
      }
      case 'tag':
        if ((g.config.tags ?? []).some((t) => glob(value).test(t))) out.add(name);
        break;
      case 'path': {
        const p = value.replace(/\\/g, '/').replace(/\/+$/, '');
        const file = g.node.file.replace(/\\/g, '/');
        const rel = file.split('/').slice(1).join('/');
        for (const f of [file, rel]) {
          if (f === p || f.startsWith(p + '/') || glob(p).test(f)) out.add(name);
        }
        break;
      }
      case 'file': {
        // the file's name, or its name without the extension, as dbt's file method matches
        const base = g.node.file.replace(/\\/g, '/').split('/').pop() ?? '';
        if ([base, base.replace(/\.[^.]*$/, '')].some((f) => glob(value).test(f))) out.add(name);
        break;
      }
      case 'source': {
        // The models that read the source (or one of its tables); `source:raw+` adds their descendants.
        if ((g.sources ?? []).some((k) => k === value || k.startsWith(value + '.') || glob(value).test(k))) {
          out.add(name);
        }
        break;
      }
      case 'config': {
        const at = value.indexOf(':');
        const key = at === -1 ? value : value.slice(0, at);
        const want = at === -1 ? undefined : value.slice(at + 1);
        // dbt matches the resolved config, defaults included: a model without config is a view
        const have = g.config[key] ?? CONFIG_DEFAULTS[key];
        // a list config (tags, grants' roles…) matches on any of its members, as in dbt
        const values = Array.isArray(have) ? have : [have];
        if (key && want !== undefined && values.some((v) => v !== undefined && String(v) === want))
          out.add(name);
        break;
      }
      case 'package':
        if (glob(value).test(projectName)) out.add(name);
        break;
      default:
        throw new UsageError(
          `The selector "${atom}" uses an unknown method "${method}": use a model name, tag:<tag>, path:<dir>, file:<file name>, source:<source>, config.<key>:<value> or package:<name>.`,
        );
    }
  }
  return out;
}

/** One selector with dbt's graph operators: `+name`, `name+`, `2+name`, `name+1`, `@name`. */
function parseSelector(sel: string): { at?: string; up?: string; atom: string; down?: string } {
  const m = /^(@)?(?:(\d*)\+)?(.+?)(?:\+(\d*))?$/.exec(sel);
  if (!m || !m[3])
    throw new UsageError(`The selector "${sel}" cannot be read: use name, +name, name+ or tag:<tag>.`);
  return { at: m[1], up: m[2], atom: m[3], down: m[4] };
}

function matchSelector(graph: Map<string, GraphNode>, sel: string, projectName: string): Set<string> {
  const { at, up, atom, down } = parseSelector(sel);
  const base = matchAtom(graph, atom, projectName);
  if (base.size === 0) {
    const near = /^[A-Za-z0-9_]+$/.test(atom) ? closest(atom, [...graph.keys()]) : undefined;
    throw new UsageError(
      near
        ? `The selector "${sel}" matches no model: did you mean ${at ?? ''}${up !== undefined ? `${up}+` : ''}${near}${down !== undefined ? `+${down}` : ''}?`
        : `The selector "${sel}" matches no model: check the name (models: ${[...graph.keys()].sort().join(', ')}).`,
    );
  }
  const out = new Set(base);
  for (const b of base) {
    if (up !== undefined) ancestors(graph, b, up === '' ? Infinity : Number(up), out);
    // dbt's `@` is the parents of (the model and its children): a leaf model still brings its own ancestors.
    if (at) ancestors(graph, b, Infinity, out);
    if (down !== undefined || at) {
      const ds = new Set<string>();
      descendants(graph, b, down === undefined || down === '' ? Infinity : Number(down), ds);
      for (const d of ds) {
        out.add(d);
        if (at) ancestors(graph, d, Infinity, out);
      }
    }
  }
  return out;
}

/**
 * The selectors of `--select` (entries may hold several, space separated). `--select ''` (an unset shell
 * variable) is refused: it would otherwise pick every model when a few were meant.
 */
function selectorItems(select: readonly string[] | undefined): string[] {
  const items = (select ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  if (select !== undefined && select.length > 0 && items.length === 0) {
    throw new UsageError(
      '--select is empty: name the models to pick (e.g. --select user_lifecycle+), or leave --select out for every model.',
    );
  }
  return items;
}

/** The parts of a selector item that a comma intersects (empty ones dropped). */
const selectorParts = (item: string): string[] => item.split(',').filter(Boolean);

/**
 * dbt's `--select`: items are a union (space separated or separate array entries), a comma inside an item
 * intersects. No selection means every model. `exclude` removes models the same way.
 */
export function selectModels(
  graph: Map<string, GraphNode>,
  select: readonly string[] | undefined,
  projectName: string,
  exclude?: readonly string[],
): Set<string> {
  const items = selectorItems(select);
  let chosen: Set<string>;
  if (items.length === 0) chosen = new Set(graph.keys());
  else {
    chosen = new Set();
    for (const item of items) {
      const parts = selectorParts(item);
      // commas alone (`--select ,`) picked no model and exited 0, as if the build had run
      if (parts.length === 0)
        throw new UsageError(
          `The selector "${item}" names no model: name the models to pick (e.g. --select user_lifecycle+).`,
        );
      let acc: Set<string> | undefined;
      for (const p of parts) {
        const s = matchSelector(graph, p, projectName);
        acc = acc === undefined ? s : new Set([...acc].filter((x) => s.has(x)));
      }
      if (parts.length > 1 && acc !== undefined && acc.size === 0) {
        // `a,b` is dbt's intersection, an easy slip for "a and b": building nothing would look like success.
        throw new UsageError(
          `The selector "${item}" matches no model: a comma keeps the models matched by every part; to select each, separate them with spaces ("${parts.join(' ')}").`,
        );
      }
      for (const x of acc ?? []) chosen.add(x);
    }
  }
  const excluded = (exclude ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean);
  const before = chosen.size;
  for (const x of excludedBy(graph, exclude, projectName)) chosen.delete(x);
  if (before > 0 && chosen.size === 0) {
    // Like a selector that matches nothing: a run of no model would look like success.
    throw new UsageError(
      `--exclude ${excluded.join(' ')} removes every model ${items.length ? `that --select ${items.join(' ')} picks` : 'of the project'}: nothing would run; narrow --exclude.`,
    );
  }
  return chosen;
}

/** The models `--exclude` matches (the guards of a selection that ends up empty are selectModels'). */
export function excludedBy(
  graph: Map<string, GraphNode>,
  exclude: readonly string[] | undefined,
  projectName: string,
): Set<string> {
  const out = new Set<string>();
  for (const item of (exclude ?? []).flatMap((s) => s.split(/\s+/)).filter(Boolean)) {
    if (selectorParts(item).length === 0)
      throw new UsageError(`The --exclude selector "${item}" names no model: name the models to leave out.`);
    for (const x of matchSelector(graph, item, projectName)) out.add(x);
  }
  return out;
}

/**
 * `test`'s selection, as dbt's: a `source:<source>[.<table>]` selector picks that source's tests, and with
 * graph operators (`source:cdp.tracks+`) also the tests of the models it reaches; the other selectors pick
 * models through selectModels. No selection means everything. A source selector that names no source read by
 * a model is a usage error, as a model selector that matches nothing.
 */
export function selectForTests(
  graph: Map<string, GraphNode>,
  select: readonly string[] | undefined,
  projectName: string,
  exclude?: readonly string[],
): { models: Set<string>; sources: string[]; everything: boolean } {
  const items = selectorItems(select);
  const sources: string[] = [];
  const modelSelectors: string[] = [];
  for (const item of items) {
    const { at, up, atom, down } = parseSelector(item);
    if (item.includes(',') || !atom.startsWith('source:')) {
      modelSelectors.push(item);
      continue;
    }
    const name = atom.slice('source:'.length);
    if (matchAtom(graph, atom, projectName).size === 0) {
      const known = [...new Set([...graph.values()].flatMap((g) => g.sources ?? []))].sort();
      throw new UsageError(
        `The selector "${item}" names no source table the models read: check the name (sources: ${known.join(', ') || 'none'}).`,
      );
    }
    sources.push(name);
    // with graph operators the selector reaches models too, whose tests run as well
    if (at !== undefined || up !== undefined || down !== undefined) modelSelectors.push(item);
  }
  const models =
    items.length > 0 && modelSelectors.length === 0
      ? new Set<string>()
      : selectModels(graph, modelSelectors, projectName, exclude);
  return { models, sources, everything: items.length === 0 };
}
