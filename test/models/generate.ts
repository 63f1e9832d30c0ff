import type { AliasRow, IdentifyRow, RawData, TrackRow, ViewRow } from './oracle';
import { dayNum, ymd } from './oracle';

/** A small seeded PRNG (mulberry32), so a failing case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export interface GenOptions {
  seed: number;
  users: number;
  /** Events are dated in [start, end] (YYYY-MM-DD, UTC); `receivedBy` caps received_at (late rows excluded). */
  start: string;
  end: string;
  idPrefix?: string;
}

const EVENTS = [
  'Viewed Item',
  'Searched',
  'Order Completed',
  'Account Deleted',
  'Email Delivered',
  'Used Core',
  'App Uninstalled',
];
const REVENUES: unknown[] = [
  { revenue: 19.99 },
  { revenue: '12.345' },
  { revenue: 'n/a', total: '7.5' },
  { total: 3 },
  { value: ' 10 ' },
  { revenue: true, value: '1e2' },
  {},
  { revenue: null, total: null, value: '-4.005' },
  { revenue: 100 },
  // exponents: beyond a double on PostgreSQL (the build must not fail), tiny, exact at a half cent, zero
  { revenue: '1e400', total: '2.5e1' },
  { revenue: '1e-400', total: 9 },
  { value: '1.005e0' },
  { revenue: '-7.125E+1' },
  { revenue: '0e500', value: 3 },
];

/**
 * Random but adversarial raw data: users with bursts and long gaps (dormant, churned, returns), churn signals,
 * anonymous activity later identified or aliased (with a hop), duplicates, late arrivals, events near midnight
 * (so the time zone matters), createdAt traits, plans, purchases with every revenue shape.
 */
