/**
 * Partial builds in any order (`--select`, `--exclude`, a partial `--full-refresh`) must not leave a stale row
 * behind: each incremental model learns what changed from the rows its inputs rebuilt since its own last build,
 * and a model skipped by some builds has to catch up on every change it missed. Hand-written cases cover the
 * orders we thought of (restart.test.ts); this walk tries random ones. Each seed lands the events of a few days
 * at a time (late arrivals, redeliveries, identifies and aliases that re-attribute history), runs a random mix of
 * complete and partial builds with D moving forward, and after every complete build compares every mart with
 * the independent oracle over all the rows landed so far. A failure names the seed and the builds that led to it.
 */
import { isDeepStrictEqual } from 'node:util';
import type { Warehouse } from '../../src/warehouse';
import { describeEachWarehouse } from '../helpers/warehouses';
import { computeOracle, DEFAULT_VARS, dayNum, toDbtVars, ymd, type RawData, type Vars } from './oracle';
import { generate, merge, rng, splitByReceived } from './generate';
import { build, diffUsers, landRaw, normalise, readMarts } from './helpers';

/** The incremental and derived models a partial build picks from (the staging views have no state). */
const MODELS = [
  'int_lifecycle__identity',
  'int_lifecycle__source_days',
  'int_lifecycle__user_days',
  'int_lifecycle__user_facts',
  'int_lifecycle__recent_activity',
  'int_lifecycle__growth_accounting_daily',
  'int_lifecycle__status_runs',
  'int_lifecycle__status_daily',
  'int_lifecycle__user_state',
];

interface Step {
  label: string;
  select?: string[];
  exclude?: string[];
  fullRefresh?: boolean;
  /** A complete build this many days before the walk's D (a backfill or a rerun of an older day). */
  daysBack?: number;
  /** A complete build with the other set of vars (every model must then recompute everyone). */
  toggleVars?: boolean;
}

/** A complete build, or one of the partial builds a data engineer runs after a fix or during a backfill. */
function randomStep(r: () => number): Step {
  const model = MODELS[Math.floor(r() * MODELS.length)];
  const roll = r();
  if (roll < 0.3) return { label: 'complete' };
  if (roll < 0.36) {
    const daysBack = 1 + Math.floor(r() * 6);
    return { label: `complete ${daysBack} days back`, daysBack };
  }
  if (roll < 0.42) return { label: 'complete, vars changed', toggleVars: true };
  if (roll < 0.62) return { label: `--exclude ${model}+`, exclude: [`${model}+`] };
  if (roll < 0.75) return { label: `--select ${model}`, select: [model] };
  if (roll < 0.9) return { label: `--select +${model}`, select: [`+${model}`] };
  return { label: `--full-refresh --select +${model}`, select: [`+${model}`], fullRefresh: true };
}

/** The vars a walk switches to and back: another time zone (every row's date moves) and other thresholds. */
const OTHER_VARS: Vars = {
  ...DEFAULT_VARS,
  timezone: 'America/Los_Angeles',
  dormantDays: 21,
  resurrectedDays: 3,
  powerDays: 12,
};

/**
 * Moves a tenth of the rows' received_at one to four days later (a loader catching up), so rows land in a
 * later batch than their date; a redelivered copy may then be received before the original and win the dedup.
 */
function delaySome(raw: RawData, r: () => number): RawData {
  const delay = <T extends { received_at: string }>(rows: T[]): T[] =>
    rows.map((row) =>
      r() < 0.1
        ? {
            ...row,
            received_at: new Date(
              Date.parse(row.received_at) + (1 + Math.floor(r() * 4)) * 86400000,
            ).toISOString(),
          }
        : row,
    );
  return {
    tracks: delay(raw.tracks),
    pages: delay(raw.pages),
    screens: delay(raw.screens),
    identifies: delay(raw.identifies),
    aliases: delay(raw.aliases),
  };
}

/**
 * Rows a walk adds on `day` on top of the generated ones: identifies that move one of a few anonymous ids
 * between users again and again (so one source changes users across builds a model skips), sometimes with a
 * createdAt that moves the user's first_seen_date back, and aliases that merge a user into another.
 */
