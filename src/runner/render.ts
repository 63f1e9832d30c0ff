import * as nunjucks from 'nunjucks';
import { UserError, errorMessage } from '../errors';
import { isValidIdent } from '../warehouse/types';
import { BUILTIN_MACROS, BUILTIN_MACROS_FILE } from './builtin-macros';
import { mergeConfig, type ModelConfig, type ModelNode, type Project } from './project';
import { installFilters, pyStr, truthy } from './filters';
import { PyJsonValueError, pyJsonDumps } from './pyjson';
import { createModules, PyDateTime } from './pymodules';
import { pythonMethod } from './pymethods';

export type TargetType = 'duckdb' | 'postgres' | 'snowflake' | 'bigquery' | 'redshift';
export const TARGET_TYPES: readonly TargetType[] = [
  'duckdb',
  'postgres',
  'snowflake',
  'bigquery',
  'redshift',
];

/**
 * dbt's adapter inheritance for `adapter.dispatch`: dbt-redshift declares dbt-postgres as its parent, so a
 * `postgres__x` implementation serves Redshift when there is no `redshift__x`.
 */
export function adapterPrefixes(t: TargetType): string[] {
  return t === 'redshift' ? ['redshift', 'postgres', 'default'] : [t, 'default'];
}

/** Why `name` is no identifier this runner writes, or undefined when it is one. */
function identProblem(name: string): string | undefined {
  if (isValidIdent(name)) return undefined;
  // the length first: "use letters, digits and underscores" would send a 64-character name the wrong way
  if (/^[A-Za-z_][A-Za-z0-9_]*$/.test(name) && name.length > 63) {
    return `"${name}" is ${name.length} characters long, more than the 63 PostgreSQL keeps: shorten it`;
  }
  return `"${name}" is not a valid SQL identifier: use letters, digits and underscores only`;
}

/** Quotes an identifier the way the target's dbt adapter does by default. */
export function quoteFor(t: TargetType, name: string): string {
  const problem = identProblem(name);
  if (problem) throw new UserError(`${problem}.`);
  if (t === 'bigquery') return '`' + name + '`';
  // dbt-snowflake leaves identifiers unquoted by default (quoting would make them case-sensitive).
  if (t === 'snowflake') return name;
  return `"${name}"`;
}

/** dbt's Relation: prints as the quoted `schema.identifier`, exposes its parts to templates. */
export class Relation {
  readonly name: string;
  readonly table: string;
  constructor(
    readonly schema: string,
    readonly identifier: string,
    private readonly targetType: TargetType,
    readonly type: 'table' | 'view' | 'cte' | 'source' = 'table',
    /** The database (dbt's `this.database`); it never prints, as relations stay `schema.identifier`. */
    readonly database: string | null = null,
  ) {
    this.name = identifier;
    this.table = identifier;
  }
  render(): string {
    if (this.type === 'cte') return this.identifier;
    return `${quoteFor(this.targetType, this.schema)}.${quoteFor(this.targetType, this.identifier)}`;
  }
  toString(): string {
    return this.render();
  }
  include(): Relation {
    return this;
  }
}

/** Raised by `exceptions.raise_compiler_error`; its message is shown as is. */
export class CompilerError extends Error {}

/** A model that failed to render; `compilerMessage` is the template's own `raise_compiler_error` text, if any. */
export class ModelRenderError extends UserError {
  constructor(
    message: string,
    readonly compilerMessage: string | undefined,
    cause: unknown,
  ) {
    super(message, { cause });
    this.name = 'ModelRenderError';
  }
}

class ReturnSignal {
  constructor(readonly value: unknown) {}
}

type MacroFn = (...args: unknown[]) => unknown;
type NunjucksRuntime = {
  makeMacro: (argNames: string[], kwargNames: string[], func: (...a: unknown[]) => unknown) => MacroFn;
  __cdpConcat?: (a: unknown, b: unknown) => string;
  suppressValue: (val: unknown, autoescape: boolean) => unknown;
  SafeString: new (s: string) => object;
  memberLookup: (obj: unknown, val: string) => unknown;
};
interface CompilerProto {
  compileConcat(node: { left: unknown; right: unknown }, frame: unknown): void;
  compile(node: unknown, frame: unknown): void;
  _emit(code: string): void;
  _emitLine(code: string): void;
  _compileMacro(node: unknown, frame?: unknown): string;
  compileMacro(node: { name: { value: string } }, frame: { parent: unknown }): void;
}

function active<T>(fn: () => T): T {
  activeRenders++;
  try {
    return fn();
  } finally {
    activeRenders--;
  }
}

/**
 * Compiled template code by file and source, shared by every Renderer of the process. One CLI command parses
 * the project several times (the selection check, the build, `test`), and nunjucks' compile was about half of a
 * parse. The generated code depends only on the source and on the compiler options, which are the same for
 * every Renderer (autoescape off, throwOnUndefined off, no async filters or extensions); the environment (the
 * globals: ref, var, config...) is passed when it renders.
 */
const compiledCode = new Map<string, Record<string, unknown>>();
const COMPILED_CODE_LIMIT = 1000;

type CompiledTemplate = nunjucks.Template & {
  rootRenderFunc: unknown;
  blocks: Record<string, unknown> | undefined;
};

