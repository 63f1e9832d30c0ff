import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError, errorMessage } from '../errors';
import { UnresolvedYamlTag, parseYaml } from '../util/yaml';
import { isValidIdent } from '../warehouse/types';
import { pyStr } from './filters';
import { mergeGrants } from './grants';

/** Config keys a model can set through `config()`, schema.yml `config:` or dbt_project.yml `+key`. */
export interface ModelConfig {
  materialized?: string;
  unique_key?: string | string[];
  incremental_strategy?: string;
  alias?: string;
  schema?: string;
  tags?: string[];
  enabled?: boolean;
  on_schema_change?: string;
  [key: string]: unknown;
}

export const KNOWN_CONFIG_KEYS = new Set([
  'materialized',
  'unique_key',
  'incremental_strategy',
  'alias',
  'schema',
  'tags',
  'enabled',
  'on_schema_change',
  'incremental_predicates',
  'docs',
  'persist_docs',
  'meta',
  'full_refresh',
  'contract',
  'grants',
  'database',
  'pre-hook',
  'post-hook',
  'pre_hook',
  'post_hook',
  'sql_header',
  'indexes',
  'severity',
  'error_if',
  'warn_if',
  'where',
  'limit',
  'store_failures',
]);

/** One generic schema test as declared in schema.yml. */
export interface TestSpec {
  /** `unique`, `not_null`, `accepted_values`, `relationships` (others are reported as unsupported). */
  type: string;
  /** The model tested, or `<source>.<table>` for a test declared on a source table. */
  model: string;
  /** Set for tests declared under `sources:`; then `model` is the `<source>.<table>` key. */
  source?: { source: string; table: string };
  column?: string;
  /** The column came from a `column_name:` argument, which dbt takes as SQL: it may be an expression. */
  columnIsSql?: boolean;
  /** The column has `quote: true`: its name is matched exactly instead of as an unquoted identifier. */
  columnQuoted?: boolean;
  args: Record<string, unknown>;
  config: {
    where?: string;
    severity?: 'error' | 'warn';
    /** dbt's thresholds on the failing rows, e.g. `>10` (both `!=0` by default). */
    error_if?: string;
    warn_if?: string;
    [key: string]: unknown;
  };
  /** dbt-style unique test name, e.g. `not_null_user_lifecycle_user_id`. */
  name: string;
  file: string;
}

export interface ColumnSpecYml {
  name: string;
  description?: string;
  data_type?: string;
}

export interface ModelNode {
  name: string;
  /** Path relative to the project directory, for error messages (`models/marts/x.sql`). */
  file: string;
  absPath: string;
  raw: string;
  /** Folder segments below the model path, used for `dbt_project.yml` folder configs and `path:` selectors. */
  fqn: string[];
  /**
   * Config from dbt_project.yml and schema.yml as written (before their Jinja is rendered: see configLayers);
   * `config()` in the file is merged over it when parsed.
   */
  baseConfig: ModelConfig;
  /** The levels baseConfig merges, outer first, which the renderer renders and merges again. */
  configLayers: ConfigLayer[];
  description?: string;
  columns: ColumnSpecYml[];
}

/**
 * One level of a model's config as its YAML wrote it: dbt renders the Jinja in it (`+materialized: "{{ var('m')
 * }}"`), dbt_project.yml's with --vars only, schema.yml's with every var.
 */
export interface ConfigLayer {
  from: 'dbt_project.yml' | 'schema.yml';
  /** The file, for error messages. */
  file: string;
  config: Record<string, unknown>;
}

export interface SourceTable {
  source: string;
  name: string;
  identifier: string;
  /** Unrendered schema (may contain Jinja such as `{{ var('lifecycle__raw_schema', 'cdp') }}`). */
  schemaTemplate: string;
  description?: string;
  /** The column names its YAML declares, which the runner checks exist before a build reads the table. */
  columns: string[];
}

export interface MacroFile {
  file: string;
  source: string;
}

export interface Project {
  dir: string;
  name: string;
  /** Global vars (flat form) of dbt_project.yml. */
  globalVars: Record<string, unknown>;
  /** Package-scoped vars: `vars: {<package>: {...}}`. */
  packageVars: Record<string, Record<string, unknown>>;
  models: Map<string, ModelNode>;
  sources: Map<string, SourceTable>;
  macroFiles: MacroFile[];
  tests: TestSpec[];
  dispatch: Array<{ macro_namespace: string; search_order: string[] }>;
}

