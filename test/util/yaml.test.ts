import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../src/errors';
import { loadProject } from '../../src/runner/project';
import { UnresolvedYamlTag, parseYaml } from '../../src/util/yaml';

describe('parseYaml', () => {
  // the yaml package reports through process.emitWarning, which prints `(node:…) YAMLWarning` on stderr
  let emitted: unknown[];
  const onWarning = (w: unknown) => emitted.push(w);
  beforeEach(() => {
    emitted = [];
    jest.spyOn(process, 'emitWarning').mockImplementation((w: unknown) => void emitted.push(w));
    process.on('warning', onWarning);
  });
  afterEach(() => {
    jest.restoreAllMocks();
    process.off('warning', onWarning);
  });

  // PyYAML (so dbt) reads these; this parser's core schema does not resolve them, and they are no unknown tag
  it.each([
    ['lifecycle__new_days: !!float 14', { lifecycle__new_days: 14 }],
    ['a: !!int 1_000', { a: 1000 }],
    ['a: !!bool yes', { a: true }],
    ['a: !!bool No', { a: false }],
    ['a: !!float "1"', { a: 1 }],
    ['a: !!null x', { a: null }],
    ['a: [1, !!float 2.5e1]', { a: [1, 25] }],
  ])('reads %j, a standard tag the core schema does not resolve, as PyYAML does', (text, value) => {
    expect(parseYaml(text)).toEqual(value);
    expect(emitted).toEqual([]);
  });

  // PyYAML refuses these too: a scalar tag on a list or mapping, or on a value of another type
  it.each([
    ['lifecycle__churn_events: !!int [a, b]', '!!int', 1, 32],
    ['a: !!str [1]', '!!str', 1, 10],
    ['a: !!float {x: 1}', '!!float', 1, 12],
    ['a: !!int abc', '!!int', 1, 10],
  ])('refuses %j, a standard tag on a value it cannot take', (text, tag, line, column) => {
    let err: unknown;
    try {
      parseYaml(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnresolvedYamlTag);
    expect((err as UnresolvedYamlTag).sentence('--vars')).toBe(
      `--vars tags a value ${tag} (line ${line}, column ${column}) that is not one: fix the value or remove the tag.`,
    );
  });

  it.each([
    ['lifecycle__churn_events: !foo [a]', '!foo', 1, 26],
    ['!!js/function "x"', '!!js/function', 1, 1],
    ['a: 1\nwarehouse: !custom x', '!custom', 2, 12],
    ['a: !<tag:example.com,2024:x> 1', '!<tag:example.com,2024:x>', 1, 4],
  ])('refuses the unresolved tag in %j, naming it as written and where', (text, tag, line, column) => {
    let err: unknown;
    try {
      parseYaml(text);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(UnresolvedYamlTag);
    expect((err as UnresolvedYamlTag).sentence('--vars')).toBe(
      `--vars uses the YAML tag ${tag} (line ${line}, column ${column}), which cdp-lifecycle does not know: remove it.`,
    );
    expect(emitted).toEqual([]);
  });

  it('keeps the tags YAML itself resolves, and its errors', () => {
    expect(parseYaml('a: !!str 1\nb: [x]')).toEqual({ a: '1', b: ['x'] });
    expect(() => parseYaml('a: 1\na: 2', { uniqueKeys: true })).toThrow(/Map keys must be unique/);
    expect(() => parseYaml('a: 1\n---\nb: 2')).toThrow(/multiple documents/);
    // a warning the parser would print and get past is refused as well
    expect(() => parseYaml('%FOO bar\n---\na: 1')).toThrow(/Unknown directive %FOO/);
    expect(emitted).toEqual([]);
  });

  it("refuses a tag in a dbt project's YAML, naming the file", () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-yaml-tag-'));
    try {
      fs.writeFileSync(path.join(dir, 'dbt_project.yml'), 'name: p\nconfig-version: 2\n');
      fs.mkdirSync(path.join(dir, 'models'));
      fs.writeFileSync(path.join(dir, 'models', 'm.sql'), 'select 1 as id\n');
      fs.writeFileSync(
        path.join(dir, 'models', 'schema.yml'),
        'version: 2\nmodels:\n  - name: m\n    description: !md x\n',
      );
      let err: unknown;
      try {
        loadProject(dir);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(UserError);
      expect((err as Error).message).toBe(
        `${path.join(path.basename(dir), 'models', 'schema.yml')} uses the YAML tag !md (line 4, column 18), which cdp-lifecycle does not know: remove it.`,
      );
      expect(emitted).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
