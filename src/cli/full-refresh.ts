/**
 * When a build must recompute every user anyway, it is rebuilt in full instead.
 *
 * The package's incremental models compare the config fingerprint and the as-of date of the build that wrote
 * their rows (int_lifecycle__builds) with this build's. When a var that changes the rules differs, the package
 * version changed, or D moved back, every incremental model recomputes everyone through its incremental SQL:
 * the same rows as a full refresh, but at 1M users about 1.4x its time and twice its memory (docs/models.md).
 * So the CLI rebuilds in full then, and says why. dbt cannot make that choice for a package; with dbt, pass
 * --full-refresh after such a change.
 */
import type { FullRefreshProbe } from '../runner';
import { quoteIdent } from '../warehouse/types';
import { runnerPart } from './parts';

/** The model that records each build's D and config fingerprint (models/intermediate). */
export const BUILDS_MODEL = 'int_lifecycle__builds';

type BuildStamp = {
  next_fingerprint: string | null;
  next_as_of: string | null;
  last_fingerprint: string | null;
  last_as_of: string | null;
};

/**
 * Why this build would recompute every user, or null when it would not (or cannot tell: no stored build yet,
 * or a builds table from before the fingerprint, which the models then handle themselves).
 */
export async function recomputeReason(probe: FullRefreshProbe, schema: string): Promise<string | null> {
  const { warehouse: wh } = probe;
  const { relationKind, columnsOf } = await runnerPart();
  if ((await relationKind(wh, schema, BUILDS_MODEL)) !== 'table') return null;
  const stored = `${quoteIdent(schema)}.${quoteIdent(BUILDS_MODEL)}`;
  const columns = new Set((await columnsOf(wh, schema, BUILDS_MODEL)).map((c) => c.toLowerCase()));
  if (!columns.has('config_fingerprint') || !columns.has('as_of_date')) return null;
  // Evaluated by the warehouse from the model's own SQL, so the fingerprint is exactly the one the build
  // stores, and the dates compare as dates.
  const rows = await wh.query<BuildStamp>(
    `select
    cast(n.config_fingerprint as varchar) as next_fingerprint,
    cast(n.as_of_date as varchar) as next_as_of,
    cast(l.config_fingerprint as varchar) as last_fingerprint,
    cast(l.as_of_date as varchar) as last_as_of
from (
${probe.compile(BUILDS_MODEL)}
) as n
cross join (
    select b.config_fingerprint, b.as_of_date
    from ${stored} as b
    order by b.built_at desc
    limit 1
) as l`,
  );
  const r = rows[0];
  if (!r || r.last_fingerprint === null) return null;
  if (r.next_fingerprint !== r.last_fingerprint) {
    return `${describeChange(r.last_fingerprint, r.next_fingerprint ?? '')} since the last build, so every user is recomputed`;
  }
  if (r.next_as_of !== null && r.last_as_of !== null && r.next_as_of < r.last_as_of) {
    return `the as-of date ${r.next_as_of} is before the last build's (${r.last_as_of}), so every user is recomputed`;
  }
  return null;
}

/** Fingerprint part names (lifecycle_config_fingerprint) as the vars a data engineer sets. */
const PART_NAMES: Record<string, string> = {
  tz: 'lifecycle__timezone',
  new: 'lifecycle__new_days',
  risk: 'lifecycle__at_risk_days',
  dormant: 'lifecycle__dormant_days',
  churn: 'lifecycle__churn_days',
  resurrected: 'lifecycle__resurrected_days',
  power: 'lifecycle__power_days',
  decline_min: 'lifecycle__decline_min_baseline_days',
  decline_pct: 'lifecycle__decline_ratio_pct',
  churn_events: 'lifecycle__churn_events',
  non_activity: 'lifecycle__non_activity_events',
  core: 'lifecycle__core_events',
  purchase: 'lifecycle__purchase_events',
  plan: 'lifecycle__plan_trait',
  wau: 'lifecycle__wau_days',
  mau: 'lifecycle__mau_days',
};

function parts(fingerprint: string): Map<string, string> | null {
  const out = new Map<string, string>();
  for (const p of fingerprint.split('|')) {
    const eq = p.indexOf('=');
    if (eq <= 0) return null;
    out.set(p.slice(0, eq), p.slice(eq + 1));
  }
  return out;
}

/** "lifecycle__new_days changed (7 → 8)", or the package version; a generic phrase when the parts do not parse. */
export function describeChange(last: string, next: string): string {
  const a = parts(last);
  const b = parts(next);
  // A value holding the separator (an event name with "|") makes the split ambiguous: say less, not wrong.
  const known = (m: Map<string, string>) => [...m.keys()].every((k) => k === 'version' || k in PART_NAMES);
  if (!a || !b || !known(a) || !known(b)) return 'the lifecycle vars or the package version changed';
  const changed: string[] = [];
  if (a.get('version') !== b.get('version')) {
    changed.push(
      `the package's model version changed (${a.get('version') ?? '?'} → ${b.get('version') ?? '?'})`,
    );
  }
  // lifecycle_list_text writes a list as [a","b]: shown as [a, b]
  const show = (v: string | undefined) => (v === undefined ? 'unset' : v.split('","').join(', '));
  for (const [key, name] of Object.entries(PART_NAMES)) {
    const before = a.get(key);
    const after = b.get(key);
    if (before !== after) changed.push(`${name} changed (${show(before)} → ${show(after)})`);
  }
  return changed.length ? changed.join(', ') : 'the lifecycle vars or the package version changed';
}
