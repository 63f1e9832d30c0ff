import { outputWidth } from '../../src/cli/output';

describe('outputWidth', () => {
  const write = () => true;
  it("takes a terminal's own width before COLUMNS", () => {
    expect(outputWidth({ write, isTTY: true, columns: 132 }, { COLUMNS: '80' })).toBe(132);
  });
  it('takes an exported COLUMNS off a terminal (a pipe into less, a CI log)', () => {
    expect(outputWidth({ write }, { COLUMNS: '100' })).toBe(100);
  });
  it('wraps nothing in a pipe without COLUMNS, or with one that is not a positive whole number', () => {
    for (const COLUMNS of [undefined, '', '0', '-5', 'wide', '80.5']) {
      expect(outputWidth({ write }, { COLUMNS })).toBeUndefined();
    }
  });
});
