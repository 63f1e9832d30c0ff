/**
 * The zone names without a slash that the CLI accepts for lifecycle__timezone (TZDB_SHORT_NAMES) date events
 * alike on every warehouse: built through the models, each instant's first_seen_date is its date in the zone as
 * the IANA database says (Node's Intl). Such names were once accepted that PostgreSQL reads as fixed-offset
 * abbreviations (CET without summer time, EST without America/Panama's history), so a build dated events an
 * hour apart on DuckDB and PostgreSQL.
 */
import { describeEachWarehouse } from '../helpers/warehouses';
import type { ViewRow } from './oracle';
import { checkTimezoneOnWarehouse, checkVarValues, TZDB_SHORT_NAMES } from '../../src/cli/steps';
import { runCli } from '../helpers/cli';
import { build, landRaw } from './helpers';

/** Each accepted name as it is usually written; every name of the set is here, so a new one is tested. */
const NAMES = [
  'Cuba',
  'Egypt',
  'Eire',
  'Iran',
  'Japan',
  'Libya',
  'UTC',
  'UCT',
  'GMT',
  'Zulu',
  'GB',
  'NZ',
  'PRC',
  'ROC',
  'ROK',
];

// every hour of days from eras with other offsets: local mean time (1900), wartime (1940), Phoenix's one summer
// time (1967), and both halves of a recent year
const INSTANTS = ['1900-01-01', '1940-01-01', '1967-07-01', '2024-01-15', '2024-07-01'].flatMap((d) =>
  Array.from({ length: 24 }, (_, h) => `${d}T${String(h).padStart(2, '0')}:30:00.000Z`),
);

const day = (v: unknown) => (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10);

function dateIn(zone: string, instant: string): string {
  return new Intl.DateTimeFormat('en-CA', {
    timeZone: zone,
    year: 'numeric',
    month: '2-digit',
    day: '2-digit',
  }).format(new Date(instant));
}

it('lists every short zone name the CLI accepts', () => {
  expect(NAMES.map((n) => n.toUpperCase()).sort()).toEqual([...TZDB_SHORT_NAMES].sort());
  for (const name of NAMES) expect(() => checkVarValues({ lifecycle__timezone: name })).not.toThrow();
  // read as fixed offsets by PostgreSQL, as zones by DuckDB: refused, naming the region meant
  for (const [name, region] of [
    ['CET', 'Europe/Brussels'],
    ['EET', 'Europe/Athens'],
    ['WET', 'Europe/Lisbon'],
    ['MET', 'Europe/Brussels'],
    ['EST', 'America/Panama'],
    ['MST', 'America/Phoenix'],
    ['HST', 'Pacific/Honolulu'],
  ]) {
    expect(() => checkVarValues({ lifecycle__timezone: name })).toThrow(
      `The var lifecycle__timezone "${name}" is an abbreviation, which warehouses read differently (PostgreSQL as a fixed offset): use an IANA name such as ${region}.`,
    );
  }
});

describeEachWarehouse('short zone names', ({ tw }) => {
  it('date every instant as the IANA database does', async () => {
    const wh = await tw().open();
    try {
      const pages: ViewRow[] = INSTANTS.map((ts, i) => ({
        id: `tz${i}`,
        user_id: `u${String(i).padStart(3, '0')}`,
        anonymous_id: null,
        timestamp: ts,
        received_at: ts,
      }));
      await landRaw(wh, { pages }, 'cdp_tz_names');
      const wrong: string[] = [];
      for (const zone of NAMES) {
        await build(wh, {
          schema: 'lc_tz_names',
          rawSchema: 'cdp_tz_names',
          vars: { lifecycle__as_of_date: '2024-07-05', lifecycle__timezone: zone },
          fullRefresh: true,
        });
        const rows = await wh.query<{ user_id: string; first: unknown }>(
          `select user_id, first_seen_date as first from lc_tz_names.user_lifecycle order by user_id`,
        );
        expect(rows).toHaveLength(INSTANTS.length);
        rows.forEach((r, i) => {
          const expected = dateIn(zone, INSTANTS[i]);
          if (day(r.first) !== expected)
            wrong.push(`${zone} ${INSTANTS[i]}: ${day(r.first)}, not ${expected}`);
        });
      }
      expect(wrong).toEqual([]);
    } finally {
      await wh.close();
    }
  }, 170_000);
});

describeEachWarehouse('a zone name the warehouse does not know', ({ tw }) => {
  it('is a usage error naming the var and the zone Node takes it for, before the build starts', async () => {
    const wh = await tw().open();
    try {
      await expect(
        checkTimezoneOnWarehouse(wh, { lifecycle__timezone: 'America/Vancouver' }),
      ).resolves.toBeUndefined();
      await expect(checkTimezoneOnWarehouse(wh, {})).resolves.toBeUndefined();
      const engine = wh.dialect === 'postgres' ? 'PostgreSQL' : 'DuckDB';
      await expect(
        checkTimezoneOnWarehouse(wh, { lifecycle__timezone: 'Mars/Olympus_Mons' }),
      ).rejects.toThrow(
        `The var lifecycle__timezone "Mars/Olympus_Mons" is not a time zone ${engine} knows (its time zone database has no such name): use a current IANA name such as America/Los_Angeles.`,
      );
      if (wh.dialect !== 'postgres') return;
      // Node's database still has the name, PostgreSQL's no longer: the build failed in its first model
      const r = await runCli([
        'build',
        '--warehouse',
        tw().url,
        '--vars',
        '{"lifecycle__timezone": "US/Pacific-New", "lifecycle__as_of_date": "2024-01-01"}',
      ]);
      expect(r.code).toBe(2);
      expect(r.stderr.trim()).toBe(
        'error: The var lifecycle__timezone "US/Pacific-New" is not a time zone PostgreSQL knows (its time zone database has no such name): use a current IANA name such as America/Los_Angeles.',
      );
      expect(r.stdout).not.toMatch(/Building models/);
      // serve with a schedule says it at start, instead of failing every scheduled build in its log
      const serve = await runCli(
        [
          'serve',
          '--warehouse',
          tw().url,
          '--port',
          '0',
          '--write-key',
          'tz-check-key',
          '--schedule',
          '0 3 * * *',
          '--vars',
          '{"lifecycle__timezone": "US/Pacific-New"}',
        ],
        { timeoutMs: 30_000 },
      );
      expect(serve.code).toBe(2);
      expect(serve.stderr).toMatch(
        /lifecycle__timezone "US\/Pacific-New" is not a time zone PostgreSQL knows/,
      );
    } finally {
      await wh.close();
    }
  }, 60_000);
});
