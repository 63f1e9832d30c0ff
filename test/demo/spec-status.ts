/**
 * "Which status would each user have on D", read from Segment spec events before any model is built, so the
 * demo data can be checked on its own. It adapts the events to the raw-table shape and asks the independent
 * day-by-day reading of SPEC §4 in test/models/oracle.ts: one reference implementation of the rules for every
 * test, so the demo's checks cannot drift from the models' checks. It knows nothing about personas.
 */
import {
  computeOracle,
  DEFAULT_VARS,
  STATUSES,
  type RawData,
  type Status,
  type Vars,
} from '../models/oracle';

export type { Status };
export type SpecVars = Vars;
export const SPEC_DEFAULTS: SpecVars = DEFAULT_VARS;

interface AnyEvent {
  type?: unknown;
  messageId?: unknown;
  userId?: unknown;
  anonymousId?: unknown;
  previousId?: unknown;
  event?: unknown;
  name?: unknown;
  timestamp?: unknown;
  traits?: unknown;
  properties?: unknown;
}

const str = (v: unknown): string | null => (typeof v === 'string' ? v : null);
const obj = (v: unknown): Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : {};

/** Spec events as the landing rows the models read; an event's own timestamp stands for its receipt. */
export function toRawData(events: Iterable<object>): RawData {
  const raw: RawData = { tracks: [], pages: [], screens: [], identifies: [], aliases: [] };
  for (const e of events as Iterable<AnyEvent>) {
    const id = String(e.messageId);
    const timestamp = str(e.timestamp);
    if (timestamp === null) continue;
    const base = {
      id,
      user_id: str(e.userId),
      anonymous_id: str(e.anonymousId),
      timestamp,
      received_at: timestamp,
    };
    switch (e.type) {
      case 'track':
        raw.tracks.push({ ...base, event_text: String(e.event), properties: obj(e.properties) });
        break;
      case 'page':
        raw.pages.push(base);
        break;
      case 'screen':
        raw.screens.push(base);
        break;
      case 'identify':
        raw.identifies.push({ ...base, traits: obj(e.traits) });
        break;
      case 'alias': {
        const previousId = str(e.previousId);
        if (previousId !== null && base.user_id !== null) {
          raw.aliases.push({
            id,
            previous_id: previousId,
            user_id: base.user_id,
            timestamp,
            received_at: timestamp,
          });
        }
        break;
      }
    }
  }
  return raw;
}

export function statusByUser(
  events: Iterable<object>,
  asOf: string,
  vars: SpecVars = SPEC_DEFAULTS,
): Map<string, Status> {
  const result = computeOracle(toRawData(events), asOf, vars);
  return new Map(result.user_lifecycle.map((u) => [u.user_id, u.lifecycle_status]));
}

export function statusCounts(
  events: Iterable<object>,
  asOf: string,
  vars: SpecVars = SPEC_DEFAULTS,
): Record<Status, number> {
  const counts = Object.fromEntries(STATUSES.map((s) => [s, 0])) as Record<Status, number>;
  for (const s of statusByUser(events, asOf, vars).values()) counts[s]++;
  return counts;
}
