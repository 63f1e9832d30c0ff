/**
 * Renders models with minijinja-js (the engine family of dbt's newer core) using the SAME context functions
 * as the nunjucks renderer, so the parity test can hold every template to the portable Jinja subset.
 *
 * minijinja-js cannot call a template macro from JavaScript, and JavaScript values it receives become plain
 * data. The context works around that, never the templates:
 * - every macro (package and built-in `dbt`) is a global JS function that renders
 *   `{% from '<macros>' import name %}{{ name(args) }}` in a nested minijinja environment, and
 *   `adapter.dispatch()` returns such a function for the macro the nunjucks renderer resolves;
 * - `return(x)` prints x, so a macro whose whole body is `{{ return(...) }}` yields the same string (macros
 *   returning lists or dicts are outside the portable subset and are not supported here);
 * - `this` and `run_started_at` are passed as their printed strings (relations and datetimes would arrive as
 *   maps), so `{{ this }}` and `run_started_at | string` behave; `this.schema` would not.
 * - keyword arguments reach JS as a trailing Map and are passed on as keywords.
 */
import { Environment } from 'minijinja-js';
import { BUILTIN_MACROS } from '../../src/runner/builtin-macros';
import type { ModelNode, Project } from '../../src/runner/project';
import { Relation, type Renderer } from '../../src/runner/render';

type Fn = (...args: unknown[]) => unknown;

function toPlain(v: unknown): unknown {
  if (v instanceof Map) return Object.fromEntries([...v.entries()].map(([k, x]) => [k, toPlain(x)]));
  if (Array.isArray(v)) return v.map(toPlain);
  return v;
}

function fromNunjucks(v: unknown): unknown {
  if (v instanceof Relation) return v.render();
  if (v && typeof v === 'object' && !Array.isArray(v) && Object.getPrototypeOf(v) !== Object.prototype) {
    // SafeString, PyDateTime: their printed form.
    return String(v);
  }
  return v;
}

/** minijinja passes keywords as a trailing Map: turn it into nunjucks' trailing `{__keywords: true}` object. */
function toNunjucksArgs(args: unknown[]): unknown[] {
  const last = args[args.length - 1];
  if (last instanceof Map)
    return [...args.slice(0, -1).map(toPlain), { ...(toPlain(last) as object), __keywords: true }];
  return args.map(toPlain);
}

export class MinijinjaRenderer {
  private readonly envs: Environment[] = [];
  private depth = 0;
  private ctx: Record<string, unknown> = {};
  private readonly pkgSource: string;

  constructor(
    private readonly r: Renderer,
    project: Project,
  ) {
    // Built-ins first so a package macro of the same name wins, as in the nunjucks renderer.
    this.pkgSource = [BUILTIN_MACROS, ...project.macroFiles.map((m) => m.source)].join('\n');
  }

  private env(depth: number): Environment {
    let env = this.envs[depth];
    if (env) return env;
    env = new Environment();
    env.addTemplate('__dbt', BUILTIN_MACROS);
    env.addTemplate('__pkg', this.pkgSource);
    const g = this.r.contextGlobals();
    const wrap =
      (fn: Fn, self: unknown): Fn =>
      (...args: unknown[]) =>
        fromNunjucks(fn.apply(self, toNunjucksArgs(args)));
    for (const key of [
      'ref',
      'source',
      'var',
      'config',
      'is_incremental',
      'log',
      'env_var',
      'tojson',
      'fromjson',
      'zip',
    ]) {
      env.addGlobal(key, wrap(g[key] as Fn, undefined));
    }
    env.addGlobal('return', (x: unknown) => x);
    env.addGlobal('target', g.target);
    env.addGlobal('project_name', g.project_name);
    const exc = g.exceptions as Record<string, Fn>;
    env.addGlobal('exceptions', {
      raise_compiler_error: wrap(exc.raise_compiler_error, exc),
      warn: wrap(exc.warn, exc),
    });
    env.addGlobal('adapter', {
      dispatch: (...args: unknown[]) => {
        const [name, ns] = toNunjucksArgs(args) as [string, string | undefined];
        const res = this.r.resolveDispatch(name, typeof ns === 'string' ? ns : undefined);
        return (...a: unknown[]) => this.call(res.namespace === 'dbt' ? '__dbt' : '__pkg', res.macro, a);
      },
    });
    const names = this.r.macroNames();
    const dbt: Record<string, Fn> = {};
    for (const n of names.builtin) dbt[n] = (...a: unknown[]) => this.call('__dbt', n, a);
    env.addGlobal('dbt', dbt);
    for (const n of new Set([...names.builtin, ...names.package])) {
      env.addGlobal(n, (...a: unknown[]) => this.call('__pkg', n, a));
    }
    this.envs[depth] = env;
    return env;
  }

  /** Calls macro `name` of template `tpl` in a nested environment (one per nesting depth). */
  private call(tpl: string, name: string, args: unknown[]): string {
    const last = args[args.length - 1];
    const pos = last instanceof Map ? args.slice(0, -1) : args;
    const kw = last instanceof Map ? (toPlain(last) as Record<string, unknown>) : {};
    const ctx: Record<string, unknown> = { ...this.ctx };
    const parts: string[] = [];
    pos.forEach((v, i) => {
      ctx[`__a${i}`] = toPlain(v);
      parts.push(`__a${i}`);
    });
    for (const [k, v] of Object.entries(kw)) {
      ctx[`__k_${k}`] = v;
      parts.push(`${k}=__k_${k}`);
    }
    this.depth++;
    try {
      return this.env(this.depth).renderStr(
        `{% from '${tpl}' import ${name} %}{{ ${name}(${parts.join(', ')}) }}`,
        ctx,
      );
    } finally {
      this.depth--;
    }
  }

  render(node: ModelNode, isIncremental = false): string {
    return this.r.withModel(node, isIncremental, () => {
      const g = this.r.contextGlobals();
      this.ctx = {
        this: String(g.this),
        model: toPlain(g.model),
        execute: true,
        run_started_at: String(g.run_started_at),
      };
      return this.env(0).renderStr(node.raw, this.ctx);
    });
  }
}
