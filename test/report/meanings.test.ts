import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { renderTerminalReport, writeHtmlReport } from '../../src/report';
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import { build, landRaw, viewedItem } from '../models/helpers';

/**
 * The meaning printed beside each status count follows the thresholds the marts were built with: a marketer
 * reading "gone quiet for a month" beside a 45-day dormant rule would target the wrong people.
 */
const D = '2026-03-31';

describeEachWarehouse('status meanings in the reports', ({ tw }) => {
  let wh: Warehouse;
  let dir: string;
  beforeAll(async () => {
    wh = await tw().open();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-meanings-'));
    await landRaw(wh, { tracks: [viewedItem('u1', null, '2026-03-01'), viewedItem('u2', null, D)] });
  }, 60_000);
  afterAll(async () => {
    await wh?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const meaningOf = (text: string, status: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`  ${status} `));
    return line?.trim().split(/\s{2,}/)[4];
  };

  it('word the default thresholds plainly', async () => {
    expect((await build(wh, { vars: { lifecycle__as_of_date: D } })).success).toBe(true);
    const text = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle' });
    expect(meaningOf(text, 'new')).toBe('just arrived (first seen this week)');
    expect(meaningOf(text, 'dormant')).toBe('gone quiet for a month or more');
    expect(meaningOf(text, 'churned')).toBe('lost: 90+ days away, or deleted the account / app');
  }, 60_000);

  it("follow the build's own thresholds, in the terminal and the HTML report", async () => {
    const vars = {
      lifecycle__as_of_date: D,
      lifecycle__new_days: 14,
      lifecycle__at_risk_days: 10,
      lifecycle__dormant_days: 45,
      lifecycle__churn_days: 120,
      lifecycle__resurrected_days: 3,
      lifecycle__power_days: 12,
      lifecycle__churn_events: ['Subscription Cancelled'],
      lifecycle__wau_days: 14,
      lifecycle__mau_days: 60,
    };
    expect((await build(wh, { vars })).success).toBe(true);
    const text = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle' });
    expect(meaningOf(text, 'new')).toBe('just arrived (first seen in the last 14 days)');
    expect(meaningOf(text, 'power')).toBe('active on 12+ of the last 28 days');
    expect(meaningOf(text, 'resurrected')).toBe('came back in the last 3 days after a long absence');
    expect(meaningOf(text, 'at_risk')).toBe('slipping: quiet for 10+ days, or using it much less');
    expect(meaningOf(text, 'dormant')).toBe('gone quiet for 45+ days');
    expect(meaningOf(text, 'churned')).toBe('lost: 120+ days away, or sent a churn event');
    // u1 (30 days quiet) is at_risk under a 45-day dormant rule: the counts and the words agree
    expect(
      text
        .split('\n')
        .find((l) => l.startsWith('  at_risk '))
        ?.trim()
        .split(/\s+/)[1],
    ).toBe('1');

    const file = path.join(dir, 'report.html');
    await writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file });
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain('<td class="meaning">gone quiet for 45+ days</td>');
    expect(html).not.toContain('a month or more');
    // WAU and MAU count over the build's windows, and say so
    expect(html).toContain('active in the last 14 days');
    expect(html).toContain('active in the last 60 days');
    expect(html).not.toMatch(/active in the last (7|30) days/);
  }, 60_000);

  it("read the build's windows from its own fields, not from a plan trait that spells one", async () => {
    const vars = {
      lifecycle__as_of_date: D,
      lifecycle__plan_trait: 'tier|wau=3',
      lifecycle__mau_days: 45,
    };
    expect((await build(wh, { vars })).success).toBe(true);
    const file = path.join(dir, 'report-plan.html');
    await writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file });
    const html = fs.readFileSync(file, 'utf8');
    expect(html).toContain('active in the last 7 days');
    expect(html).toContain('active in the last 45 days');
    expect(html).not.toContain('active in the last 3 days');
  }, 60_000);

  it('leave out churn events when none are configured', async () => {
    const vars = { lifecycle__as_of_date: D, lifecycle__churn_events: [] as string[] };
    expect((await build(wh, { vars })).success).toBe(true);
    const text = await renderTerminalReport({ warehouse: wh, schema: 'lifecycle' });
    expect(meaningOf(text, 'churned')).toBe('lost: 90+ days away');
  }, 60_000);
});
