import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { createTestIntegration, type SegmentEvent } from '@segment/actions-core';
import destination from '../../destinations/cdp-lifecycle';
import {
  closeOpenedWarehouses,
  registerWarehouse,
  unregisterWarehouse,
} from '../../destinations/cdp-lifecycle/client';
import { spawnTs, REPO_ROOT } from '../helpers/cli';
import { describeEachWarehouse } from '../helpers/warehouses';
import { RAW_TABLES, type Warehouse } from '../../src/warehouse';
import { createTableSql } from '../../src/warehouse/raw-tables';
import { Ingestor } from '../../src/collector';
import { DEMO_MARKER_TABLE } from '../../src/demo/marker';

const T0 = '2024-05-01T10:00:00.000Z';
const base = {
  messageId: 'msg-1',
  userId: 'user-1',
  anonymousId: 'anon-1',
  timestamp: T0,
  receivedAt: '2024-05-01T10:00:02.000Z',
  sentAt: '2024-05-01T10:00:01.000Z',
  context: { ip: '10.0.0.1', traits: { plan: 'free', name: 'Ann' } },
};

describe('the destination definition', () => {
  it('has one cloud action per call type, each with perform, performBatch and a preset', () => {
    expect(destination.mode).toBe('cloud');
    const slugs = ['track', 'identify', 'page', 'screen', 'alias', 'group'];
    expect(Object.keys(destination.actions).sort()).toEqual([...slugs].sort());
    for (const slug of slugs) {
      const action = destination.actions[slug];
      expect(typeof action.perform).toBe('function');
      expect(typeof action.performBatch).toBe('function');
      expect(action.defaultSubscription).toBe(`type = "${slug}"`);
      const preset = destination.presets?.find((p) => p.partnerAction === slug);
      expect(preset).toMatchObject({ subscribe: `type = "${slug}"`, type: 'automatic' });
      expect(action.fields.messageId.default).toEqual({ '@path': '$.messageId' });
      // Segment calls performBatch only for an action whose enable_batching is on, and presets take defaults
      expect(action.fields.enable_batching).toMatchObject({ type: 'boolean', default: true });
      expect(action.fields.batch_size).toMatchObject({ type: 'number' });
      expect(preset).toMatchObject({ mapping: { enable_batching: true } });
    }
  });

  it('declares warehouseUrl, which may carry the database password, as a password setting', () => {
    expect(destination.authentication?.fields.warehouseUrl).toMatchObject({
      type: 'password',
      required: true,
    });
    expect(destination.authentication?.fields.rawSchema).toMatchObject({ type: 'string' });
  });

  // A child process: prettier (used by the generator) loads plugins with dynamic import, which jest's VM
  // does not allow.
  it('has generated-types.ts files that match the field definitions (run `npm run generate:types`)', async () => {
    const child = spawnTs('destinations/generate-types.ts', ['--check']);
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect({ code, stderr }).toEqual({ code: 0, stderr: '' });
    for (const slug of Object.keys(destination.actions)) {
      const file = path.join(REPO_ROOT, 'destinations', 'cdp-lifecycle', slug, 'generated-types.ts');
      expect(fs.readFileSync(file, 'utf8')).toMatch(/^\/\/ Generated file\. DO NOT MODIFY IT BY HAND\./);
    }
  }, 30000);
});

