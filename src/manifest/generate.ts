/**
 * Generates `manifest.json` (the plugin's machine-readable description: destination, collector, models,
 * traits, vars, warehouses, CLI configuration) from the code and the dbt package, and the generated reference
 * section of README.md from it. `npm run manifest` writes both; a test fails when the committed files drift.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import YAML from 'yaml';
import destination from '../../destinations/cdp-lifecycle';
import { DEFAULT_MAX_EVENT_BYTES } from '../../transforms/schemas';
import { DEFAULT_MAX_BATCH_EVENTS, DEFAULT_MAX_REQUEST_BYTES } from '../collector/server';
import { configFileSchema } from '../cli/config';
import { COMMANDS } from '../cli/commands';
import { PACKAGE_ROOT, packageInfo } from '../cli/parts';
import { SETTINGS, SYNC_TARGETS } from '../cli/settings';
import { LIFECYCLE_STATUSES, RFM_SEGMENTS, STATUS_MEANING } from '../report/data';
import { openProject } from '../runner/build';
import { TARGET_TYPES } from '../runner/render';
import { DEFAULT_TRAITS, RUDDERSTACK_LIMITS, SEGMENT_HOSTS, SEGMENT_LIMITS } from '../sync';
import { RAW_TABLES } from '../warehouse';
import {
  MANIFEST_VERSION,
  type JsonValue,
  type Manifest,
  type ManifestModel,
  type ManifestTrait,
  type ManifestVar,
} from './types';

export const MANIFEST_FILE = path.join(PACKAGE_ROOT, 'manifest.json');
export const README_FILE = path.join(PACKAGE_ROOT, 'README.md');
export const README_BEGIN =
  '<!-- BEGIN GENERATED REFERENCE: edit src/manifest, then run `npm run manifest` -->';
export const README_END = '<!-- END GENERATED REFERENCE -->';

/** SPEC §4.1 meanings; a var the package adds later falls back to its comment in dbt_project.yml. */
const VAR_MEANINGS: Record<string, string> = {
  lifecycle__raw_schema: 'Schema of the raw event tables (the CLI sets it from `--raw-schema`).',
  lifecycle__tracks_table: 'Name of the `tracks` table, for warehouses loaded by Segment or RudderStack.',
  lifecycle__identifies_table: 'Name of the `identifies` table.',
  lifecycle__pages_table: 'Name of the `pages` table.',
  lifecycle__screens_table: 'Name of the `screens` table.',
  lifecycle__aliases_table: 'Name of the `aliases` table.',
  lifecycle__as_of_date:
    'D, the date the statuses are computed for (`YYYY-MM-DD`); default: today in `lifecycle__timezone`.',
  lifecycle__timezone:
    'IANA zone (e.g. `America/Los_Angeles`; not an abbreviation such as `PST`, nor `CET`, `EET`, `WET`, `MET`, `EST`, `MST` or `HST`, which PostgreSQL reads as fixed offsets: use a region such as `Europe/Paris`) in which a timestamp becomes a date.',
  lifecycle__new_days: 'A user is `new` while `D - first_seen_date < new_days`.',
  lifecycle__at_risk_days: 'Inactive this many days or more: `at_risk`.',
  lifecycle__dormant_days: 'Inactive this many days or more: `dormant`.',
  lifecycle__churn_days: 'Inactive this many days or more: `churned`.',
  lifecycle__resurrected_days: 'How long a returning user stays `resurrected`.',
  lifecycle__power_days: 'Active days out of the last 28 that make a `power` user.',
  lifecycle__decline_min_baseline_days: 'Minimum active days in the 21-day baseline for the decline rule.',
  lifecycle__decline_ratio_pct: "Decline: this week's rate at or below this % of the baseline's weekly rate.",
  lifecycle__churn_events: 'Track events that signal churn (never activity).',
  lifecycle__non_activity_events: 'Track events that are not user activity (e.g. `Email Delivered`).',
  lifecycle__core_events: 'Track events that mean the core feature was used.',
  lifecycle__purchase_events: 'Track events that are purchases (RFM).',
  lifecycle__plan_trait: 'Identify trait holding the subscription plan.',
  lifecycle__rfm_window_days: 'Purchases in `[D - window + 1, D]` count for RFM.',
  lifecycle__wau_days: 'Growth-accounting weekly window.',
  lifecycle__mau_days: 'Growth-accounting monthly window.',
};

