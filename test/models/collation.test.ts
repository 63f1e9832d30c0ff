/**
 * Ties broken on text (SPEC 4.2 "by timestamp, then received_at, then id"; SPEC 3 dedup between copies received
 * at the same instant; SPEC 5 the plan's "latest by timestamp, received_at, id") compare the text byte by byte,
 * as DuckDB does, also in a PostgreSQL database whose default collation is a language's (ICU en-US here; a
 * libc en_US.UTF-8 database orders the same way): there 'a-1' sorts before 'Z-1', and picking by that order
 * gave other users and plans than DuckDB. Every expectation below follows from byte order: 'Z' (0x5A) < 'a'
 * (0x61), 'Y' (0x59) < 'b' (0x62).
 */
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { openWarehouse, type Warehouse } from '../../src/warehouse';
import { pgAdmin, pgDatabaseUrl, pgEnabled } from '../helpers/warehouses';
import type { AliasRow, IdentifyRow, TrackRow } from './oracle';
import { build, landRaw } from './helpers';

const D = '2024-03-01';
const at = (day: string) => `${day}T00:00:00.000Z`;
const track = (id: string, user: string | null, anonymous: string | null, day: string): TrackRow => ({
  id,
  user_id: user,
  anonymous_id: anonymous,
  event_text: 'Viewed Item',
  timestamp: at(day),
  received_at: at(day),
  properties: {},
});
const identify = (
  id: string,
  user: string,
  anonymous: string | null,
  traits: Record<string, unknown> = {},
): IdentifyRow => ({
  id,
  user_id: user,
  anonymous_id: anonymous,
  timestamp: at('2024-02-01'),
  received_at: at('2024-02-01'),
  traits,
});
const alias = (id: string, previous: string, user: string): AliasRow => ({
  id,
  previous_id: previous,
  user_id: user,
  timestamp: at('2024-02-01'),
  received_at: at('2024-02-01'),
});

const raw = {
  tracks: [
    // anon1 was identified as alice (id Z-1) and bob (id a-1) at the same instant: the greater id, a-1, is latest
    track('t1', null, 'anon1', '2024-02-25'),
    // two copies of one id received at the same instant: the first by source, 'u:Zed' < 'u:amy'
    track('dup-x', 'Zed', null, '2024-02-20'),
    track('dup-x', 'amy', null, '2024-02-20'),
    // p1's alias, landed twice with other users: the copy with the first user_id, Ymir, stays
    track('t2', null, 'p1', '2024-02-21'),
    // p2 aliased to Yuri (id Z-4) and bella (id a-4) at the same instant: a-4 is latest
    track('t3', null, 'p2', '2024-02-22'),
    // anon3's identify, landed twice with other users: the copy with the first user_id, Yves, stays
    track('t4', null, 'anon3', '2024-02-23'),
  ],
  identifies: [
    identify('Z-1', 'alice', 'anon1'),
    identify('a-1', 'bob', 'anon1'),
    // carol's plan from two identifies at the same instant: the one with id a-2
    identify('Z-2', 'carol', null, { plan: 'from-Z' }),
    identify('a-2', 'carol', null, { plan: 'from-a' }),
    // dave's plan from his own identify (a-3) and from the id aliased to him (Z-3), at the same instant: a-3
    identify('Z-3', 'dave_old', null, { plan: 'from-Z' }),
    identify('a-3', 'dave', null, { plan: 'from-a' }),
    identify('dupi', 'Yves', 'anon3'),
    identify('dupi', 'beth', 'anon3'),
  ],
  aliases: [
    alias('dupa', 'p1', 'Ymir'),
    alias('dupa', 'p1', 'bert'),
    alias('Z-4', 'p2', 'Yuri'),
    alias('a-4', 'p2', 'bella'),
    alias('al-dave', 'dave_old', 'dave'),
  ],
};

interface Row {
  user_id: string;
  last_active_date: string | null;
  subscription_status: string | null;
}

async function picks(wh: Warehouse): Promise<Map<string, Row>> {
  await landRaw(wh, raw);
  await build(wh, { vars: { lifecycle__as_of_date: D } });
  const rows = await wh.query<{
    user_id: string;
    last_active_date: unknown;
    subscription_status: string | null;
  }>(`select user_id, last_active_date, subscription_status from lifecycle.user_lifecycle`);
  return new Map(
    rows.map((r) => [
      r.user_id,
      {
        user_id: r.user_id,
        last_active_date:
          r.last_active_date == null
            ? null
            : r.last_active_date instanceof Date
              ? r.last_active_date.toISOString().slice(0, 10)
              : String(r.last_active_date).slice(0, 10),
        subscription_status: r.subscription_status,
      },
    ]),
  );
}

function expectBytewisePicks(users: Map<string, Row>): void {
  // identify tie on id: anon1's activity is bob's, not alice's
  expect(users.get('bob')?.last_active_date).toBe('2024-02-25');
  expect(users.get('alice')?.last_active_date).toBeNull();
  // plan ties on id, within one source and across two sources of one user
  expect(users.get('carol')?.subscription_status).toBe('from-a');
  expect(users.get('dave')?.subscription_status).toBe('from-a');
  // dedup ties on the source / user_id
  expect(users.get('Zed')?.last_active_date).toBe('2024-02-20');
  expect(users.has('amy')).toBe(false);
  expect(users.get('Ymir')?.last_active_date).toBe('2024-02-21');
  expect(users.has('bert')).toBe(false);
  expect(users.get('Yves')?.last_active_date).toBe('2024-02-23');
  expect(users.has('beth')).toBe(false);
  // alias tie on id
  expect(users.get('bella')?.last_active_date).toBe('2024-02-22');
  expect(users.has('Yuri')).toBe(false);
}

describe('text tie-breaks compare bytes [duckdb]', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-collation-'));
  afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));
  test('identifies, aliases, plans and duplicate copies pick by byte order', async () => {
    const wh = await openWarehouse(`duckdb://${path.join(dir, 'w.duckdb')}`);
    try {
      expectBytewisePicks(await picks(wh));
    } finally {
      await wh.close();
    }
  }, 120000);
});

(pgEnabled() ? describe : describe.skip)(
  'text tie-breaks compare bytes [postgres, ICU en-US database]',
  () => {
    const db = `cdpl_collation_${process.pid}_${randomBytes(3).toString('hex')}`;
    beforeAll(async () => {
      await pgAdmin(
        `create database ${db} template template0 locale_provider icu icu_locale 'en-US' locale 'C.UTF-8'`,
      );
    });
    afterAll(async () => {
      await pgAdmin(`drop database if exists ${db} with (force)`);
    });
    test('the database sorts text by language, and the models still pick by byte order', async () => {
      const wh = await openWarehouse(pgDatabaseUrl(db));
      try {
        // the premise: this database's own order puts 'a-1' first
        const [{ first }] = await wh.query<{ first: string }>(
          `select min(x) as first from (values ('Z-1'), ('a-1')) as v(x)`,
        );
        expect(first).toBe('a-1');
        expectBytewisePicks(await picks(wh));
      } finally {
        await wh.close();
      }
    }, 120000);
  },
);
