/**
 * Every configurable setting of the CLI in one table: the flag, the environment variable, the key in
 * `cdp-lifecycle.yml`, the default and the description. The commands, the config-file schema, `manifest.json`
 * and the README's configuration reference are all derived from it, so they cannot disagree.
 */
export type SettingType = 'string' | 'integer' | 'string[]' | 'object';

export interface Setting {
  /** Dotted path in `cdp-lifecycle.yml`, e.g. `sync.write_key`. */
  key: string;
  type: SettingType;
  description: string;
  /** The short text of `--help` (the description is for the docs). */
  help: string;
  /** Environment variable (`string[]` settings take a comma-separated list). */
  env?: string;
  /** The command-line flag, as shown in help (`--port <port>`). */
  flag?: string;
  default?: string | number | string[] | Record<string, unknown>;
  choices?: readonly string[];
  /** Commands that read the setting. */
  commands: readonly string[];
  /** Commands that take the flag (default: all of `commands`); the others read the file and env only. */
  flagOn?: readonly string[];
  /** Commands that read the flag alone, never the file or the environment (see DEMO_OWN). */
  flagOnly?: readonly string[];
  /** Never echo the value (write keys). */
  secret?: boolean;
}

export const DIALECTS = ['duckdb', 'postgres', 'snowflake', 'bigquery', 'redshift'] as const;
export type CompileDialect = (typeof DIALECTS)[number];
export const SYNC_TARGETS = ['rudderstack', 'segment'] as const;
export type SyncTarget = (typeof SYNC_TARGETS)[number];

const WAREHOUSE_COMMANDS = ['serve', 'load', 'build', 'test', 'sync', 'run', 'demo', 'report'] as const;
const MODEL_COMMANDS = ['serve', 'build', 'test', 'compile', 'run', 'demo'] as const;
const SYNC_COMMANDS = ['serve', 'sync', 'run'] as const;
// `serve --write-key` is the collector's key, so a scheduled sync takes its settings from the file or env.
const SYNC_FLAG_COMMANDS = ['sync', 'run'] as const;
// The demo drops and recreates its schemas: where it does so comes from its own flags, never from a config
// file or environment set up for the real warehouse.
const DEMO_OWN = ['demo'] as const;

