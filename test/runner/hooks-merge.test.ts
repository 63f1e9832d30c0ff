import { describeEachWarehouse } from '../helpers/warehouses';
import { buildModels } from '../../src/runner';
import { oneSourceProject, projectSuite } from './temp-project';

// dbt appends hooks from every level instead of letting the nearest replace the others: the project folder's,
// then schema.yml's, then the model's own config(), under either spelling (post-hook or post_hook).
const hook = (who: string) =>
  `insert into src.audit select '${who}', (select count(*) from src.audit), '{{ this.identifier }}'`;
const FILES = {
  ...oneSourceProject('hooks', 'events', {
    'audited.sql': `{{ config(materialized='incremental', unique_key='id', post_hook="${hook('model')}") }}
select id from {{ source('raw', 'events') }}`,
    'schema.yml': `version: 2
models:
  - name: audited
    config:
      post_hook: "${hook('yml')}"
`,
  }),
  'dbt_project.yml': `name: hooks
config-version: 2
model-paths: ['models']
models:
  hooks:
    +post-hook: "${hook('project')}"
`,
};

describeEachWarehouse('runner hooks from every config level', ({ tw }) => {
  const suite = projectSuite('hooks', FILES, () => tw().open(), [
    'create table src.events (id integer)',
    'insert into src.events values (1)',
    'create table src.audit (who varchar(20), seq integer, model varchar(40))',
  ]);

  it('runs the project, schema.yml and model hooks, in that order, once each per build', async () => {
    const base = suite();
    expect((await buildModels(base)).success).toBe(true);
    expect((await buildModels(base)).models[0]).toMatchObject({ status: 'success', incremental: true });
    expect(await base.warehouse.query('select who, seq, model from src.audit order by seq')).toEqual([
      { who: 'project', seq: 0, model: 'audited' },
      { who: 'yml', seq: 1, model: 'audited' },
      { who: 'model', seq: 2, model: 'audited' },
      { who: 'project', seq: 3, model: 'audited' },
      { who: 'yml', seq: 4, model: 'audited' },
      { who: 'model', seq: 5, model: 'audited' },
    ]);
  });
});

describeEachWarehouse(
  'runner hook with a Jinja error',
  ({ tw }) => {
    const suite = projectSuite(
      'hooks-bad',
      oneSourceProject('hooksbad', 'events', {
        'm.sql': `{{ config(materialized='table', post_hook="select {{ nope( }}") }}
select 1 as x`,
      }),
      () => tw().open(),
      ['create table src.events (id integer)'],
    );

    it('names the model, its file, the hook and the line', async () => {
      const err = await buildModels(suite()).catch((e: unknown) => e);
      expect((err as Error).message).toMatch(
        /^model m \(\S+m\.sql\) failed to render its post-hook: unexpected token: \}\} \(line 1\)$/,
      );
    });
  },
  ['duckdb'],
);
