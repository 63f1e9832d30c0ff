/**
 * Upgrading the package: a table stored by an older version lacks the columns a newer version added (633afdc
 * added watermark_cutoff and watermark_rows to int_lifecycle__identity and int_lifecycle__source_days). The
 * models' incremental SQL reads such columns from {{ this }}, so the next run must rebuild those tables in full,
 * with no manual --full-refresh (models/README.md), and give the rows the oracle computes.
 *
 * The older tables are made here by dropping, from the incremental tables the package stores, each column their
 * schema.yml declares except the unique key: whatever a future version adds is covered the same way. One table at
 * a time too: the models downstream of a table rebuilt in full must not stay incremental, since they find
 * what changed upstream from the rows the upstream models rewrote (a remapped anonymous id here).
 */
import type { Warehouse } from '../../src/warehouse';
import { defaultProjectDir, loadProject } from '../../src/runner/project';
import { describeEachWarehouse } from '../helpers/warehouses';
import { merge } from './generate';
import { build, emptyRaw as empty, expectOracle, landRaw, viewedItem as track, type Raw } from './helpers';

function identify(
  id: string,
  user: string,
  anonymous: string,
  timestamp: string,
  traits: Record<string, unknown> = {},
) {
  return { id, user_id: user, anonymous_id: anonymous, timestamp, received_at: timestamp, traits };
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
    identifies: [identify('i1', 'u2', 'a1', '2024-03-11T08:00:00.000Z', { plan: 'pro' })],
  };
  const recv = `${D2}T12:00:00.000Z`;
  const second: Raw = {
    ...empty(),
    // a late row for an earlier day as well as one on the new D
    tracks: [track('u2', null, '2024-03-15', recv), track('u1', null, D2, recv)],
    // a1's history moves from u2 to u3
    identifies: [{ ...identify('i2', 'u3', 'a1', `${D2}T09:00:00.000Z`), received_at: recv }],
  };
  const project = loadProject(defaultProjectDir());
  let incremental: string[] = [];

  beforeEach(async () => {
    wh = await tw().open();
    await wh.exec('drop schema if exists lifecycle cascade');
    await wh.exec('drop schema if exists cdp cascade');
    await landRaw(wh, first);
    const built = await build(wh, { vars: { lifecycle__as_of_date: D1 }, fullRefresh: true });
    incremental = built.models.filter((m) => m.materialized === 'incremental').map((m) => m.name);
  });
  afterEach(async () => {
    await wh?.close();
  });

  /** Drops every declared column but the key from `name`, as a table from an older version would lack them. */
  async function makeOld(name: string): Promise<void> {
    const node = project.models.get(name);
    const keys = new Set(uniqueKeyOf(name));
    const cols = (node?.columns ?? []).map((c) => c.name).filter((c) => !keys.has(c));
    expect(cols.length).toBeGreaterThan(0);
    // PostgreSQL binds the mart views to these columns: they go too, and the build recreates them
    const cascade = wh.dialect === 'postgres' ? ' cascade' : '';
    for (const c of cols) await wh.exec(`alter table lifecycle.${name} drop column ${c}${cascade}`);
  }

  test('every column a stored incremental table has is declared in schema.yml', async () => {
    expect(incremental).toContain('int_lifecycle__identity');
    expect(incremental).toContain('int_lifecycle__source_days');
    // A column the store has and schema.yml does not declare would not trigger the rebuild when a later
    // version adds it.
    const undeclared: string[] = [];
    for (const name of incremental) {
      const declared = new Set((project.models.get(name)?.columns ?? []).map((c) => c.name));
      const stored = await wh.query<{ column_name: string }>(
        `select column_name from information_schema.columns where table_schema = 'lifecycle' and table_name = '${name}'`,
      );
      for (const c of stored) if (!declared.has(c.column_name)) undeclared.push(`${name}.${c.column_name}`);
    }
    expect(undeclared).toEqual([]);
  });

  test('when every table is older, the next run rebuilds each in full and equals the oracle', async () => {
    for (const name of incremental) await makeOld(name);
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
    await expectOracle(wh, merge(first, second), D2);
    // and the run after it is incremental again
    const again = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(again.models.filter((m) => m.incremental).map((m) => m.name)).toEqual(incremental);
  });

  test.each([
    'int_lifecycle__identity',
    'int_lifecycle__source_days',
    'int_lifecycle__user_days',
    'int_lifecycle__user_facts',
    'int_lifecycle__status_runs',
    'int_lifecycle__user_state',
    'int_lifecycle__status_daily',
  ])('when only %s is older, it and the models downstream of it are rebuilt in full', async (old) => {
    await makeOld(old);
    await landRaw(wh, second);
    const res = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    const full = res.models.filter((m) => m.materialized === 'incremental' && !m.incremental);
    expect(full[0]).toMatchObject({
      name: old,
      message: expect.stringMatching(/^rebuilt in full: the stored table lacks /),
    });
    for (const m of full.slice(1))
      expect(m.message).toBe(`rebuilt in full: ${old} was rebuilt in full upstream`);
    // the models not downstream of it stay incremental
    expect(res.models.find((m) => m.name === 'int_lifecycle__builds')?.incremental).toBe(true);
    await expectOracle(wh, merge(first, second), D2);
  });

  test('a dropped table is built again, and the models downstream of it in full', async () => {
    await wh.exec(
      `drop table lifecycle.int_lifecycle__identity${wh.dialect === 'postgres' ? ' cascade' : ''}`,
    );
    await landRaw(wh, second);
    const res = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(res.models.find((m) => m.name === 'int_lifecycle__user_days')?.message).toBe(
      'rebuilt in full: int_lifecycle__identity was rebuilt in full upstream',
    );
    await expectOracle(wh, merge(first, second), D2);
  });

  test('a full refresh of one model rebuilds the incremental models it left out at their next build', async () => {
    await landRaw(wh, second);
    const res = await build(wh, {
      vars: { lifecycle__as_of_date: D2 },
      fullRefresh: true,
      select: ['int_lifecycle__identity'],
    });
    const line = res.models.find((m) => m.name === 'int_lifecycle__identity')?.message ?? '';
    expect(line).toMatch(/^rebuilt in full; the incremental models downstream of it not in this build \(/);
    expect(line).toContain('int_lifecycle__user_days');
    expect(line).toMatch(/will be rebuilt in full when they are next built$/);
    // the next complete build, incremental otherwise, rebuilds them
    const next = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(next.models.find((m) => m.name === 'int_lifecycle__source_days')?.incremental).toBe(true);
    expect(next.models.find((m) => m.name === 'int_lifecycle__user_days')).toMatchObject({
      incremental: false,
      message: 'rebuilt in full: int_lifecycle__identity was rebuilt in full by an earlier build without it',
    });
    await expectOracle(wh, merge(first, second), D2);
    // once
    const after = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(after.models.filter((m) => m.materialized === 'incremental' && !m.incremental)).toEqual([]);
  });

  test('a dropped table built again by a partial build queues the incremental models it left out', async () => {
    await wh.exec(
      `drop table lifecycle.int_lifecycle__identity${wh.dialect === 'postgres' ? ' cascade' : ''}`,
    );
    await landRaw(wh, second);
    // not a full refresh: the table is missing, so it is built in full anyway
    const res = await build(wh, { vars: { lifecycle__as_of_date: D2 }, select: ['int_lifecycle__identity'] });
    const line = res.models.find((m) => m.name === 'int_lifecycle__identity')?.message ?? '';
    expect(line).toContain('int_lifecycle__user_days');
    expect(line).toMatch(/will be rebuilt in full when they are next built$/);
    const next = await build(wh, { vars: { lifecycle__as_of_date: D2 } });
    expect(next.models.find((m) => m.name === 'int_lifecycle__user_days')).toMatchObject({
      incremental: false,
      message: 'rebuilt in full: int_lifecycle__identity was rebuilt in full by an earlier build without it',
    });
    await expectOracle(wh, merge(first, second), D2);
  });

  test('a first build of one model (and what it reads) on an empty schema queues nothing', async () => {
    await wh.exec('drop schema lifecycle cascade');
    const res = await build(wh, {
      vars: { lifecycle__as_of_date: D1 },
      select: ['+int_lifecycle__identity'],
    });
    expect(res.models.find((m) => m.name === 'int_lifecycle__identity')?.message).toBeUndefined();
    const next = await build(wh, { vars: { lifecycle__as_of_date: D1 } });
    expect(next.models.filter((m) => /earlier build/.test(m.message ?? ''))).toEqual([]);
  });

  /** The unique_key set in the model's own config() call, which loadProject does not parse. */
  function uniqueKeyOf(name: string): string[] {
    const raw = project.models.get(name)?.raw ?? '';
    const m = /unique_key\s*=\s*(\[[^\]]*\]|'[^']*')/.exec(raw);
    if (!m) return [];
    return Array.from(m[1].matchAll(/'([^']*)'/g), (x) => x[1]);
  }
});
