import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../errors';
import { writeFileWhole } from '../util/files';
import type { Warehouse } from '../warehouse';
import {
  LIFECYCLE_STATUSES,
  RFM_SEGMENTS,
  loadReportData,
  NO_PURCHASES_NOTE,
  rfmTieNote,
  statusRank,
  type GrowthRow,
  type ReportData,
} from './data';

export interface HtmlReportOptions {
  warehouse: Warehouse;
  /** Schema the models were built in (`--schema`, default `lifecycle`). */
  schema: string;
  /** Where to write the page; its directory must exist. */
  file: string;
}

/**
 * Writes ONE self-contained page (Chart.js inlined, data embedded as JSON, a Content-Security-Policy that
 * forbids every network fetch) that works offline and can be mailed around or attached to a ticket.
 * Returns the data it was drawn from, so callers can print a summary.
 */
export async function writeHtmlReport(opts: HtmlReportOptions): Promise<ReportData> {
  const data = await loadReportData(opts);
  writeHtmlFile(opts.file, renderHtmlReport(data));
  return data;
}

/** Writes the page whole or not at all. */
export function writeHtmlFile(file: string, html: string): void {
  file = path.resolve(file);
  try {
    // whole, so that a reader (or a browser tab being refreshed) never sees half a page
    writeFileWhole(file, html);
  } catch (err) {
    throw new UserError(
      `Cannot write the HTML report to ${file} (${(err as NodeJS.ErrnoException).code ?? 'error'}): choose a file in an existing, writable directory.`,
      { cause: err },
    );
  }
}

let chartJsSource: string | undefined;

/** Chart.js's UMD build from node_modules, read once. */
function chartJs(): string {
  if (chartJsSource === undefined) {
    // `chart.js` only exports its ESM/CJS entry points; the UMD file sits next to the CJS one.
    const dir = path.dirname(require.resolve('chart.js'));
    const min = path.join(dir, 'chart.umd.min.js');
    chartJsSource = fs.readFileSync(fs.existsSync(min) ? min : path.join(dir, 'chart.umd.js'), 'utf8');
  }
  return chartJsSource;
}

/** Text for an HTML text node or a quoted attribute. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * JSON that is safe inside a <script> element: `<` is escaped so neither `</script>` nor `<!--` in the data
 * can end or alter the element, and U+2028/2029 are escaped for old parsers.
 */
export function scriptJson(value: unknown): string {
  return JSON.stringify(value)
    .replace(/</g, '\\u003c')
    .replace(/\u2028/g, '\\u2028')
    .replace(/\u2029/g, '\\u2029');
}

/** Inline script text must not contain `</script`; in JS `<\/` means the same as `</`. */
function inlineScript(code: string): string {
  return code.replace(/<\/(script)/gi, '<\\/$1');
}

export const STATUS_COLORS: Readonly<Record<string, string>> = {
  new: '#0891b2',
  active: '#16a34a',
  power: '#166534',
  resurrected: '#2563eb',
  at_risk: '#d97706',
  dormant: '#9333ea',
  churned: '#dc2626',
};

/** Dark enough for white text (contrast >= 4.5:1), hues from green (valuable) to red (slipping away). */
const SEGMENT_COLORS: Readonly<Record<string, string>> = {
  champions: '#14532d',
  loyal: '#15803d',
  potential_loyalist: '#3f6212',
  new_customer: '#0e7490',
  promising: '#155e75',
  need_attention: '#a16207',
  about_to_sleep: '#b45309',
  cant_lose: '#7f1d1d',
  at_risk: '#b91c1c',
  hibernating: '#4b5563',
};

const int = (n: number) => Math.round(n).toLocaleString('en-US');
const pct = (n: number | null) => (n === null ? 'n/a' : `${(n * 100).toFixed(1)}%`);

