import { Output, outputWidth, wantsColor } from '../../src/cli/output';

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

describe('wantsColor', () => {
  const write = () => true;
  const terminal = { write, isTTY: true, hasColors: () => true };
  it('colours a terminal that wants colour, never a plain pipe', () => {
    expect(wantsColor(terminal, {})).toBe(true);
    expect(wantsColor({ write }, {})).toBe(false);
    expect(wantsColor({ ...terminal, hasColors: () => false }, {})).toBe(false);
  });
  it('follows FORCE_COLOR anywhere: on for a pipe, off for a terminal', () => {
    expect(wantsColor({ write }, { FORCE_COLOR: '1' })).toBe(true);
    expect(wantsColor({ write }, { FORCE_COLOR: 'true' })).toBe(true);
    expect(wantsColor(terminal, { FORCE_COLOR: '0' })).toBe(false);
    expect(wantsColor(terminal, { FORCE_COLOR: 'false' })).toBe(false);
    // as Node reads it: an empty value is on, an unknown one off
    expect(wantsColor({ write }, { FORCE_COLOR: '' })).toBe(true);
    expect(wantsColor(terminal, { FORCE_COLOR: 'yes' })).toBe(false);
  });
});

describe('Output for log records', () => {
  it('stays plain under FORCE_COLOR, so that an error line keeps its prefix', () => {
    const previous = process.env.FORCE_COLOR;
    process.env.FORCE_COLOR = '1';
    try {
      let text = '';
      const stream = { write: (c: string | Uint8Array) => ((text += String(c)), true) };
      new Output(false, stream, stream, false).error('sync failed');
      expect(text).toBe('error: sync failed\n');
      text = '';
      new Output(false, stream, stream).error('sync failed');
      expect(text).toMatch(/\u001b\[31merror:/);
    } finally {
      if (previous === undefined) delete process.env.FORCE_COLOR;
      else process.env.FORCE_COLOR = previous;
    }
  });
});

describe('the running line', () => {
  const capture = (isTTY: boolean, columns = 40) => {
    const writes: string[] = [];
    const stream = { write: (t: string) => writes.push(t) > 0, isTTY, columns };
    return { writes, out: new Output(false, stream, stream, false) };
  };
  it('shows what runs on a terminal, one screen line, cleared before the next output', () => {
    const { writes, out } = capture(true);
    out.running('  1 of 2 running a_model …');
    out.running(`  2 of 2 running ${'x'.repeat(60)} …`);
    out.print('  2 of 2 OK');
    out.endRunning();
    expect(writes).toEqual([
      '\r\u001b[2K  1 of 2 running a_model …',
      `\r\u001b[2K  2 of 2 running ${'x'.repeat(21)}…`,
      '\r\u001b[2K',
      '  2 of 2 OK\n',
    ]);
  });
  it('writes nothing to a log or a pipe', () => {
    const { writes, out } = capture(false);
    out.running('  1 of 2 running a_model …');
    out.warn('careful');
    expect(writes).toEqual(['warning: careful\n']);
  });
});