export function generate(opts: GenOptions): RawData {
  const r = rng(opts.seed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)];
  const p = opts.idPrefix ?? '';
  const start = dayNum(opts.start);
  const end = dayNum(opts.end);
  const span = end - start + 1;
  const out: RawData = { tracks: [], pages: [], screens: [], identifies: [], aliases: [] };
  let seq = 0;
  const id = () => `${p}m${++seq}`;
  const at = (day: number) => {
    // a third of events in the hour around UTC midnight, where UTC, Los Angeles and Tokyo disagree on the date
    const minutes =
      r() < 0.33
        ? r() < 0.5
          ? 23 * 60 + Math.floor(r() * 60)
          : Math.floor(r() * 60)
        : Math.floor(r() * 1440);
    return new Date(day * 86400000 + minutes * 60000 + Math.floor(r() * 60) * 1000).toISOString();
  };
  const received = (ts: string) => new Date(Date.parse(ts) + Math.floor(r() * 120) * 1000).toISOString();

  for (let n = 0; n < opts.users; n++) {
    const user = `${p}user${n}`;
    const anon = `${p}anon${n}`;
    const kind = r();
    // activity days: a dense burst, a sparse tail, sometimes a long pause and a return
    const days = new Set<number>();
    const first = start + Math.floor(r() * span);
    const dense = kind < 0.25;
    let d = first;
    while (d <= end) {
      days.add(d);
      const gap = dense
        ? 1 + Math.floor(r() * 2)
        : r() < 0.15
          ? 20 + Math.floor(r() * 90)
          : 1 + Math.floor(r() * 9);
      d += gap;
      if (r() < 0.04) break;
    }
    const anonymousFirst = r() < 0.3;
    const sortedDays = [...days].sort((a, b) => a - b);
    sortedDays.forEach((day, i) => {
      const events = 1 + Math.floor(r() * 3);
      for (let e = 0; e < events; e++) {
        const ts = at(day);
        const isAnon = anonymousFirst && i < 2;
        const kindRoll = r();
        if (kindRoll < 0.15) {
          const row: ViewRow = {
            id: id(),
            user_id: isAnon ? null : user,
            anonymous_id: anon,
            timestamp: ts,
            received_at: received(ts),
          };
          (r() < 0.5 ? out.pages : out.screens).push(row);
          continue;
        }
        let event = pick(EVENTS);
        if (event === 'Account Deleted' || event === 'App Uninstalled')
          event = r() < 0.25 ? event : 'Viewed Item';
        const row: TrackRow = {
          id: id(),
          user_id: isAnon ? null : user,
          anonymous_id: anon,
          event_text: event,
          timestamp: ts,
          received_at: received(ts),
          properties: event === 'Order Completed' ? (pick(REVENUES) as Record<string, unknown>) : {},
        };
        out.tracks.push(row);
        // a redelivery: the same messageId, received later (the first copy must win)
        if (r() < 0.05)
          out.tracks.push({
            ...row,
            received_at: new Date(Date.parse(row.received_at) + 3600000).toISOString(),
            event_text: 'Viewed Item',
          });
      }
    });
    // identify: links the anonymous id (sometimes only after the anonymous activity), carries traits
    if (anonymousFirst || r() < 0.6) {
      const idDay = sortedDays.length > 2 ? sortedDays[2] : first;
      const ts = at(idDay);
      const traits: Record<string, unknown> = {};
      if (r() < 0.4)
        traits[r() < 0.5 ? 'createdAt' : 'created_at'] = `${ymd(first - Math.floor(r() * 20))}T08:00:00Z`;
      if (r() < 0.1) traits.createdAt = 'yesterday';
      // year 0 (JavaScript's toISOString of a zero date): not a date on PostgreSQL, so not one anywhere
      else if (r() < 0.05) traits.created_at = '0000-01-01T00:00:00Z';
      if (r() < 0.6) traits.plan = pick(['free', 'pro', 'team', null, { tier: 'pro' }, ['team']]);
      const row: IdentifyRow = {
        id: id(),
        user_id: user,
        anonymous_id: anon,
        timestamp: ts,
        received_at: received(ts),
        traits,
      };
      out.identifies.push(row);
      if (r() < 0.3) {
        const ts2 = at(Math.min(end, idDay + 5 + Math.floor(r() * 30)));
        out.identifies.push({
          id: id(),
          user_id: user,
          anonymous_id: anon,
          timestamp: ts2,
          received_at: received(ts2),
          traits: { plan: pick(['pro', 'enterprise', 3]) },
        });
      }
    }
    // an alias merging this user into another one (the single hop), now and then
    if (n > 0 && r() < 0.08) {
      const ts = at(first + Math.floor(r() * Math.max(1, end - first)));
      const row: AliasRow = {
        id: id(),
        previous_id: user,
        user_id: `${p}user${Math.floor(r() * n)}`,
        timestamp: ts,
        received_at: received(ts),
      };
      out.aliases.push(row);
    }
    // an anonymous visitor only known through an alias
    if (r() < 0.05) {
      const ts = at(first);
      out.tracks.push({
        id: id(),
        user_id: null,
        anonymous_id: `${p}lonely${n}`,
        event_text: 'Viewed Item',
        timestamp: ts,
        received_at: received(ts),
        properties: {},
      });
      out.aliases.push({
        id: id(),
        previous_id: `${p}lonely${n}`,
        user_id: user,
        timestamp: ts,
        received_at: received(ts),
      });
    }
  }
  return out;
}

/** Splits raw data by received_at: rows received up to `cutoff` (ISO) and the rest. */
export function splitByReceived(raw: RawData, cutoff: string): [RawData, RawData] {
  const c = Date.parse(cutoff);
  const a: RawData = { tracks: [], pages: [], screens: [], identifies: [], aliases: [] };
  const b: RawData = { tracks: [], pages: [], screens: [], identifies: [], aliases: [] };
  for (const k of Object.keys(a) as Array<keyof RawData>) {
    for (const row of raw[k] as Array<{ received_at: string }>) {
      ((Date.parse(row.received_at) <= c ? a[k] : b[k]) as Array<{ received_at: string }>).push(row);
    }
  }
  return [a, b];
}

export function merge(...parts: RawData[]): RawData {
  const out: RawData = { tracks: [], pages: [], screens: [], identifies: [], aliases: [] };
  for (const part of parts)
    for (const k of Object.keys(out) as Array<keyof RawData>) (out[k] as unknown[]).push(...part[k]);
  return out;
}
