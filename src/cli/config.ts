import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import { UsageError, errorMessage } from '../errors';
import { closest } from '../util/closest';
import { UnresolvedYamlTag, parseYaml } from '../util/yaml';
import { parseWarehouseUrl, reservedSchemaProblem, schemaNameProblem } from '../warehouse';
import { parseTraitsOption } from '../sync/traits';
import { SETTINGS, type Setting, type SyncTarget } from './settings';

export const CONFIG_FILE_NAME = 'cdp-lifecycle.yml';

/** Everything a command needs, after flags > env > file > defaults. */
export interface ResolvedConfig {
  warehouse: string;
  rawSchema: string;
  schema: string;
  vars: Record<string, unknown>;
  /** Where the warehouse URL came from when not from --warehouse or the default (an environment variable, a file). */
  warehouseFrom?: string;
  /** Where each var in `vars` was set (`--vars`, a file, an environment variable), for error messages. */
  varSources: Record<string, string>;
  /** Where run_results.json goes. */
  targetPath: string;
  serve: {
    port: number;
    host: string;
    writeKeys: string[];
    schedule?: string;
    maxRequestBytes: number;
    maxEventBytes: number;
    maxBatchEvents: number;
    maxConcurrentRequests: number;
  };
  sync: {
    to?: SyncTarget;
    endpoint?: string;
    writeKey?: string;
    /** Where the endpoint came from when not from --endpoint (an environment variable, a file), as warehouseFrom. */
    endpointFrom?: string;
    traits?: Record<string, string>;
    integrations?: Record<string, unknown>;
    rateLimit?: number;
  };
  /** The config file that was read, if any (absolute path). */
  configFile?: string;
  /**
   * The collector's write keys as the file and the environment give them, read by every command (`sync` and
   * `run` do not otherwise read them): a sync key among them would send the traits back into this warehouse.
   */
  collectorKeys: string[];
}

type Source =
  | { kind: 'flag'; name: string }
  | { kind: 'env'; name: string }
  /** `file`: the config file as found (./cdp-lifecycle.yml, --config or LIFECYCLE_CONFIG), for messages. */
  | { kind: 'file'; name: string; file?: string };

/** A list of write keys as a file (a YAML list) or the environment (comma-separated) may give it; unchecked. */
function asKeyList(raw: unknown): string[] {
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? raw.split(',') : [];
  return items.map((k) => String(k).trim()).filter((k) => k !== '');
}

function describeSource(s: Source): string {
  if (s.kind === 'flag') return s.name;
  if (s.kind === 'env') return `the environment variable ${s.name}`;
  return `"${s.name}" in ${s.file ?? CONFIG_FILE_NAME}`;
}

function flagName(setting: Setting): string | undefined {
  return setting.flag?.split(' ')[0];
}

/** commander's attribute name for a flag (`--raw-schema` → `rawSchema`). */
export function attributeName(flag: string): string {
  return flag
    .replace(/^--/, '')
    .split(' ')[0]
    .replace(/-([a-z])/g, (_m, c: string) => c.toUpperCase());
}

/** The JSON Schema of `cdp-lifecycle.yml`, derived from SETTINGS (also published in manifest.json). */
export function configFileSchema(): Record<string, unknown> {
  const root: Record<string, unknown> = {
    type: 'object',
    additionalProperties: false,
    properties: {} as Record<string, unknown>,
  };
  for (const s of SETTINGS) {
    const parts = s.key.split('.');
    let node = root;
    for (const part of parts.slice(0, -1)) {
      const props = node.properties as Record<string, Record<string, unknown>>;
      props[part] ??= { type: 'object', additionalProperties: false, properties: {} };
      node = props[part];
    }
    (node.properties as Record<string, unknown>)[parts[parts.length - 1]] = settingSchema(s);
  }
  return root;
}

function settingSchema(s: Setting): Record<string, unknown> {
  const description = s.description;
  switch (s.type) {
    case 'string':
      return s.choices
        ? { type: 'string', enum: [...s.choices], description }
        : { type: 'string', description };
    case 'integer':
      return { type: 'integer', minimum: s.key === 'serve.port' ? 0 : 1, description };
    case 'string[]':
      return {
        description,
        anyOf: [{ type: 'array', items: { type: 'string' } }, { type: 'string' }],
      };
    case 'object':
      return s.key === 'sync.traits'
        ? { type: 'object', additionalProperties: { type: 'string' }, description }
        : { type: 'object', description };
  }
}

