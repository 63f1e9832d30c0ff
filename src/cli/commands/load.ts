import { UsageError, UserError, WarehouseUnavailableError } from '../../errors';
import type { CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { printable } from '../../util/printable';
import { plural, shellWord } from '../output';
import { collectorPart } from '../parts';
import { refuseDemoWarehouse } from '../steps';
import { describeInterruption } from '../interrupt';
import type { LoadCommitted, LoadSummary } from '../../collector';

/**
 * What an interrupted load leaves. It stops at a clean point (see loadFiles' signal): the batches being
 * written commit, the lines read after them are dropped, so the count and the line to go on from are exact.
 * A rerun of the same files lands the committed events again, which the models count once only when they
 * carry a messageId (load generates one for the others), so it names where the rest starts. `uncertain`: it
 * was stopped before that point (a second Ctrl-C), and a batch being written may have committed as well.
 */
export function interruptedLoad(
  files: readonly string[],
  c: LoadCommitted | undefined,
  uncertain = false,
): string {
  const inFlight = uncertain
    ? 'a batch being written when it stopped may have landed as well (check the raw table before going on)'
    : 'nothing after it was written';
  if (c === undefined || (c.landed === 0 && c.rejected === 0 && c.landedBeyond === 0)) {
    return uncertain
      ? `no event had landed yet, but ${inFlight}; run it again.`
      : 'no event had landed yet; run it again.';
  }
  const done = c.filesDone.length > 0 ? `${c.filesDone.join(', ')} and ` : '';
  const rejected = c.rejected > 0 ? ` (${plural(c.rejected, 'line')} rejected)` : '';
  const rest = files.slice(c.filesDone.length + 1).map(shellWord);
  const file = shellWord(c.file);
  const resume =
    c.file === 'stdin'
      ? `line ${(c.throughLine + 1).toLocaleString('en-US')} of standard input`
      : // a gzipped file's lines are counted after gunzip: tail on the compressed bytes would land nothing
        `\`${c.gzipped ? `gzip -dc ${file} | tail -n +${c.throughLine + 1}` : `tail -n +${c.throughLine + 1} ${file}`} | cdp-lifecycle load - …\`${rest.length > 0 ? `, then load ${rest.join(' ')}` : ''}`;
  const beyond =
    c.landedBeyond > 0
      ? ` (and ${plural(c.landedBeyond, 'line')} of a later batch, which loading from there lands again)`
      : '';
  return (
    `${plural(c.landed, 'event')} had landed${rejected}, from ${done}${c.file} up to line ` +
    `${c.throughLine.toLocaleString('en-US')}${beyond}; ${inFlight}. To land the rest ` +
    `only, load from ${resume}: a rerun of the whole load lands the first ones again, which the models count ` +
    'once only when they carry a messageId (load gives those without one a new random id each time).'
  );
}

export const loadCommand: CommandSpec = {
  name: 'load',
  summary: 'land Segment/RudderStack events from NDJSON files (- for stdin) through the collector’s path',
  args: '<files...>',
  examples: [
    'cdp-lifecycle load events.ndjson',
    'cdp-lifecycle load export-*.ndjson --warehouse postgres://etl@db.internal/analytics',
    'cdp-lifecycle load segment-export/2024/06/*.json.gz',
    'zcat events.ndjson.gz | cdp-lifecycle load -',
  ],
  notes:
    'Each line is one spec event (track, identify, page, screen, alias, group); gzipped files are read\n' +
    'as they are (a storage export), whatever their name. Invalid events and\n' +
    'unparsable lines land in <raw-schema>.rejected_events with the reason; valid ones are never lost.\n' +
    'Exits 0 when the files were read to the end, even if some lines were rejected (listed on stderr);\n' +
    'exits 1 when lines were read but none of them landed.',
  action: async (ctx, files) => {
    const { loadFiles, checkLoadFiles, describeInputs, LoadStopped } = await collectorPart();
    // before the warehouse is opened: a DuckDB file would be created for a load that cannot start
    checkLoadFiles(files);
    return withWarehouse(ctx, async (wh) => {
      await refuseDemoWarehouse(ctx, wh);
      let committed: LoadCommitted | undefined;
      const stop = new AbortController();
      let loading: Promise<LoadSummary> | undefined;
      const interruption = describeInterruption(
        (uncertain) => interruptedLoad(files, committed, uncertain),
        async () => {
          stop.abort();
          await loading?.catch(() => undefined);
        },
      );
      let s: LoadSummary;
      try {
        s = await (loading = loadFiles({
          warehouse: wh,
          rawSchema: ctx.config.rawSchema,
          files,
          maxEventBytes: ctx.config.serve.maxEventBytes,
          progress: ctx.out.progress(),
          onCommitted: (c) => (committed = c),
          signal: stop.signal,
        }));
      } catch (err) {
        // the signal handler (run.ts) says what landed and exits (this never returns, so it keeps the description)
        if (err instanceof LoadStopped) return await new Promise<number>(() => undefined);
        // A file that could not be read to its end, or a warehouse lost on the way, after some batches had
        // committed: say how much landed and where the rest starts, as for an interruption.
        const c = committed;
        if (
          err instanceof UserError &&
          !(err instanceof UsageError) &&
          c &&
          c.landed + c.rejected + c.landedBeyond > 0
        ) {
          const message = `${err.message.replace(/\.?$/, '.')} ${interruptedLoad(files, c)}`;
          throw err instanceof WarehouseUnavailableError
            ? new WarehouseUnavailableError(message, { cause: err })
            : new UserError(message, { cause: err });
        }
        throw err;
      } finally {
        interruption.clear();
      }
      // Everything landed; what remains is output and closing the warehouse. A signal now must not say "run it
      // again", which would land every event a second time.
      const landed = s.landed;
      describeInterruption(
        () =>
          `the load had finished (${plural(landed, 'event')} landed): do not load the same files again, which would land them a second time.`,
      );
      // the rejected count on stdout too: `load > load.log` keeps the whole result
      ctx.out.print(
        `Landed ${plural(s.landed, 'event')} from ${plural(s.lines, 'line')} of ${describeInputs(files)} into ${wh.displayUrl} (schema ${ctx.config.rawSchema})` +
          (s.rejected > 0
            ? `; ${plural(s.rejected, 'line')} rejected, kept in ${ctx.config.rawSchema}.rejected_events.`
            : '.'),
      );
      if (s.rejected > 0) {
        ctx.out.warn(
          `${plural(s.rejected, 'line')} rejected, kept in ${ctx.config.rawSchema}.rejected_events with the reason:`,
        );
        for (const [reason, n] of Object.entries(s.rejectedByReason)
          .sort((a, b) => b[1] - a[1])
          .slice(0, 10)) {
          ctx.out.info(`  ${String(n).padStart(7)}  ${printable(reason)}`);
        }
        for (const b of s.badLines.slice(0, 5))
          ctx.out.info(`  e.g. ${printable(b.file)}:${b.line}: ${printable(b.reason)}`);
      }
      // Every line refused is a failure a scheduled job must see: the files are not what load takes.
      if (s.landed === 0 && s.rejected > 0) {
        ctx.out.error(
          `${s.rejected === 1 ? 'The one line read did not land' : `None of the ${s.rejected} lines landed`}: fix the reasons above (load takes NDJSON, one Segment or RudderStack event per line).`,
        );
        return 1;
      }
      return 0;
    });
  },
};