/** Column types of `user_lifecycle` (SPEC §5), to type the traits built from its columns. */
const USER_LIFECYCLE_TYPES: Record<string, ManifestTrait['type']> = {
  user_id: 'string',
  as_of_date: 'date',
  lifecycle_status: 'string',
  status_since: 'date',
  previous_status: 'string',
  first_seen_date: 'date',
  last_active_date: 'date',
  days_inactive: 'integer',
  active_days_7: 'integer',
  active_days_28: 'integer',
  subscription_status: 'string',
  core_feature_adopted: 'boolean',
  purchase_count: 'integer',
  monetary: 'number',
  rfm_recency_score: 'integer',
  rfm_frequency_score: 'integer',
  rfm_monetary_score: 'integer',
  rfm_segment: 'string',
};

const ENDPOINTS: Manifest['collector']['endpoints'] = [
  {
    method: 'POST',
    path: '/v1/batch',
    description:
      'Segment HTTP Tracking API / RudderStack batch: `{ "batch": [events] }` (also `/v1/b`, analytics.js’s batching path).',
  },
  {
    method: 'POST',
    path: '/v1/import',
    description: 'Same as `/v1/batch` (Segment’s historical import endpoint).',
  },
  { method: 'POST', path: '/v1/track', description: 'One track call (also `/v1/t`).' },
  { method: 'POST', path: '/v1/identify', description: 'One identify call (also `/v1/i`).' },
  { method: 'POST', path: '/v1/page', description: 'One page call (also `/v1/p`).' },
  { method: 'POST', path: '/v1/screen', description: 'One screen call (also `/v1/s`).' },
  { method: 'POST', path: '/v1/alias', description: 'One alias call (also `/v1/a`).' },
  { method: 'POST', path: '/v1/group', description: 'One group call (also `/v1/g`).' },
  {
    method: 'POST',
    path: '/webhook',
    description:
      'One event or an array, as the Segment and RudderStack webhook destinations send them. Every event path also answers a CORS preflight (OPTIONS).',
  },
  {
    method: 'GET',
    path: '/health',
    description:
      'Liveness and warehouse check (no auth; with a configured write key as Basic auth it also names the warehouse, or why it is unavailable).',
  },
];

function varComments(projectDir: string): Map<string, string> {
  const doc = YAML.parseDocument(fs.readFileSync(path.join(projectDir, 'dbt_project.yml'), 'utf8'));
  const out = new Map<string, string>();
  const vars = doc.get('vars', true);
  const visit = (node: unknown): void => {
    if (!YAML.isMap(node)) return;
    for (const pair of node.items) {
      const key = YAML.isScalar(pair.key) ? String(pair.key.value) : '';
      const comment = (YAML.isScalar(pair.key) ? pair.key.commentBefore : undefined) ?? '';
      const own = comment
        .split('\n')
        .filter((l) => !/^\s*---/.test(l))
        .join(' ')
        .replace(/\s+/g, ' ')
        .trim();
      if (own) out.set(key, own);
      visit(pair.value);
    }
  };
  visit(vars);
  return out;
}

