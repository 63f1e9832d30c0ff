import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { UserError } from '../../src/errors';
import { loadProject } from '../../src/runner/project';
import { UnresolvedYamlTag, parseYaml } from '../../src/util/yaml';

/** What parseYaml throws for `text`, or undefined. */
function refusalOf(text: string): unknown {
  try {
    parseYaml(text);
  } catch (e) {
    return e;
  }
  return undefined;
}

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
    ['a: !!bool OFF', { a: false }],
    ['a: !!bool "oN"', { a: true }],
    ['a: !!float "1"', { a: 1 }],
    ['a: !!null x', { a: null }],
    ['a: [1, !!float 2.5e1]', { a: [1, 25] }],
  ])('reads %j, a standard tag the core schema does not resolve, as PyYAML does', (text, value) => {
    expect(parseYaml(text)).toEqual(value);
    expect(emitted).toEqual([]);
  });

  // PyYAML's construct_yaml_int and construct_yaml_float; the parser read 017 as 17 and refused the others
  it.each([
    ['lifecycle__new_days: !!int 017', 15],
    ['a: !!int -0o17', -15],
    ['a: !!int 0b101', 5],
    ['a: !!int -0x1F', -31],
    ['a: !!int 0_0', 0],
    ['a: !!int -0', 0],
    ['a: !!int 1:30', 90],
    ['a: !!int -1:30', -90],
    ['a: !!int 190:20:30', 685230],
    ['a: !!int " 12 "', 12],
    ['a: !!float inf', Infinity],
    ['a: !!float -Infinity', -Infinity],
    ['a: !!float .inf', Infinity],
    ['a: !!float -.INF', -Infinity],
    ['a: !!float .nan', NaN],
    ['a: !!float NaN', NaN],
    ['a: !!float 1:30', 90],
    ['a: !!float -1:30.5', -90.5],
    ['a: !!float 1E3', 1000],
    ['a: !!float 5.', 5],
    ['a: !!float 012', 12],
    ['a: !!float 1e400', Infinity],
  ])('reads %j as PyYAML does', (text, value) => {
    expect(parseYaml(text)).toEqual({ [text.split(':')[0]]: value });
    expect(emitted).toEqual([]);
  });

  // PyYAML refuses these too: a scalar tag on a list or mapping, or on a value of another type
  it.each([
    ['lifecycle__churn_events: !!int [a, b]', '!!int', 1, 32],
    ['a: !!str [1]', '!!str', 1, 10],
    ['a: !!float {x: 1}', '!!float', 1, 12],
    ['a: !!int abc', '!!int', 1, 10],
    // PyYAML looks the lower-cased text up among yes, no, true, false, on and off (a KeyError otherwise)
    ['a: !!bool y', '!!bool', 1, 11],
    ['a: !!bool N', '!!bool', 1, 11],
    ['a: !!bool " yes"', '!!bool', 1, 11],
    // Python's int() and float() refuse these: 09 and 0:30 are read in base 8, 0X in base 8 too
    ['a: !!int 09', '!!int', 1, 10],
    ['a: !!int 0:30', '!!int', 1, 10],
    ['a: !!int 0X1F', '!!int', 1, 10],
    ['a: !!int 0b', '!!int', 1, 10],
    ['a: !!int 1e3', '!!int', 1, 10],
    ['a: !!int ""', '!!int', 1, 10],
    ['a: !!float 0x10', '!!float', 1, 12],
    ['a: !!float ..inf', '!!float', 1, 12],
    ['a: !!float 1e', '!!float', 1, 12],
    // PyYAML raises for a timestamp it does not match or a day or time out of range
    ['a: !!timestamp x', '!!timestamp', 1, 16],
    ['a: !!timestamp 2023-02-29', '!!timestamp', 1, 16],
    ['a: !!timestamp 2024-03-12 24:00:00', '!!timestamp', 1, 16],
    ['a: !!timestamp 2024-03-12 10:00:00+24:00', '!!timestamp', 1, 16],
    ['a: !!timestamp [2024-03-12]', '!!timestamp', 1, 16],
  ])('refuses %j, a standard tag on a value it cannot take', (text, tag, line, column) => {
    const err = refusalOf(text);
    expect(err).toBeInstanceOf(UnresolvedYamlTag);
    expect((err as UnresolvedYamlTag).sentence('--vars')).toBe(
      `--vars tags a value ${tag} (line ${line}, column ${column}) that is not one: fix the value or remove the tag.`,
    );
  });

  // PyYAML makes a date or datetime of these, which Jinja (so dbt) prints with Python's str(); the parser would
  // make a JS Date of them, which prints as `Tue Mar 12 2024 …`
  it.each([
    ['lifecycle__as_of_date: !!timestamp 2024-03-12', '2024-03-12'],
    ['a: !!timestamp 2024-3-2', '2024-03-02'],
    ['a: !!timestamp "2024-02-29"', '2024-02-29'],
    ['a: !!timestamp 2024-03-12 10:00:00', '2024-03-12 10:00:00'],
    ['a: !!timestamp 2024-03-12t1:02:03.1234567', '2024-03-12 01:02:03.123456'],
    ['a: !!timestamp 2024-03-12 10:00:00.000', '2024-03-12 10:00:00'],
    ['a: !!timestamp 2024-03-12T10:00:00Z', '2024-03-12 10:00:00+00:00'],
    ['a: !!timestamp 2024-03-12 10:00:00.5 +01:30', '2024-03-12 10:00:00.500000+01:30'],
    ['a: !!timestamp 2024-03-12 10:00:00-5', '2024-03-12 10:00:00-05:00'],
    ['a: !!timestamp 2024-03-12 10:00:00-0', '2024-03-12 10:00:00+00:00'],
    ['a: !<tag:yaml.org,2002:timestamp> 2024-03-12', '2024-03-12'],
    // under `%YAML 1.1` the parser resolves an untagged date too
    ['%YAML 1.1\n---\na: 2024-03-12', '2024-03-12'],
  ])('reads %j as the text Python prints for the date PyYAML makes of it', (text, value) => {
    expect(Object.values(parseYaml(text) as object)).toEqual([value]);
    expect(emitted).toEqual([]);
  });

  // PyYAML reads these into bytes, a set or a list of tuples, or, for !!merge on a value, refuses them
  it.each([
    ['a: !!binary aGVsbG8=', '!!binary', 1, 13],
    ['lifecycle__new_days: !!merge x', '!!merge', 1, 30],
    ['a: !!merge {x: 1}', '!!merge', 1, 4],
    ['a: !!set {x, y}', '!!set', 1, 10],
    ['a: !!set [x]', '!!set', 1, 4],
    ['a: !!omap [x: 1, x: 2]', '!!omap', 1, 11],
    ['a: !!pairs [x: 1]', '!!pairs', 1, 12],
    ['%YAML 1.1\n---\na: !!binary aGVsbG8=', '!!binary', 3, 13],
  ])('refuses %j, a YAML type cdp-lifecycle does not support', (text, tag, line, column) => {
    const err = refusalOf(text);
    expect(err).toBeInstanceOf(UnresolvedYamlTag);
    expect((err as UnresolvedYamlTag).sentence('--vars')).toBe(
      `--vars tags a value ${tag} (line ${line}, column ${column}), a YAML type cdp-lifecycle does not support: remove the tag.`,
    );
    expect(emitted).toEqual([]);
  });

  it('merges on a key tagged !!merge, as PyYAML does', () => {
    expect(parseYaml('base: &b {x: 1}\na: {!!merge <<: *b, y: 2}')).toEqual({
      base: { x: 1 },
      a: { x: 1, y: 2 },
    });
  });

  it('applies merge keys (<<) as PyYAML does, so a schema.yml can share column configs through anchors', () => {
    // later keys and the mapping's own win; a quoted '<<' is a key like any other
    expect(
      parseYaml('base: &b {a: 1, b: 2}\nx:\n  <<: *b\n  b: 3\ny: {<<: [*b, {c: 5}], c: 4}\nz: {"<<": *b}'),
    ).toEqual({
      base: { a: 1, b: 2 },
      x: { a: 1, b: 3 },
      y: { a: 1, b: 2, c: 4 },
      z: { '<<': { a: 1, b: 2 } },
    });
    // PyYAML refuses to merge a scalar
    expect(() => parseYaml('x: {<<: 5}')).toThrow(/Merge sources must be maps/);
    // one key merging a sequence: the earlier mapping wins, the mapping's own keys over all, as in PyYAML
    expect(
      parseYaml('a: &a {n: 14, m: 1}\nb: &b {n: 21, k: 2}\ny:\n  <<: [*a, *b]\n  own: 1\n  n: 0'),
    ).toMatchObject({ y: { n: 0, m: 1, k: 2, own: 1 } });
    // several merge keys in one mapping: PyYAML lets a later one win, the parser kept the first's; refused,
    // naming the form both read alike
    for (const text of [
      'a: &a {n: 14}\nb: &b {n: 21}\ny:\n  <<: *a\n  <<: *b',
      'y: {<<: &a {n: 1}, <<: {m: *a}}',
    ]) {
      expect(() => parseYaml(text)).toThrow(
        /^a mapping at line \d+ has more than one merge key \(<<\), .*: merge with one key, the mapping that should win first, as <<: \[\*later, \*earlier\]$/,
      );
    }
    // one anchor shared by 150 columns: the parser's cap of 100 aliases took it for a resource exhaustion attack
    const shared = `x: &c {d: 1}\ncols:\n${Array.from({ length: 150 }, (_, i) => `  - {name: c${i}, <<: *c}`).join('\n')}`;
    expect((parseYaml(shared) as { cols: unknown[] }).cols).toHaveLength(150);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-yaml-merge-'));
    try {
      fs.writeFileSync(path.join(dir, 'dbt_project.yml'), 'name: p\nconfig-version: 2\n');
      fs.mkdirSync(path.join(dir, 'models'));
      fs.writeFileSync(path.join(dir, 'models', 'm.sql'), 'select 1 as id, 2 as other_id\n');
      fs.writeFileSync(
        path.join(dir, 'models', 'schema.yml'),
        [
          'version: 2',
          'x-id: &id {description: An id., data_type: integer, tests: [not_null]}',
          'models:',
          '  - name: m',
          '    columns:',
          '      - name: id',
          '        <<: *id',
          '      - {name: other_id, <<: *id, description: Another id.}',
          '',
        ].join('\n'),
      );
      const project = loadProject(dir);
      expect(project.models.get('m')?.columns).toEqual([
        { name: 'id', description: 'An id.', data_type: 'integer' },
        { name: 'other_id', description: 'Another id.', data_type: 'integer' },
      ]);
      expect(project.tests.map((t) => `${t.name}`).sort()).toEqual([
        expect.stringMatching(/not_null.*m_id/),
        expect.stringMatching(/not_null.*m_other_id/),
      ]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
    expect(emitted).toEqual([]);
  });

  it.each([
    ['lifecycle__churn_events: !foo [a]', '!foo', 1, 26],
    ['!!js/function "x"', '!!js/function', 1, 1],
    ['a: 1\nwarehouse: !custom x', '!custom', 2, 12],
    ['a: !<tag:example.com,2024:x> 1', '!<tag:example.com,2024:x>', 1, 4],
  ])('refuses the unresolved tag in %j, naming it as written and where', (text, tag, line, column) => {
    const err = refusalOf(text);
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
