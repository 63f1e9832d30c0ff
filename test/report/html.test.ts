import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { renderHtmlReport, rollingRates, writeHtmlReport } from '../../src/report/html';
import { loadReportData } from '../../src/report/data';
import type { GrowthRow } from '../../src/report';
import { UserError } from '../../src/errors';
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse, pgEnabled } from '../helpers/warehouses';
import { launchChromium, SUMMARISE_CHARTS, type ChartSummary } from './browser';
import { createFixtureMarts } from './fixture';

let dir: string;
beforeAll(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-html-'))));
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

const written = new Map<string, string>();

describeEachWarehouse('HTML report', ({ kind, tw }) => {
  let wh: Warehouse;
  let file: string;
  beforeAll(async () => {
    wh = await tw().open();
    await createFixtureMarts(wh);
    file = path.join(dir, `report-${kind}.html`);
    await writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file });
    written.set(kind, fs.readFileSync(file, 'utf8'));
  });
  afterAll(async () => wh.close());

  it('is one self-contained file: Chart.js inlined, a CSP that forbids fetching anything', () => {
    const html = fs.readFileSync(file, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).toContain('<title>Lifecycle report — as of 2026-03-31</title>');
    const csp = /<meta http-equiv="Content-Security-Policy" content="([^"]+)">/.exec(html)?.[1];
    expect(csp).toContain("default-src 'none'");
    // Tags that could load something: only three inline scripts (data, Chart.js, the page's own code).
    const tags = html.match(/<(script|link|img|iframe|object|embed|source|audio|video)\b[^>]*>/g) ?? [];
    expect(tags).toEqual(['<script type="application/json" id="report-data">', '<script>', '<script>']);
    const scripts = html.split(/<script[^>]*>/).map((part) => part.slice(0, part.indexOf('</script>')));
    expect(scripts[2].includes('Chart.js v4')).toBe(true);
    // Outside Chart.js's own source (whose comments carry its home page), no address at all.
    const ours = html.replace(scripts[2], '');
    expect(ours.match(/https?:\/\/[^\s"'<]*/g)).toBeNull();
  });

  it('charts the last three years of a longer history, and says so', async () => {
    expect((await loadReportData({ warehouse: wh, schema: 'lifecycle' })).historyCut).toBeNull();
    await createFixtureMarts(wh, 'long_marts', 1200);
    try {
      const data = await loadReportData({ warehouse: wh, schema: 'long_marts' });
      // 2026-03-31 and the 1,095 days before it
      const cut = new Date(Date.UTC(2026, 2, 31) - 1095 * 86_400_000).toISOString().slice(0, 10);
      expect(data.historyCut).toBe(cut);
      expect(data.statusDaily.every((r) => r.date >= cut)).toBe(true);
      expect(data.growthDaily[0].date).toBe(cut);
      expect(new Set(data.growthDaily.map((r) => r.date)).size).toBe(1096);
      const html = renderHtmlReport(data);
      expect(html).toContain(`the last three years, from ${cut} (earlier days are in the marts)`);
      // the rolling rates of the first days shown pool over the week before them, as over the whole history
      const all = (
        await wh.query<Record<string, unknown>>(
          `select * from long_marts.growth_accounting_daily order by date`,
        )
      ).map((r) => {
        const row: Record<string, unknown> = {};
        for (const [k, v] of Object.entries(r)) {
          row[k] =
            k === 'date'
              ? (v instanceof Date ? v.toISOString() : String(v)).slice(0, 10)
              : v === null
                ? null
                : Number(v);
        }
        return row as unknown as GrowthRow;
      });
      const shownFrom = all.findIndex((r) => r.date === cut);
      const expected = rollingRates(all).map((r) => r.values.slice(shownFrom));
      const json =
        /<script type="application\/json" id="report-data">([\s\S]*?)<\/script>/.exec(html)?.[1] ?? '';
      const shown = (JSON.parse(json) as { rates: Array<{ values: Array<number | null> }> }).rates;
      expect(shown.map((r) => r.values)).toEqual(expected);
    } finally {
      await wh.exec('drop schema long_marts cascade');
    }
  });

  it('says which directory to fix when it cannot write the file', async () => {
    const target = path.join(dir, 'no-such-dir', 'r.html');
    await expect(writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file: target })).rejects.toThrow(
      UserError,
    );
    await expect(writeHtmlReport({ warehouse: wh, schema: 'lifecycle', file: target })).rejects.toThrow(
      /Cannot write the HTML report to .*no-such-dir.*ENOENT.*existing, writable directory/,
    );
  });

  if (kind === 'duckdb') {
    describe('in headless Chromium', () => {
      let browser: Browser;
      let page: Page;
      const problems: string[] = [];
      const requests: string[] = [];
      let charts: ChartSummary[];
      beforeAll(async () => {
        browser = await launchChromium();
        page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
        page.on('console', (m) => {
          if (m.type() === 'error' || m.type() === 'warning') problems.push(`${m.type()}: ${m.text()}`);
        });
        page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
        page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
        page.on('request', (r) => requests.push(r.url()));
        await page.goto(pathToFileURL(file).href);
        await page.waitForSelector('html[data-report-ready="true"]');
        charts = (await page.evaluate(SUMMARISE_CHARTS)) as ChartSummary[];
      });
      afterAll(async () => browser?.close());

      it('loads with no console error and no request beyond the file itself', () => {
        expect(problems).toEqual([]);
        expect(requests).toEqual([pathToFileURL(file).href]);
      });

      it('shows the as-of date in the title and the heading', async () => {
        expect(await page.title()).toBe('Lifecycle report — as of 2026-03-31');
        expect(await page.locator('h1').innerText()).toBe('Lifecycle report as of 2026-03-31');
      });

      it('draws the four charts, each with data', () => {
        expect(charts.map((c) => `${c.id}:${c.type}`)).toEqual([
          'chart-lifecycle:line',
          'chart-growth:bar',
          'chart-rates:line',
          'chart-rfm:bar',
        ]);
        for (const c of charts) {
          expect(c.labels).toBeGreaterThan(0);
          expect(c.datasets.length).toBeGreaterThan(0);
          expect(c.datasets.reduce((s, d) => s + d.sum, 0)).toBeGreaterThan(0);
          for (const d of c.datasets) expect(d.points).toBe(c.labels);
        }
      });

      it('plots the fixture figures: 46 days of statuses, DAU parts, WAU/MAU, RFM segments', () => {
        const [lifecycle, growth, rates, rfm] = charts;
        expect(lifecycle.labels).toBe(46); // 2026-02-14 … 2026-03-31
        const last = Object.fromEntries(lifecycle.datasets.map((d) => [d.label, d.last]));
        expect(last).toEqual({
          new: 3,
          active: 5,
          power: 2,
          resurrected: 1,
          at_risk: 4,
          dormant: 6,
          churned: 7,
        });
        const g = Object.fromEntries(growth.datasets.map((d) => [d.label, d.last]));
        expect(g).toEqual({ new: 2, current: 6, reactivated: 1, resurrected: 1, WAU: 15, MAU: 19 });
        expect(rates.datasets.map((d) => d.label)).toEqual([
          'CURR',
          'NURR',
          'RURR',
          'SURR',
          'iWAURR',
          'reactivation',
          'resurrection',
        ]);
        const segments = rfm.datasets[0];
        expect(segments.sum).toBe(8);
        expect(segments.last).toBe(2); // hibernating, the last bar
        // stacked bands, each filled down to the one below (filled to zero they overlap and mix colours)
        expect(new Set(lifecycle.datasets.map((d) => d.fill))).toEqual(new Set(['stack']));
        // user counts tick in whole users
        expect([lifecycle, growth, rfm].map((c) => c.wholeTicks)).toEqual([true, true, true]);
      });

      it('fits a phone-wide window without a horizontal scroll', async () => {
        const narrow = await browser.newPage({ viewport: { width: 400, height: 800 } });
        try {
          await narrow.goto(pathToFileURL(file).href);
          await narrow.waitForSelector('html[data-report-ready="true"]');
          expect(await narrow.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(400);
        } finally {
          await narrow.close();
        }
      });

      it('has the 30-day transition matrix as a table (from rows × to columns)', async () => {
        const cell = (from: string, toIndex: number) =>
          page
            .locator('table.matrix tbody tr', { has: page.locator(`th:text-is("${from}")`) })
            .locator('td')
            .nth(toIndex)
            .innerText();
        // Columns: new, active, power, resurrected, at_risk, dormant, churned.
        expect(await cell('active', 4)).toBe('5');
        expect(await cell('at_risk', 5)).toBe('4');
        expect(await cell('(first status)', 0)).toBe('3');
        expect(await cell('dormant', 3)).toBe('1');
        expect(await cell('churned', 3)).toBe('·'); // 2026-03-01 is outside the 30 days
      });

      it('labels every chart and table for screen readers', async () => {
        const labels = await page.$$eval('canvas', (cs) =>
          cs.map((c) => [c.getAttribute('role'), c.getAttribute('aria-label')]),
        );
        for (const [role, label] of labels) {
          expect(role).toBe('img');
          expect((label ?? '').length).toBeGreaterThan(30);
        }
        expect(labels[0][1]).toContain(
          'On 2026-03-31: new 3, active 5, power 2, resurrected 1, at_risk 4, dormant 6, churned 7.',
        );
        // the rates chart's text gives the figures it draws on D (pooled over 7 days), not the day's own rates
        const rates = charts.find((c) => c.id === 'chart-rates')!;
        const rateText = labels[2][1] ?? '';
        expect(rateText).toMatch(
          /^Line chart of daily retention rates\. On 2026-03-31, pooled over 7 days: /,
        );
        for (const d of rates.datasets) {
          const said = new RegExp(`\\b${d.label} (n/a|[0-9.]+)%?`).exec(rateText)?.[1];
          if (d.last === null) expect(said).toBe('n/a');
          else expect(Math.abs(Number(said) - d.last)).toBeLessThan(0.051);
        }
        const captions = await page.$$eval('table', (ts) =>
          ts.map((t) => t.querySelector('caption')?.textContent ?? ''),
        );
        expect(captions.every((c) => c.length > 10)).toBe(true);
        expect(
          await page.$$eval('section', (ss) => ss.every((s) => !!s.getAttribute('aria-labelledby'))),
        ).toBe(true);
      });
    });

    it('says why the RFM section is empty when no customer purchased in the window', async () => {
      await createFixtureMarts(wh, 'nobuy');
      await wh.query(`update nobuy.user_lifecycle set rfm_segment = null`);
      const noBuyFile = path.join(dir, 'nobuy.html');
      await writeHtmlReport({ warehouse: wh, schema: 'nobuy', file: noBuyFile });
      expect(fs.readFileSync(noBuyFile, 'utf8')).toContain(
        'No purchases in the RFM window (the last 365 days unless lifecycle__rfm_window_days says otherwise;',
      );
    });

    it('keeps data that looks like markup inert (no script injection through a status name)', async () => {
      await createFixtureMarts(wh, 'evil');
      const evil = '</script><script>window.pwned=1</script><!--';
      await wh.query(`insert into evil.status_daily values (cast('2026-03-31' as date), $1, 2)`, [evil]);
      await wh.query(
        `insert into evil.status_transitions values ('u01', cast('2026-03-30' as date), 'active', $1)`,
        [evil],
      );
      const evilFile = path.join(dir, 'evil.html');
      await writeHtmlReport({ warehouse: wh, schema: 'evil', file: evilFile });
      const browser = await launchChromium();
      try {
        const page = await browser.newPage();
        const errors: string[] = [];
        page.on('pageerror', (e) => errors.push(e.message));
        await page.goto(pathToFileURL(evilFile).href);
        await page.waitForSelector('html[data-report-ready="true"]');
        expect(errors).toEqual([]);
        expect(await page.evaluate('typeof window.pwned')).toBe('undefined');
        // Shown as text in the status table, and plotted as its own series.
        expect(await page.locator('table tbody th', { hasText: 'window.pwned' }).count()).toBeGreaterThan(0);
        const charts = (await page.evaluate(SUMMARISE_CHARTS)) as ChartSummary[];
        expect(charts[0].datasets.map((d) => d.label)).toContain(evil);
      } finally {
        await browser.close();
      }
    });
  }
});