function modelsSection(): {
  models: ManifestModel[];
  vars: ManifestVar[];
  traits: ManifestTrait[];
  project: string;
} {
  const parsed = openProject({ schema: 'lifecycle', rawSchema: 'cdp' }, 'duckdb');
  const project = parsed.project;
  const models: ManifestModel[] = [...parsed.graph.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([name, g]) => {
      const cfg = parsed.renderer.configs.get(name) ?? g.config;
      const tests = project.tests.filter((t) => t.model === name);
      const layer = g.node.file.split('/').slice(-2, -1)[0] ?? '';
      return {
        name,
        layer,
        file: g.node.file,
        materialized: String(cfg.materialized ?? 'view'),
        ...(cfg.unique_key === undefined ? {} : { unique_key: cfg.unique_key as string | string[] }),
        description: (g.node.description ?? '').trim(),
        depends_on: [...g.refs].sort(),
        columns: g.node.columns.map((c) => ({
          name: c.name,
          description: (c.description ?? '').trim(),
          tests: tests
            .filter((t) => t.column === c.name)
            .map((t) => t.type)
            .sort(),
        })),
      };
    });

  const declared = { ...project.globalVars, ...(project.packageVars[project.name] ?? {}) };
  const comments = varComments(project.dir);
  const vars: ManifestVar[] = Object.entries(declared).map(([name, value]) => ({
    name,
    default: (value ?? null) as ManifestVar['default'],
    description: VAR_MEANINGS[name] ?? comments.get(name) ?? '',
  }));

  const lifecycle = models.find((m) => m.name === 'user_lifecycle');
  const accepted = (column: string): string[] | undefined => {
    const t = project.tests.find(
      (x) => x.model === 'user_lifecycle' && x.column === column && x.type === 'accepted_values',
    );
    return Array.isArray(t?.args.values) ? (t.args.values as unknown[]).map(String) : undefined;
  };
  const notNull = (column: string): boolean =>
    project.tests.some((x) => x.model === 'user_lifecycle' && x.column === column && x.type === 'not_null');
  const meaning: Record<string, string> = {
    ...STATUS_MEANING,
    ...Object.fromEntries(
      RFM_SEGMENTS.map((s) => [
        s.segment,
        `${s.label}: recency ${s.r.join('-')}, frequency ${s.f.join('-')}`,
      ]),
    ),
  };
  const statusOrder: readonly string[] = LIFECYCLE_STATUSES;
  const segmentOrder: readonly string[] = RFM_SEGMENTS.map((s) => s.segment);
  const traits: ManifestTrait[] = Object.entries(DEFAULT_TRAITS).map(([trait, column]) => {
    const values = accepted(column);
    const rfm = column.startsWith('rfm_');
    const order = rfm ? segmentOrder : statusOrder;
    return {
      name: trait,
      column,
      type: USER_LIFECYCLE_TYPES[column] ?? 'string',
      nullable: !notNull(column),
      description: (lifecycle?.columns.find((c) => c.name === column)?.description ?? '').trim(),
      ...(values
        ? {
            values: [...values]
              .sort((a, b) => order.indexOf(a) - order.indexOf(b))
              .map((value) => ({
                value,
                description: rfm ? meaning[value] : (STATUS_MEANING as Record<string, string>)[value],
              })),
          }
        : {}),
    };
  });
  return { models, vars, traits, project: project.name };
}

function destinationSection(): Manifest['destination'] {
  const fields = (defs: Record<string, object> | undefined): Manifest['destination']['settings'] =>
    Object.fromEntries(
      Object.entries(defs ?? {}).map(([key, f]) => {
        const d = f as {
          label: string;
          description?: string;
          type: string;
          required?: boolean;
          default?: unknown;
          multiple?: boolean;
        };
        return [
          key,
          {
            label: d.label,
            type: d.type,
            description: d.description ?? '',
            required: d.required === true,
            ...(d.multiple ? { multiple: true } : {}),
            ...(d.default === undefined
              ? {}
              : { default: d.default as Manifest['destination']['settings'][string]['default'] }),
          },
        ];
      }),
    );
  return {
    name: destination.name,
    slug: destination.slug ?? destination.name,
    mode: destination.mode,
    description: destination.description ?? '',
    path: 'destinations/cdp-lifecycle',
    settings: fields(destination.authentication?.fields as Record<string, object> | undefined),
    actions: Object.entries(destination.actions).map(([key, a]) => ({
      key,
      title: a.title,
      description: a.description,
      defaultSubscription: a.defaultSubscription ?? '',
      fields: fields(a.fields as Record<string, object>),
    })),
    presets: (destination.presets ?? []).map((p) => ({
      name: p.name ?? p.partnerAction,
      partnerAction: p.partnerAction,
      subscribe: 'subscribe' in p ? String(p.subscribe) : '',
    })),
  };
}