function compiledTemplate(source: string, env: nunjucks.Environment, file: string): nunjucks.Template {
  const key = `${file}\u0000${source}`;
  const code = compiledCode.get(key);
  // nunjucks' own form of precompiled code (`{type: 'code', obj}`), which its typings leave out
  if (code) return new nunjucks.Template({ type: 'code', obj: code } as unknown as string, env, file, true);
  // The first compile goes through nunjucks as before, so a syntax error reads the same.
  const t = new nunjucks.Template(source, env, file, true) as CompiledTemplate;
  const obj: Record<string, unknown> = { root: t.rootRenderFunc };
  for (const [name, fn] of Object.entries(t.blocks ?? {})) obj[`b_${name}`] = fn;
  if (compiledCode.size >= COMPILED_CODE_LIMIT) compiledCode.clear();
  compiledCode.set(key, obj);
  return t;
}

/** >0 while a Renderer renders: only then does `~` use Python's str() (other nunjucks users keep theirs). */
let activeRenders = 0;
let patched = false;
/**
 * dbt/Jinja2 behaviours nunjucks lacks, patched into its shared runtime and compiler:
 * - `{{ return(x) }}` stops a macro and makes x its value: `return()` throws a signal that every macro
 *   catches at its own boundary (inert for macros that never call it). A compiled macro swaps the template's
 *   `frame` for its own and swaps it back only on a normal exit, so the signal would leave its caller reading
 *   the callee's scope (its `set` variables and `loop` gone): each macro restores the frame in a `finally`;
 * - `a ~ b` and `{{ x }}` convert with Python's str() (None, True, lists), not JavaScript's (null, true),
 *   while one of our renders runs;
 * - a looked-up callable keeps its own members, and a member of an undefined value fails (memberLookup below).
 */
function patchNunjucks(): void {
  if (patched) return;
  patched = true;
  const runtime = require('nunjucks/src/runtime') as NunjucksRuntime;
  const original = runtime.makeMacro;
  runtime.makeMacro = (argNames, kwargNames, func) => {
    const macro = original(argNames, kwargNames, func);
    return function (this: unknown, ...args: unknown[]) {
      try {
        return macro.apply(this, args);
      } catch (err) {
        if (err instanceof ReturnSignal) return err.value;
        throw err;
      }
    };
  };
  runtime.__cdpConcat = (a, b) => (activeRenders > 0 ? pyStr(a) + pyStr(b) : String(a) + String(b));
  // `{{ x }}` prints with Python's str() too (None, True, ['a', 'b'], {'k': 1}) as Jinja2 does; an undefined
  // name still prints nothing, as Jinja2's Undefined does.
  const suppress = runtime.suppressValue;
  runtime.suppressValue = (val, autoescape) =>
    activeRenders > 0 && val !== undefined && typeof val !== 'string' && !(val instanceof runtime.SafeString)
      ? suppress(pyStr(val), autoescape)
      : suppress(val, autoescape);
  // `x.f` hands out a bound copy of a method, without f's own members: a Python class that is both called
  // and looked into (modules.datetime.date(2024, 1, 31) and modules.datetime.date.today()) keeps them.
  // And `x.f` of an undefined x fails, as Jinja2's Undefined does (a typo such as `tagret.schema` would
  // otherwise render an empty identifier into the SQL); of none it is undefined, as in Jinja2.
  const lookup = runtime.memberLookup;
  runtime.memberLookup = (obj, val) => {
    if (activeRenders > 0) {
      if (obj === undefined)
        throw new Error(
          `cannot read "${String(val)}" of something undefined (a name that is not defined, or a missing attribute), which Jinja2 and dbt refuse too`,
        );
      const py = pythonMethod(obj, val);
      if (py) return py;
    }
    const found = lookup(obj, val);
    const own = obj === null || obj === undefined ? undefined : (obj as Record<string, unknown>)[val];
    return typeof found === 'function' &&
      typeof own === 'function' &&
      found !== own &&
      Object.keys(own).length
      ? Object.assign(found, own)
      : found;
  };
  const compiler = (require('nunjucks/src/compiler') as { Compiler: { prototype: CompilerProto } }).Compiler;
  const compileMacro = compiler.prototype._compileMacro;
  compiler.prototype._compileMacro = function (node, frame) {
    // Wraps the generated function's body: `var callerFrame = frame;` opens it, and the `});` right after
    // `return new runtime.SafeString(…)` closes it (nested macros open and close in between).
    const emitLine = this._emitLine;
    let closing = 0;
    this._emitLine = function (code: string) {
      if (code === '});' && closing > 0) {
        closing--;
        emitLine.call(this, '} finally { frame = callerFrame; }');
      }
      emitLine.call(this, code);
      if (code === 'var callerFrame = frame;') emitLine.call(this, 'try {');
      if (code.startsWith('return new runtime.SafeString(')) closing++;
    };
    try {
      return compileMacro.call(this, node, frame);
    } finally {
      this._emitLine = emitLine;
    }
  };
  // nunjucks keeps a top-level macro named _x private to its file; dbt calls any macro by name
  // (dbt_utils._is_relation), so those are exported too.
  const compileNamedMacro = compiler.prototype.compileMacro;
  compiler.prototype.compileMacro = function (node, frame) {
    compileNamedMacro.call(this, node, frame);
    const name = node.name.value;
    if (!frame.parent && name.startsWith('_')) this._emitLine(`context.addExport(${JSON.stringify(name)});`);
  };
  compiler.prototype.compileConcat = function (node, frame) {
    this._emit('runtime.__cdpConcat(');
    this.compile(node.left, frame);
    this._emit(', ');
    this.compile(node.right, frame);
    this._emit(')');
  };
}

