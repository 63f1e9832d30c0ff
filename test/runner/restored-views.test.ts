import * as fs from 'node:fs';
import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels, type ModelEvent } from '../../src/runner';
import type { Warehouse } from '../../src/warehouse';
import { oneSourceProject, tempProject } from './temp-project';

// PostgreSQL drops a view with the table it selects from when that table loses a column the view reads. A
// partial build of the table alone then rebuilds the view after the selected models: it gets its progress
// line too, after theirs. A view that did not exist before the build is left for a build that selects it.
const FILES = oneSourceProject('restore', 'events', {
  't.sql': `{{ config(materialized='table') }}
select id{% if not var('drop_v', false) %}, v{% endif %} from {{ source('raw', 'events') }}`,
  'vw.sql': "{{ config(materialized='view') }}select * from {{ ref('t') }}",
});

describeEachWarehouse(
  'runner views rebuilt after a partial build',
  ({ tw }) => {
    let wh: Warehouse;
    let dir: string;
    beforeAll(async () => {
      dir = tempProject('restore', FILES);
      wh = await tw().open();
      await wh.exec('create schema src');
      await wh.exec('create table src.events (id integer, v text)');
      await wh.exec(`insert into src.events values (1, 'a')`);
    });
    afterAll(async () => {
      await wh.close();
      fs.rmSync(dir, { recursive: true, force: true });
    });

    it('reports each rebuilt view as a model line after the selected ones', async () => {
      const base = { warehouse: wh, projectDir: dir, schema: 'marts', rawSchema: 'src' };
      await buildModels(base);
      const events: ModelEvent[] = [];
      const res = await buildModels({
        ...base,
        select: ['t'],
        vars: { drop_v: true },
        onModel: (e) => events.push(e),
      });
      const ends = events
        .filter((e) => e.phase === 'end')
        .map((e) => [e.name, e.index, e.total, e.result?.status]);
      expect(ends).toEqual([
        ['t', 0, 1, 'success'],
        ['vw', 1, 2, 'success'],
      ]);
      // each announced before it runs, with what it builds, as the selected models are (an interrupted
      // build's run_results.json names the view being restored)
      expect(events.map((e) => [e.phase, e.name, e.planned?.relation])).toEqual([
        ['start', 't', '"marts"."t"'],
        ['end', 't', undefined],
        ['start', 'vw', '"marts"."vw"'],
        ['end', 'vw', undefined],
      ]);
      expect(res.models.map((m) => m.name)).toEqual(['t', 'vw']);
      expect(await wh.query('select * from marts.vw')).toEqual([{ id: 1 }]);
    });

    it('creates no view a partial build left out that did not exist before it', async () => {
      const base = { warehouse: wh, projectDir: dir, schema: 'fresh', rawSchema: 'src' };
      const res = await buildModels({ ...base, select: ['t'] });
      expect(res.models.map((m) => [m.name, m.status])).toEqual([['t', 'success']]);
      const views = await wh.query<{ n: number }>(
        `select count(*)::int as n from information_schema.views where table_schema = 'fresh'`,
      );
      expect(views).toEqual([{ n: 0 }]);
      // excluded by name, on the first build of the schema: still not made
      const again = await buildModels({ ...base, exclude: ['vw'] });
      expect(again.models.map((m) => m.name)).toEqual(['t']);
      expect(
        await wh.query<{ n: number }>(
          `select count(*)::int as n from information_schema.views where table_schema = 'fresh'`,
        ),
      ).toEqual([{ n: 0 }]);
    });
  },
  ['postgres'],
);