/** The whole manifest, deterministic (no dates, stable order), so the drift test can compare it byte for byte. */
export function buildManifest(): Manifest {
  const pkg = packageInfo();
  const m = modelsSection();
  return {
    $schema: './manifest.schema.json',
    manifestVersion: MANIFEST_VERSION,
    name: pkg.name,
    version: pkg.version,
    description: pkg.description,
    license: pkg.license ?? 'UNLICENSED',
    cli: {
      bin: 'cdp-lifecycle',
      commands: COMMANDS.map((c) => ({
        name: c.name,
        summary: c.summary,
        ...(c.args ? { args: c.args } : {}),
        flags: [
          ...SETTINGS.filter((s) => s.flag && (s.flagOn ?? s.commands).includes(c.name)).map((s) => s.flag!),
          ...(c.options ?? []).map((o) => o.flags),
          '--config <file>',
          '--verbose',
        ],
      })),
      exitCodes: { '0': 'success', '1': 'failure', '2': 'usage error' },
    },
    configuration: {
      file: 'cdp-lifecycle.yml',
      precedence: ['flag', 'environment', 'file', 'default'],
      settings: SETTINGS.map((s) => ({
        key: s.key,
        type: s.type,
        description: s.description,
        ...(s.flag ? { flag: s.flag } : {}),
        ...(s.env ? { env: s.env } : {}),
        ...(s.default === undefined ? {} : { default: s.default as JsonValue }),
        ...(s.choices ? { choices: [...s.choices] } : {}),
        commands: [...s.commands],
        ...(s.secret ? { secret: true } : {}),
      })),
      fileSchema: configFileSchema(),
    },
    destination: destinationSection(),
    collector: {
      command: 'cdp-lifecycle serve',
      endpoints: ENDPOINTS,
      auth: 'HTTP Basic with a configured write key as the user name (password ignored), or `writeKey` in the body; 401 otherwise.',
      limits: {
        maxRequestBytes: DEFAULT_MAX_REQUEST_BYTES,
        maxEventBytes: DEFAULT_MAX_EVENT_BYTES,
        maxBatchEvents: DEFAULT_MAX_BATCH_EVENTS,
      },
      rawTables: Object.values(RAW_TABLES).map((t) => ({
        name: t.name,
        columns: t.columns.map((c) => ({ name: c.name, type: c.type })),
      })),
    },
    warehouses: TARGET_TYPES.map((type) => ({
      type,
      run: type === 'duckdb' || type === 'postgres',
      compile: true,
      ...(type === 'duckdb'
        ? { url: 'duckdb://<path> | duckdb://:memory:' }
        : type === 'postgres'
          ? { url: 'postgres://user[:pass]@host[:port]/db' }
          : {}),
    })),
    models: {
      package: m.project,
      path: 'models',
      defaultSchema: 'lifecycle',
      rawSchema: 'cdp',
      models: m.models,
    },
    vars: m.vars,
    sync: {
      targets: SYNC_TARGETS.map((target) => ({
        target,
        ...(target === 'segment' ? { defaultEndpoint: SEGMENT_HOSTS.us, euEndpoint: SEGMENT_HOSTS.eu } : {}),
        limits: target === 'segment' ? { ...SEGMENT_LIMITS } : { ...RUDDERSTACK_LIMITS },
      })),
      call: 'identify',
      traits: m.traits,
      stateTables: ['sync_state', 'sync_runs', 'sync_log'],
    },
  };
}