interface Kwargs {
  __keywords?: boolean;
  [k: string]: unknown;
}

/** Splits nunjucks call arguments into positional ones and the trailing keyword object. */
function splitArgs(args: unknown[]): { pos: unknown[]; kw: Record<string, unknown> } {
  const last = args[args.length - 1] as Kwargs | undefined;
  if (last && typeof last === 'object' && last.__keywords === true) {
    const kw: Record<string, unknown> = { ...last };
    delete kw.__keywords;
    return { pos: args.slice(0, -1), kw };
  }
  return { pos: args, kw: {} };
}

export type RenderMode = 'parse' | 'run';

/** What rendering one model produced. */
export interface RenderedModel {
  sql: string;
  config: ModelConfig;
  refs: string[];
  sources: string[];
  /** Ephemeral models this SQL refers to through `__dbt__cte__<name>`, directly. */
  ephemeralRefs: string[];
}

export interface RendererOptions {
  project: Project;
  targetType: TargetType;
  /** target.schema (`--schema`). */
  schema: string;
  /** Vars from the command line (`--vars`), highest precedence. */
  vars?: Record<string, unknown>;
  /** Becomes the var `lifecycle__raw_schema` unless `--vars` sets it. */
  rawSchema?: string;
  targetName?: string;
  runStartedAt?: Date;
  /** `--full-refresh`, visible to templates as `flags.FULL_REFRESH`. */
  fullRefresh?: boolean;
  log?: (message: string) => void;
  /** target.database and each relation's database: the PostgreSQL database, a DuckDB file's stem. */
  database?: string | null;
}

interface RenderState {
  node: ModelNode;
  mode: RenderMode;
  isIncremental: boolean;
  config: ModelConfig;
  refs: string[];
  sources: string[];
  ephemeralRefs: string[];
  error?: unknown;
}

type Ctx = Record<string, unknown>;

/**
 * Renders models with nunjucks and the dbt context (ref, source, var, config, is_incremental, this, target,
 * adapter.dispatch, the dbt.* cross-database macros, return, exceptions, log, modules, run_started_at).
 * Everything is a global of one nunjucks Environment, read through getters at call time, so macros defined
 * in macro files see the model being rendered just like dbt's.
 */
export class Renderer {
  readonly env: nunjucks.Environment;
  readonly project: Project;
  readonly targetType: TargetType;
  readonly schema: string;
  /** target.database (see RendererOptions.database). */
  readonly database: string | null;
  private readonly cliVars: Record<string, unknown>;
  private readonly packageMacros = new Map<string, MacroFn>();
  /** Set while a project's generate_alias_name runs (see aliasFor). */
  private naming: { node: ModelNode; config: ModelConfig } | undefined;
  private readonly builtinMacros = new Map<string, MacroFn>();
  private state: RenderState | undefined;
  /** Final configs of parsed models, so `ref()` knows which targets are ephemeral and where they live. */
  readonly configs = new Map<string, ModelConfig>();
  /** The refs each model made when parsed: the DAG's edges, which a run-mode ref() must not go beyond. */
  private readonly parsedRefs = new Map<string, string[]>();
  private readonly templates = new Map<string, nunjucks.Template>();
  /** Each model's config from its YAML, rendered (see renderBaseConfig). */
  private readonly baseConfigs = new Map<string, ModelConfig>();
  /** Set while dbt_project.yml's configs render, where var() sees --vars only. */
  private projectYaml = false;
  private readonly sourceSchemas = new Map<string, string>();
  private readonly log: (message: string) => void;
  readonly runStartedAt: Date;

