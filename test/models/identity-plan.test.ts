/**
 * The alias hop of int_lifecycle__identity on PostgreSQL: its planner estimated the latest alias of each id (a
 * row number filtered twice, by the dedup and by the pick) at a single row and joined the hop as a nested loop,
 * rescanning every alias for every anonymous id. A full build on 60k demo users took a minute in that one model.
 * The plan is asserted here, not a time: the nested loop shows at any size.
 */
import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { compileModels, defaultProjectDir } from '../../src/runner';
import type { AliasRow, IdentifyRow } from './oracle';
import { build, landRaw } from './helpers';

const D = '2024-03-01';
const AT = '2024-02-20T10:00:00.000Z';

describeEachWarehouse(
  'the alias hop of the identity model',
  ({ tw }) => {
    it('is joined by hash, not by a nested loop over every alias', async () => {
      const wh = await tw().open();
      const out = fs.mkdtempSync('/tmp/cdpl-identity-plan-');
      try {
        const identifies: IdentifyRow[] = Array.from({ length: 2000 }, (_, i) => ({
          id: `i-${i}`,
          user_id: `u-${i}`,
          anonymous_id: `a-${i}`,
          timestamp: AT,
          received_at: AT,
          traits: {},
        }));
        const aliases: AliasRow[] = Array.from({ length: 1000 }, (_, i) => ({
          id: `al-${i}`,
          previous_id: `u-${i}`,
          user_id: `v-${i}`,
          timestamp: AT,
          received_at: AT,
        }));
        await landRaw(wh, { identifies, aliases }, 'cdp_plan');
        await build(wh, { schema: 'lc_plan', rawSchema: 'cdp_plan', vars: { lifecycle__as_of_date: D } });
        const compiled = await compileModels({
          dialect: 'postgres',
          projectDir: defaultProjectDir(),
          schema: 'lc_plan',
          rawSchema: 'cdp_plan',
          outDir: out,
          vars: { lifecycle__as_of_date: D },
        });
        const identity = compiled.models.find((m) => m.name === 'int_lifecycle__identity');
        expect(identity).toBeDefined();
        // statistics, as autovacuum keeps them on a live warehouse
        await wh.exec('analyze');
        const plan = await wh.query<{ 'QUERY PLAN': string }>(`explain ${identity?.sql ?? ''}`);
        const lines = plan.map((r) => r['QUERY PLAN']);
        expect(lines.some((l) => /Hash Left Join/.test(l))).toBe(true);
        expect(lines.filter((l) => /Nested Loop/.test(l))).toEqual([]);
      } finally {
        fs.rmSync(out, { recursive: true, force: true });
        await wh.close();
      }
    }, 120000);
  },
  ['postgres'],
);
