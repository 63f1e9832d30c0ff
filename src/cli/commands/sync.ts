import { Option } from 'commander';
import type { CommandSpec } from '../context';
import { withWarehouse } from '../context';
import { checkSyncSettings, syncStep } from '../steps';

export const dryRunOption = (what = 'compute and log what would be sent, send nothing'): Option =>
  new Option('--dry-run', what);
export const fullResyncOption = (): Option =>
  new Option('--full-resync', 'send every user again, changed or not (e.g. after changing --traits)');

export const syncCommand: CommandSpec = {
  name: 'sync',
  summary: 'push changed lifecycle statuses back to Segment or RudderStack as identify traits',
  options: [dryRunOption(), fullResyncOption()],
  examples: [
    'cdp-lifecycle sync --to segment --write-key $SEGMENT_WRITE_KEY',
    'cdp-lifecycle sync --to segment --endpoint https://events.eu1.segmentapis.com --write-key $KEY',
    'cdp-lifecycle sync --to rudderstack --endpoint https://acme.dataplane.rudderstack.com --write-key $KEY',
    'cdp-lifecycle sync --to segment --dry-run',
    'cdp-lifecycle sync --to segment --write-key $KEY --traits lifecycle_status=lifecycle_status,rfm=rfm_segment',
  ],
  notes:
    'Only users whose synced traits changed since the last delivery to that destination are sent.\n' +
    'Loop safety: use the write key of a source that does NOT load this warehouse, or the synced\n' +
    'identifies come back as raw events (see README, "Sync back").\n' +
    'Exits 1 when the CDP refused or never acknowledged some users; they are retried on the next run. Invalid rows (no user_id, a duplicate user_id, an identify over 32 KB) cannot be sent as they are: they are logged in sync_log and reported, and do not fail the run.',
  action: (ctx) => {
    const dryRun = Boolean(ctx.opts.dryRun);
    checkSyncSettings(ctx, dryRun);
    return withWarehouse(ctx, (wh) =>
      syncStep(ctx, wh, { dryRun, fullResync: Boolean(ctx.opts.fullResync) }),
    );
  },
};