type Yml = Record<string, unknown>;

function isObject(v: unknown): v is Yml {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function readYaml(file: string, rel: string): unknown {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UserError(`Cannot read ${rel}: ${errorMessage(err)}.`, { cause: err });
  }
  try {
    return parseYaml(text);
  } catch (err) {
    if (err instanceof UnresolvedYamlTag) throw new UserError(err.sentence(rel));
    throw new UserError(`${rel} is not valid YAML: ${errorMessage(err).split('\n')[0]}`, { cause: err });
  }
}

function walk(dir: string, skip: Set<string>, out: string[]): void {
  if (!fs.existsSync(dir)) return;
  for (const entry of fs
    .readdirSync(dir, { withFileTypes: true })
    .sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (skip.has(path.resolve(p)) || entry.name.startsWith('.') || entry.name === 'node_modules') continue;
      walk(p, skip, out);
    } else out.push(p);
  }
}

function asStringList(v: unknown, fallback: string[]): string[] {
  if (v === undefined || v === null) return fallback;
  if (typeof v === 'string') return [v];
  if (Array.isArray(v)) return v.map(String);
  return fallback;
}

/**
 * Merges one config layer over another the way dbt does: tags accumulate, grants merge per privilege (see
 * mergeGrants), everything else overrides.
 */
export function mergeConfig(base: ModelConfig, over: Record<string, unknown>): ModelConfig {
  const out: ModelConfig = { ...base };
  for (const [k0, v] of Object.entries(over)) {
    const k = k0.startsWith('+') ? k0.slice(1) : k0;
    const hook = /^(pre|post)[-_]hook$/.exec(k);
    if (hook) {
      // dbt appends hooks from every level (project folders, schema.yml, config()), outer ones first, under
      // either spelling
      const key = `${hook[1]}_hook`;
      const list = (x: unknown): unknown[] =>
        x === undefined || x === null ? [] : Array.isArray(x) ? x : [x];
      out[key] = [...list(out[key]), ...list(v)];
    } else if (k === 'tags') {
      const add = typeof v === 'string' ? [v] : Array.isArray(v) ? v.map(String) : [];
      out.tags = [...new Set([...(out.tags ?? []), ...add])];
    } else if (k === 'grants' && isObject(v)) {
      out.grants = mergeGrants(out.grants, v);
    } else if ((k === 'meta' || k === 'persist_docs') && isObject(v) && isObject(out[k])) {
      // dicts dbt merges key by key: {columns: false} over {relation: true, columns: true} keeps relation
      out[k] = { ...out[k], ...v };
    } else out[k] = v;
  }
  return out;
}

/** Config from the `models:` tree of dbt_project.yml for a model at `fqn` (folders + model name). */
function folderConfig(tree: unknown, projectName: string, fqn: string[]): ModelConfig {
  let cfg: ModelConfig = {};
  if (!isObject(tree)) return cfg;
  const pick = (node: Yml): Record<string, unknown> => {
    const own: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(node)) {
      if (k.startsWith('+')) own[k] = v;
      else if (KNOWN_CONFIG_KEYS.has(k) && !isObject(v)) own[k] = v;
    }
    return own;
  };
  cfg = mergeConfig(cfg, pick(tree));
  let node: unknown = tree[projectName];
  if (!isObject(node)) return cfg;
  cfg = mergeConfig(cfg, pick(node));
  for (const seg of fqn) {
    node = (node as Yml)[seg];
    if (!isObject(node)) break;
    cfg = mergeConfig(cfg, pick(node));
  }
  return cfg;
}

function testsOf(node: Yml): unknown[] {
  const out: unknown[] = [];
  for (const key of ['data_tests', 'tests']) {
    const v = node[key];
    if (Array.isArray(v)) out.push(...v);
  }
  return out;
}