  constructor(opts: RendererOptions) {
    patchNunjucks();
    this.project = opts.project;
    this.targetType = opts.targetType;
    if (!isValidIdent(opts.schema)) {
      throw new UserError(
        `The schema "${opts.schema}" is not a valid SQL identifier: use letters, digits and underscores only.`,
      );
    }
    this.schema = opts.schema;
    this.database = opts.database ?? null;
    this.cliVars = { ...(opts.vars ?? {}) };
    if (opts.rawSchema !== undefined && this.cliVars.lifecycle__raw_schema === undefined) {
      this.cliVars.lifecycle__raw_schema = opts.rawSchema;
    }
    this.log = opts.log ?? (() => undefined);
    this.runStartedAt = opts.runStartedAt ?? new Date();
    this.env = new nunjucks.Environment(null, { autoescape: false, throwOnUndefined: false });
    installFilters(this.env);
    this.installGlobals(opts.targetName ?? 'dev', opts.fullRefresh === true);
    this.loadMacros(BUILTIN_MACROS_FILE, BUILTIN_MACROS, this.builtinMacros);
    // dbt refuses two macros of one name in a package, since which one a call reaches would be arbitrary.
    const macroFile = new Map<string, string>();
    for (const mf of this.project.macroFiles) {
      this.loadMacros(mf.file, mf.source, this.packageMacros);
      const defs = macroDefinitions(mf.source);
      // dbt reads a file's macros before any Jinja runs: one inside {% if %} would be defined either way.
      if (defs.nested.length) {
        const { name, line } = defs.nested[0];
        throw new UserError(
          `The macro file ${mf.file} defines the macro ${name} inside {% if %} or {% for %} (line ${line}): dbt allows macros only at the top level of a file; define it there and branch inside it instead.`,
        );
      }
      for (const name of defs.names) {
        const first = macroFile.get(name);
        if (first !== undefined)
          throw new UserError(
            `Two macros are named "${name}" (${first === mf.file ? `both in ${first}` : `${first} and ${mf.file}`}): ` +
              'rename or remove one, as dbt requires.',
          );
        macroFile.set(name, mf.file);
      }
    }
    // A package macro overrides dbt's of the same name, as in dbt (root project macros win).
    for (const [name, fn] of this.builtinMacros)
      if (!this.packageMacros.has(name)) this.env.addGlobal(name, fn);
    for (const [name, fn] of this.packageMacros) this.env.addGlobal(name, fn);
    const dbtNs: Record<string, MacroFn> = {};
    for (const [name, fn] of this.builtinMacros) dbtNs[name] = fn;
    this.env.addGlobal('dbt', dbtNs);
    // every model's, as dbt renders the YAML while it parses, disabled models included
    for (const node of this.project.models.values())
      this.baseConfigs.set(node.name, this.renderBaseConfig(node));
  }

  /** A model's config from dbt_project.yml and schema.yml, its Jinja rendered (see renderBaseConfig). */
  baseConfigOf(node: ModelNode): ModelConfig {
    return this.baseConfigs.get(node.name) ?? node.baseConfig;
  }

