import * as path from 'node:path';
import { Option } from 'commander';
import { UsageError } from '../../errors';
import { writableFileProblem } from '../../util/files';
import type { CommandContext, CommandSpec } from '../context';
import type { Warehouse } from '../../warehouse';
import { withWarehouse } from '../context';
import { reportPart } from '../parts';

/** Prints the terminal report and, when asked, writes the HTML page, from one read of the marts. */
export async function printReport(ctx: CommandContext, wh: Warehouse, htmlFile?: string): Promise<void> {
  const { loadReportData, formatTerminalReport, renderHtmlReport, writeHtmlFile } = await reportPart();
  const data = await loadReportData({ warehouse: wh, schema: ctx.config.schema });
  ctx.out.print(formatTerminalReport(data, { color: ctx.out.color, width: ctx.out.width }));
  if (htmlFile) writeHtmlFile(htmlFile, renderHtmlReport(data));
}

/** The --html file, resolved, once it is known to be writable. */
export function htmlOption(ctx: CommandContext): string | undefined {
  if (ctx.opts.html === undefined || ctx.opts.html === false) return undefined;
  // an empty value (an unset shell variable) wrote nothing and said nothing
  if (String(ctx.opts.html).trim() === '')
    throw new UsageError(
      '--html is empty: name the file to write (e.g. --html lifecycle-report.html), or leave it out.',
    );
  const file = path.resolve(String(ctx.opts.html));
  const problem = writableFileProblem(file);
  if (problem) throw new UsageError(`--html ${String(ctx.opts.html)}: ${problem}; choose another file.`);
  return file;
}

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'status counts, transitions, growth accounting and the RFM grid, in the terminal or as HTML',
  options: [new Option('--html <file>', 'also write a self-contained HTML page with charts (works offline)')],
  examples: ['cdp-lifecycle report', 'cdp-lifecycle report --html lifecycle-report.html'],
  action: (ctx) => {
    const html = htmlOption(ctx);
    return withWarehouse(ctx, async (wh) => {
      await printReport(ctx, wh, html);
      if (html) ctx.out.info(`HTML report written to ${html}`);
    });
  },
};
