/**
 * The Segment spec calls the demo data is made of. These are the shapes an SDK would send to the collector
 * (camelCase, ISO-8601 `timestamp`), not the landed rows: demo data goes through the same ingest path as
 * real traffic.
 */
export type JsonObject = Record<string, unknown>;

interface BaseEvent {
  messageId: string;
  /** ISO-8601 UTC, e.g. `2026-11-23T09:41:12.345Z`. */
  timestamp: string;
  context: JsonObject;
}

export interface TrackEvent extends BaseEvent {
  type: 'track';
  event: string;
  userId?: string;
  anonymousId?: string;
  properties: JsonObject;
}

export interface IdentifyEvent extends BaseEvent {
  type: 'identify';
  userId?: string;
  anonymousId?: string;
  traits: JsonObject;
}

export interface PageEvent extends BaseEvent {
  type: 'page';
  name: string;
  userId?: string;
  anonymousId?: string;
  properties: JsonObject;
}

export interface ScreenEvent extends BaseEvent {
  type: 'screen';
  name: string;
  userId?: string;
  anonymousId?: string;
  properties: JsonObject;
}

export interface AliasEvent extends BaseEvent {
  type: 'alias';
  previousId: string;
  userId: string;
}

export interface GroupEvent extends BaseEvent {
  type: 'group';
  groupId: string;
  userId?: string;
  anonymousId?: string;
  traits: JsonObject;
}

export type DemoEvent = TrackEvent | IdentifyEvent | PageEvent | ScreenEvent | AliasEvent | GroupEvent;

/**
 * mulberry32: a tiny, fast, well-distributed 32-bit PRNG. Math.random cannot be seeded, and the demo must
 * produce byte-identical events for the same seed so that its figures can be quoted in docs and tests.
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const DAY_MS = 86_400_000;

const DATE_RE = /^(\d{4})-(\d{2})-(\d{2})$/;

/** Parses a `YYYY-MM-DD` calendar date to the epoch milliseconds of its UTC midnight, or undefined. */
export function parseIsoDate(value: string): number | undefined {
  const m = DATE_RE.exec(value);
  if (!m) return undefined;
  const ms = Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3]));
  // Date.UTC silently rolls 2026-02-31 over to March: refuse it instead.
  if (new Date(ms).toISOString().slice(0, 10) !== value) return undefined;
  return ms;
}

export function isoDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}