function parseTest(
  entry: unknown,
  model: string,
  column: string | undefined,
  file: string,
  usedNames: Set<string>,
  prefix = '',
): TestSpec {
  let type: string;
  let body: Yml = {};
  if (typeof entry === 'string') type = entry;
  else if (isObject(entry) && Object.keys(entry).length >= 1) {
    // `- accepted_values: {values: [...]}`; tolerate a sibling `name:` key.
    const keys = Object.keys(entry).filter((k) => k !== 'name');
    if (keys.length !== 1) {
      throw new UserError(
        `${file}: a test on ${model}${column ? '.' + column : ''} must have exactly one test name, got ${JSON.stringify(entry)}.`,
      );
    }
    type = keys[0];
    const b = entry[type];
    if (isObject(b)) body = b;
    else if (b !== null && b !== undefined) {
      throw new UserError(`${file}: the ${type} test on ${model} needs a mapping of arguments.`);
    }
  } else {
    throw new UserError(`${file}: cannot read the test ${JSON.stringify(entry)} on ${model}.`);
  }
  // dbt 1.10 nests arguments under `arguments:`; older projects put them beside `config:`.
  const args: Record<string, unknown> = {};
  // properties of the test itself, and dbt's config keys given beside the arguments (its CONFIG_ARGS): not
  // arguments of its macro, nor part of its name
  const configKeys = [
    'severity',
    'tags',
    'enabled',
    'where',
    'limit',
    'warn_if',
    'error_if',
    'fail_calc',
    'store_failures',
    'store_failures_as',
    'meta',
    'database',
    'schema',
    'alias',
  ];
  const own = ['config', 'arguments', 'name', 'description', ...configKeys];
  for (const [k, v] of Object.entries(body)) if (!own.includes(k)) args[k] = v;
  if (isObject(body.arguments)) Object.assign(args, body.arguments);
  const config: TestSpec['config'] = {};
  for (const k of configKeys) if (body[k] !== undefined) config[k] = body[k];
  if (isObject(body.config)) Object.assign(config, body.config);
  let col = column;
  const columnIsSql = !col && typeof args.column_name === 'string';
  if (columnIsSql) col = args.column_name as string;
  // dbt's generated name (synthesize_generic_test_names): the type (with its package, dbt_utils_x), the model,
  // then every argument's value in the arguments' sorted order, column_name included, as Python's str() prints
  // it (True, None), cleaned and joined by __.
  // (a source test's `source_` goes after the package: dbt_utils_source_x)
  const dot = type.lastIndexOf('.');
  const typeName =
    dot === -1
      ? `${prefix}${type}`
      : `${type.slice(0, dot).replace(/\./g, '_')}_${prefix}${type.slice(dot + 1)}`;
  const named: Record<string, unknown> = { ...args };
  if (col !== undefined && named.column_name === undefined) named.column_name = col;
  const parts: string[] = [];
  for (const k of Object.keys(named).sort()) {
    if (k === 'model') continue;
    const v = named[k];
    for (const x of Array.isArray(v) ? v : isObject(v) ? Object.values(v) : [v])
      parts.push(pyStr(x).replace(/[^0-9a-zA-Z_]+/g, '_'));
  }
  // a `name:` of its own replaces the generated one, as in dbt
  const name =
    typeof body.name === 'string' && body.name.trim() !== ''
      ? body.name.trim()
      : `${typeName}_${model}_${parts.join('__')}`;
  let unique = name;
  for (let i = 2; usedNames.has(unique); i++) unique = `${name}_${i}`;
  usedNames.add(unique);
  return { type, model, column: col, columnIsSql, args, config, name: unique, file };
}

/**
 * Finds the `models/` dbt package shipped with cdp-lifecycle: the folder beside the nearest package.json
 * named cdp-lifecycle, so it works from the TypeScript sources and from the compiled `dist/`.
 */
export function defaultProjectDir(): string {
  let dir = __dirname;
  for (;;) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        const name = (JSON.parse(fs.readFileSync(pkg, 'utf8')) as { name?: string }).name;
        if (name === 'cdp-lifecycle') return path.join(dir, 'models');
      } catch {
        // not ours; keep looking upwards
      }
    }
    const up = path.dirname(dir);
    if (up === dir) return path.resolve('models');
    dir = up;
  }
}

export interface LoadProjectOptions {
  /** Receives the warnings dbt prints while parsing (a schema.yml entry for a model that does not exist). */
  log?: (message: string) => void;
}