  /**
   * Renders the Jinja in a model's YAML config, as dbt's DbtProjectYamlRenderer and SchemaYamlRenderer do
   * (hooks stay as written: they render when they run, with the model's context), and merges the levels.
   */
  private renderBaseConfig(node: ModelNode): ModelConfig {
    let cfg: ModelConfig = {};
    for (const layer of node.configLayers) {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(layer.config)) {
        if (/^\+?(pre|post)[-_]hook$/.test(key)) {
          out[key] = value;
          continue;
        }
        // dbt renders dbt_project.yml with --vars alone: its own vars: are not known yet
        this.projectYaml = layer.from === 'dbt_project.yml';
        try {
          out[key] = this.renderYamlValue(value);
        } catch (err) {
          throw new UserError(
            `The config ${key.replace(/^\+/, '')} of the model ${node.name}, set in ${layer.file}, does not render: ${renderErrorMessage(err)}.`,
            { cause: err },
          );
        } finally {
          this.projectYaml = false;
        }
      }
      cfg = mergeConfig(cfg, out);
    }
    return cfg;
  }

  /**
   * One YAML value with its strings rendered. dbt renders them natively: a string that is one `{{ … }}` gives
   * its value (a boolean stays a boolean for `enabled`), and any output that reads as a literal (`True`, `3`)
   * becomes that literal.
   */
  private renderYamlValue(value: unknown): unknown {
    if (Array.isArray(value)) return value.map((v) => this.renderYamlValue(v));
    if (value !== null && typeof value === 'object')
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, this.renderYamlValue(v)]));
    if (typeof value !== 'string' || !/\{[{%#]/.test(value)) return value;
    const single = /^\s*\{\{-?([\s\S]*?)-?\}\}\s*$/.exec(value);
    if (single && !/\{[{%#]|[}%#]\}/.test(single[1])) {
      let captured: unknown;
      active(() =>
        this.env.renderString(`{{ __dbt_native((${single[1]})) }}`, {
          __dbt_native: (v: unknown) => {
            captured = v;
            return '';
          },
        }),
      );
      // dbt's quoted_native_concat: one expression's value as it is (the string '2024' stays a string)
      return captured ?? null;
    }
    // several pieces join into a string, with no conversion
    return active(() => this.env.renderString(value, {}));
  }

  private loadMacros(file: string, source: string, into: Map<string, MacroFn>): void {
    let exported: Record<string, unknown> = {};
    try {
      // getExported is public in nunjucks but missing from its type definitions.
      const tmpl = compiledTemplate(source, this.env, file) as nunjucks.Template & {
        getExported(ctx: object, frame: null, cb: (err: Error | null, ex: unknown) => void): void;
      };
      active(() =>
        tmpl.getExported({}, null, (err, ex) => {
          if (err) throw err;
          exported = ex as Record<string, unknown>;
        }),
      );
    } catch (err) {
      throw new UserError(
        `The macro file ${file} does not parse: ${renderErrorMessage(err, undefined, true)}`,
        {
          cause: err,
        },
      );
    }
    for (const [name, fn] of Object.entries(exported))
      if (typeof fn === 'function') into.set(name, fn as MacroFn);
  }

  /** Records a template error so the report shows its own message rather than nunjucks' wrapping. */
  private fail(message: string): CompilerError {
    const e = new CompilerError(message);
    if (this.state) this.state.error = e;
    return e;
  }

  /** The current model's state; functions that need a model fail clearly when called outside one. */
  private cur(what: string): RenderState {
    if (!this.state) throw this.fail(`${what} can only be used while rendering a model`);
    return this.state;
  }

  /** Looks up a var with dbt's precedence: --vars, package-scoped project vars, global project vars. */
  lookupVar(name: string): { found: boolean; value: unknown } {
    const has = (o: unknown): o is Record<string, unknown> =>
      !!o && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, name);
    // --vars are flat, as dbt reads them: {cdp_lifecycle: {x: 1}} there is a var named cdp_lifecycle (the CLI
    // refuses it); only dbt_project.yml scopes vars to a package.
    const layers = this.projectYaml
      ? [this.cliVars]
      : [this.cliVars, this.project.packageVars[this.project.name], this.project.globalVars];
    for (const layer of layers) {
      if (has(layer)) return { found: true, value: layer[name] };
    }
    return { found: false, value: undefined };
  }

  /**
   * dbt's default generate_schema_name: a custom schema is appended to the target schema. A project's own
   * generate_schema_name gets the node of the model the relation belongs to (not the model being rendered,
   * which differs inside ref(), nor none, as between models of a build).
   */
  schemaFor(config: ModelConfig, node: ModelNode | undefined = this.state?.node): string {
    const custom =
      typeof config.schema === 'string' && config.schema.trim() !== '' ? config.schema.trim() : '';
    const gen = this.packageMacros.get('generate_schema_name');
    if (gen) {
      const out = String(gen(custom || null, node ? this.modelObject(node, config) : null)).trim();
      return out;
    }
    return custom ? `${this.schema}_${custom}` : this.schema;
  }

  /**
   * dbt's default generate_alias_name: the alias config, else the model's name. A project's own
   * generate_alias_name gets the alias config (or none) and the model's node, as dbt calls it for every model.
   */
  aliasFor(name: string, config: ModelConfig, node: ModelNode | undefined): string {
    const custom = typeof config.alias === 'string' && config.alias.trim() !== '' ? config.alias.trim() : '';
    const gen = this.packageMacros.get('generate_alias_name');
    if (!gen || !node || this.naming) return custom || name;
    // The macro may read `model`: it is the node being named, whichever model is rendering (a ref() from
    // another model must give the same name), with the default alias meanwhile, since its alias is this very
    // name.
    this.naming = { node, config };
    try {
      const out: unknown = gen(custom || null, this.modelObject(node, config));
      if (out === null || out === undefined)
        throw new UserError(
          `generate_alias_name returned none for the model ${node.name} (${node.file}): it must return the relation's name.`,
        );
      return String(out).trim();
    } finally {
      this.naming = undefined;
    }
  }

  relationFor(name: string, config: ModelConfig): Relation {
    const node = this.project.models.get(name) ?? this.state?.node;
    const identifier = this.aliasFor(name, config, node);
    const type = config.materialized === 'view' ? 'view' : 'table';
    const schema = this.schemaFor(config, node);
    const aliasFrom = this.packageMacros.has('generate_alias_name')
      ? 'generate_alias_name'
      : identifier === name
        ? 'its file name'
        : 'its alias config';
    // named here, with the model and the config that made the name, rather than where it is first quoted
    for (const [part, value, from] of [
      ['schema', schema, 'its schema config (or generate_schema_name)'],
      ['name', identifier, aliasFrom],
    ] as const) {
      const problem = identProblem(value);
      if (problem) {
        const file = this.project.models.get(name)?.file;
        throw new UserError(
          `The model ${name}${file ? ` (${file})` : ''} builds into a ${part} that cannot be: ${problem}, in ${from}.`,
        );
      }
    }
    return new Relation(schema, identifier, this.targetType, type, this.database);
  }

  private modelObject(node: ModelNode, config: ModelConfig, alias?: string): Ctx {
    return {
      name: node.name,
      alias: alias ?? (typeof config.alias === 'string' ? config.alias : node.name),
      original_file_path: node.file,
      path: node.file,
      fqn: [this.project.name, ...node.fqn, node.name],
      config,
      tags: config.tags ?? [],
      description: node.description ?? '',
      resource_type: 'model',
      package_name: this.project.name,
      unique_id: `model.${this.project.name}.${node.name}`,
    };
  }

  /** Renders a source's schema or identifier, which may use Jinja (`{{ var('lifecycle__raw_schema') }}`). */
  /** Where `source(source, table)` points (key `source.table`), with its schema rendered; undefined if undeclared. */
  sourceRelation(key: string): { schema: string; identifier: string } | undefined {
    const src = this.project.sources.get(key);
    if (!src) return undefined;
    return {
      schema: this.sourcePart(`${key}:schema`, src.schemaTemplate),
      identifier: this.sourcePart(`${key}:identifier`, src.identifier),
    };
  }

  private sourcePart(key: string, template: string): string {
    if (!template.includes('{')) return template;
    let s = this.sourceSchemas.get(key);
    if (s === undefined) {
      s = active(() => this.env.renderString(template, {})).trim();
      this.sourceSchemas.set(key, s);
    }
    return s;
  }

  private installGlobals(targetName: string, fullRefresh: boolean): void {
    const g = (name: string, value: unknown): void => {
      this.env.addGlobal(name, value);
    };
    const getter = (name: string, get: () => unknown): void => {
      Object.defineProperty((this.env as unknown as { globals: object }).globals, name, {
        get,
        configurable: true,
        enumerable: true,
      });
    };

    g('ref', (...args: unknown[]) => {
      const st = this.cur('ref()');
      const { pos } = splitArgs(args);
      const name = String(pos.length >= 2 ? pos[1] : pos[0]);
      const node = this.project.models.get(name);
      if (!node) {
        throw this.fail(
          `ref('${name}') names no model of the project: check the spelling or add ${name}.sql`,
        );
      }
      if (!st.refs.includes(name)) st.refs.push(name);
      const cfg = this.configs.get(name) ?? this.baseConfigOf(node);
      if (st.mode === 'run' && cfg.materialized === 'ephemeral') {
        if (!st.ephemeralRefs.includes(name)) st.ephemeralRefs.push(name);
        return new Relation('', `__dbt__cte__${name}`, this.targetType, 'cte');
      }
      return this.relationFor(name, cfg);
    });
    g('source', (...args: unknown[]) => {
      const st = this.state;
      const { pos } = splitArgs(args);
      const key = `${String(pos[0])}.${String(pos[1])}`;
      const src = this.project.sources.get(key);
      if (!src) {
        throw this.fail(
          `source('${String(pos[0])}', '${String(pos[1])}') is not declared: add it under "sources:" in a schema.yml`,
        );
      }
      if (st && !st.sources.includes(key)) st.sources.push(key);
      return new Relation(
        this.sourcePart(`${key}:schema`, src.schemaTemplate),
        this.sourcePart(`${key}:identifier`, src.identifier),
        this.targetType,
        'source',
        this.database,
      );
    });
    g('var', (...args: unknown[]) => {
      const { pos } = splitArgs(args);
      const name = String(pos[0]);
      const v = this.lookupVar(name);
      if (v.found) return v.value;
      if (pos.length >= 2) return pos[1];
      throw this.fail(
        this.projectYaml
          ? `the var "${name}" is required but not set: dbt_project.yml's configs see only --vars, as in dbt: pass it with --vars '{"${name}": ...}' or give var() a default`
          : `the var "${name}" is required but not set: pass it with --vars '{"${name}": ...}' or set it under vars: in dbt_project.yml`,
      );
    });
    const config = (...args: unknown[]): string => {
      const st = this.state;
      const { pos, kw } = splitArgs(args);
      const fromDict = pos[0] && typeof pos[0] === 'object' ? (pos[0] as Record<string, unknown>) : {};
      if (st) st.config = mergeConfig(st.config, { ...fromDict, ...kw });
      return '';
    };
    // dbt's config object is also read inside models: config.get('key', default), config.require('key').
    config.get = (...args: unknown[]): unknown => {
      const { pos } = splitArgs(args);
      const v = this.state?.config[String(pos[0])];
      return v === undefined ? (pos[1] ?? null) : v;
    };
    config.require = (key: unknown): unknown => {
      const v = this.state?.config[String(key)];
      if (v === undefined) throw this.fail(`the config "${String(key)}" is required but not set`);
      return v;
    };
    // dbt's config.set('k', v), what its set_sql_header macro calls with a {% call %} block's text
    config.set = (key: unknown, value: unknown): string => {
      const st = this.state;
      if (st)
        st.config = mergeConfig(st.config, {
          [String(key)]: value instanceof String ? String(value) : value,
        });
      return '';
    };
    g('config', config);
    g('is_incremental', () => {
      const st = this.cur('is_incremental()');
      return st.isIncremental;
    });
    getter('this', () => {
      const st = this.state;
      if (!st) return undefined;
      return this.relationFor(st.node.name, st.config);
    });
    getter('model', () => {
      if (this.naming) return this.modelObject(this.naming.node, this.naming.config);
      const st = this.state;
      return st
        ? this.modelObject(st.node, st.config, this.aliasFor(st.node.name, st.config, st.node))
        : undefined;
    });
    getter('execute', () => this.state?.mode === 'run');
    g('target', {
      name: targetName,
      type: this.targetType,
      schema: this.schema,
      database: this.database,
      threads: 1,
      profile_name: this.project.name,
    });
    g('project_name', this.project.name);
    g('adapter', {
      dispatch: (...args: unknown[]) => {
        const { pos, kw } = splitArgs(args);
        return this.dispatch(
          String(pos[0] ?? kw.macro_name),
          (pos[1] ?? kw.macro_namespace) as string | undefined,
        );
      },
      quote: (s: unknown) => quoteFor(this.targetType, String(s)),
      type: () => this.targetType,
    });
    g('return', (value: unknown) => {
      throw new ReturnSignal(value);
    });
    g('exceptions', {
      raise_compiler_error: (msg: unknown) => {
        throw this.fail(String(msg));
      },
      warn: (msg: unknown) => {
        this.log(`warning: ${String(msg)}`);
        return '';
      },
    });
    g('log', (...args: unknown[]) => {
      const { pos } = splitArgs(args);
      this.log(String(pos[0]));
      return '';
    });
    g('print', (msg: unknown) => {
      this.log(String(msg));
      return '';
    });
    // dbt's doc() reads a `{% docs %}` block of a .md file, which this runner does not parse
    g('doc', (name: unknown) => {
      throw this.fail(
        `doc('${String(name)}') reads a {% docs %} block, which this runner does not read: write the text in the description itself`,
      );
    });
    g('env_var', (...args: unknown[]) => {
      const { pos } = splitArgs(args);
      const name = String(pos[0]);
      const v = process.env[name];
      if (v !== undefined) return v;
      if (pos.length >= 2) return pos[1];
      throw this.fail(`the environment variable ${name} is required but not set`);
    });
    // dbt's tojson(value, default=None, sort_keys=False): json.dumps, and the default on a ValueError
    g('tojson', (...args: unknown[]) => {
      const { pos, kw } = splitArgs(args);
      const fallback = pos.length >= 2 ? pos[1] : (kw.default ?? null);
      const sortKeys = pos.length >= 3 ? truthy(pos[2]) : truthy(kw.sort_keys);
      try {
        return pyJsonDumps(pos[0], sortKeys);
      } catch (err) {
        if (err instanceof PyJsonValueError) return fallback;
        throw this.fail(`tojson: ${errorMessage(err)}`);
      }
    });
    g('fromjson', (s: unknown) => JSON.parse(String(s)) as unknown);
    g('zip', (...lists: unknown[]) => {
      const ls = lists.filter(Array.isArray) as unknown[][];
      const n = Math.min(...ls.map((l) => l.length));
      return Array.from({ length: n }, (_, i) => ls.map((l) => l[i]));
    });
    g('modules', createModules());
    g('run_started_at', new PyDateTime(this.runStartedAt));
    g('invocation_id', '00000000-0000-0000-0000-000000000000');
    g('flags', { FULL_REFRESH: fullRefresh, WHICH: 'run' });
    g('builtins', {});
  }

  /** Resolves `adapter.dispatch(name, namespace)` like dbt: each package in order, each adapter prefix in order. */
  resolveDispatch(
    name: string,
    namespace?: string,
  ): { namespace: 'dbt' | 'package'; macro: string; fn: MacroFn } {
    const prefixes = adapterPrefixes(this.targetType);
    let packages: string[];
    const custom = namespace ? this.project.dispatch.find((d) => d.macro_namespace === namespace) : undefined;
    if (custom && custom.search_order.length) packages = custom.search_order;
    else if (!namespace || namespace === 'dbt') packages = [this.project.name, 'dbt'];
    // The package's own namespace falls back to the built-in dbt macros, so dispatch('type_string', '<pkg>') works.
    else if (namespace === this.project.name) packages = [namespace, 'dbt'];
    else packages = [namespace];
    const searched: string[] = [];
    for (const pkg of packages) {
      const isDbt = pkg === 'dbt';
      const registry = isDbt
        ? this.builtinMacros
        : pkg === this.project.name
          ? this.packageMacros
          : undefined;
      for (const prefix of prefixes) {
        const candidate = `${prefix}__${name}`;
        searched.push(`${pkg}.${candidate}`);
        const fn = registry?.get(candidate);
        if (fn) return { namespace: isDbt ? 'dbt' : 'package', macro: candidate, fn };
      }
    }
    throw this.fail(
      `adapter.dispatch('${name}'${namespace ? `, '${namespace}'` : ''}) found no implementation for ${this.targetType} (looked for ${searched.join(', ')})`,
    );
  }

  dispatch(name: string, namespace?: string): MacroFn {
    return this.resolveDispatch(name, namespace).fn;
  }

  private template(node: ModelNode): nunjucks.Template {
    let t = this.templates.get(node.name);
    if (!t) {
      t = compiledTemplate(node.raw, this.env, node.file);
      this.templates.set(node.name, t);
    }
    return t;
  }

  /**
   * Renders one model. In `parse` mode it collects `config()` and `ref()` calls (the DAG); in `run` mode
   * `ref()` to an ephemeral model yields its CTE name and `is_incremental()` answers `isIncremental`.
   */
  render(node: ModelNode, mode: RenderMode, isIncremental = false): RenderedModel {
    const st: RenderState = {
      node,
      mode,
      isIncremental,
      config:
        mode === 'run'
          ? { ...(this.configs.get(node.name) ?? this.baseConfigOf(node)) }
          : { ...this.baseConfigOf(node) },
      refs: [],
      sources: [],
      ephemeralRefs: [],
    };
    const prev = this.state;
    this.state = st;
    // nunjucks numbers the lines of a syntax error (thrown while compiling) from 1, of a render error from 0
    let compiling = true;
    let sql: string;
    try {
      sql = active(() => {
        const template = this.template(node);
        compiling = false;
        return template.render({});
      });
    } catch (err) {
      throw new ModelRenderError(
        `model ${node.name} (${node.file}) failed to render: ${renderErrorMessage(err, st.error, compiling)}`,
        st.error instanceof CompilerError ? st.error.message : undefined,
        err,
      );
    } finally {
      this.state = prev;
    }
    if (mode === 'parse') {
      this.configs.set(node.name, st.config);
      this.parsedRefs.set(node.name, [...st.refs]);
    } else {
      // dbt records refs when it parses a model, with is_incremental() false; a ref reached only on an
      // incremental run is an edge the DAG lacks, so the model could run before what it reads. dbt refuses
      // such a model the same way.
      const parsed = this.parsedRefs.get(node.name);
      const unseen = parsed ? st.refs.filter((r) => !parsed.includes(r)) : [];
      if (unseen.length > 0) {
        throw new UserError(
          `model ${node.name} (${node.file}) refs ${unseen.join(', ')} only on this run (e.g. inside ` +
            `{% if is_incremental() %}), so the DAG does not know it depends on ${unseen.length > 1 ? 'them' : 'it'}: ` +
            `add ${unseen.map((r) => `"-- depends_on: {{ ref('${r}') }}"`).join(' and ')} at the top of the file.`,
        );
      }
    }
    return { sql, config: st.config, refs: st.refs, sources: st.sources, ephemeralRefs: st.ephemeralRefs };
  }

  /**
   * Runs `fn` with `node` as the model being rendered, so another template engine (the minijinja parity test)
   * can call this renderer's context functions exactly as nunjucks does.
   */
  withModel<T>(node: ModelNode, isIncremental: boolean, fn: () => T): T {
    const prev = this.state;
    this.state = {
      node,
      mode: 'run',
      isIncremental,
      config: { ...(this.configs.get(node.name) ?? this.baseConfigOf(node)) },
      refs: [],
      sources: [],
      ephemeralRefs: [],
    };
    try {
      return active(fn);
    } finally {
      this.state = prev;
    }
  }

  /** The dbt context as plain values and functions (nunjucks calling convention: kwargs as a trailing object with `__keywords`). */
  contextGlobals(): Record<string, unknown> {
    return (this.env as unknown as { globals: Record<string, unknown> }).globals;
  }

  /** Names of the package's macros and of the built-in `dbt` namespace. */
  macroNames(): { package: string[]; builtin: string[] } {
    return { package: [...this.packageMacros.keys()], builtin: [...this.builtinMacros.keys()] };
  }

  /** Renders a Jinja string (e.g. a schema test's `where:`) in the context of a model. */
  renderString(text: string, node?: ModelNode): string {
    const prev = this.state;
    if (node) {
      this.state = {
        node,
        mode: 'run',
        isIncremental: false,
        config: { ...(this.configs.get(node.name) ?? this.baseConfigOf(node)) },
        refs: [],
        sources: [],
        ephemeralRefs: [],
      };
    }
    let tmpl: nunjucks.Template;
    try {
      tmpl = compiledTemplate(text, this.env, '(string)');
    } catch (err) {
      this.state = prev;
      throw new UserError(renderErrorMessage(err, undefined, true), { cause: err });
    }
    try {
      return active(() => tmpl.render({}));
    } catch (err) {
      // nunjucks wraps the error ("(unknown path)" first): say ours, or its own with the line
      throw new UserError(renderErrorMessage(err, this.state?.error), { cause: err });
    } finally {
      this.state = prev;
    }
  }
}

interface MacroAstNode {
  typename: string;
  name?: { value: string };
  lineno: number;
  findAll(type: unknown): MacroAstNode[];
}

interface NunjucksParsing {
  parser: { parse(src: string): { children: MacroAstNode[] } };
  nodes: { Macro: unknown };
}

/** What a macro file defines, read once per source (a build makes several renderers). */
interface MacroDefinitions {
  /** Every top-level macro, in order, duplicates included (the exported object keeps only the last). */
  names: string[];
  /** Macros inside a top-level `{% if %}` or `{% for %}`, with their 1-based line. */
  nested: Array<{ name: string; line: number }>;
}
const macroDefinitionsCache = new Map<string, MacroDefinitions>();

function macroDefinitions(source: string): MacroDefinitions {
  const cached = macroDefinitionsCache.get(source);
  if (cached) return cached;
  // nunjucks' parser and node classes are public but missing from its type definitions.
  const { parser, nodes } = nunjucks as unknown as NunjucksParsing;
  const defs: MacroDefinitions = { names: [], nested: [] };
  for (const child of parser.parse(source).children) {
    if (child.typename === 'Macro' && child.name) {
      defs.names.push(child.name.value);
      continue;
    }
    for (const m of child.findAll(nodes.Macro))
      if (m.typename === 'Macro' && m.name) defs.nested.push({ name: m.name.value, line: m.lineno + 1 });
  }
  if (macroDefinitionsCache.size >= COMPILED_CODE_LIMIT) macroDefinitionsCache.clear();
  macroDefinitionsCache.set(source, defs);
  return defs;
}

function flatten(msg: string): string {
  return msg.replace(/\s*\n\s*/g, ' ').trim();
}

/** The most useful one-line message for a render failure: our own errors as is, nunjucks' with its position. */
/** A rendered YAML string as dbt's native rendering reads it: a Python literal (`True`, `None`, `3`) or the text. */
export function renderErrorMessage(err: unknown, own?: unknown, syntaxError = false): string {
  const msg = errorMessage(err);
  const m = /\[Line (\d+), Column (\d+)\]\s*([\s\S]*)$/.exec(msg);
  // nunjucks counts a render error's lines from 0 (a syntax error's from 1) and leaves the position out on the
  // first line.
  const line = m ? ` (line ${Number(m[1]) + (syntaxError ? 0 : 1)})` : '';
  if (own instanceof Error) return own.message + line;
  if (err instanceof UserError || err instanceof CompilerError) return err.message;
  // without a position (a member lookup: only calls record their line), the message still names the file first
  const inner = flatten(m ? m[3] : msg)
    .replace(/^(Template render error:\s*)+/i, '')
    .replace(/^\([^)]*\)\s*/, '')
    .replace(/^Error: /, '');
  return `${inner}${line}`;
}
