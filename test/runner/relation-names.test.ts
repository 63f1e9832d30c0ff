import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { compileModels } from '../../src/runner';
import { UserError } from '../../src/errors';
import { tempProject } from './temp-project';

/** A model whose schema or alias config makes a name no warehouse takes: the error names the model and why. */
describe('a model configured into a name that cannot be', () => {
  const compileOne = async (model: string): Promise<unknown> => {
    const dir = tempProject('names', {
      'dbt_project.yml': 'name: names\nconfig-version: 2\nmodel-paths: ["models"]\n',
      'models/odd.sql': `${model}\nselect 1 as x\n`,
    });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-names-out-'));
    try {
      await compileModels({
        dialect: 'postgres',
        projectDir: dir,
        schema: 'an',
        rawSchema: 'cdp',
        outDir: out,
      });
      return undefined;
    } catch (err) {
      return err;
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    }
  };

  it('names the model, its file and the config that made the name', async () => {
    const schema = await compileOne("{{ config(schema='my-schema') }}");
    expect(schema).toBeInstanceOf(UserError);
    expect((schema as Error).message.replace(/\(cdp-runner-names-\w+\//, '(')).toBe(
      'The model odd (models/odd.sql) builds into a schema that cannot be: "an_my-schema" is not a valid SQL identifier: use letters, digits and underscores only, in its schema config (or generate_schema_name).',
    );
    const alias = await compileOne("{{ config(alias='Weird Name') }}");
    expect((alias as Error).message.replace(/\(cdp-runner-names-\w+\//, '(')).toBe(
      'The model odd (models/odd.sql) builds into a name that cannot be: "Weird Name" is not a valid SQL identifier: use letters, digits and underscores only, in its alias config.',
    );
  });

  it('says a name is too long rather than badly spelt', async () => {
    const long = 'x'.repeat(64);
    const err = await compileOne(`{{ config(alias='${long}') }}`);
    expect((err as Error).message.replace(/\(cdp-runner-names-\w+\//, '(')).toBe(
      `The model odd (models/odd.sql) builds into a name that cannot be: "${long}" is 64 characters long, more than the 63 PostgreSQL keeps: shorten it, in its alias config.`,
    );
  });
});

describe('a model path that is not a folder', () => {
  it('is named, instead of building nothing without a word', async () => {
    const dir = tempProject('paths', {
      'dbt_project.yml': 'name: paths\nconfig-version: 2\nmodel-paths: ["modles"]\n',
      'models/a.sql': 'select 1 as x\n',
    });
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'cdp-paths-out-'));
    try {
      await expect(
        compileModels({ dialect: 'duckdb', projectDir: dir, schema: 'an', rawSchema: 'cdp', outDir: out }),
      ).rejects.toThrow(
        /dbt_project\.yml names the model path "modles", which is not a folder of the project: fix model-paths\.$/,
      );
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
      fs.rmSync(out, { recursive: true, force: true });
    }
  });
});