/** Reads dbt_project.yml, the models, the macros and every schema.yml of a dbt project. */
export function loadProject(projectDir: string, opts: LoadProjectOptions = {}): Project {
  const dir = path.resolve(projectDir);
  const projFile = path.join(dir, 'dbt_project.yml');
  if (!fs.existsSync(projFile)) {
    throw new UserError(
      `No dbt_project.yml in ${dir}: point the project directory at a dbt project (a folder with dbt_project.yml).`,
    );
  }
  const rel = (p: string): string => path.relative(process.cwd(), p) || p;
  const proj = readYaml(projFile, rel(projFile));
  if (!isObject(proj)) throw new UserError(`${rel(projFile)} must be a YAML mapping.`);
  const name = typeof proj.name === 'string' ? proj.name : undefined;
  if (!name) throw new UserError(`${rel(projFile)} has no "name:"; give the project a name.`);
  const modelPaths = asStringList(proj['model-paths'] ?? proj['source-paths'], ['models']).map((p) =>
    path.resolve(dir, p),
  );
  const macroPaths = asStringList(proj['macro-paths'], ['macros']).map((p) => path.resolve(dir, p));
  const skip = new Set<string>([
    ...macroPaths,
    ...['target', 'dbt_packages', 'dbt_modules', 'logs', 'tests', 'seeds', 'snapshots', 'analyses'].map((p) =>
      path.resolve(dir, p),
    ),
    path.resolve(dir, String(proj['target-path'] ?? 'target')),
  ]);

  const globalVars: Record<string, unknown> = {};
  const packageVars: Record<string, Record<string, unknown>> = {};
  if (isObject(proj.vars)) {
    for (const [k, v] of Object.entries(proj.vars)) {
      // A mapping under a package's name is package-scoped (dbt's `vars: {cdp_lifecycle: {...}}`).
      if (isObject(v) && k === name) packageVars[k] = { ...v };
      else globalVars[k] = v;
    }
  }

  const models = new Map<string, ModelNode>();
  const ymlFiles: string[] = [];
  for (const mp of modelPaths) {
    // a mistyped path built nothing and said nothing
    if (!fs.existsSync(mp) || !fs.statSync(mp).isDirectory()) {
      throw new UserError(
        `${rel(projFile)} names the model path "${path.relative(dir, mp) || '.'}", which is not a folder of the project: fix model-paths.`,
      );
    }
    const files: string[] = [];
    walk(mp, skip, files);
    for (const f of files) {
      if (/\.ya?ml$/.test(f) && path.resolve(f) !== projFile) ymlFiles.push(f);
      if (!f.endsWith('.sql')) continue;
      const modelName = path.basename(f, '.sql');
      const relFile = path.relative(dir, f);
      if (!isValidIdent(modelName)) {
        throw new UserError(
          `The model file ${relFile} has a name that is not a plain SQL identifier: rename it to letters, digits and underscores${/^[0-9]/.test(modelName) ? ', starting with a letter or an underscore' : ''}${modelName.length > 63 ? ', at most 63 characters' : ''}.`,
        );
      }
      const prev = models.get(modelName);
      if (prev) {
        throw new UserError(`Two models are named ${modelName} (${prev.file} and ${relFile}): rename one.`);
      }
      const fqn = path.relative(mp, path.dirname(f)).split(path.sep).filter(Boolean);
      const projectConfig = folderConfig(proj.models, name, [...fqn, modelName]);
      models.set(modelName, {
        name: modelName,
        file: path.join(path.basename(dir), relFile),
        absPath: f,
        raw: fs.readFileSync(f, 'utf8'),
        fqn,
        baseConfig: projectConfig,
        configLayers: [{ from: 'dbt_project.yml', file: rel(projFile), config: projectConfig }],
        columns: [],
      });
    }
  }

  const macroFiles: MacroFile[] = [];
  // macro-paths that overlap (macros and macros/sub) must not read a file twice
  const macroFilesSeen = new Set<string>();
  for (const mp of macroPaths) {
    const files: string[] = [];
    walk(mp, new Set(), files);
    for (const f of files) {
      const real = fs.realpathSync(f);
      if (macroFilesSeen.has(real)) continue;
      macroFilesSeen.add(real);
      if (f.endsWith('.sql') || f.endsWith('.jinja')) {
        macroFiles.push({
          file: path.join(path.basename(dir), path.relative(dir, f)),
          source: fs.readFileSync(f, 'utf8'),
        });
      }
      if (/\.ya?ml$/.test(f)) ymlFiles.push(f);
    }
  }

  const sources = new Map<string, SourceTable>();
  const tests: TestSpec[] = [];
  const usedNames = new Set<string>();
  for (const yf of ymlFiles) {
    const relFile = path.join(path.basename(dir), path.relative(dir, yf));
    const doc = readYaml(yf, relFile);
    if (!isObject(doc)) continue;
    if (Array.isArray(doc.models)) {
      for (const m of doc.models) {
        if (!isObject(m) || typeof m.name !== 'string') {
          throw new UserError(`${relFile}: every entry under "models:" needs a "name:".`);
        }
        const node = models.get(m.name);
        if (!node) {
          // dbt warns (NoNodeForYamlKey) and parses on: a model removed or not written yet stops nothing, and
          // its entry's config and tests go with it
          opts.log?.(
            `warning: Did not find matching node for patch with name '${m.name}' in the 'models' section of file '${relFile}' (there is no ${m.name}.sql): its config and tests are ignored`,
          );
          continue;
        }
        if (typeof m.description === 'string') node.description = m.description;
        if (isObject(m.config)) {
          node.baseConfig = mergeConfig(node.baseConfig, m.config);
          node.configLayers.push({ from: 'schema.yml', file: relFile, config: m.config });
        }
        for (const t of testsOf(m)) tests.push(parseTest(t, m.name, undefined, relFile, usedNames));
        if (Array.isArray(m.columns)) {
          for (const c of m.columns) {
            if (!isObject(c) || typeof c.name !== 'string') {
              throw new UserError(`${relFile}: every column of ${m.name} needs a "name:".`);
            }
            node.columns.push({
              name: c.name,
              description: typeof c.description === 'string' ? c.description : undefined,
              data_type: typeof c.data_type === 'string' ? c.data_type : undefined,
            });
            for (const t of testsOf(c))
              tests.push({
                ...parseTest(t, m.name, c.name, relFile, usedNames),
                columnQuoted: c.quote === true,
              });
          }
        }
      }
    }
    if (Array.isArray(doc.sources)) {
      for (const s of doc.sources) {
        if (!isObject(s) || typeof s.name !== 'string') {
          throw new UserError(`${relFile}: every entry under "sources:" needs a "name:".`);
        }
        const schemaTemplate = typeof s.schema === 'string' ? s.schema : s.name;
        for (const t of Array.isArray(s.tables) ? s.tables : []) {
          if (!isObject(t) || typeof t.name !== 'string') {
            throw new UserError(`${relFile}: every table of the source ${s.name} needs a "name:".`);
          }
          sources.set(`${s.name}.${t.name}`, {
            source: s.name,
            name: t.name,
            identifier: typeof t.identifier === 'string' ? t.identifier : t.name,
            schemaTemplate,
            description: typeof t.description === 'string' ? t.description : undefined,
            columns: (Array.isArray(t.columns) ? t.columns : [])
              .filter(
                (c): c is Record<string, unknown> & { name: string } =>
                  isObject(c) && typeof c.name === 'string',
              )
              .map((c) => c.name),
          });
          // Tests on source tables, named like dbt's: source_not_null_<source>_<table>_<column>.
          const key = `${s.name}_${t.name}`;
          const srcTests: TestSpec[] = [];
          for (const x of testsOf(t))
            srcTests.push(parseTest(x, key, undefined, relFile, usedNames, 'source_'));
          for (const c of Array.isArray(t.columns) ? t.columns : []) {
            if (!isObject(c) || typeof c.name !== 'string') continue;
            for (const x of testsOf(c))
              srcTests.push({
                ...parseTest(x, key, c.name, relFile, usedNames, 'source_'),
                columnQuoted: c.quote === true,
              });
          }
          for (const x of srcTests)
            tests.push({ ...x, model: `${s.name}.${t.name}`, source: { source: s.name, table: t.name } });
        }
      }
    }
  }

  const dispatch: Project['dispatch'] = [];
  if (Array.isArray(proj.dispatch)) {
    for (const d of proj.dispatch) {
      if (isObject(d) && typeof d.macro_namespace === 'string') {
        dispatch.push({ macro_namespace: d.macro_namespace, search_order: asStringList(d.search_order, []) });
      }
    }
  }

  return { dir, name, globalVars, packageVars, models, sources, macroFiles, tests, dispatch };
}
