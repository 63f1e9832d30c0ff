/**
 * The views of docs/warehouse-destinations.md (read from that page, so it cannot drift) over tables shaped
 * like a Segment warehouse destination's: flattened properties and traits, purchase properties in the
 * event's own table. Every mart must equal the reference implementation on what those tables say.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ColumnSpec, InsertValue, TableSpec, Warehouse } from '../../src/warehouse';
import { createTableSql } from '../../src/warehouse/raw-tables';
import { describeEachWarehouse } from '../helpers/warehouses';
import { computeOracle, type RawData } from './oracle';
import { generate } from './generate';
import { build, diffUsers, normalise, readMarts } from './helpers';

const D = '2024-03-20';
const DOC = fs.readFileSync(path.join(__dirname, '../../docs/warehouse-destinations.md'), 'utf8');

/** The SQL block after `<!-- views:<dialect> -->` in the page. */
function viewsSql(dialect: string): string[] {
  const m = new RegExp(`<!-- views:${dialect} -->\\s*\`\`\`sql\\n([\\s\\S]*?)\`\`\``).exec(DOC);
  if (!m) throw new Error(`docs/warehouse-destinations.md has no views:${dialect} block`);
  return m[1]
    .split(/;\s*\n/)
    .map((s) => s.trim())
    .filter(Boolean);
}

const c = (name: string, type: ColumnSpec['type']): ColumnSpec => ({ name, type });
const ids = [c('id', 'text'), c('user_id', 'text'), c('anonymous_id', 'text')];
const times = [c('timestamp', 'timestamptz'), c('received_at', 'timestamptz')];
const TABLES: Record<string, TableSpec> = {
  tracks: { name: 'tracks', columns: [...ids, c('event', 'text'), c('event_text', 'text'), ...times] },
  // one table per event; a property sent as numbers, strings and booleans becomes a text column
  order_completed: {
    name: 'order_completed',
    columns: [
      ...ids,
      c('event_text', 'text'),
      ...times,
      c('revenue', 'text'),
      c('total', 'text'),
      c('value', 'text'),
    ],
  },
  // a trait sent as ISO timestamps becomes a timestamp column
  identifies: {
    name: 'identifies',
    columns: [
      ...ids,
      ...times,
      c('created_at', 'timestamptz'),
      c('plan', 'text'),
      // RudderStack's JavaScript SDK sends an identify's traits only in context.traits
      c('context_traits_created_at', 'timestamptz'),
      c('context_traits_plan', 'text'),
    ],
  },
  pages: { name: 'pages', columns: [...ids, ...times, c('name', 'text')] },
  screens: { name: 'screens', columns: [...ids, ...times, c('name', 'text')] },
  aliases: {
    name: 'aliases',
    columns: [c('id', 'text'), c('previous_id', 'text'), c('user_id', 'text'), ...times],
  },
};

const text = (v: unknown): string | null => (v === undefined || v === null ? null : String(v));

/**
 * What a warehouse destination keeps of the generated calls, and the same calls as the models must see them
 * through the views: purchase properties as text, traits snake-cased into created_at and plan.
 */
function flatten(raw: RawData): { tables: Record<string, Array<Record<string, unknown>>>; seen: RawData } {
  const tables: Record<string, Array<Record<string, unknown>>> = {
    tracks: [],
    order_completed: [],
    identifies: [],
    pages: raw.pages.map((p) => ({ ...p, name: 'Home' })),
    screens: raw.screens.map((p) => ({ ...p, name: 'Home' })),
    aliases: raw.aliases.map((a) => ({ ...a })),
  };
  const seen: RawData = { ...raw, tracks: [], identifies: [] };
  for (const t of raw.tracks) {
    const { properties, ...row } = t;
    tables.tracks.push({ ...row, event: t.event_text.toLowerCase().replace(/\W+/g, '_') });
    if (t.event_text === 'Order Completed') {
      const p = {
        revenue: text(properties.revenue),
        total: text(properties.total),
        value: text(properties.value),
      };
      tables.order_completed.push({ ...row, ...p });
      seen.tracks.push({ ...t, properties: p });
    } else seen.tracks.push({ ...t, properties: {} });
  }
  for (const i of raw.identifies) {
    const { traits, ...row } = i;
    // at 02:00 UTC, the day before in the Americas: only a view that writes it in UTC keeps the date
    const sent = text(traits.createdAt ?? traits.created_at);
    // a timestamp column holds no year 0 (PostgreSQL): such a trait does not reach the column
    const day = sent && /^\d{4}-\d\d-\d\d/.test(sent) && !sent.startsWith('0000') ? sent.slice(0, 10) : null;
    const flat = { created_at: day && `${day}T02:00:00Z`, plan: text(traits.plan) };
    // a third in the plain columns (top-level traits), a third in context_traits_* only (RudderStack's web
    // SDK), a third in both with other values in context.traits, which the top-level ones win (SPEC 3)
    const shape = seen.identifies.length % 3;
    const context =
      shape === 1
        ? flat
        : shape === 2
          ? { created_at: flat.created_at && '1999-01-01T02:00:00Z', plan: flat.plan && `${flat.plan}-stale` }
          : { created_at: null, plan: null };
    tables.identifies.push({
      ...row,
      ...(shape === 1 ? { created_at: null, plan: null } : flat),
      context_traits_created_at: context.created_at,
      context_traits_plan: context.plan,
    });
    seen.identifies.push({ ...i, traits: flat });
  }
  return { tables, seen };
}

