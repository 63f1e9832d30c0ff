/**
 * A deliberately plain, in-memory reading of SPEC §4.2–§4.4 over Segment spec events, written for the tests
 * and independent of the generator: it knows nothing about personas, only about events. It answers "which
 * status would each user have on D" so the demo data can be checked before any model is built.
 */
export type Status = 'churned' | 'dormant' | 'new' | 'resurrected' | 'at_risk' | 'power' | 'active';

export interface SpecVars {
  newDays: number;
  atRiskDays: number;
  dormantDays: number;
  churnDays: number;
  resurrectedDays: number;
  powerDays: number;
  declineMinBaselineDays: number;
  declineRatioPct: number;
  churnEvents: string[];
  nonActivityEvents: string[];
}

export const SPEC_DEFAULTS: SpecVars = {
  newDays: 7,
  atRiskDays: 7,
  dormantDays: 30,
  churnDays: 90,
  resurrectedDays: 7,
  powerDays: 20,
  declineMinBaselineDays: 6,
  declineRatioPct: 50,
  churnEvents: ['Account Deleted', 'App Uninstalled'],
  nonActivityEvents: [],
};

interface AnyEvent {
  type?: unknown;
  messageId?: unknown;
  userId?: unknown;
  anonymousId?: unknown;
  previousId?: unknown;
  event?: unknown;
  timestamp?: unknown;
  traits?: unknown;
}

const DAY = 86_400_000;
const dayNum = (iso: string): number => Math.floor(Date.parse(iso.slice(0, 10) + 'T00:00:00Z') / DAY);

export interface UserFacts {
  firstSeen: number;
  activity: Set<number>;
  churnSignals: number[];
}

/** Per canonical user id: first seen day, activity days, churn signal days (day numbers since epoch). */
export function userFacts(
  events: Iterable<object>,
  asOf: string,
  vars: SpecVars = SPEC_DEFAULTS,
): Map<string, UserFacts> {
  const D = dayNum(asOf);
  const seen = new Set<string>();
  const list: AnyEvent[] = [];
  for (const raw of events) {
    const e = raw as AnyEvent;
    const id = String(e.messageId);
    if (seen.has(id)) continue;
    seen.add(id);
    if (typeof e.timestamp !== 'string' || dayNum(e.timestamp) > D) continue;
    list.push(e);
  }
  // Latest identify per anonymousId, latest alias per previousId (ties are impossible in the demo data).
  const byAnon = new Map<string, { ts: string; userId: string }>();
  const byPrev = new Map<string, { ts: string; userId: string }>();
  for (const e of list) {
    const ts = e.timestamp as string;
    if (e.type === 'identify' && typeof e.anonymousId === 'string' && typeof e.userId === 'string') {
      const cur = byAnon.get(e.anonymousId);
      if (!cur || cur.ts <= ts) byAnon.set(e.anonymousId, { ts, userId: e.userId });
    }
    if (e.type === 'alias' && typeof e.previousId === 'string' && typeof e.userId === 'string') {
      const cur = byPrev.get(e.previousId);
      if (!cur || cur.ts <= ts) byPrev.set(e.previousId, { ts, userId: e.userId });
    }
  }
  const canonical = (e: AnyEvent): string | undefined => {
    let id: string | undefined = typeof e.userId === 'string' ? e.userId : undefined;
    if (id === undefined && typeof e.anonymousId === 'string') {
      id = byAnon.get(e.anonymousId)?.userId ?? byPrev.get(e.anonymousId)?.userId;
    }
    if (id === undefined) return undefined;
    return byPrev.get(id)?.userId ?? id;
  };
  const facts = new Map<string, UserFacts>();
  const get = (id: string): UserFacts => {
    let f = facts.get(id);
    if (!f) facts.set(id, (f = { firstSeen: Infinity, activity: new Set(), churnSignals: [] }));
    return f;
  };
  for (const e of list) {
    if (e.type === 'alias' || e.type === 'group') continue;
    if (e.type === 'identify' && typeof e.userId !== 'string') continue;
    const id = canonical(e);
    if (id === undefined) continue;
    const f = get(id);
    const d = dayNum(e.timestamp as string);
    f.firstSeen = Math.min(f.firstSeen, d);
    if (e.type === 'identify') {
      const traits = (e.traits ?? {}) as Record<string, unknown>;
      for (const key of ['createdAt', 'created_at']) {
        const v = traits[key];
        if (typeof v === 'string' && /^\d{4}-\d{2}-\d{2}/.test(v))
          f.firstSeen = Math.min(f.firstSeen, dayNum(v));
      }
      continue;
    }
    if (e.type === 'track') {
      const name = String(e.event);
      if (vars.churnEvents.includes(name)) {
        f.churnSignals.push(d);
        continue;
      }
      if (vars.nonActivityEvents.includes(name)) continue;
    }
    f.activity.add(d);
  }
  return facts;
}

/** SPEC §4.4 applied on day D to one user's facts. */
export function statusOn(f: UserFacts, D: number, vars: SpecVars = SPEC_DEFAULTS): Status {
  const act = [...f.activity].filter((d) => d <= D).sort((a, b) => a - b);
  const signals = f.churnSignals.filter((d) => d <= D);
  const lastActive = act.length ? act[act.length - 1] : undefined;
  const lastSeen = lastActive ?? f.firstSeen;
  const inactive = D - lastSeen;
  const lastSignal = signals.length ? Math.max(...signals) : undefined;
  const count = (a: number, b: number) => act.filter((d) => d >= a && d <= b).length;
  if ((lastSignal !== undefined && lastSignal >= lastSeen) || inactive >= vars.churnDays) return 'churned';
  if (inactive >= vars.dormantDays) return 'dormant';
  if (D - f.firstSeen < vars.newDays) return 'new';
  for (let i = 0; i < act.length; i++) {
    const r = act[i];
    if (r < D - vars.resurrectedDays + 1 || r <= f.firstSeen) continue;
    const p = i > 0 ? act[i - 1] : f.firstSeen;
    if (r - 1 - p >= vars.dormantDays || signals.some((s) => s >= p && s <= r - 1)) return 'resurrected';
  }
  const a7 = count(D - 6, D);
  const a28 = count(D - 27, D);
  const baseline = a28 - a7;
  if (
    inactive >= vars.atRiskDays ||
    (baseline >= vars.declineMinBaselineDays && 300 * a7 <= vars.declineRatioPct * baseline)
  ) {
    return 'at_risk';
  }
  if (a28 >= vars.powerDays) return 'power';
  return 'active';
}

export function statusCounts(
  events: Iterable<object>,
  asOf: string,
  vars: SpecVars = SPEC_DEFAULTS,
): Record<Status, number> {
  const counts: Record<Status, number> = {
    churned: 0,
    dormant: 0,
    new: 0,
    resurrected: 0,
    at_risk: 0,
    power: 0,
    active: 0,
  };
  const D = dayNum(asOf);
  for (const f of userFacts(events, asOf, vars).values()) counts[statusOn(f, D, vars)]++;
  return counts;
}

export function statusByUser(
  events: Iterable<object>,
  asOf: string,
  vars: SpecVars = SPEC_DEFAULTS,
): Map<string, Status> {
  const D = dayNum(asOf);
  const out = new Map<string, Status>();
  for (const [id, f] of userFacts(events, asOf, vars)) out.set(id, statusOn(f, D, vars));
  return out;
}
