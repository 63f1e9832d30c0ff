import * as fs from 'node:fs';
import * as path from 'node:path';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { REPO_ROOT, spawnTs } from '../helpers/cli';
import { README_BEGIN, README_END } from '../../src/manifest/generate';
import type { Manifest } from '../../src/manifest/types';
import { readConfigFile } from '../../src/cli/config';
import { SETTINGS } from '../../src/cli/settings';
import { openWarehouse } from '../../src/warehouse';
import { startCollector } from '../../src/collector';

const read = (f: string): string => fs.readFileSync(path.join(REPO_ROOT, f), 'utf8');

describe('manifest.json', () => {
  const manifest = JSON.parse(read('manifest.json')) as Manifest;

  it('is valid against the committed manifest.schema.json', () => {
    const ajv = new Ajv({ allErrors: true, strict: false });
    addFormats(ajv);
    const validate = ajv.compile(JSON.parse(read('manifest.schema.json')) as object);
    const ok = validate(manifest);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('matches what the code and the models generate (otherwise run `npm run manifest`)', async () => {
    const check = spawnTs('src/manifest/generate.ts', ['--check']);
    let stderr = '';
    check.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => check.on('close', resolve));
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(read('README.md')).toContain(README_BEGIN);
    expect(read('README.md')).toContain(README_END);
  });

  // The expectations below are copied from SPEC.md, not from the code under test.
  it('lists the traits of SPEC §6 with the statuses of §4.4 and the segments of §4.6', () => {
    const traits = Object.fromEntries(manifest.sync.traits.map((t) => [t.name, t]));
    expect(Object.keys(traits)).toEqual([
      'lifecycle_status',
      'lifecycle_status_since',
      'lifecycle_previous_status',
      'rfm_segment',
    ]);
    const statuses = ['new', 'active', 'power', 'at_risk', 'dormant', 'churned', 'resurrected'];
    expect(traits.lifecycle_status.values?.map((v) => v.value).sort()).toEqual([...statuses].sort());
    expect(traits.lifecycle_status.nullable).toBe(false);
    expect(traits.lifecycle_previous_status.values?.map((v) => v.value).sort()).toEqual([...statuses].sort());
    expect(traits.lifecycle_status_since).toMatchObject({ column: 'status_since', type: 'date' });
    expect(traits.rfm_segment.values?.map((v) => v.value).sort()).toEqual(
      [
        'hibernating',
        'at_risk',
        'cant_lose',
        'about_to_sleep',
        'need_attention',
        'loyal',
        'promising',
        'new_customer',
        'potential_loyalist',
        'champions',
      ].sort(),
    );
    expect(traits.rfm_segment.nullable).toBe(true);
    for (const t of Object.values(traits)) for (const v of t.values ?? []) expect(v.description).toBeTruthy();
  });

  it('describes the marts of SPEC §5 with their columns', () => {
    const models = Object.fromEntries(manifest.models.models.map((m) => [m.name, m]));
    const spec: Record<string, string[]> = {
      user_lifecycle: [
        'user_id',
        'as_of_date',
        'lifecycle_status',
        'status_since',
        'previous_status',
        'first_seen_date',
        'last_active_date',
        'days_inactive',
        'active_days_7',
        'active_days_28',
        'subscription_status',
        'core_feature_adopted',
        'purchase_count',
        'monetary',
        'rfm_recency_score',
        'rfm_frequency_score',
        'rfm_monetary_score',
        'rfm_segment',
      ],
      user_status_history: ['user_id', 'lifecycle_status', 'valid_from', 'valid_to'],
      status_transitions: ['user_id', 'transition_date', 'from_status', 'to_status'],
      status_daily: ['date', 'lifecycle_status', 'users'],
      growth_accounting_daily: [
        'date',
        'new_users',
        'current_users',
        'dau',
        'wau',
        'mau',
        'nurr',
        'curr',
        'rurr',
      ],
    };
    for (const [name, columns] of Object.entries(spec)) {
      expect(models[name]).toBeDefined();
      expect(models[name].layer).toBe('marts');
      expect(['table', 'view', 'incremental']).toContain(models[name].materialized);
      expect(models[name].description).not.toBe('');
      expect(models[name].columns.map((c) => c.name)).toEqual(expect.arrayContaining(columns));
    }
    expect(models.user_lifecycle.columns.find((c) => c.name === 'user_id')?.tests).toEqual(
      expect.arrayContaining(['not_null', 'unique']),
    );
  });

  it('carries the vars of SPEC §4.1 with their defaults, the warehouses and the destination', () => {
    const vars = Object.fromEntries(manifest.vars.map((v) => [v.name, v.default]));
    expect(vars).toMatchObject({
      lifecycle__timezone: 'UTC',
      lifecycle__new_days: 7,
      lifecycle__at_risk_days: 7,
      lifecycle__dormant_days: 30,
      lifecycle__churn_days: 90,
      lifecycle__resurrected_days: 7,
      lifecycle__power_days: 20,
      lifecycle__decline_min_baseline_days: 6,
      lifecycle__decline_ratio_pct: 50,
      lifecycle__churn_events: ['Account Deleted', 'App Uninstalled'],
      lifecycle__non_activity_events: [],
      lifecycle__core_events: [],
      lifecycle__purchase_events: ['Order Completed'],
      lifecycle__plan_trait: 'plan',
      lifecycle__rfm_window_days: 365,
      lifecycle__wau_days: 7,
      lifecycle__mau_days: 30,
    });
    expect(manifest.warehouses.map((w) => [w.type, w.run, w.compile])).toEqual([
      ['duckdb', true, true],
      ['postgres', true, true],
      ['snowflake', false, true],
      ['bigquery', false, true],
      ['redshift', false, true],
    ]);
    expect(manifest.destination.mode).toBe('cloud');
    expect(manifest.destination.actions.map((a) => a.key).sort()).toEqual(
      ['alias', 'group', 'identify', 'page', 'screen', 'track'].sort(),
    );
    expect(Object.keys(manifest.destination.settings)).toEqual(expect.arrayContaining(['warehouseUrl']));
    expect(manifest.collector.limits).toEqual({
      maxRequestBytes: 4 * 1024 * 1024,
      maxEventBytes: 32 * 1024,
      maxBatchEvents: 10_000,
    });
    expect(manifest.cli.commands.map((c) => c.name).sort()).toEqual(
      ['build', 'compile', 'demo', 'load', 'report', 'run', 'serve', 'sync', 'test'].sort(),
    );
  });

  it('lists endpoints a real collector serves', async () => {
    const wh = await openWarehouse('duckdb://:memory:');
    const collector = await startCollector({
      warehouse: wh,
      rawSchema: 'cdp',
      port: 0,
      host: '127.0.0.1',
      writeKeys: ['k'],
      logger: (await import('pino')).default({ level: 'silent' }),
    });
    try {
      const unknown = await fetch(`${collector.url}/v1/no-such-endpoint`, { method: 'POST', body: '{}' });
      expect(unknown.status).toBe(404);
      for (const e of manifest.collector.endpoints) {
        const res = await fetch(`${collector.url}${e.path}`, {
          method: e.method,
          headers: { authorization: `Basic ${Buffer.from('k:').toString('base64')}` },
          ...(e.method === 'POST' ? { body: '{}' } : {}),
        });
        await res.arrayBuffer();
        expect([e.path, res.status]).not.toEqual([e.path, 404]);
      }
    } finally {
      await collector.close();
      await wh.close();
    }
  });

  it('publishes the schema of cdp-lifecycle.yml, which the example file satisfies', () => {
    const ajv = new Ajv({ strict: false });
    const validate = ajv.compile(manifest.configuration.fileSchema);
    expect(validate(readConfigFile(path.join(REPO_ROOT, 'cdp-lifecycle.example.yml')))).toBe(true);
    expect(validate({ serve: { prot: 1 } })).toBe(false);
  });

  it('shows every setting in the example file (set, or commented out), as docs/cli.md says', () => {
    const text = fs.readFileSync(path.join(REPO_ROOT, 'cdp-lifecycle.example.yml'), 'utf8');
    const doc = readConfigFile(path.join(REPO_ROOT, 'cdp-lifecycle.example.yml')) as Record<string, unknown>;
    const missing = SETTINGS.filter((setting) => {
      const parts = setting.key.split('.');
      let v: unknown = doc;
      for (const p of parts) v = v && typeof v === 'object' ? (v as Record<string, unknown>)[p] : undefined;
      if (v !== undefined) return false;
      return !new RegExp(`^\\s*#\\s*${parts[parts.length - 1]}:`, 'm').test(text);
    }).map((setting) => setting.key);
    expect(missing).toEqual([]);
  });
});