/** The page, as a string (pure: everything it shows comes from `data`). */
export function renderHtmlReport(data: ReportData): string {
  const e = escapeHtml;
  const latest = data.growthDaily.length > 0 ? data.growthDaily[data.growthDaily.length - 1] : undefined;
  const first = data.statusDaily.length > 0 ? data.statusDaily[0].date : data.asOfDate;
  const total = data.statuses.reduce((n, s) => n + s.users, 0);

  const kpis: Array<[string, string, string]> = [
    ['Users', int(data.totalUsers), 'with a lifecycle status'],
    ['DAU', latest ? int(latest.dau) : 'n/a', latest ? `active on ${latest.date}` : 'no activity'],
    ['WAU', latest ? int(latest.wau) : 'n/a', `active in the last ${data.growthWindows.wauDays} days`],
    ['MAU', latest ? int(latest.mau) : 'n/a', `active in the last ${data.growthWindows.mauDays} days`],
    ['DAU/MAU', latest && latest.mau > 0 ? pct(latest.dau / latest.mau) : 'n/a', 'stickiness'],
    ['CURR', latest ? pct(latest.curr) : 'n/a', 'current users retained today'],
  ];

  const statusRows = data.statuses
    .map((s) => {
      const change = s.usersWeekAgo === null ? 'n/a' : s.users - s.usersWeekAgo;
      const changeText =
        typeof change === 'number'
          ? change > 0
            ? `+${int(change)}`
            : change < 0
              ? `−${int(-change)}`
              : '±0'
          : change;
      return `<tr><th scope="row"><span class="dot" style="background:${STATUS_COLORS[s.status] ?? '#6b7280'}"></span>${e(s.status)}</th><td>${int(s.users)}</td><td>${pct(total === 0 ? 0 : s.users / total)}</td><td>${changeText}</td><td class="meaning">${e((data.meanings as Record<string, string>)[s.status] ?? '')}</td></tr>`;
    })
    .join('\n');

  // Transition matrix (last 30 days): rows = from, columns = to.
  const hasFirst = data.transitions.some((t) => t.from === null);
  const seen = new Set<string>([...LIFECYCLE_STATUSES]);
  for (const t of data.transitions) {
    if (t.from !== null) seen.add(t.from);
    seen.add(t.to);
  }
  const order = [...seen].sort((a, b) => statusRank(a) - statusRank(b) || a.localeCompare(b));
  const fromKeys: Array<string | null> = [...(hasFirst ? [null] : []), ...order];
  const counts = new Map(data.transitions.map((t) => [`${t.from ?? ''}>${t.to}`, t.last30]));
  const maxCount = Math.max(1, ...data.transitions.map((t) => t.last30));
  const matrixRows = fromKeys
    .map((from) => {
      const cells = order
        .map((to) => {
          const n = counts.get(`${from ?? ''}>${to}`) ?? 0;
          if (n === 0) return `<td class="zero">·</td>`;
          const a = 0.12 + 0.88 * (n / maxCount);
          return `<td style="background:rgba(37,99,235,${a.toFixed(3)});color:${a > 0.55 ? '#fff' : '#111827'}">${int(n)}</td>`;
        })
        .join('');
      return `<tr><th scope="row">${from === null ? '(first status)' : e(from)}</th>${cells}</tr>`;
    })
    .join('\n');

  // RFM grid: R5 on top, F1 on the left, each cell in its segment's colour.
  const rfmCell = new Map<string, number>();
  for (const c of data.rfm) rfmCell.set(`${c.r}:${c.f}`, (rfmCell.get(`${c.r}:${c.f}`) ?? 0) + c.users);
  const segmentOf = (r: number, f: number) =>
    RFM_SEGMENTS.find((s) => r >= s.r[0] && r <= s.r[1] && f >= s.f[0] && f <= s.f[1]);
  const rfmRows = [5, 4, 3, 2, 1]
    .map((r) => {
      const cells = [1, 2, 3, 4, 5]
        .map((f) => {
          const seg = segmentOf(r, f);
          const n = rfmCell.get(`${r}:${f}`) ?? 0;
          const color = seg ? SEGMENT_COLORS[seg.segment] : '#6b7280';
          return `<td style="background:${color}${n === 0 ? '40;color:#374151' : ''}"><strong>${n === 0 ? '·' : int(n)}</strong><span>${e(seg?.label ?? '?')}</span></td>`;
        })
        .join('');
      return `<tr><th scope="row">R${r}</th>${cells}</tr>`;
    })
    .join('\n');

  const statusSummary = data.statuses.map((s) => `${s.status} ${int(s.users)}`).join(', ');
  const growthSummary = latest
    ? `On ${latest.date}: DAU ${int(latest.dau)}, WAU ${int(latest.wau)}, MAU ${int(latest.mau)}.`
    : 'No activity yet.';
  // pooled over the week before the first day shown too (when the history was cut), then trimmed to it
  const pooledRates = rollingRates([...data.growthLeadIn, ...data.growthDaily]).map((r) => ({
    ...r,
    values: r.values.slice(data.growthLeadIn.length),
  }));
  // the figures the chart draws on D (pooled), not the day's own rates: the text stands in for the chart
  const rateSummary = latest
    ? `On ${latest.date}, pooled over 7 days: ${pooledRates
        .map((r) => `${r.label} ${pct(r.values[r.values.length - 1] ?? null)}`)
        .join(', ')}.`
    : 'No rates yet.';
  const segTotals = RFM_SEGMENTS.map((s) => ({
    ...s,
    users: data.rfm.filter((c) => c.segment === s.segment).reduce((n, c) => n + c.users, 0),
  }));
  const rfmSummary = segTotals.map((s) => `${s.label} ${int(s.users)}`).join(', ');

  const payload = {
    asOfDate: data.asOfDate,
    statuses: LIFECYCLE_STATUSES,
    statusColors: STATUS_COLORS,
    statusDaily: data.statusDaily,
    growthDaily: data.growthDaily,
    rates: pooledRates,
    segments: segTotals.map((s) => ({
      segment: s.segment,
      label: s.label,
      users: s.users,
      color: SEGMENT_COLORS[s.segment],
    })),
  };

  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
<meta name="generator" content="cdp-lifecycle">
<title>Lifecycle report — as of ${e(data.asOfDate)}</title>
<style>
:root { color-scheme: light; --ink:#111827; --muted:#4b5563; --line:#e5e7eb; --bg:#f9fafb; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif; color:var(--ink); background:var(--bg); }
header { padding:24px 32px 8px; }
h1 { margin:0; font-size:26px; }
h1 .asof { color:var(--muted); font-weight:500; }
header p { margin:4px 0 0; color:var(--muted); }
main { padding:8px 32px 32px; display:grid; grid-template-columns:repeat(auto-fit,minmax(min(520px,100%),1fr)); gap:20px; }
section { background:#fff; border:1px solid var(--line); border-radius:10px; padding:16px 20px; min-width:0; }
section.wide { grid-column:1/-1; }
h2 { margin:0 0 4px; font-size:18px; }
.hint { margin:0 0 12px; color:var(--muted); font-size:13px; }
.kpis { display:grid; grid-template-columns:repeat(auto-fit,minmax(140px,1fr)); gap:12px; }
.kpi { border:1px solid var(--line); border-radius:8px; padding:10px 14px; }
.kpi .label { color:var(--muted); font-size:13px; }
.kpi .value { font-size:26px; font-weight:650; }
.kpi .sub { color:var(--muted); font-size:12px; }
.chart { position:relative; height:320px; }
table { border-collapse:collapse; width:100%; font-variant-numeric:tabular-nums; }
caption { text-align:left; color:var(--muted); font-size:13px; padding-bottom:6px; }
th, td { padding:6px 8px; border-bottom:1px solid var(--line); text-align:right; }
th[scope=row], thead th:first-child { text-align:left; }
td.meaning { text-align:left; color:var(--muted); }
.dot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:8px; vertical-align:baseline; }
.scroll { overflow-x:auto; }
table.matrix { font-size:13px; }
table.matrix th, table.matrix td { padding:5px 4px; }
table.matrix thead th { text-align:center; word-break:break-word; }
table.matrix td { text-align:center; min-width:40px; }
table.matrix td.zero { color:#9ca3af; }
table.rfm td { text-align:center; color:#fff; height:64px; width:18%; border:2px solid #fff; }
table.rfm td strong { display:block; font-size:18px; }
table.rfm td span { font-size:12px; }
footer { padding:0 32px 24px; color:var(--muted); font-size:12px; }
/* a phone: narrower margins, and a table wider than its card scrolls inside it, not the page */
@media (max-width: 600px) {
  header, footer { padding-left:12px; padding-right:12px; }
  main { padding:8px 12px 24px; }
  section { padding:12px; overflow-x:auto; }
}
</style>
</head>
<body>
<header>
<h1>Lifecycle report <span class="asof">as of ${e(data.asOfDate)}</span></h1>
<p>${int(data.totalUsers)} ${data.totalUsers === 1 ? 'user' : 'users'} · models in schema <code>${e(data.schema)}</code> · ${data.historyCut === null ? `history from ${e(first)}` : `the last three years, from ${e(data.historyCut)} (earlier days are in the marts)`}</p>
</header>
<main>
<section class="wide" aria-labelledby="h-kpi">
<h2 id="h-kpi">Today at a glance</h2>
<p class="hint">Growth accounting on ${e(latest?.date ?? data.asOfDate)}.</p>
<div class="kpis">
${kpis.map(([label, value, sub]) => `<div class="kpi"><div class="label">${e(label)}</div><div class="value">${e(value)}</div><div class="sub">${e(sub)}</div></div>`).join('\n')}
</div>
</section>
<section class="wide" aria-labelledby="h-lifecycle">
<h2 id="h-lifecycle">Lifecycle status over time</h2>
<p class="hint">Users per status each day (stacked). Click a legend entry to hide a status.</p>
<div class="chart"><canvas id="chart-lifecycle" role="img" aria-label="${e(`Stacked area chart of users per lifecycle status per day, ${first} to ${data.asOfDate}. On ${data.asOfDate}: ${statusSummary}.`)}"><p>${e(statusSummary)}</p></canvas></div>
<table>
<caption>Users per status on ${e(data.asOfDate)} and the change over 7 days</caption>
<thead><tr><th scope="col">Status</th><th scope="col">Users</th><th scope="col">Share</th><th scope="col">vs 7 days ago</th><th scope="col" style="text-align:left">Meaning</th></tr></thead>
<tbody>
${statusRows}
</tbody>
</table>
</section>
<section aria-labelledby="h-growth">
<h2 id="h-growth">Active users: where DAU comes from</h2>
<p class="hint">Daily actives split into new, current, reactivated and resurrected users (bars), with WAU and MAU (lines).</p>
<div class="chart"><canvas id="chart-growth" role="img" aria-label="${e(`Stacked bars of daily active users by growth-accounting state, with WAU and MAU lines. ${growthSummary}`)}"><p>${e(growthSummary)}</p></canvas></div>
</section>
<section aria-labelledby="h-rates">
<h2 id="h-rates">Retention rates</h2>
<p class="hint">Share of each group of the day before that is active the next day, pooled over rolling 7 days (CURR: current, NURR: new, RURR: reactivated, SURR: resurrected, iWAURR: at risk of leaving WAU; reactivation: from at risk of leaving MAU; resurrection: from dormant).</p>
<div class="chart"><canvas id="chart-rates" role="img" aria-label="${e(`Line chart of daily retention rates. ${rateSummary}`)}"><p>${e(rateSummary)}</p></canvas></div>
</section>
<section aria-labelledby="h-transitions">
<h2 id="h-transitions">Status changes in the last 30 days</h2>
<p class="hint">Users who moved from a status (row) to another (column), ${e(addDaysText(data.asOfDate, -29))} to ${e(data.asOfDate)}.</p>
<div class="scroll"><table class="matrix">
<caption>Transition matrix: from (rows) × to (columns)</caption>
<thead><tr><th scope="col">from \\ to</th>${order.map((s) => `<th scope="col">${e(s).replace(/_/g, '_<wbr>')}</th>`).join('')}</tr></thead>
<tbody>
${matrixRows}
</tbody>
</table></div>
</section>
<section aria-labelledby="h-rfm">
<h2 id="h-rfm">RFM value segments</h2>
<p class="hint">${
    data.purchasers === 0
      ? NO_PURCHASES_NOTE
      : `${int(data.purchasers)} ${data.purchasers === 1 ? 'customer' : 'customers'} with a purchase in the RFM window, by recency (R, 5 = most recent) and frequency (F, 5 = most frequent).${rfmTieNote(data) ? ` ${e(rfmTieNote(data) as string)}` : ''}`
  }</p>
<table class="rfm">
<caption>Customers per recency × frequency score, labelled with their segment</caption>
<thead><tr><th scope="col">R \\ F</th>${[1, 2, 3, 4, 5].map((f) => `<th scope="col" style="text-align:center">F${f}</th>`).join('')}</tr></thead>
<tbody>
${rfmRows}
</tbody>
</table>
<div class="chart" style="height:260px;margin-top:12px"><canvas id="chart-rfm" role="img" aria-label="${e(`Bar chart of customers per RFM segment: ${rfmSummary}.`)}"><p>${e(rfmSummary)}</p></canvas></div>
</section>
</main>
<footer>Generated by cdp-lifecycle. Self-contained: no network access, works offline.</footer>
<script type="application/json" id="report-data">${scriptJson(payload)}</script>
<script>${inlineScript(chartJs())}</script>
<script>${inlineScript(PAGE_SCRIPT)}</script>
</body>
</html>
`;
}

/** Each retention rate with the growth-accounting state whose previous-day count is its denominator. */
export const RATES = [
  { key: 'curr', label: 'CURR', state: 'current_users', color: '#16a34a' },
  { key: 'nurr', label: 'NURR', state: 'new_users', color: '#0891b2' },
  { key: 'rurr', label: 'RURR', state: 'reactivated_users', color: '#d97706' },
  { key: 'surr', label: 'SURR', state: 'resurrected_users', color: '#2563eb' },
  { key: 'iwaurr', label: 'iWAURR', state: 'at_risk_wau_users', color: '#9333ea' },
  { key: 'reactivation_rate', label: 'reactivation', state: 'at_risk_mau_users', color: '#ca8a04' },
  { key: 'resurrection_rate', label: 'resurrection', state: 'dormant_users', color: '#dc2626' },
] as const;

/**
 * Retention rates pooled over a rolling window: Σ retained / Σ eligible over the last `window` days, where
 * eligible = the state's count the day before and retained = rate × eligible. Daily rates of small groups
 * jump between 0% and 100%; pooling weights each day by its group size, which a plain average would not.
 * A day whose previous day is missing (a gap in the table) contributes nothing; no eligible user → null.
 */
export function rollingRates(
  growth: readonly GrowthRow[],
  window = 7,
): Array<{ key: string; label: string; color: string; values: Array<number | null> }> {
  const DAY = 86_400_000;
  return RATES.map((r) => {
    const retained: number[] = [];
    const eligible: number[] = [];
    for (let i = 0; i < growth.length; i++) {
      const prev = growth[i - 1];
      const rate = growth[i][r.key];
      const consecutive = prev !== undefined && Date.parse(growth[i].date) - Date.parse(prev.date) === DAY;
      const den = consecutive ? prev[r.state] : 0;
      eligible.push(rate === null || den <= 0 ? 0 : den);
      retained.push(rate === null || den <= 0 ? 0 : rate * den);
    }
    const values = growth.map((_, i) => {
      let num = 0;
      let den = 0;
      for (let j = Math.max(0, i - window + 1); j <= i; j++) {
        num += retained[j];
        den += eligible[j];
      }
      return den === 0 ? null : num / den;
    });
    return { key: r.key, label: r.label, color: r.color, values };
  });
}

function addDaysText(date: string, n: number): string {
  return new Date(Date.parse(`${date}T00:00:00Z`) + n * 86_400_000).toISOString().slice(0, 10);
}

/** Builds the charts from the embedded JSON. Plain ES2017 so it runs in any current browser. */
const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('report-data').textContent);
  Chart.defaults.animation = false;
  Chart.defaults.font.family = 'system-ui, -apple-system, "Segoe UI", Roboto, Helvetica, Arial, sans-serif';
  Chart.defaults.color = '#374151';
  Chart.defaults.maintainAspectRatio = false;

  function dates(rows) {
    var seen = {}, out = [];
    rows.forEach(function (r) { if (!seen[r.date]) { seen[r.date] = true; out.push(r.date); } });
    return out.sort();
  }
  function alpha(hex, a) {
    var n = parseInt(hex.slice(1), 16);
    return 'rgba(' + (n >> 16) + ',' + ((n >> 8) & 255) + ',' + (n & 255) + ',' + a + ')';
  }
  var timeAxis = { ticks: { maxTicksLimit: 10, maxRotation: 0, autoSkipPadding: 16 }, grid: { display: false } };
  // users are whole: no 0.5 ticks on a small warehouse
  var usersAxis = { stacked: true, beginAtZero: true, ticks: { precision: 0 }, title: { display: true, text: 'users' } };

  // Lifecycle over time: one stacked area per status, zero where status_daily has no row.
  var days = dates(data.statusDaily);
  var byKey = {};
  data.statusDaily.forEach(function (r) { byKey[r.date + '|' + r.status] = r.users; });
  var statuses = data.statuses.slice();
  data.statusDaily.forEach(function (r) { if (statuses.indexOf(r.status) < 0) statuses.push(r.status); });
  new Chart(document.getElementById('chart-lifecycle'), {
    type: 'line',
    data: {
      labels: days,
      datasets: statuses.map(function (s) {
        var color = data.statusColors[s] || '#6b7280';
        return {
          label: s,
          data: days.map(function (d) { return byKey[d + '|' + s] || 0; }),
          borderColor: color,
          backgroundColor: alpha(color, 0.55),
          // each band between the one below and its own line: filled to zero, the see-through areas would
          // overlap and mix into colours the legend does not show
          fill: 'stack',
          pointRadius: 0,
          borderWidth: 1,
          tension: 0.2
        };
      })
    },
    options: {
      interaction: { mode: 'index', intersect: false },
      scales: { x: timeAxis, y: usersAxis },
      plugins: { legend: { position: 'bottom' } }
    }
  });

  // Growth accounting: DAU decomposition as stacked bars, WAU and MAU as lines (each in its own stack).
  var g = data.growthDaily;
  var gDays = g.map(function (r) { return r.date; });
  var parts = [
    ['new_users', 'new', '#0891b2'],
    ['current_users', 'current', '#16a34a'],
    ['reactivated_users', 'reactivated', '#d97706'],
    ['resurrected_users', 'resurrected', '#2563eb']
  ];
  var growthSets = parts.map(function (p) {
    return { type: 'bar', label: p[1], stack: 'dau', data: g.map(function (r) { return r[p[0]]; }),
      backgroundColor: p[2], borderWidth: 0, order: 2 };
  });
  growthSets.push({ type: 'line', label: 'WAU', stack: 'wau', data: g.map(function (r) { return r.wau; }),
    borderColor: '#111827', backgroundColor: '#111827', pointRadius: 0, borderWidth: 2, order: 1 });
  growthSets.push({ type: 'line', label: 'MAU', stack: 'mau', data: g.map(function (r) { return r.mau; }),
    borderColor: '#9ca3af', backgroundColor: '#9ca3af', pointRadius: 0, borderWidth: 2, borderDash: [6, 4], order: 1 });
  new Chart(document.getElementById('chart-growth'), {
    type: 'bar',
    data: { labels: gDays, datasets: growthSets },
    options: {
      interaction: { mode: 'index', intersect: false },
      scales: { x: Object.assign({ stacked: true }, timeAxis), y: usersAxis },
      plugins: { legend: { position: 'bottom' } }
    }
  });

  // Retention rates in percent, pooled over 7 days (computed in Node, see rollingRates).
  new Chart(document.getElementById('chart-rates'), {
    type: 'line',
    data: {
      labels: gDays,
      datasets: data.rates.map(function (p) {
        return { label: p.label, data: p.values.map(function (v) { return v === null ? null : Math.round(v * 1000) / 10; }),
          borderColor: p.color, backgroundColor: p.color, pointRadius: 0, borderWidth: 1.5, spanGaps: false };
      })
    },
    options: {
      interaction: { mode: 'index', intersect: false },
      scales: { x: timeAxis, y: { beginAtZero: true, suggestedMax: 100, title: { display: true, text: '% active the next day' } } },
      plugins: { legend: { position: 'bottom' } }
    }
  });

  // RFM segments.
  new Chart(document.getElementById('chart-rfm'), {
    type: 'bar',
    data: {
      labels: data.segments.map(function (s) { return s.label; }),
      datasets: [{ label: 'customers', data: data.segments.map(function (s) { return s.users; }),
        backgroundColor: data.segments.map(function (s) { return s.color; }) }]
    },
    options: { indexAxis: 'y', scales: { x: { beginAtZero: true, ticks: { precision: 0 } } }, plugins: { legend: { display: false } } }
  });
  document.documentElement.setAttribute('data-report-ready', 'true');
})();
`;