let validateFile: ReturnType<Ajv['compile']> | undefined;

/** Reads and validates a config file; unknown keys and wrong types are usage errors naming the key. */
export function readConfigFile(file: string): Record<string, unknown> {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new UsageError(`Cannot read the config file ${file} (${errorMessage(err)}): check --config.`, {
      cause: err,
    });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof UnresolvedYamlTag) throw new UsageError(err.sentence(`The config file ${file}`));
    throw new UsageError(`The config file ${file} is not valid YAML: ${oneLine(errorMessage(err))}.`, {
      cause: err,
    });
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) {
    throw new UsageError(
      `The config file ${file} must be a YAML mapping of settings (see cdp-lifecycle.example.yml).`,
    );
  }
  validateFile ??= new Ajv({ allErrors: false, strict: false }).compile(configFileSchema());
  if (!validateFile(doc)) {
    const e = validateFile.errors?.[0];
    const at = (e?.instancePath ?? '').split('/').filter(Boolean).join('.');
    if (e?.keyword === 'additionalProperties') {
      const key = [at, String((e.params as { additionalProperty: string }).additionalProperty)]
        .filter(Boolean)
        .join('.');
      const hint = closestKey(key);
      throw new UsageError(
        `Unknown key "${key}" in ${file}${hint ? `: did you mean "${hint}"?` : ': see cdp-lifecycle.example.yml for the known keys.'}`,
      );
    }
    const problem =
      e?.keyword === 'enum'
        ? `must be one of ${(e.params as { allowedValues: string[] }).allowedValues.join(', ')}`
        : e?.keyword === 'type'
          ? `must be ${typeWords(
              // a setting that takes one of several types (anyOf) fails each branch: name them all
              (validateFile.errors ?? [])
                .filter((x) => x.keyword === 'type' && x.instancePath === e.instancePath)
                .flatMap((x) => (x.params as { type: string | string[] }).type),
            )}, not ${shownValue(valueAt(doc, e.instancePath))}`
          : (e?.message ?? 'is invalid');
    throw new UsageError(`The key "${at || '(root)'}" in ${file} ${problem}.`);
  }
  return doc as Record<string, unknown>;
}

/** JSON Schema types as a YAML writer reads them. */
function typeWords(type: string | string[]): string {
  const words: Record<string, string> = {
    string: 'text (quote it if YAML reads it as a number, a date or true/false)',
    object: 'a mapping of keys to values (indented `key: value` lines)',
    array: 'a list',
    integer: 'a whole number',
    number: 'a number',
    boolean: 'true or false',
  };
  return [...new Set(Array.isArray(type) ? type : [type])].map((t) => words[t] ?? t).join(' or ');
}

function valueAt(doc: unknown, pointer: string): unknown {
  let v = doc;
  for (const part of pointer.split('/').filter(Boolean)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    v = v !== null && typeof v === 'object' ? (v as Record<string, unknown>)[key] : undefined;
  }
  return v;
}

