import * as path from 'node:path';
import { Option } from 'commander';
import type { CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { reportPart } from '../parts';

export const reportCommand: CommandSpec = {
  name: 'report',
  summary: 'status counts, transitions, growth accounting and the RFM grid, in the terminal or as HTML',
  options: [new Option('--html <file>', 'also write a self-contained HTML page with charts (works offline)')],
  examples: ['cdp-lifecycle report', 'cdp-lifecycle report --html lifecycle-report.html'],
  action: (ctx) =>
    withWarehouse(ctx, async (wh) => {
      const { renderTerminalReport, writeHtmlReport } = reportPart();
      ctx.out.print(
        await renderTerminalReport({ warehouse: wh, schema: ctx.config.schema, color: ctx.out.color }),
      );
      if (ctx.opts.html) {
        const file = path.resolve(String(ctx.opts.html));
        await writeHtmlReport({ warehouse: wh, schema: ctx.config.schema, file });
        ctx.out.info(`HTML report written to ${file}`);
      }
    }),
};
