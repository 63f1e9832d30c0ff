/**
 * Upgrading the package: a table stored by an older version lacks the columns a newer version added (633afdc
 * added watermark_cutoff and watermark_rows to int_lifecycle__identity and int_lifecycle__source_days). The
 * models' incremental SQL reads such columns from {{ this }}, so the next run must rebuild those tables in full,
 * with no manual --full-refresh (models/README.md), and give the rows the oracle computes.
 *
 * The older tables are made here by dropping, from every incremental table the package stores, each column its
 * schema.yml declares except the unique key: whatever a future version adds is covered the same way.
 */
import type { Warehouse } from '../../src/warehouse';
import { defaultProjectDir, loadProject } from '../../src/runner/project';
import { describeEachWarehouse } from '../helpers/warehouses';
import { computeOracle, type RawData } from './oracle';
import { merge } from './generate';
import { build, diffUsers, landRaw, normalise, readMarts } from './helpers';

type Raw = Required<RawData>;
const empty = (): Raw => ({ tracks: [], pages: [], screens: [], identifies: [], aliases: [] });

let seq = 0;
function track(user: string | null, anonymous: string | null, day: string, received?: string) {
  const timestamp = `${day}T10:00:00.000Z`;
  return {
    id: `t${++seq}`,
    user_id: user,
    anonymous_id: anonymous,
    event_text: 'Viewed Item',
    timestamp,
    received_at: received ?? timestamp,
    properties: {},
  };
}

describeEachWarehouse('upgrading from tables that lack a declared column', ({ tw }) => {
  let wh: Warehouse;
  const D1 = '2024-03-20';
  const D2 = '2024-03-21';
  const first: Raw = {
    ...empty(),
    tracks: [
      track('u1', null, '2024-03-01'),
      track('u1', null, D1),
      track(null, 'a1', '2024-03-10'),
      track('u2', null, '2024-01-05'),
    ],
    identifies: [
      {
        id: 'i1',
        user_id: 'u2',
        anonymous_id: 'a1',
        timestamp: '2024-03-11T08:00:00.000Z',
        received_at: '2024-03-11T08:00:00.000Z',
        traits: { plan: 'pro' },
      },
    ],
  };
  const recv = `${D2}T12:00:00.000Z`;
  const second: Raw = {
    ...empty(),
    // a late row for an earlier day as well as one on the new D
    tracks: [track('u2', null, '2024-03-15', recv), track('u1', null, D2, recv)],
  };

  beforeAll(async () => {
    wh = await tw().open();
    await landRaw(wh, first);
  });
  afterAll(async () => {
    await wh?.close();
  });

  test('the next run rebuilds each such table in full and equals the oracle', async () => {
    const built = await build(wh, { vars: { lifecycle__as_of_date: D1 }, fullRefresh: true });
    const project = loadProject(defaultProjectDir());
    const incremental = built.models.filter((m) => m.materialized === 'incremental').map((m) => m.name);
    expect(incremental).toContain('int_lifecycle__identity');
    expect(incremental).toContain('int_lifecycle__source_days');
    // A column the store has and schema.yml does not declare would not trigger the rebuild when a later
    // version adds it: every stored column must be declared.
    const undeclared: string[] = [];
    for (const name of incremental) {
      const declared = new Set((project.models.get(name)?.columns ?? []).map((c) => c.name));
      const stored = await wh.query<{ column_name: string }>(
        `select column_name from information_schema.columns where table_schema = 'lifecycle' and table_name = '${name}'`,
      );
      for (const c of stored) if (!declared.has(c.column_name)) undeclared.push(`${name}.${c.column_name}`);
    }
    expect(undeclared).toEqual([]);
    const dropped: string[] = [];
    for (const name of incremental) {
      const node = project.models.get(name);
      const keys = new Set([node?.baseConfig.unique_key, ...(await uniqueKeyOf(name))].flat());
      const cols = (node?.columns ?? []).map((c) => c.name).filter((c) => !keys.has(c));
      // PostgreSQL binds the mart views to these columns: they go too, and the build recreates them
      const cascade = wh.dialect === 'postgres' ? ' cascade' : '';
      for (const c of cols) await wh.exec(`alter table lifecycle.${name} drop column ${c}${cascade}`);
      if (cols.length) dropped.push(name);
    }
    expect(dropped).toEqual(incremental);

    await landRaw(wh, second);
    const res = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    for (const name of incremental) {
      const m = res.models.find((r) => r.name === name);
      expect({ name, incremental: m?.incremental, message: m?.message }).toEqual({
        name,
        incremental: false,
        message: expect.stringMatching(/^rebuilt in full: the stored table lacks /),
      });
    }
    const actual = normalise(await readMarts(wh));
    const expected = normalise(computeOracle(merge(first, second), D2));
    expect(diffUsers(actual, expected)).toEqual([]);
    expect(actual).toEqual(expected);

    // and the run after it is incremental again
    const again = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(again.models.filter((m) => m.incremental).map((m) => m.name)).toEqual(incremental);
  });

  /** The unique_key set in the model's own config() call, which loadProject does not parse. */
  async function uniqueKeyOf(name: string): Promise<string[]> {
    const raw = loadProject(defaultProjectDir()).models.get(name)?.raw ?? '';
    const m = /unique_key\s*=\s*(\[[^\]]*\]|'[^']*')/.exec(raw);
    if (!m) return [];
    return Array.from(m[1].matchAll(/'([^']*)'/g), (x) => x[1]);
  }
});