describeEachWarehouse(
  'the models over a Segment warehouse destination, through the documented views',
  ({ tw }) => {
    let wh: Warehouse;
    const raw = generate({ seed: 41, users: 50, start: '2023-11-01', end: '2024-03-25' });
    const { tables, seen } = flatten(raw);

    beforeAll(async () => {
      wh = await tw().open();
      await wh.exec('create schema segment');
      for (const [name, spec] of Object.entries(TABLES)) {
        await wh.exec(createTableSql(wh.dialect, 'segment', spec));
        const rows = tables[name].map((r) => spec.columns.map((col) => (r[col.name] ?? null) as InsertValue));
        if (rows.length) await wh.insertRows('segment', name, spec.columns, rows);
      }
      for (const sql of viewsSql(wh.dialect)) await wh.exec(sql);
      // the session's zone must not move a date (the runner's PostgreSQL sessions are in UTC; DuckDB's
      // follow the machine's)
      if (wh.dialect === 'duckdb') await wh.exec(`set TimeZone = 'America/Los_Angeles'`);
    });
    afterAll(async () => {
      await wh?.close();
    });

    it('the tables hold what the rules need: purchases with revenue in their own table, plan and created_at traits', () => {
      expect(tables.order_completed.length).toBeGreaterThan(20);
      expect(tables.identifies.filter((i) => i.plan !== null).length).toBeGreaterThan(10);
      expect(tables.identifies.filter((i) => i.created_at !== null).length).toBeGreaterThan(5);
      expect(
        tables.identifies.filter((i) => i.plan === null && i.context_traits_plan !== null).length,
      ).toBeGreaterThan(3);
      expect(
        tables.identifies.filter((i) => i.created_at === null && i.context_traits_created_at !== null).length,
      ).toBeGreaterThan(1);
      expect(
        tables.identifies.filter((i) => i.plan !== null && i.context_traits_plan !== null).length,
      ).toBeGreaterThan(3);
      expect(tables.aliases.length).toBeGreaterThan(0);
    });

    it('builds every mart equal to the reference implementation', async () => {
      await build(wh, { vars: { lifecycle__as_of_date: D }, fullRefresh: true });
      const actual = normalise(await readMarts(wh));
      const expected = normalise(computeOracle(seen, D));
      expect(diffUsers(actual, expected)).toEqual([]);
      expect(actual).toEqual(expected);
      // the purchases reached the marts through the per-event table
      expect(actual.user_lifecycle.filter((u) => u.monetary > 0).length).toBeGreaterThan(10);
      expect(actual.user_lifecycle.filter((u) => u.subscription_status !== null).length).toBeGreaterThan(10);
    });

    it('builds with the documented empty views where the destination has no screens or aliases table', async () => {
      // PostgreSQL: the staging views depend on them; the build recreates those
      const cascade = wh.dialect === 'postgres' ? ' cascade' : '';
      await wh.exec(`drop view cdp.screens${cascade}`);
      await wh.exec(`drop view cdp.aliases${cascade}`);
      for (const sql of [...viewsSql('empty-screens'), ...viewsSql('empty-aliases')]) await wh.exec(sql);
      await build(wh, { vars: { lifecycle__as_of_date: D }, fullRefresh: true });
      const actual = normalise(await readMarts(wh));
      const expected = normalise(computeOracle({ ...seen, screens: [], aliases: [] }, D));
      expect(diffUsers(actual, expected)).toEqual([]);
      expect(actual).toEqual(expected);
    });
  },
);
