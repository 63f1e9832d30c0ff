import { formatTerminalReport, renderTerminalReport, type ReportData } from '../../src/report';
import { NO_PURCHASES_NOTE, rfmTieNote, STATUS_MEANING } from '../../src/report/data';
import { UserError } from '../../src/errors';
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse, pgEnabled } from '../helpers/warehouses';
import { createFixtureMarts } from './fixture';

/** Reports rendered per warehouse, to check DuckDB and PostgreSQL print the very same text. */
const rendered = new Map<string, string>();

describeEachWarehouse('terminal report', ({ kind, tw }) => {
  let wh: Warehouse;
  let text: string;
  beforeAll(async () => {
    wh = await tw().open();
    await createFixtureMarts(wh);
    text = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle' });
    rendered.set(kind, text);
  });
  afterAll(async () => wh.close());

  const line = (start: RegExp) => {
    const found = text.split('\n').find((l) => start.test(l));
    if (found === undefined) throw new Error(`no line matching ${start} in:\n${text}`);
    return found.trim().split(/\s{2,}/);
  };

  it('titles the report with the as-of date and the number of users', () => {
    expect(text.split('\n').slice(0, 2)).toEqual([
      'Lifecycle report — as of 2026-03-31',
      '28 users in lifecycle.user_lifecycle',
    ]);
  });

  it('lists every status with its count, share and change over 7 days', () => {
    // status, users, share of 28, change vs 2026-03-24, meaning
    expect(line(/^ {2}new /)).toEqual(['new', '3', '10.7%', '−1', 'just arrived (first seen this week)']);
    expect(line(/^ {2}active /).slice(0, 4)).toEqual(['active', '5', '17.9%', '−1']);
    expect(line(/^ {2}power /).slice(0, 4)).toEqual(['power', '2', '7.1%', '±0']);
    // No resurrected row a week ago in status_daily (only non-zero rows are stored): 0 → 1.
    expect(line(/^ {2}resurrected /).slice(0, 4)).toEqual(['resurrected', '1', '3.6%', '+1']);
    expect(line(/^ {2}at_risk /).slice(0, 4)).toEqual(['at_risk', '4', '14.3%', '+1']);
    expect(line(/^ {2}dormant /).slice(0, 4)).toEqual(['dormant', '6', '21.4%', '+1']);
    expect(line(/^ {2}churned /).slice(0, 4)).toEqual(['churned', '7', '25.0%', '+2']);
  });

  it('ranks status changes of the last 30 days, with the last 7 days beside them', () => {
    const start = text.indexOf('Top status changes');
    const rows = text
      .slice(start)
      .split('\n')
      .slice(2, 8)
      .map((l) => l.trim().split(/\s{2,}/));
    expect(rows).toEqual([
      ['active → at_risk', '3', '5'],
      ['at_risk → dormant', '1', '4'],
      ['(first status) → new', '3', '3'],
      ['new → active', '2', '2'],
      ['dormant → churned', '0', '2'],
      ['dormant → resurrected', '1', '1'],
    ]);
    // 2026-03-01 is 30 days before D and 2026-04-01 after it: neither counts.
    expect(text).not.toMatch(/churned → resurrected|active → power/);
  });

  it('prints the latest growth-accounting line', () => {
    expect(text).toContain('Growth accounting on 2026-03-31');
    expect(text).toContain('DAU 10 · WAU 15 · MAU 19 · DAU/MAU 52.6%');
    expect(text).toContain('CURR 75.0%');
    expect(text).toContain("Today's active users: 2 new · 6 current · 1 reactivated · 1 resurrected");
  });

  it('draws the RFM grid (R5 on top) and the segment table', () => {
    expect(text).toContain('RFM value segments — 8 customers with a purchase in the RFM window');
    expect(line(/^ {2}R5 /).slice(0, 6)).toEqual(['R5', '1 NC', '· PL', '· PL', '1 CH', '1 CH']);
    expect(line(/^ {2}R2 /)).toEqual(['R2', '· HI', '· HI', '· AR', '· AR', '1 CL']);
    expect(line(/^ {2}R1 /)).toEqual(['R1', '1 HI', '1 HI', '· AR', '· AR', '· CL']);
    expect(line(/^ {2}CH /)).toEqual(['CH Champions', '5', '4-5', '2', '25.0%', '800.00']);
    expect(line(/^ {2}CL /)).toEqual(["CL Can't lose them", '1-2', '5', '1', '12.5%', '700.50']);
    expect(line(/^ {2}HI /)).toEqual(['HI Hibernating', '1-2', '1-2', '2', '25.0%', '45.25']);
    expect(line(/^ {2}LO /)).toEqual(['LO Loyal', '3-4', '4-5', '0', '0.0%', '0.00']);
  });

  it('is plain text unless colour is asked for', async () => {
    expect(text).not.toContain('\u001b[');
    const coloured = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle', color: true });
    expect(coloured).toContain('\u001b[31mchurned'); // churned in red
    // Same words once the escape codes are stripped.
    expect(coloured.replace(/\u001b\[[0-9;]*m/g, '')).toBe(text);
  });

  it('says to build the models when they are missing, naming the schema', async () => {
    await expect(renderTerminalReport({ warehouse: wh, schema: 'nowhere' })).rejects.toThrow(UserError);
    await expect(renderTerminalReport({ warehouse: wh, schema: 'nowhere' })).rejects.toThrow(
      /nowhere\.user_lifecycle does not exist .*run `cdp-lifecycle build` first/,
    );
  });

  it('refuses a schema name that is not a plain identifier', async () => {
    await expect(
      renderTerminalReport({ warehouse: wh, schema: 'x"; drop schema lifecycle; --' }),
    ).rejects.toThrow(/not a valid SQL identifier/);
    expect(await wh.tableExists('lifecycle', 'user_lifecycle')).toBe(true);
  });

  it('explains an empty model instead of printing zeros', async () => {
    await createFixtureMarts(wh, 'empty_marts');
    for (const t of ['user_lifecycle', 'status_daily', 'status_transitions', 'growth_accounting_daily']) {
      await wh.exec(`delete from empty_marts.${t}`);
    }
    await expect(renderTerminalReport({ warehouse: wh, schema: 'empty_marts' })).rejects.toThrow(
      /models in empty_marts are empty: land some events/,
    );
  });
});

describe('terminal report across warehouses', () => {
  it('prints the same text on DuckDB and PostgreSQL', () => {
    // Runs after both suites above (jest runs describe blocks in order within a file).
    // PostgreSQL is skipped only outside CI when it is unreachable (the global setup warns).
    expect(rendered.size).toBe(pgEnabled() ? 2 : 1);
    if (pgEnabled()) expect(rendered.get('postgres')).toBe(rendered.get('duckdb'));
  });
});

/** Report data written by hand, for what the fixture marts do not reach: an empty report plus `parts`. */
const reportData = (parts: Partial<ReportData>): ReportData => ({
  schema: 'lifecycle',
  asOfDate: '2026-03-31',
  statuses: [],
  totalUsers: 0,
  transitions: [],
  statusDaily: [],
  growthDaily: [],
  historyCut: null,
  growthLeadIn: [],
  rfm: [],
  purchasers: 0,
  meanings: { ...STATUS_MEANING },
  growthWindows: { wauDays: 7, mauDays: 30 },
  ...parts,
});

describe('rfmTieNote', () => {
  const data = (fs: number[]): ReportData =>
    reportData({
      rfm: fs.map((f) => ({ r: 3, f, segment: 'x', users: 1, monetary: 1 })),
      purchasers: fs.length,
    });
  it('explains empty low frequency columns, and only then', () => {
    expect(rfmTieNote(data([3, 4, 5]))).toBe(
      'F1–F2 are empty: scores rank customers against each other, and those who bought equally often share the higher score, so with few customers, or many at the same count (often one purchase), the lowest scores stay empty.',
    );
    expect(rfmTieNote(data([2, 5]))).toMatch(/^F1 is empty: /);
    expect(rfmTieNote(data([1, 5]))).toBeUndefined();
    expect(rfmTieNote(data([]))).toBeUndefined();
  });
});

describe('terminal report at scale', () => {
  // a warehouse of millions: columns widen with the figures instead of running into each other
  const data = reportData({
    statuses: [
      { status: 'active', users: 12_345_678, usersWeekAgo: 13_580_245 },
      { status: 'churned', users: 7, usersWeekAgo: 7 },
    ],
    totalUsers: 12_345_685,
    rfm: [
      { r: 5, f: 4, segment: 'champions', users: 223_456, monetary: 1 },
      { r: 5, f: 5, segment: 'champions', users: 123_456, monetary: 123_456_789.12 },
    ],
    purchasers: 346_912,
  });
  const lines = formatTerminalReport(data).split('\n');

  it('right-aligns users and changes under their headers', () => {
    const header = lines.find((l) => l.includes('vs 7 days ago')) as string;
    const usersEnd = header.indexOf('users') + 'users'.length;
    const changeEnd = header.indexOf('vs 7 days ago') + 'vs 7 days ago'.length;
    const active = lines.find((l) => l.startsWith('  active')) as string;
    expect(active.slice(0, usersEnd)).toMatch(/ 12,345,678$/);
    expect(active.slice(0, changeEnd)).toMatch(/ −1,234,567$/);
  });

  it('keeps each RFM cell apart from the previous code, under its F column', () => {
    const header = lines.find((l) => l.includes('F: frequency')) as string;
    const r5 = lines.find((l) => l.startsWith('  R5')) as string;
    expect(r5).toMatch(/ 223,456 CH +123,456 CH/);
    expect(r5.indexOf('123,456 CH') + '123,456 CH'.length).toBe(header.indexOf('F5') + 2);
    const champions = lines.find((l) => l.includes('Champions')) as string;
    expect(champions).toMatch(/ 346,912 +100\.0% +123,456,790\.12$/);
  });
});

describe('terminal report in a narrow terminal', () => {
  const data = reportData({
    statuses: [
      { status: 'churned', users: 7, usersWeekAgo: 7 },
      { status: 'active', users: 3, usersWeekAgo: 1 },
    ],
    totalUsers: 10,
  });
  const churned = STATUS_MEANING.churned;

  it('wraps a meaning inside its column when the row leaves room for it', () => {
    const lines = formatTerminalReport(data, { width: 80 }).split('\n');
    const at = lines.findIndex((l) => l.startsWith('  churned'));
    const column = lines[at].indexOf('lost:');
    const continued = lines[at + 1];
    expect(continued.slice(0, column).trim()).toBe('');
    expect(`${lines[at].slice(column)} ${continued.trim()}`).toBe(churned);
    for (const l of lines) expect(l.length).toBeLessThanOrEqual(80);
  });

  it('puts the meaning under its row when the column would be too narrow', () => {
    const lines = formatTerminalReport(data, { width: 60 }).split('\n');
    const at = lines.findIndex((l) => l.startsWith('  churned'));
    expect(lines[at]).not.toContain('lost');
    const under = lines.slice(at + 1).filter((l) => /^ {4}\S/.test(l));
    expect(under.length).toBeGreaterThan(0);
    expect(lines[at + 1]).toMatch(/^ {4}lost: /);
    // the no-purchase note wraps too (the tables keep their own width, about 80 columns)
    const note = lines.slice(lines.findIndex((l) => l.startsWith('RFM value segments')) + 1);
    expect(note.length).toBeGreaterThan(2);
    for (const l of [...under, ...note]) expect(l.length).toBeLessThanOrEqual(60);
  });

  it('wraps nothing without a width (a pipe)', () => {
    const text = formatTerminalReport(data);
    expect(text).toContain(`   ${churned}\n`);
    expect(text).toContain(`  ${NO_PURCHASES_NOTE}\n`);
  });
});

describe('terminal report of one user', () => {
  it('says "1 user"', () => {
    const data = reportData({ statuses: [{ status: 'new', users: 1, usersWeekAgo: 0 }], totalUsers: 1 });
    expect(formatTerminalReport(data).split('\n')[1]).toBe('1 user in lifecycle.user_lifecycle');
  });
});