describeEachWarehouse('destination actions', ({ tw, kind }) => {
  let wh: Warehouse;
  let settings: { warehouseUrl: string; rawSchema: string };
  const testDestination = createTestIntegration(destination);

  beforeAll(async () => {
    wh = await tw().open();
    settings = { warehouseUrl: tw().url, rawSchema: 'landing' };
    registerWarehouse(tw().url, wh);
  });
  /** A raw schema of its own whose tracks table a DBA changed (`change` rewrites its DDL); the settings for it. */
  const changedTracks = async (schema: string, change: (ddl: string) => string) => {
    await wh.exec(`drop schema if exists ${schema} cascade`);
    await wh.exec(`create schema ${schema}`);
    await wh.exec(change(createTableSql(wh.dialect, schema, RAW_TABLES.tracks)));
    return { ...settings, rawSchema: schema };
  };
  afterAll(async () => {
    unregisterWarehouse(tw().url);
    await closeOpenedWarehouses();
    await wh.close();
  });

  /** performBatch of `events` on the track action (default mappings): what it reports for each payload. */
  const trackBatch = async (
    events: unknown[],
    batchSettings: { warehouseUrl: string; rawSchema: string } = settings,
  ): Promise<Array<{ status: number; errormessage?: string; sent?: unknown }>> => {
    await testDestination.testBatchAction('track', {
      events: events as SegmentEvent[],
      settings: batchSettings,
      useDefaultMappings: true,
    });
    const [result] = testDestination.results as Array<{
      multistatus: Array<{ status: number; errormessage?: string; sent?: unknown }>;
    }>;
    return result.multistatus;
  };

  it('testAuthentication checks the warehouse and creates the raw tables', async () => {
    await expect(testDestination.testAuthentication(settings)).resolves.toBeUndefined();
    expect(await wh.tableExists('landing', 'tracks')).toBe(true);
    expect(await wh.tableExists('landing', 'rejected_events')).toBe(true);
  });

  it('testAuthentication fails with the reason when the warehouse cannot be reached', async () => {
    const bad =
      kind === 'postgres'
        ? 'postgres://postgres@127.0.0.1:1/nowhere'
        : `duckdb://${path.join(os.tmpdir(), 'no-such-dir-cdpl', 'x', 'w.duckdb')}`;
    await expect(testDestination.testAuthentication({ warehouseUrl: bad, rawSchema: 'cdp' })).rejects.toThrow(
      /Credentials are invalid: .*The warehouse cannot be reached/,
    );
    await expect(
      testDestination.testAuthentication({ ...settings, rawSchema: 'bad schema' }),
    ).rejects.toThrow(
      /Credentials are invalid: +The raw schema "bad schema" is not a valid schema name: use letters, digits and underscores only\.$/,
    );
  }, 30000);

  it('a raw schema the CLI refuses (upper case, kept by the warehouse) is refused as a setting, with the CLI message', async () => {
    // `cdp-lifecycle build --raw-schema Cdp` refuses it: events landed in a quoted "Cdp" would never be built
    const upper =
      'The raw schema "Cdp" has upper-case letters: use "cdp" (DuckDB ignores case in names and PostgreSQL folds unquoted ones to lower case).';
    const reserved = (s: string) =>
      `The raw schema "${s}" is reserved by the warehouse for its own use: choose another name.`;
    const cases: Array<[string, string]> = [
      ['Cdp', upper],
      ['information_schema', reserved('information_schema')],
      ...(kind === 'postgres'
        ? [['pg_raw', reserved('pg_raw')] as [string, string]]
        : [
            ['temp', reserved('temp')] as [string, string],
            ['cdp_lifecycle_db', reserved('cdp_lifecycle_db')] as [string, string],
          ]),
    ];
    for (const [rawSchema, message] of cases) {
      const refused = { ...settings, rawSchema };
      // not retried: a status of 400 (an error without one is retried by actions-core for ever)
      await expect(
        testDestination.testAction('track', {
          event: {
            ...base,
            messageId: `rs-${rawSchema}`,
            type: 'track',
            event: 'E',
          } as Partial<SegmentEvent>,
          settings: refused,
          useDefaultMappings: true,
        }),
      ).rejects.toMatchObject({ status: 400, code: 'INVALID_SETTINGS', message });
      await expect(
        testDestination.testBatchAction('track', {
          events: [{ ...base, messageId: `rsb-${rawSchema}`, type: 'track', event: 'E' }] as SegmentEvent[],
          settings: refused,
          useDefaultMappings: true,
        }),
      ).rejects.toMatchObject({ status: 400, code: 'INVALID_SETTINGS', message });
      await expect(testDestination.testAuthentication(refused)).rejects.toThrow(
        `Credentials are invalid:  ${message}`,
      );
    }
    // nothing was created under the refused names
    expect(
      await wh.query(
        `select table_schema from information_schema.tables where table_name = 'tracks'
         and (lower(table_schema) in ('cdp', 'information_schema', 'pg_raw', 'temp', 'cdp_lifecycle_db') or table_catalog = 'temp')`,
      ),
    ).toEqual([]);
  }, 30000);

  it("the demo's raw schema is refused (400, and by testAuthentication), as serve and load refuse it", async () => {
    // as `cdp-lifecycle demo` leaves it: raw tables and the mark; the next demo drops the schema
    await wh.exec('create schema demo_raw');
    await wh.exec(createTableSql(wh.dialect, 'demo_raw', RAW_TABLES.tracks));
    await wh.exec(`create table demo_raw.${DEMO_MARKER_TABLE} (created_at timestamptz)`);
    const demo = { ...settings, rawSchema: 'demo_raw' };
    const message =
      `The warehouse ${wh.displayUrl} holds the demo (cdp-lifecycle demo made schema demo_raw), which the next demo resets: ` +
      'land your events in a warehouse of their own, e.g. set warehouseUrl to duckdb://./events.duckdb.';
    const event = { ...base, messageId: 'dm1', type: 'track', event: 'Real' };
    await expect(
      testDestination.testAction('track', {
        event: event as Partial<SegmentEvent>,
        settings: demo,
        useDefaultMappings: true,
      }),
    ).rejects.toMatchObject({ status: 400, code: 'INVALID_SETTINGS', message });
    await expect(
      testDestination.testBatchAction('track', {
        events: [event] as SegmentEvent[],
        settings: demo,
        useDefaultMappings: true,
      }),
    ).rejects.toMatchObject({ status: 400, code: 'INVALID_SETTINGS', message });
    await expect(testDestination.testAuthentication(demo)).rejects.toThrow(
      `Credentials are invalid:  ${message}`,
    );
    expect(await wh.query('select count(*) as n from demo_raw.tracks')).toEqual([{ n: 0 }]);
    await wh.exec('drop schema demo_raw cascade');
  });

  it("the demo's mark is looked for once per warehouse and raw schema, with the tables, not per batch", async () => {
    const once = { ...settings, rawSchema: 'landing_once' };
    const lookups = jest.spyOn(wh, 'tableExists');
    const markLookups = () => lookups.mock.calls.filter(([, table]) => table === DEMO_MARKER_TABLE).length;
    try {
      for (let i = 0; i < 3; i++) {
        await testDestination.testBatchAction('track', {
          events: [{ ...base, messageId: `once-${i}`, type: 'track', event: 'E' }] as SegmentEvent[],
          settings: once,
          useDefaultMappings: true,
        });
      }
      expect(markLookups()).toBe(1);
      expect(await wh.query('select count(*) as n from landing_once.tracks')).toEqual([{ n: 3 }]);
      // testAuthentication looks again: a demo run there since is found when the destination is set up
      await wh.exec(`create table landing_once.${DEMO_MARKER_TABLE} (created_at timestamptz)`);
      await expect(testDestination.testAuthentication(once)).rejects.toThrow(/holds the demo/);
      expect(markLookups()).toBe(2);
    } finally {
      lookups.mockRestore();
      await wh.exec('drop schema landing_once cascade');
    }
  });

  it('track: perform lands one row with the slug, the name as sent and JSON columns', async () => {
    await testDestination.testAction('track', {
      event: {
        ...base,
        type: 'track',
        event: 'Order Completed',
        properties: { revenue: 12.5 },
      } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    const rows = await wh.query('select * from landing.tracks where id = $1', ['msg-1']);
    expect(rows).toHaveLength(1);
    expect(rows[0]).toMatchObject({
      user_id: 'user-1',
      anonymous_id: 'anon-1',
      event: 'order_completed',
      event_text: 'Order Completed',
      properties: { revenue: 12.5 },
      context: { ip: '10.0.0.1', traits: { plan: 'free', name: 'Ann' } },
    });
    expect((rows[0].timestamp as Date).toISOString()).toBe(T0);
    expect((rows[0].received_at as Date).toISOString()).toBe('2024-05-01T10:00:02.000Z');
  });

  it('track: a userId of spaces only lands as none, as the collector lands it', async () => {
    await testDestination.testAction('track', {
      event: {
        ...base,
        type: 'track',
        event: 'Blank',
        userId: '   ',
        messageId: 'msg-blank',
      } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    expect(
      await wh.query('select user_id, anonymous_id from landing.tracks where id = $1', ['msg-blank']),
    ).toEqual([{ user_id: null, anonymous_id: 'anon-1' }]);
  });

  it('track: performBatch lands the valid events and reports the invalid one', async () => {
    const multistatus = await trackBatch([
      { ...base, messageId: 'b1', type: 'track', event: 'A' },
      { ...base, messageId: 'b2', type: 'track', event: undefined },
      { ...base, messageId: 'b3', type: 'track', event: 'B' },
    ]);
    expect(multistatus.map((m) => m.status)).toEqual([200, 400, 200]);
    expect(multistatus[1].errormessage).toMatch(/event/);
    const rows = await wh.query<{ id: string; event_text: string }>(
      `select id, event_text from landing.tracks where id in ('b1', 'b2', 'b3') order by id`,
    );
    expect(rows).toEqual([
      { id: 'b1', event_text: 'A' },
      { id: 'b3', event_text: 'B' },
    ]);
  });

  it('outside the collector, a payload the collector would refuse is reported and the rest of the batch lands', async () => {
    // nobody validated these events: a timestamp that is not ISO-8601 used to fail the whole transaction on
    // PostgreSQL (or land "yesterday" as a date), a missing messageId was refused although one is generated
    const multistatus = await trackBatch([
      { ...base, messageId: 'v1', type: 'track', event: 'vA' },
      { ...base, messageId: 'v2', type: 'track', event: 'vB', timestamp: 'yesterday' },
      { ...base, messageId: undefined, type: 'track', event: 'vC' },
      { ...base, messageId: 'v4', type: 'track', event: '   ' },
      { ...base, messageId: 'v5', type: 'track', event: 'vE', userId: undefined, anonymousId: undefined },
    ]);
    expect(multistatus.map((m) => [m.status, m.errormessage])).toEqual([
      [200, undefined],
      [400, 'timestamp is not an ISO-8601 timestamp'],
      [200, undefined],
      [400, 'event is blank'],
      [400, 'track call has neither userId nor anonymousId'],
    ]);
    const rows = await wh.query<{ event_text: string; id: string }>(
      `select event_text, id from landing.tracks where event_text in ('vA', 'vB', 'vC', '   ', 'vE') order by event_text`,
    );
    expect(rows.map((r) => r.event_text)).toEqual(['vA', 'vC']);
    expect(rows[1].id).toMatch(/^[0-9a-f-]{36}$/);
    await expect(
      testDestination.testAction('track', {
        event: {
          ...base,
          messageId: 'v6',
          type: 'track',
          event: 'F',
          timestamp: 'yesterday',
        } as Partial<SegmentEvent>,
        settings,
        useDefaultMappings: true,
      }),
    ).rejects.toThrow('timestamp is not an ISO-8601 timestamp');
  });

  it("outside the collector, an empty time field is refused with the collector's reason, not landed as absent", async () => {
    // serve and load refuse `"timestamp": ""` (and sentAt, originalTimestamp, receivedAt) as not ISO-8601;
    // performBatch used to drop the empty key and land the event with a derived timestamp
    const multistatus = await trackBatch([
      { ...base, messageId: 'et-1', type: 'track', event: 'etA', timestamp: '' },
      { ...base, messageId: 'et-2', type: 'track', event: 'etB', sentAt: '' },
      { ...base, messageId: 'et-3', type: 'track', event: 'etC', originalTimestamp: '' },
      { ...base, messageId: 'et-4', type: 'track', event: 'etD', receivedAt: '' },
      { ...base, messageId: 'et-5', type: 'track', event: 'etE' },
    ]);
    expect(multistatus.map((m) => [m.status, m.errormessage])).toEqual([
      [400, 'timestamp is not an ISO-8601 timestamp'],
      [400, 'sentAt is not an ISO-8601 timestamp'],
      [400, 'originalTimestamp is not an ISO-8601 timestamp'],
      [400, 'receivedAt is not an ISO-8601 timestamp'],
      [200, undefined],
    ]);
    const rows = await wh.query<{ id: string }>(
      `select id from landing.tracks where id like 'et-%' order by id`,
    );
    expect(rows).toEqual([{ id: 'et-5' }]);
    // A single event's empty time field never reaches perform: actions-core removes an empty string at the
    // top of a single payload before the action runs (removeEmptyValues), so it lands as absent (the
    // timestamp derived). Documented in docs/collect.md as a difference from the collector.
    await testDestination.testAction('track', {
      event: {
        ...base,
        messageId: 'et-6',
        type: 'track',
        event: 'etF',
        timestamp: '',
      } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    const single = await wh.query<{ id: string }>(`select id from landing.tracks where id = 'et-6'`);
    expect(single).toEqual([{ id: 'et-6' }]);
  });

  it("a null context fails inside actions-core before the action runs, the whole batch with it; the collector's Ingestor lands it as absent", async () => {
    // actions-core (audience-membership.js) destructures `context: { personas } = {}` of every raw event
    // before perform and performBatch: a default covers an absent context, not a null one, and nothing of
    // the destination runs before it. Documented in docs/collect.md; a change here means the docs change.
    const events = [
      { ...base, messageId: 'nc-1', type: 'track', event: 'ncA', context: null },
      { ...base, messageId: 'nc-2', type: 'track', event: 'ncB' },
    ] as unknown as SegmentEvent[];
    await expect(
      testDestination.testBatchAction('track', { events, settings, useDefaultMappings: true }),
    ).rejects.toThrow(TypeError);
    await expect(
      testDestination.testAction('track', { event: events[0], settings, useDefaultMappings: true }),
    ).rejects.toThrow(TypeError);
    const count = async () =>
      (await wh.query<{ id: string }>(`select id from landing.tracks where id like 'nc-%' order by id`)).map(
        (r) => r.id,
      );
    expect(await count()).toEqual([]);
    // what the docs tell a host to do: hand the events over as the collector does (serve and load delete a
    // null context in normalizeEvent), and both land
    const ingestor = new Ingestor({ warehouse: wh, rawSchema: 'landing' });
    try {
      await expect(
        ingestor.ingest(JSON.parse(JSON.stringify(events)) as unknown[], { keepReceivedAt: true }),
      ).resolves.toMatchObject({ landed: 2, rejected: [] });
    } finally {
      await ingestor.close();
    }
    expect(await count()).toEqual(['nc-1', 'nc-2']);
  });

  it('outside the collector, a row the warehouse refuses is reported (without `sent`) and the others land', async () => {
    // a constraint a DBA added, which the validator knows nothing of
    const ck = await changedTracks('landing_ck', (ddl) =>
      ddl.replace(/\)$/, `, constraint no_blocked check (event_text <> 'Blocked'))`),
    );
    const multistatus = await trackBatch(
      [
        { ...base, messageId: 'ck1', type: 'track', event: 'Fine' },
        { ...base, messageId: 'ck2', type: 'track', event: 'Blocked' },
        { ...base, messageId: 'ck3', type: 'track', event: 'Fine too' },
      ],
      ck,
    );
    expect(multistatus.map((m) => m.status)).toEqual([200, 400, 200]);
    expect(multistatus[1].errormessage).toMatch(/^the warehouse refused it: .*(no_blocked|CHECK)/i);
    expect(multistatus[1]).not.toHaveProperty('sent');
    expect(await wh.query(`select id from landing_ck.tracks order by id`)).toEqual([
      { id: 'ck1' },
      { id: 'ck3' },
    ]);
    await expect(
      testDestination.testAction('track', {
        event: { ...base, messageId: 'ck4', type: 'track', event: 'Blocked' } as Partial<SegmentEvent>,
        settings: ck,
        useDefaultMappings: true,
      }),
    ).rejects.toMatchObject({ status: 400, message: expect.stringMatching(/^the warehouse refused it: /) });
    await wh.exec('drop schema landing_ck cascade');
  });

  it("outside the collector, a table that refuses any row is retried, not reported as the events' fault", async () => {
    // a constraint added by hand that no row meets (as a missing partition or a NOT NULL column no landing row
    // fills): every row is refused, the valid ones too
    const nn = await changedTracks('landing_nn', (ddl) =>
      ddl.replace(/\)$/, `, constraint tenant_set check (event_text = 'never'))`),
    );
    const events = [
      { ...base, messageId: 'nn1', type: 'track', event: 'Fine' },
      { ...base, messageId: 'nn2', type: 'track', event: 'Fine too' },
    ] as SegmentEvent[];
    const retried = {
      code: 'RETRYABLE_ERROR',
      message: expect.stringMatching(
        /^The raw table landing_nn\.tracks refuses any row \(.*(tenant_set|CHECK).*\); nothing was stored: fix the table/i,
      ),
    };
    await expect(
      testDestination.testBatchAction('track', { events, settings: nn, useDefaultMappings: true }),
    ).rejects.toMatchObject(retried);
    await expect(
      testDestination.testAction('track', { event: events[0], settings: nn, useDefaultMappings: true }),
    ).rejects.toMatchObject(retried);
    expect(await wh.query(`select count(*) as n from landing_nn.tracks`)).toEqual([{ n: 0 }]);
    // once the table is fixed (here: dropped, and created again by the next call), the retried call lands
    await wh.exec('drop table landing_nn.tracks');
    await testDestination.testBatchAction('track', { events, settings: nn, useDefaultMappings: true });
    expect(await wh.query(`select id from landing_nn.tracks order by id`)).toEqual([
      { id: 'nn1' },
      { id: 'nn2' },
    ]);
    await wh.exec('drop schema landing_nn cascade');
  });

  if (kind === 'postgres') {
    it('outside the collector, a table partitioned by time that lacks the partition of the events is retried', async () => {
      // partitions for 2024 and for the years around now, none for 2023: a replay of 2023's events
      const pt = await changedTracks('landing_pt', (ddl) => `${ddl} partition by range ("timestamp")`);
      const year = new Date().getUTCFullYear();
      await wh.exec(
        `create table landing_pt.tracks_2024 partition of landing_pt.tracks for values from ('2024-01-01') to ('2025-01-01')`,
      );
      await wh.exec(
        `create table landing_pt.tracks_now partition of landing_pt.tracks for values from ('${year - 1}-01-01') to ('${year + 2}-01-01')`,
      );
      const old = (messageId: string) => ({
        ...base,
        messageId,
        type: 'track',
        event: 'Replayed',
        timestamp: '2023-06-01T10:00:00.000Z',
        sentAt: '2023-06-01T10:00:01.000Z',
        receivedAt: '2023-06-01T10:00:02.000Z',
      });
      await expect(
        testDestination.testBatchAction('track', {
          events: [old('pt1'), old('pt2')] as SegmentEvent[],
          settings: pt,
          useDefaultMappings: true,
        }),
      ).rejects.toMatchObject({ code: 'RETRYABLE_ERROR', message: expect.stringMatching(/no partition/) });
      await testDestination.testBatchAction('track', {
        events: [{ ...base, messageId: 'pt3', type: 'track', event: 'Fine' }] as SegmentEvent[],
        settings: pt,
        useDefaultMappings: true,
      });
      expect(await wh.query(`select id from landing_pt.tracks order by id`)).toEqual([{ id: 'pt3' }]);
      // beside an event that lands, the 2023 one is still the table's fault: retried (500), not dropped (400)
      const mixed = await trackBatch(
        [{ ...base, messageId: 'pt4', type: 'track', event: 'Fine' }, old('pt5')],
        pt,
      );
      expect(mixed.map((m) => m.status)).toEqual([200, 500]);
      expect(mixed[1]).toMatchObject({
        errortype: 'RETRYABLE_ERROR',
        errormessage: expect.stringMatching(
          /^the raw table landing_pt\.tracks refuses any row dated like this one \(.*no partition/,
        ),
      });
      // without a timestamp, the event lands at receivedAt less the clock skew (2023): the neutral row is
      // dated there too, not now (where a partition exists)
      await expect(
        testDestination.testAction('track', {
          event: {
            ...old('pt6'),
            timestamp: undefined,
            originalTimestamp: '2023-06-01T10:00:00.000Z',
          } as Partial<SegmentEvent>,
          settings: pt,
          useDefaultMappings: true,
        }),
      ).rejects.toMatchObject({ code: 'RETRYABLE_ERROR', message: expect.stringMatching(/no partition/) });
      expect(await wh.query(`select id from landing_pt.tracks order by id`)).toEqual([
        { id: 'pt3' },
        { id: 'pt4' },
      ]);
      await wh.exec('drop schema landing_pt cascade');
    });
  }

  if (kind === 'postgres') {
    it('outside the collector, a table partitioned by received_at judges each refused row at its own receipt time', async () => {
      // a 2024 partition only, and a constraint that refuses one event: at the same timestamp, the row
      // received in 2023 is the table's fault (retried), the blocked one its own (400), in either order
      const ra = await changedTracks(
        'landing_ra',
        (ddl) =>
          `${ddl.replace(/\)$/, `, constraint no_blocked check (event_text <> 'Blocked'))`)} partition by range (received_at)`,
      );
      await wh.exec(
        `create table landing_ra.tracks_2024 partition of landing_ra.tracks for values from ('2024-01-01') to ('2025-01-01')`,
      );
      const at = (messageId: string, event: string, receivedAt: string) => ({
        ...base,
        messageId,
        type: 'track',
        event,
        timestamp: '2024-06-01T10:00:00.000Z',
        sentAt: undefined,
        receivedAt,
      });
      const blocked = at('ra-b', 'Blocked', '2024-06-01T10:00:01.000Z');
      const early = at('ra-a', 'Fine', '2023-12-31T23:00:00.000Z');
      for (const order of [
        [blocked, early],
        [early, blocked],
      ]) {
        const statuses = await trackBatch(order, ra);
        expect(statuses.map((m) => m.status)).toEqual(order.map((e) => (e === blocked ? 400 : 500)));
      }
      expect(await wh.query(`select count(*) as n from landing_ra.tracks`)).toEqual([{ n: 0 }]);
      await wh.exec('drop schema landing_ra cascade');
    });
  }

  it('outside the collector, raw tables dropped after the first call are created again', async () => {
    const dz = { ...settings, rawSchema: 'landing_dz' };
    const send = (messageId: string) =>
      testDestination.testAction('track', {
        event: { ...base, messageId, type: 'track', event: 'Fine' } as Partial<SegmentEvent>,
        settings: dz,
        useDefaultMappings: true,
      });
    await send('dz1');
    await wh.exec('drop schema landing_dz cascade');
    await send('dz2');
    expect(await wh.query(`select id from landing_dz.tracks`)).toEqual([{ id: 'dz2' }]);
    await wh.exec('drop table landing_dz.tracks');
    await send('dz3');
    expect(await wh.query(`select id from landing_dz.tracks`)).toEqual([{ id: 'dz3' }]);
    await wh.exec('drop schema landing_dz cascade');
  });

  it('outside the collector, a warehouse that is down is retried (503) and a setting that cannot work is not (400)', async () => {
    const down =
      kind === 'postgres'
        ? 'postgres://postgres@127.0.0.1:1/nowhere'
        : `duckdb://${path.join(os.tmpdir(), 'no-such-dir-cdpl', 'x', 'w.duckdb')}`;
    const event = { ...base, messageId: 'st1', type: 'track', event: 'E' } as Partial<SegmentEvent>;
    await expect(
      testDestination.testAction('track', {
        event,
        settings: { warehouseUrl: down, rawSchema: 'cdp' },
        useDefaultMappings: true,
      }),
    ).rejects.toMatchObject({ status: 503, code: 'RETRYABLE_ERROR' });
    for (const bad of [
      { ...settings, rawSchema: 'bad schema' },
      { ...settings, warehouseUrl: 'mysql://h/db' },
    ]) {
      await expect(
        testDestination.testAction('track', { event, settings: bad, useDefaultMappings: true }),
      ).rejects.toMatchObject({ status: 400, code: 'INVALID_SETTINGS' });
    }
  }, 30000);

  it('identify: traits are merged over context.traits, perform and performBatch alike', async () => {
    const event = { ...base, type: 'identify', traits: { plan: 'pro', email: 'ann@example.com' } };
    await testDestination.testAction('identify', {
      event: { ...event, messageId: 'i1' } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    await testDestination.testBatchAction('identify', {
      events: [{ ...event, messageId: 'i2' }] as SegmentEvent[],
      settings,
      useDefaultMappings: true,
    });
    const rows = await wh.query<{ id: string; traits: unknown }>(
      'select id, traits from landing.identifies order by id',
    );
    const traits = { plan: 'pro', name: 'Ann', email: 'ann@example.com' };
    expect(rows).toEqual([
      { id: 'i1', traits },
      { id: 'i2', traits },
    ]);
  });

  it('page and screen land their name and properties', async () => {
    for (const type of ['page', 'screen'] as const) {
      await testDestination.testBatchAction(type, {
        events: [
          { ...base, messageId: `${type}-1`, type, name: 'Pricing', properties: { path: '/pricing' } },
        ],
        settings,
        useDefaultMappings: true,
      });
      const rows = await wh.query(`select id, name, properties from landing.${type}s`);
      expect(rows).toEqual([{ id: `${type}-1`, name: 'Pricing', properties: { path: '/pricing' } }]);
    }
  });

  it('alias needs previousId and userId; group lands group_id and traits', async () => {
    await testDestination.testAction('alias', {
      event: { ...base, messageId: 'al1', type: 'alias', previousId: 'anon-1' } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    await expect(
      testDestination.testAction('alias', {
        event: { ...base, messageId: 'al2', type: 'alias' } as Partial<SegmentEvent>,
        settings,
        useDefaultMappings: true,
      }),
    ).rejects.toThrow(/previousId/);
    expect(await wh.query('select id, previous_id, user_id from landing.aliases')).toEqual([
      { id: 'al1', previous_id: 'anon-1', user_id: 'user-1' },
    ]);
    await testDestination.testAction('group', {
      event: {
        ...base,
        messageId: 'g1',
        type: 'group',
        groupId: 'acme',
        traits: { seats: 5 },
      } as Partial<SegmentEvent>,
      settings,
      useDefaultMappings: true,
    });
    // the group's own traits only: the event's context.traits (plan, name) describe the user (SPEC 3)
    expect(await wh.query('select id, group_id, traits from landing.groups')).toEqual([
      { id: 'g1', group_id: 'acme', traits: { seats: 5 } },
    ]);
  });

  it.each([
    ['track', 'tracks', { event: 'Both Ways' }],
    ['identify', 'identifies', { traits: { a: 1 } }],
    ['page', 'pages', { name: 'P' }],
    ['screen', 'screens', { name: 'S' }],
    ['alias', 'aliases', { previousId: 'prev-1' }],
    ['group', 'groups', { groupId: 'grp-1' }],
  ])('%s: perform and performBatch land the same row shape', async (slug, table, extra) => {
    const ev = (id: string) => ({ ...base, type: slug, messageId: id, ...extra }) as Partial<SegmentEvent>;
    await testDestination.testAction(slug, {
      event: ev(`${slug}-single`),
      settings,
      useDefaultMappings: true,
    });
    await testDestination.testBatchAction(slug, {
      events: [ev(`${slug}-batch-1`), ev(`${slug}-batch-2`)] as SegmentEvent[],
      settings,
      useDefaultMappings: true,
    });
    const rows = await wh.query<Record<string, unknown>>(
      `select * from landing.${table} where id in ($1, $2, $3) order by id`,
      [`${slug}-batch-1`, `${slug}-batch-2`, `${slug}-single`],
    );
    expect(rows.map((r) => r.id)).toEqual([`${slug}-batch-1`, `${slug}-batch-2`, `${slug}-single`]);
    // Apart from the id, the three rows are identical: both paths shape events the same way.
    const shape = rows.map(({ id: _id, ...rest }) => rest);
    expect(shape[1]).toEqual(shape[0]);
    expect(shape[2]).toEqual(shape[0]);
  });
});
