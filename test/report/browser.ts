import { chromium, type Browser } from 'playwright-core';

/** Debian's Chromium, headless, with everything that could phone home switched off. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: process.env.CHROMIUM_PATH ?? '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--no-first-run',
      '--disable-sync',
    ],
  });
}

export interface ChartSummary {
  id: string;
  type: string;
  labels: number;
  /** Some axis ticks whole numbers only (`ticks.precision` 0). */
  wholeTicks: boolean;
  datasets: Array<{ label: string; fill: unknown; points: number; sum: number; last: number | null }>;
}

/** Runs in the page: what every Chart.js instance holds. */
export const SUMMARISE_CHARTS = `(() => {
  const out = [];
  for (const canvas of document.querySelectorAll('canvas')) {
    const chart = window.Chart && window.Chart.getChart(canvas);
    if (!chart) { out.push({ id: canvas.id, type: 'none', labels: 0, datasets: [] }); continue; }
    out.push({
      id: canvas.id,
      type: chart.config.type,
      wholeTicks: Object.values(chart.options.scales || {}).some((a) => a.ticks && a.ticks.precision === 0),
      labels: (chart.data.labels || []).length,
      datasets: chart.data.datasets.map((d) => ({
        label: String(d.label),
        fill: d.fill === undefined ? null : d.fill,
        points: d.data.length,
        sum: d.data.reduce((s, v) => s + (typeof v === 'number' ? v : 0), 0),
        last: d.data.length ? d.data[d.data.length - 1] : null,
      })),
    });
  }
  return out;
})()`;
