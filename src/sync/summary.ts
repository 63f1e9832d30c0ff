import type { SyncSummary } from './index';
import { NO_WRITE_KEY } from './state';
import { printable } from '../util/printable';

const n = (v: number): string => v.toLocaleString('en-US');

/**
 * A transition's label, in the summary and in sync_runs.transitions. A user no status was delivered to before is
 * "(not synced)", never "(new)": next to the status `new` that read as a status.
 */
export function transitionLabel(from: string | null, to: string | null): string {
  return `${from ?? '(not synced)'} -> ${to ?? '(none)'}`;
}

/** A user id as the summary shows it: a 40 KB id (the reason its identify is invalid) would fill the terminal. */
export function shortUserId(id: string): string {
  return printable(id.length <= 64 ? id : `${id.slice(0, 48)}… (${n(id.length)} characters)`);
}

/** The end-of-run text the CLI prints (plain text, no colour: it also goes to cron logs). */
export function formatSyncSummary(s: SyncSummary): string {
  const target = s.target === 'segment' ? 'Segment' : 'RudderStack';
  const lines: string[] = [];
  const head = s.dryRun ? `Dry run of the sync to ${target}` : `Sync to ${target}`;
  // a keyless dry run with nothing synced yet compares with no destination: say so rather than show its key
  const keyless = `:${NO_WRITE_KEY}`;
  const where = s.destination.endsWith(keyless)
    ? `${s.destination.slice(0, -keyless.length)}, nothing synced there yet: every user is new`
    : s.destination;
  lines.push(`${head} (${where}), run ${s.runId}: ${s.status}`);
  const rows: Array<[string, number]> = [
    ['considered', s.considered],
    ['changed', s.changed],
  ];
  if (s.dryRun) rows.push(['would send', s.changed - s.invalid]);
  else rows.push(['sent', s.sent], ['failed', s.failed]);
  rows.push(['invalid', s.invalid]);
  // A run that stopped early leaves the rest changed: the next run picks it up.
  const left = s.dryRun ? 0 : s.changed - s.sent - s.failed - s.invalid;
  if (left > 0) rows.push(['not tried', left]);
  const width = Math.max(...rows.map(([, v]) => n(v).length));
  for (const [label, v] of rows) lines.push(`  ${label.padEnd(11)}${n(v).padStart(width)}`);
  if (s.transitions.length > 0) {
    lines.push('  changes by lifecycle status (last delivered -> now):');
    // the same status on both sides: another trait changed, the row failed last time, or --full-resync
    const labels = s.transitions.map((t) =>
      t.from !== null && t.from === t.to ? `${t.from} (status unchanged)` : transitionLabel(t.from, t.to),
    );
    const lw = Math.max(...labels.map((l) => l.length));
    const cw = Math.max(...s.transitions.map((t) => n(t.count).length));
    s.transitions.forEach((t, i) => lines.push(`    ${labels[i].padEnd(lw)}  ${n(t.count).padStart(cw)}`));
  }
  if (s.problemGroups.length > 0) {
    // One line per reason with its count and a few users: the CDP being down is one reason, not 1,000 lines.
    lines.push('  problems:');
    for (const g of s.problemGroups) {
      const users = g.userIds.map((u) => (u === null ? '(no user_id)' : shortUserId(u))).join(', ');
      const more = g.count > g.userIds.length ? ` and ${n(g.count - g.userIds.length)} more` : '';
      lines.push(`    ${g.status} ${n(g.count)} (${users}${more}): ${printable(g.error)}`);
    }
    if (s.otherProblems > 0) lines.push(`    … ${n(s.otherProblems)} more with other reasons`);
  }
  if (s.aborted) lines.push(`  stopped early: ${s.aborted}`);
  if (s.failed > 0) {
    lines.push(
      `  ${n(s.failed)} row(s) failed: they stay marked failed in sync_state and are sent again on the next run; details in sync_log (run_id = '${s.runId}').`,
    );
  }
  if (s.dryRun) lines.push('  nothing was sent (dry run); the diff is in sync_log with status dry_run.');
  return lines.join('\n');
}