function reattributions(r: () => number, prefix: string, day: number, users: number): RawData {
  const out = merge();
  const at = `${ymd(day)}T${String(6 + Math.floor(r() * 12)).padStart(2, '0')}:00:00.000Z`;
  const user = () => `${prefix}user${Math.floor(r() * users)}`;
  const moves = Math.floor(r() * 3);
  for (let i = 0; i < moves; i++) {
    const id = `${prefix}w${day}_${i}`;
    const traits: Record<string, unknown> = {};
    if (r() < 0.3) traits.createdAt = `${ymd(day - 30 - Math.floor(r() * 60))}T00:00:00Z`;
    out.identifies.push({
      id,
      user_id: user(),
      anonymous_id: `${prefix}anon${Math.floor(r() * 4)}`,
      timestamp: at,
      received_at: at,
      traits,
    });
  }
  if (r() < 0.15) {
    const [from, to] = [user(), user()];
    if (from !== to)
      out.aliases.push({
        id: `${prefix}wa${day}`,
        previous_id: from,
        user_id: to,
        timestamp: at,
        received_at: at,
      });
  }
  return out;
}

const USERS = 35;
// Seed 23 fails without this commit's fix (stale runs of a user left without facts, int_lifecycle__status_runs);
// seed 6 fails when the models stop checking for skipped builds (lifecycle_skipped_builds). Other seeds walk
// elsewhere: WALK_SEEDS=1,2,3 npx jest test/models/partial-builds.test.ts
const SEEDS = process.env.WALK_SEEDS ? process.env.WALK_SEEDS.split(',').map(Number) : [6, 23];

describeEachWarehouse('random sequences of partial and complete builds', ({ tw }) => {
  for (const seed of SEEDS) {
    test(`seed ${seed}: every complete build equals the oracle over everything landed`, async () => {
      const r = rng(seed);
      const all = delaySome(
        generate({ seed, users: USERS, start: '2024-01-01', end: '2024-03-31', idPrefix: `s${seed}_` }),
        r,
      );
      // each seed has its own schemas: rows received in April by one walk would otherwise sit above the
      // watermark of the next one's February builds
      const schema = `lifecycle_s${seed}`;
      const rawSchema = `cdp_s${seed}`;
      const wh: Warehouse = await tw().open();
      const history: string[] = [];
      try {
        let landed: RawData = merge();
        let rest = all;
        let day = dayNum('2024-02-10');
        const landUntil = async (d: number) => {
          const [now, later] = splitByReceived(rest, `${ymd(d)}T23:59:59.999Z`);
          rest = later;
          landed = merge(landed, now);
          await landRaw(wh, now, rawSchema);
        };
        await landUntil(day);
        let vars = DEFAULT_VARS;
        await build(wh, { schema, rawSchema, vars: { lifecycle__as_of_date: ymd(day) }, fullRefresh: true });
        history.push(`${ymd(day)} --full-refresh`);
        let completes = 0;
        while (day < dayNum('2024-03-31')) {
          day = Math.min(dayNum('2024-03-31'), day + 1 + Math.floor(r() * 4));
          const extra = reattributions(r, `s${seed}_`, day, USERS);
          landed = merge(landed, extra);
          await landRaw(wh, extra, rawSchema);
          await landUntil(day);
          // the last build is always complete, so every walk ends with a comparison
          const step: Step = day === dayNum('2024-03-31') ? { label: 'complete' } : randomStep(r);
          if (step.toggleVars) vars = vars === DEFAULT_VARS ? OTHER_VARS : DEFAULT_VARS;
          const asOf = ymd(day - (step.daysBack ?? 0));
          history.push(`${asOf} ${step.label}`);
          await build(wh, {
            schema,
            rawSchema,
            vars: { ...toDbtVars(vars), lifecycle__as_of_date: asOf },
            select: step.select,
            exclude: step.exclude,
            fullRefresh: step.fullRefresh,
          });
          if (step.select || step.exclude) continue;
          completes++;
          const actual = normalise(await readMarts(wh, schema));
          const expected = normalise(computeOracle(landed, asOf, vars));
          const where = `seed ${seed} after: ${history.join('; ')}`;
          expect({ where, diff: diffUsers(actual, expected) }).toEqual({ where, diff: [] });
          const differing = (Object.keys(expected) as Array<keyof typeof expected>).filter(
            (k) => !isDeepStrictEqual(actual[k], expected[k]),
          );
          expect({ where, differing }).toEqual({ where, differing: [] });
          expect(actual).toEqual(expected);
        }
        // the walk really mixed the two kinds of build
        expect(completes).toBeGreaterThanOrEqual(2);
        expect(history.length - 1 - completes).toBeGreaterThanOrEqual(5);
      } finally {
        await wh.close();
      }
    }, 600_000);
  }
});