describe('HTML report across warehouses', () => {
  it('is the same page on DuckDB and PostgreSQL', () => {
    expect(written.size).toBe(pgEnabled() ? 2 : 1);
    if (pgEnabled()) expect(written.get('postgres')).toBe(written.get('duckdb'));
  });
});

describe('rollingRates', () => {
  const row = (
    date: string,
    current: number,
    curr: number | null,
    dormant = 0,
    res: number | null = null,
  ): GrowthRow => ({
    date,
    new_users: 0,
    current_users: current,
    reactivated_users: 0,
    resurrected_users: 0,
    at_risk_wau_users: 0,
    at_risk_mau_users: 0,
    dormant_users: dormant,
    dau: current,
    wau: current,
    mau: current,
    nurr: null,
    curr,
    rurr: null,
    surr: null,
    iwaurr: null,
    reactivation_rate: null,
    resurrection_rate: res,
  });

  it('pools retained / eligible over the window, weighting days by group size', () => {
    const g = [
      row('2026-01-01', 10, null),
      row('2026-01-02', 100, 0.5), // 5 of yesterday's 10 current users came back
      row('2026-01-03', 50, 0.9), // 90 of 100
      row('2026-01-05', 40, 0.2), // gap: 2026-01-04 missing, so this day has no known denominator
    ];
    const curr = rollingRates(g, 2).find((r) => r.key === 'curr');
    // day 1: nothing eligible; day 2: 5/10; day 3: (5 + 90) / (10 + 100); day 4: only day 3 counts → 90/100.
    expect(curr?.values).toEqual([null, 0.5, 95 / 110, 0.9]);
    // A plain mean of the two daily rates on day 3 would be 0.7: pooling is not averaging.
    expect(rollingRates(g, 2).find((r) => r.key === 'resurrection_rate')?.values).toEqual([
      null,
      null,
      null,
      null,
    ]);
  });
});