function mdCell(v: unknown): string {
  const s = v === undefined || v === null ? '' : typeof v === 'string' ? v : JSON.stringify(v);
  return s.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function code(v: unknown): string {
  if (v === undefined || v === '') return '';
  return v === null ? '`null`' : `\`${mdCell(v)}\``;
}

/** The README's generated reference: configuration, vars, traits, tables. */
export function renderReadmeReference(m: Manifest): string {
  const lines: string[] = [README_BEGIN, ''];
  lines.push('### Configuration reference', '');
  lines.push(
    'Every setting is a key in `cdp-lifecycle.yml` (in the working directory, or `--config <file>`) and, where the',
    'table names them, a flag and an environment variable; flags win over the environment, which wins over the',
    'file. Unknown keys in the file are a usage error.',
    '',
    '| key in `cdp-lifecycle.yml` | flag | environment | default | description |',
    '|---|---|---|---|---|',
  );
  for (const s of m.configuration.settings) {
    const def =
      s.default === undefined ||
      (typeof s.default === 'object' && s.default !== null && Object.keys(s.default).length === 0)
        ? ''
        : code(s.default);
    lines.push(`| \`${s.key}\` | ${code(s.flag)} | ${code(s.env)} | ${def} | ${mdCell(s.description)} |`);
  }
  lines.push('', '### Vars (`--vars`, `vars:` in the file, or `vars:` in your dbt_project.yml)', '');
  lines.push('| var | default | meaning |', '|---|---|---|');
  for (const v of m.vars) lines.push(`| \`${v.name}\` | ${code(v.default)} | ${mdCell(v.description)} |`);
  // a YAML 7.0 is a float to dbt's Jinja2 and 7 to nunjucks: lifecycle_int_var takes it under both
  lines.push(
    '',
    "Day, hour and percentage vars take whole numbers up to 100000 (`7`, `7.0` or `'7'`; not `7.5`, `true` or",
    "`'7.0'`), checked the same way under dbt (Jinja2) and under `cdp-lifecycle`: a bad value fails with a message",
    'naming the var (under `cdp-lifecycle`, before any model runs).',
  );

  lines.push('', '### Traits the sync sets', '');
  lines.push('| trait | from `user_lifecycle` column | type | values |', '|---|---|---|---|');
  for (const t of m.sync.traits) {
    const values = t.values
      ? t.values.map((v) => `\`${v.value}\``).join(', ')
      : t.type === 'date'
        ? '`YYYY-MM-DD`'
        : '';
    lines.push(`| \`${t.name}\` | \`${t.column}\` | ${t.type}${t.nullable ? ' or null' : ''} | ${values} |`);
  }

  lines.push('', `### Tables reference (schema \`${m.models.defaultSchema}\`)`, '');
  // The marts in the order of SPEC §5 (the grain narrows from users to days), any others after them.
  const spec = [
    'user_lifecycle',
    'user_status_history',
    'status_transitions',
    'status_daily',
    'growth_accounting_daily',
  ];
  const rank = (name: string): number => (spec.includes(name) ? spec.indexOf(name) : spec.length);
  const marts = m.models.models
    .filter((x) => x.layer === 'marts')
    .sort((a, b) => rank(a.name) - rank(b.name));
  for (const model of marts) {
    lines.push(`#### \`${model.name}\` (${model.materialized})`, '', mdCell(model.description), '');
    lines.push('| column | description | tests |', '|---|---|---|');
    for (const c of model.columns)
      lines.push(`| \`${c.name}\` | ${mdCell(c.description)} | ${c.tests.join(', ')} |`);
    lines.push('');
  }
  const helpers = m.models.models.filter((x) => x.layer !== 'marts');
  if (helpers.length) {
    lines.push(
      `Helper models (${helpers.map((h) => `\`${h.name}\``).join(', ')}) are internal: query the marts above.`,
      '',
    );
  }
  lines.push(
    `#### Raw tables (schema \`${m.models.rawSchema}\`, append-only)`,
    '',
    '`json` columns are `json` on DuckDB and `jsonb` on PostgreSQL.',
    '',
  );
  lines.push('| table | columns |', '|---|---|');
  for (const t of m.collector.rawTables)
    lines.push(`| \`${t.name}\` | ${t.columns.map((c) => `\`${c.name}\` ${c.type}`).join(', ')} |`);
  lines.push('', README_END);
  return lines.join('\n');
}

/** Formats JSON as the repo's prettier would, so `npm run lint` accepts the generated file. */
export async function formatJson(value: unknown, file: string): Promise<string> {
  const prettier = await import('prettier');
  const options = (await prettier.resolveConfig(file)) ?? {};
  return prettier.format(JSON.stringify(value), { ...options, parser: 'json', filepath: file });
}

/** README.md with its generated section replaced (the markers must be there). */
export function spliceReadme(readme: string, section: string): string {
  const begin = readme.indexOf(README_BEGIN);
  const end = readme.indexOf(README_END);
  if (begin < 0 || end < begin) {
    throw new Error(
      `README.md lacks the markers of the generated reference (${README_BEGIN} … ${README_END}).`,
    );
  }
  return readme.slice(0, begin) + section + readme.slice(end + README_END.length);
}

export async function expectedFiles(): Promise<{ manifest: string; readme: string }> {
  const manifest = buildManifest();
  return {
    manifest: await formatJson(manifest, MANIFEST_FILE),
    readme: spliceReadme(fs.readFileSync(README_FILE, 'utf8'), renderReadmeReference(manifest)),
  };
}

/**
 * `npm run manifest` writes both files; `--check` (used by the drift test) only compares and exits 1 naming
 * the stale file. Prettier is loaded here, in a plain node process, because it needs native dynamic import.
 */
async function cli(args: string[]): Promise<number> {
  const { manifest, readme } = await expectedFiles();
  if (args.includes('--check')) {
    const stale = [
      fs.readFileSync(MANIFEST_FILE, 'utf8') === manifest ? undefined : 'manifest.json',
      fs.readFileSync(README_FILE, 'utf8') === readme ? undefined : 'the generated reference in README.md',
    ].filter(Boolean);
    if (stale.length === 0) return 0;
    process.stderr.write(
      `${stale.join(' and ')} ${stale.length > 1 ? 'are' : 'is'} out of date: run \`npm run manifest\` and commit the result.\n`,
    );
    return 1;
  }
  fs.writeFileSync(MANIFEST_FILE, manifest);
  fs.writeFileSync(README_FILE, readme);
  process.stdout.write(
    `wrote ${path.relative(process.cwd(), MANIFEST_FILE)} and the reference in README.md\n`,
  );
  return 0;
}

if (require.main === module) {
  void cli(process.argv.slice(2)).then((code) => (process.exitCode = code));
}
