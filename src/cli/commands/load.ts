import type { CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { collectorPart } from '../parts';

export const loadCommand: CommandSpec = {
  name: 'load',
  summary: 'land Segment/RudderStack events from NDJSON files (- for stdin) through the collector’s path',
  args: '<files...>',
  examples: [
    'cdp-lifecycle load events.ndjson',
    'cdp-lifecycle load export-*.ndjson --warehouse postgres://etl@db.internal/analytics',
    'zcat events.ndjson.gz | cdp-lifecycle load -',
  ],
  notes:
    'Each line is one spec event (track, identify, page, screen, alias, group). Invalid events and\n' +
    'unparsable lines land in <raw-schema>.rejected_events with the reason; valid ones are never lost.',
  action: (ctx, files) =>
    withWarehouse(ctx, async (wh) => {
      const { loadFiles } = collectorPart();
      const summary = await loadFiles({
        warehouse: wh,
        rawSchema: ctx.config.rawSchema,
        files,
        progress: ctx.out.progress(),
      });
      ctx.out.print(JSON.stringify(summary));
    }),
};
