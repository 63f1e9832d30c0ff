/**
 * A loader with the least privileges the README names: USAGE on a raw schema another role owns and INSERT on
 * its landing tables, which that owner created. PostgreSQL checks CREATE on the schema even for
 * `create table if not exists` of a table that exists, so `load` and `serve` must not ask for it.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { runCli, spawnTs } from '../helpers/cli';
import { ensureRawTables, openWarehouse } from '../../src/warehouse';
import { pgAdmin, pgDatabaseUrl, pgEnabled } from '../helpers/warehouses';
import { expectExit, sampleEvents } from './fake-cdp';

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const db = `cdpl_loader_${suffix}`;
const role = `cdpl_loader_${suffix}`;
const usageOnly = `cdpl_noinsert_${suffix}`;

(pgEnabled() ? describe : describe.skip)(
  'a loader role with USAGE on the raw schema and INSERT on its tables',
  () => {
    let dir: string;
    let url: string;
    beforeAll(async () => {
      dir = fs.mkdtempSync(path.join(os.tmpdir(), 'cdpl-loader-role-'));
      await pgAdmin([`create database ${db}`, `create role ${role} login`, `create role ${usageOnly} login`]);
      await pgAdmin(
        ['revoke create on schema public from public', `revoke create on database ${db} from public`],
        pgDatabaseUrl(db),
      );
      // the landing tables, made by the role that owns the schema (the admin here), as the tool makes them
      const owner = await openWarehouse(pgDatabaseUrl(db));
      try {
        await ensureRawTables(owner, 'cdp');
      } finally {
        await owner.close();
      }
      await pgAdmin(
        [
          `grant usage on schema cdp to ${role}`,
          `grant insert on all tables in schema cdp to ${role}`,
          `grant usage on schema cdp to ${usageOnly}`,
        ],
        pgDatabaseUrl(db),
      );
      url = pgDatabaseUrl(db, role);
    });
    afterAll(async () => {
      await pgAdmin([
        `drop database if exists ${db} with (force)`,
        `drop role if exists ${role}`,
        `drop role if exists ${usageOnly}`,
      ]);
      fs.rmSync(dir, { recursive: true, force: true });
    });

    const count = async (table: string): Promise<number> => {
      const wh = await openWarehouse(pgDatabaseUrl(db));
      try {
        const [r] = await wh.query<{ n: number }>(`select count(*) as n from cdp.${table}`);
        return Number(r.n);
      } finally {
        await wh.close();
      }
    };

    it('load lands events, and a line it rejects in rejected_events', async () => {
      const lines = sampleEvents(['u1', 'u2'], () => 0).map((e) => JSON.stringify(e));
      fs.writeFileSync(path.join(dir, 'e.ndjson'), [...lines, 'not json'].join('\n') + '\n');
      const r = await runCli(['load', 'e.ndjson', '--warehouse', url], { cwd: dir });
      expectExit(r, 0);
      expect(r.stderr).not.toMatch(/^error:/m);
      expect(await count('rejected_events')).toBe(1);
      expect(await count('tracks')).toBeGreaterThan(0);
    });

    it('serve starts and lands a batch, and keeps a refused event in rejected_events', async () => {
      const before = { tracks: await count('tracks'), rejected: await count('rejected_events') };
      const child: ChildProcess = spawnTs(
        'src/cli/run.ts',
        ['serve', '--warehouse', url, '--port', '0', '--host', '127.0.0.1'],
        { cwd: dir, env: { LIFECYCLE_WRITE_KEYS: 'k' } },
      );
      const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
      let out = '';
      let err = '';
      child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr?.on('data', (d: Buffer) => (err += d.toString()));
      try {
        const until = Date.now() + 60_000;
        let base: string | undefined;
        while (!base) {
          base = /"url":"(http:[^"]+)"/.exec(out)?.[1];
          if (base) break;
          if (child.exitCode !== null || Date.now() > until) {
            throw new Error(`serve did not start (exit ${String(child.exitCode)}): ${err}${out}`);
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        const auth = `Basic ${Buffer.from('k:').toString('base64')}`;
        const res = await fetch(`${base}/v1/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', authorization: auth },
          body: JSON.stringify({
            batch: [...sampleEvents(['s1'], () => 0), { type: 'track', userId: 's2', messageId: 'no-event' }],
          }),
        });
        expect(res.status).toBe(200);
        expect(await count('tracks')).toBeGreaterThan(before.tracks);
        expect(await count('rejected_events')).toBe(before.rejected + 1);
      } finally {
        child.kill('SIGTERM');
        await exited;
      }
      expect(err).not.toMatch(/error:|permission denied/);
    });

    it('a loader without INSERT is refused when serve starts, not on each event, with the grant it lacks', async () => {
      const r = await runCli(['serve', '--warehouse', pgDatabaseUrl(db, usageOnly), '--port', '0'], {
        cwd: dir,
        env: { ...process.env, LIFECYCLE_WRITE_KEYS: 'k' },
      });
      expect(r.code).toBe(1);
      expect(r.stderr.split('\n').filter((l) => l.startsWith('error:'))).toEqual([
        `error: The warehouse role lacks a privilege (permission denied for table tracks): grant insert on cdp.tracks to ${usageOnly}.`,
      ]);
    });
  },
);