export const SETTINGS: readonly Setting[] = [
  {
    key: 'warehouse',
    help: 'duckdb://<path>, duckdb://:memory: or postgres://user[:pass]@host[:port]/db',
    type: 'string',
    env: 'LIFECYCLE_WAREHOUSE',
    flag: '--warehouse <url>',
    default: 'duckdb://./lifecycle.duckdb',
    description:
      'Where events land and models build: `duckdb://<path>`, `duckdb://:memory:` or `postgres://user[:pass]@host[:port]/db` (`postgresql://` too). A relative DuckDB path is relative to the working directory (not to the config file): give services an absolute one.',
    commands: [...WAREHOUSE_COMMANDS, 'compile'],
    flagOnly: DEMO_OWN,
  },
  {
    key: 'raw_schema',
    help: 'schema of the raw landing tables',
    type: 'string',
    env: 'LIFECYCLE_RAW_SCHEMA',
    flag: '--raw-schema <name>',
    default: 'cdp',
    description:
      'Schema of the raw landing tables (`tracks`, `identifies`, …); reaches the models as `lifecycle__raw_schema`.',
    commands: [...WAREHOUSE_COMMANDS, 'compile'],
    flagOnly: DEMO_OWN,
  },
  {
    key: 'schema',
    help: 'schema the models (and the sync state) build into',
    type: 'string',
    env: 'LIFECYCLE_SCHEMA',
    flag: '--schema <name>',
    default: 'lifecycle',
    description:
      'Schema the models build into (dbt `target.schema`); the sync keeps its state tables there too.',
    commands: [...WAREHOUSE_COMMANDS, 'compile'],
    flagOnly: DEMO_OWN,
  },
  {
    key: 'vars',
    help: 'dbt vars as JSON or YAML, or @file',
    type: 'object',
    env: 'LIFECYCLE_VARS',
    flag: '--vars <vars>',
    default: {},
    description:
      'dbt vars overriding the package defaults: a JSON or YAML mapping, or `@file`; merged key by key (file < env < flag).',
    // `load` reads them from the file and the environment only, for lifecycle__raw_schema: where it lands events
    commands: [...MODEL_COMMANDS, 'load'],
    flagOn: MODEL_COMMANDS,
  },
  {
    key: 'target_path',
    help: "folder for run_results.json, dbt's artifact of each model's and test's status and timing (and for compile's compiled/)",
    type: 'string',
    env: 'LIFECYCLE_TARGET_PATH',
    flag: '--target-path <dir>',
    default: 'target',
    description:
      "Folder (relative to the working directory) where `build`, `test`, `run` and scheduled runs write `run_results.json`, dbt's artifact (schema v6) with each model's and test's status, timing, rows and failures; `compile` writes into its `compiled/` folder unless given `--out`.",
    commands: ['serve', 'build', 'test', 'run', 'compile'],
    flagOn: ['serve', 'build', 'test', 'run', 'compile'],
  },
  {
    key: 'serve.port',
    help: 'collector port',
    type: 'integer',
    env: 'LIFECYCLE_PORT',
    flag: '--port <port>',
    default: 8080,
    description: 'TCP port of the collector.',
    commands: ['serve'],
  },
  {
    key: 'serve.host',
    help: 'collector interface (0.0.0.0 in a container)',
    type: 'string',
    env: 'LIFECYCLE_HOST',
    flag: '--host <host>',
    default: '127.0.0.1',
    description: 'Interface the collector listens on (`0.0.0.0` in a container or behind a load balancer).',
    commands: ['serve'],
  },
  {
    key: 'serve.write_keys',
    help: 'a write key the collector accepts (repeatable)',
    type: 'string[]',
    env: 'LIFECYCLE_WRITE_KEYS',
    flag: '--write-key <key>',
    description:
      'Write keys the collector accepts (HTTP Basic user name or `writeKey` in the body); repeat the flag, or comma-separate in the env var.',
    commands: ['serve'],
    secret: true,
  },
  {
    key: 'serve.schedule',
    help: 'cron expression: build, test and sync in this process on a schedule',
    type: 'string',
    env: 'LIFECYCLE_SCHEDULE',
    flag: '--schedule <cron>',
    description:
      "Cron expression (5 fields, 6 with seconds, 7 with a year, or @hourly/@daily…), in the process's time zone (TZ), on which `serve` runs build, test and sync inside the collector process.",
    commands: ['serve'],
  },
  {
    key: 'serve.max_request_bytes',
    help: 'largest request body (413 above it)',
    type: 'integer',
    env: 'LIFECYCLE_MAX_REQUEST_BYTES',
    flag: '--max-request-bytes <bytes>',
    default: 4 * 1024 * 1024,
    description: 'Largest request body the collector accepts (413 above it).',
    commands: ['serve'],
  },
  {
    key: 'serve.max_batch_events',
    help: 'most events in one request (413 above it)',
    type: 'integer',
    env: 'LIFECYCLE_MAX_BATCH_EVENTS',
    flag: '--max-batch-events <n>',
    default: 10_000,
    description:
      'Most events one request (a /v1/batch or /webhook array) may carry; 413 above it, and nothing of it lands.',
    commands: ['serve'],
  },
  {
    key: 'serve.max_concurrent_requests',
    help: 'event requests handled at once (503 with Retry-After above it)',
    type: 'integer',
    env: 'LIFECYCLE_MAX_CONCURRENT_REQUESTS',
    flag: '--max-concurrent-requests <n>',
    default: 64,
    description:
      'Event requests the collector handles at once, counted apart for those whose Basic-auth key checked out (the SDKs) and the rest; past them a request is answered 503 with `Retry-After: 1` before its body is read, and the SDK sends it again. Bounds the memory a burst can take (each may hold `max_request_bytes`).',
    commands: ['serve'],
  },
  {
    key: 'serve.max_event_bytes',
    help: 'largest single event (rejected above it)',
    type: 'integer',
    env: 'LIFECYCLE_MAX_EVENT_BYTES',
    flag: '--max-event-bytes <bytes>',
    default: 32 * 1024,
    description: 'Largest single event; a larger one goes to `rejected_events`.',
    commands: ['serve', 'load', 'demo'],
  },
  {
    key: 'sync.to',
    help: 'the CDP to send identify calls to',
    type: 'string',
    env: 'LIFECYCLE_SYNC_TO',
    flag: '--to <cdp>',
    choices: SYNC_TARGETS,
    description: 'Where the reverse sync sends `identify` calls: `rudderstack` or `segment`.',
    commands: SYNC_COMMANDS,
    flagOn: SYNC_FLAG_COMMANDS,
  },
  {
    key: 'sync.endpoint',
    help: 'RudderStack data plane URL, or Segment host (EU: https://events.eu1.segmentapis.com)',
    type: 'string',
    env: 'LIFECYCLE_SYNC_ENDPOINT',
    flag: '--endpoint <url>',
    description:
      'Base URL of the CDP API: your RudderStack data plane URL, or Segment’s host (default `https://api.segment.io`; EU: `https://events.eu1.segmentapis.com`).',
    commands: SYNC_COMMANDS,
    flagOn: SYNC_FLAG_COMMANDS,
  },
  {
    key: 'sync.write_key',
    help: 'write key of the source receiving the traits (not one that loads this warehouse)',
    type: 'string',
    env: 'LIFECYCLE_SYNC_WRITE_KEY',
    flag: '--write-key <key>',
    description:
      'Write key of the source the synced traits are sent to; use a source that does not load this warehouse (see loop safety).',
    commands: SYNC_COMMANDS,
    flagOn: SYNC_FLAG_COMMANDS,
    secret: true,
  },
  {
    key: 'sync.traits',
    help: 'trait=column,… or JSON (default: the four lifecycle traits)',
    type: 'object',
    env: 'LIFECYCLE_SYNC_TRAITS',
    flag: '--traits <mapping>',
    description:
      'Trait name → `user_lifecycle` column, as `trait=column,…` or JSON (default: lifecycle_status, lifecycle_status_since, lifecycle_previous_status, rfm_segment).',
    commands: SYNC_COMMANDS,
    flagOn: SYNC_FLAG_COMMANDS,
  },
  {
    key: 'sync.integrations',
    help: 'integrations object sent with each identify',
    type: 'object',
    default: { All: true },
    env: 'LIFECYCLE_SYNC_INTEGRATIONS',
    description:
      'The `integrations` object sent with every identify, to keep synced traits away from destinations that would load them back into this warehouse.',
    commands: SYNC_COMMANDS,
  },
  {
    key: 'sync.rate_limit',
    help: 'maximum identify calls per second',
    type: 'integer',
    env: 'LIFECYCLE_SYNC_RATE_LIMIT',
    flag: '--rate-limit <events-per-second>',
    description: 'Upper bound on identify calls per second (unlimited when unset).',
    commands: SYNC_COMMANDS,
    flagOn: SYNC_FLAG_COMMANDS,
  },
];

export function settingByKey(key: string): Setting {
  const s = SETTINGS.find((x) => x.key === key);
  if (!s) throw new Error(`unknown setting ${key}`);
  return s;
}
