import * as fs from 'node:fs';
import * as path from 'node:path';
import { Option } from 'commander';
import type { CommandContext, CommandSpec } from '../context';
import type { Warehouse } from '../../warehouse';
import { withWarehouse } from '../context';
import { reportPart } from '../parts';

/** Prints the terminal report and, when asked, writes the HTML page, from one read of the marts. */
export async function printReport(ctx: CommandContext, wh: Warehouse, htmlFile?: string): Promise<void> {
  const { loadReportData, formatTerminalReport, renderHtmlReport } = await reportPart();
  const data = await loadReportData({ warehouse: wh, schema: ctx.config.schema });
  ctx.out.print(formatTerminalReport(data, { color: ctx.out.color }));
  if (htmlFile) fs.writeFileSync(htmlFile, renderHtmlReport(data));
}

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'status counts, transitions, growth accounting and the RFM grid, in the terminal or as HTML',
  options: [new Option('--html <file>', 'also write a self-contained HTML page with charts (works offline)')],
  examples: ['cdp-lifecycle report', 'cdp-lifecycle report --html lifecycle-report.html'],
  action: (ctx) =>
    withWarehouse(ctx, async (wh) => {
      const html = ctx.opts.html ? path.resolve(String(ctx.opts.html)) : undefined;
      await printReport(ctx, wh, html);
      if (html) ctx.out.info(`HTML report written to ${html}`);
    }),
};
