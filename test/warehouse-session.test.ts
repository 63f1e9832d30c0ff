/**
 * A PostgreSQL database (or role) may be set to other output formats than the defaults; cdp-lifecycle pins its
 * own session's, so what it builds, syncs and reports does not change with them. And a database whose encoding
 * cannot hold every character is refused up front, not half-written.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { openWarehouse, type Warehouse } from '../src/warehouse';
import { UserError } from '../src/errors';
import { runSync } from '../src/sync';
import { renderTerminalReport } from '../src/report';
import { pgAdmin, pgDatabaseUrl, pgEnabled } from './helpers/warehouses';
import { build, landRaw } from './models/helpers';

const asDay = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10);

(pgEnabled() ? describe : describe.skip)('PostgreSQL session settings', () => {
  const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
  const formats = `cdpl_formats_${suffix}`;
  const latin1 = `cdpl_latin1_${suffix}`;
  beforeAll(async () => {
    await pgAdmin([
      `create database ${formats}`,
      `alter database ${formats} set DateStyle = 'SQL, DMY'`,
      `alter database ${formats} set IntervalStyle = 'sql_standard'`,
      `alter database ${formats} set standard_conforming_strings = off`,
      `alter database ${formats} set extra_float_digits = -14`,
      `create database ${latin1} template template0 encoding 'LATIN1' locale 'C'`,
    ]);
  });
  afterAll(async () => {
    await pgAdmin([
      `drop database if exists ${formats} with (force)`,
      `drop database if exists ${latin1} with (force)`,
    ]);
  });

  test('a database set to other formats changes nothing of what is built, synced or reported', async () => {
    // the premise: a plain session there sees the database's settings
    const plain = new Client({ connectionString: pgDatabaseUrl(formats) });
    await plain.connect();
    try {
      const { rows } = await plain.query<{ d: string }>(`select cast(date '2024-03-30' as text) as d`);
      expect(rows[0].d).toBe('30/03/2024');
    } finally {
      await plain.end();
    }

    const wh: Warehouse = await openWarehouse(pgDatabaseUrl(formats));
    try {
      const [{ third }] = await wh.query<{ third: number }>(
        'select cast(1 as double precision) / 3 as third',
      );
      expect(third).toBeCloseTo(1 / 3, 12);
      // a backslash in an event name is a backslash, in the raw row and in the var
      const ts = '2024-03-30T12:00:00.000Z';
      await landRaw(wh, {
        tracks: [
          {
            id: 'bs1',
            user_id: 'u1',
            anonymous_id: null,
            event_text: 'Paid\\back',
            timestamp: ts,
            received_at: ts,
            properties: { revenue: 10 },
          },
        ],
      });
      await build(wh, {
        vars: { lifecycle__as_of_date: '2024-03-31', lifecycle__purchase_events: ['Paid\\back'] },
      });
      const [u] = await wh.query<{ status_since: unknown; purchase_count: number; as_of: unknown }>(
        `select status_since, purchase_count, cast(as_of_date as text) as as_of from lifecycle.user_lifecycle`,
      );
      expect(asDay(u.status_since)).toBe('2024-03-30');
      expect(u.as_of).toBe('2024-03-31');
      expect(Number(u.purchase_count)).toBe(1);

      // the synced trait is YYYY-MM-DD (SPEC 6)
      const dry = await runSync({ warehouse: wh, schema: 'lifecycle', to: 'segment', dryRun: true });
      const [logged] = await wh.query<{ traits: unknown }>(
        'select traits from lifecycle.sync_log where run_id = $1',
        [dry.runId],
      );
      const traits = (
        typeof logged.traits === 'string' ? JSON.parse(logged.traits) : logged.traits
      ) as Record<string, unknown>;
      expect(traits.lifecycle_status_since).toBe('2024-03-30');

      // ids built from dates read the same in a session of the database's own formats (the marts are views)
      const reader = new Client({ connectionString: pgDatabaseUrl(formats) });
      await reader.connect();
      try {
        const { rows } = await reader.query<{ run: string; change: string | null }>(
          `select h.status_run_id as run, t.transition_id as change
           from lifecycle.user_status_history as h
           left join lifecycle.status_transitions as t on t.transition_id = h.status_run_id`,
        );
        expect(rows).toEqual([{ run: 'u1|2024-03-30', change: null }]);
        const days = await reader.query<{ id: string }>(
          `select status_day_id as id from lifecycle.status_daily order by 1`,
        );
        expect(days.rows.map((r) => r.id)).toEqual(['2024-03-30|new', '2024-03-31|new']);
      } finally {
        await reader.end();
      }

      // the report does date arithmetic on what it reads
      await expect(renderTerminalReport({ warehouse: wh, schema: 'lifecycle' })).resolves.toMatch(
        /2024-03-31/,
      );
    } finally {
      await wh.close();
    }
  }, 120000);

  test('a database that cannot store every character is refused before anything is written', async () => {
    const opened = await openWarehouse(pgDatabaseUrl(latin1)).then(
      async (wh) => {
        await wh.close();
        return undefined;
      },
      (err: unknown) => err,
    );
    expect(opened).toBeInstanceOf(UserError);
    expect((opened as Error).message).toMatch(
      /^The PostgreSQL database at .* uses the encoding LATIN1, which cannot store every character events carry: use a UTF8 database \(create database … encoding 'UTF8' template template0\)\.$/,
    );
  });
});