function shownValue(v: unknown): string {
  if (v === null || v === undefined) return 'empty';
  if (v instanceof Date) return v.toISOString().slice(0, 10);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

function closestKey(key: string): string | undefined {
  const keys = SETTINGS.map((s) => s.key);
  const cut = key.lastIndexOf('.');
  const section = key.slice(0, cut + 1);
  const leaf = key.slice(cut + 1);
  // first a slip inside the right section (`serve.write_key` for `serve.write_keys`) ...
  const siblings = keys
    .filter((k) => k.startsWith(section) && !k.slice(section.length).includes('.'))
    .map((k) => k.slice(section.length));
  const sibling = closest(leaf, siblings, 2);
  if (sibling !== undefined) return section + sibling;
  // ... then a known key at the wrong level (`port:` for `serve.port`), then the nearest spelling anywhere
  const placed = keys.filter((k) => k !== key && k.split('.').pop() === leaf);
  if (placed.length > 0) return placed.join('" or "');
  return closest(key, keys);
}

function oneLine(s: string): string {
  return s.split('\n')[0].replace(/[.:]\s*$/, '');
}

function getPath(doc: Record<string, unknown>, key: string): unknown {
  let node: unknown = doc;
  for (const part of key.split('.')) {
    if (node === null || typeof node !== 'object') return undefined;
    node = (node as Record<string, unknown>)[part];
  }
  return node;
}

/**
 * Parses `--vars` (or `LIFECYCLE_VARS`): a JSON or YAML mapping, or `@file` holding one. YAML is a superset
 * of JSON, so one parser serves both.
 */
export function parseVars(text: string, from = '--vars', cwd = process.cwd()): Record<string, unknown> {
  let source = text;
  let where = from;
  if (text.startsWith('@')) {
    const file = path.resolve(cwd, text.slice(1));
    try {
      source = fs.readFileSync(file, 'utf8');
    } catch (err) {
      throw new UsageError(`Cannot read the vars file ${file} given to ${from} (${errorMessage(err)}).`, {
        cause: err,
      });
    }
    where = `${from} file ${file}`;
  }
  let value: unknown;
  try {
    value = parseYaml(source, { uniqueKeys: true });
  } catch (err) {
    if (err instanceof UnresolvedYamlTag) throw new UsageError(err.sentence(where));
    throw new UsageError(
      `${where} is not valid JSON or YAML (${oneLine(errorMessage(err))}): pass a mapping such as '{"lifecycle__new_days": 14}'.`,
      { cause: err },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(
      `${where} must be a mapping of var names to values, such as '{"lifecycle__new_days": 14}' or 'lifecycle__new_days: 14'.`,
    );
  }
  return value as Record<string, unknown>;
}

function parseJsonObject(text: string, from: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new UsageError(
      `${from} is not valid JSON (${oneLine(errorMessage(err))}): pass an object such as '{"All": true}'.`,
      { cause: err },
    );
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new UsageError(`${from} must be a JSON object such as '{"All": true}'.`);
  }
  return value as Record<string, unknown>;
}

/** Turns one raw value (flag text, env text or YAML value) into the setting's type. */
function coerce(setting: Setting, raw: unknown, source: Source, cwd: string): unknown {
  const where = describeSource(source);
  switch (setting.type) {
    case 'string': {
      const v = String(raw).trim();
      if (v === '') throw new UsageError(`${where} is empty: give it a value or leave it out.`);
      if (setting.choices && !setting.choices.includes(v)) {
        throw new UsageError(`${where} must be one of ${setting.choices.join(', ')}, not "${v}".`);
      }
      return v;
    }
    case 'integer': {
      const v = String(raw).trim();
      // as the config file's schema says: only a port may be 0 (any free one)
      const isPort = setting.key === 'serve.port';
      const range = isPort ? 'a port number from 0 to 65535 (0: any free port)' : 'a whole number, 1 or more';
      const n = typeof raw === 'number' ? raw : /^-?\d+$/.test(v) ? Number(v) : NaN;
      if (!Number.isSafeInteger(n) || n < (isPort ? 0 : 1) || (isPort && n > 65535)) {
        throw new UsageError(`${where} must be ${range}, not "${v}".`);
      }
      return n;
    }
    case 'string[]': {
      const list = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
      return list.map((s) => s.trim()).filter((s) => s !== '');
    }
    case 'object': {
      if (setting.key === 'sync.traits') {
        // The sync's own parser, so a bad mapping is refused before `run` spends time on the build.
        return parseTraitsOption(typeof raw === 'string' ? raw : JSON.stringify(raw), where);
      }
      if (source.kind === 'file') return raw;
      const text = String(raw);
      if (setting.key === 'vars') return parseVars(text, where, cwd);
      return parseJsonObject(text, where);
    }
  }
}

export interface ResolveInput {
  command: string;
  /** commander's parsed options of the command (undefined = flag not given). */
  flags: Record<string, unknown>;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

/** Finds the config file: `--config <file>` (must exist) or `./cdp-lifecycle.yml` (optional). */
export function locateConfigFile(
  flags: Record<string, unknown>,
  cwd: string,
  env: NodeJS.ProcessEnv,
): string | undefined {
  const explicit = (flags.config as string | undefined) ?? env.LIFECYCLE_CONFIG;
  if (explicit) {
    const file = path.resolve(cwd, explicit);
    if (!fs.existsSync(file)) {
      throw new UsageError(`The config file ${file} does not exist: check --config (or LIFECYCLE_CONFIG).`);
    }
    return file;
  }
  const file = path.join(cwd, CONFIG_FILE_NAME);
  return fs.existsSync(file) ? file : undefined;
}

/**
 * A var that names the raw tables' schema or one of them, checked as --raw-schema is: the whole sentence of what
 * is wrong, or undefined (also for any other var).
 */
export function locationVarProblem(name: string, value: unknown): string | undefined {
  const kind =
    name === 'lifecycle__raw_schema'
      ? 'schema'
      : /^lifecycle__[a-z]+_table$/.test(name)
        ? 'table'
        : undefined;
  if (!kind || value === undefined) return undefined;
  // templates print a null as None and a list as Python's ['a']: neither names a relation
  if (typeof value !== 'string')
    return `The var ${name} must be a ${kind} name as a string, not ${JSON.stringify(value)}.`;
  const problem = schemaNameProblem(value, kind);
  return problem ? `The var ${name} "${value}" ${problem}.` : undefined;
}

/** Resolves every setting a command reads: flags win over environment variables over the file over defaults. */
export function resolveConfig(input: ResolveInput): ResolvedConfig {
  const env = input.env ?? process.env;
  const cwd = input.cwd ?? process.cwd();
  const configFile = locateConfigFile(input.flags, cwd, env);
  const doc = configFile ? readConfigFile(configFile) : {};
  const relative = configFile ? path.relative(cwd, configFile) : undefined;
  const fileLabel =
    relative === undefined
      ? undefined
      : relative.startsWith('..') || path.isAbsolute(relative)
        ? configFile
        : relative;
  const values = new Map<string, unknown>();
  const varSources: Record<string, string> = {};
  // the settings given by a file, the environment or a flag rather than left at their defaults
  const explicit = new Set<string>();
  // where each explicit setting's value came from, for messages that name what to change
  const origins = new Map<string, Source>();

  for (const setting of SETTINGS) {
    // A setting another command reads (e.g. LIFECYCLE_PORT while running `build`) is neither read nor judged.
    if (!setting.commands.includes(input.command)) {
      values.set(setting.key, setting.default);
      continue;
    }
    const layers: Array<[Source, unknown]> = [];
    const flagOnly = setting.flagOnly?.includes(input.command) ?? false;
    const fileValue = flagOnly ? undefined : getPath(doc, setting.key);
    if (fileValue !== undefined && fileValue !== null)
      layers.push([{ kind: 'file', name: setting.key, file: fileLabel }, fileValue]);
    const envValue = setting.env && !flagOnly ? env[setting.env] : undefined;
    if (envValue !== undefined && envValue !== '')
      layers.push([{ kind: 'env', name: setting.env! }, envValue]);
    const flag = flagName(setting);
    const flagOn = setting.flagOn ?? setting.commands;
    if (flag && flagOn.includes(input.command)) {
      const flagValue = input.flags[attributeName(flag)];
      if (flagValue !== undefined) layers.push([{ kind: 'flag', name: flag }, flagValue]);
    }
    if (setting.key === 'vars') {
      // Vars merge key by key, so a file can set the timezone while --vars moves the as-of date.
      const merged: Record<string, unknown> = {};
      for (const [src, raw] of layers) {
        const layer = coerce(setting, raw, src, cwd) as Record<string, unknown>;
        Object.assign(merged, layer);
        for (const name of Object.keys(layer)) {
          varSources[name] =
            src.kind === 'file' ? `vars.${name} in ${src.file ?? CONFIG_FILE_NAME}` : describeSource(src);
        }
      }
      values.set(setting.key, merged);
      continue;
    }
    const top = layers[layers.length - 1];
    if (top) {
      explicit.add(setting.key);
      origins.set(setting.key, top[0]);
    }
    values.set(setting.key, top ? coerce(setting, top[1], top[0], cwd) : setting.default);
  }

  const get = <T>(key: string): T => values.get(key) as T;
  const resolved: ResolvedConfig = {
    warehouse: get<string>('warehouse'),
    rawSchema: get<string>('raw_schema'),
    schema: get<string>('schema'),
    vars: get<Record<string, unknown>>('vars'),
    varSources,
    targetPath: get<string>('target_path'),
    serve: {
      port: get<number>('serve.port'),
      host: get<string>('serve.host'),
      writeKeys: get<string[] | undefined>('serve.write_keys') ?? [],
      schedule: get<string | undefined>('serve.schedule'),
      maxRequestBytes: get<number>('serve.max_request_bytes'),
      maxEventBytes: get<number>('serve.max_event_bytes'),
      maxBatchEvents: get<number>('serve.max_batch_events'),
      maxConcurrentRequests: get<number>('serve.max_concurrent_requests'),
    },
    sync: {
      to: get<SyncTarget | undefined>('sync.to'),
      endpoint: get<string | undefined>('sync.endpoint'),
      writeKey: get<string | undefined>('sync.write_key'),
      traits: get<Record<string, string> | undefined>('sync.traits'),
      integrations: get<Record<string, unknown> | undefined>('sync.integrations'),
      rateLimit: get<number | undefined>('sync.rate_limit'),
    },
    configFile,
    collectorKeys: [
      ...(get<string[] | undefined>('serve.write_keys') ?? []),
      ...asKeyList(getPath(doc, 'serve.write_keys')),
      ...asKeyList(env.LIFECYCLE_WRITE_KEYS),
    ],
  };
  const named = (key: string, flag: string): string => {
    const origin = origins.get(key);
    return origin ? describeSource(origin) : flag;
  };
  // Where a warehouse URL set outside the command line came from: a value in LIFECYCLE_WAREHOUSE or the config
  // file is not in front of the user, so a message that only quotes it leaves them looking at --warehouse.
  const warehouseOrigin = origins.get('warehouse');
  if (warehouseOrigin && warehouseOrigin.kind !== 'flag')
    resolved.warehouseFrom = describeSource(warehouseOrigin);
  const endpointOrigin = origins.get('sync.endpoint');
  if (endpointOrigin && endpointOrigin.kind !== 'flag')
    resolved.sync.endpointFrom = describeSource(endpointOrigin);
  // Validate early so a typo is a usage error (exit 2) before anything is opened.
  const location = parseWarehouseUrl(resolved.warehouse, resolved.warehouseFrom);
  for (const [key, flag, value] of [
    ['raw_schema', '--raw-schema', resolved.rawSchema],
    ['schema', '--schema', resolved.schema],
  ] as const) {
    const problem =
      schemaNameProblem(value) ??
      (input.command !== 'compile' ? reservedSchemaProblem(value, location.kind) : undefined);
    if (problem) throw new UsageError(`${named(key, flag)} "${value}" ${problem}.`);
  }
  // The var lifecycle__raw_schema is how a dbt project points the package at its tables, and it wins over
  // --raw-schema in the runner: both set to different schemas would read one and silently ignore the other.
  // (the demo builds from the events it lands, in its own --raw-schema: it does not use the var)
  const rawVar = input.command === 'demo' ? undefined : resolved.vars.lifecycle__raw_schema;
  if (
    explicit.has('raw_schema') &&
    rawVar !== undefined &&
    rawVar !== null &&
    String(rawVar) !== resolved.rawSchema
  ) {
    throw new UsageError(
      `${named('raw_schema', '--raw-schema')} "${resolved.rawSchema}" and the var lifecycle__raw_schema "${String(rawVar)}" name different raw schemas: set only one of them.`,
    );
  }
  // Set alone, the var names the raw schema for every command: `serve` and `load` land the events where the
  // models read them (they used to land in --raw-schema's default, cdp, while the build read the var's).
  if (rawVar !== undefined && rawVar !== null) {
    const problem = locationVarProblem('lifecycle__raw_schema', rawVar);
    if (problem) throw new UsageError(problem);
    const raw = String(rawVar);
    const reserved = input.command !== 'compile' ? reservedSchemaProblem(raw, location.kind) : undefined;
    if (reserved) throw new UsageError(`The var lifecycle__raw_schema "${raw}" ${reserved}.`);
    resolved.rawSchema = raw;
  }
  // The models' tables and views, their tmp/backup copies and the sync's state would sit among the raw tables:
  // a model named like a raw table would replace it, and the demo resets both schemas.
  // Only for the commands that build or read the models (`load` and a collector alone never touch them).
  const raw = rawVar !== undefined && rawVar !== null ? String(rawVar) : resolved.rawSchema;
  const usesModels =
    input.command !== 'load' && (input.command !== 'serve' || Boolean(resolved.serve.schedule));
  if (usesModels && resolved.schema === raw) {
    // name the setting that was given: the other one is at its default
    const rawNamed =
      rawVar !== undefined && rawVar !== null
        ? 'the var lifecycle__raw_schema'
        : named('raw_schema', '--raw-schema');
    throw new UsageError(
      explicit.has('schema')
        ? `${named('schema', '--schema')} "${resolved.schema}" is also the raw schema the events land in: build the models into a schema of their own, e.g. lifecycle.`
        : `${rawNamed} "${raw}" is also the schema the models are built in (--schema, default ${resolved.schema}): land the events in a schema of their own, e.g. cdp, or pass another --schema.`,
    );
  }
  if (resolved.serve.port > 65535) {
    throw new UsageError(
      `The port ${resolved.serve.port} is out of range: use 1-65535 (or 0 for any free port).`,
    );
  }
  return resolved;
}
