/**
 * The grant a PostgreSQL permission error calls for (src/warehouse/privileges.ts), worked out on a real server
 * for a role refused, and left unnamed where it cannot be told.
 */
import { randomBytes } from 'node:crypto';
import { Client } from 'pg';
import { diagnosePrivilege } from '../src/warehouse/privileges';
import { pgAdmin, pgDatabaseUrl, pgEnabled } from './helpers/warehouses';

const suffix = `${process.pid}_${randomBytes(3).toString('hex')}`;
const db = `cdpl_privs_${suffix}`;
// a name SQL must quote
const role = `Cdpl Privs ${suffix}`;

(pgEnabled() ? describe : describe.skip)('the grant a permission error calls for', () => {
  let client: Client;
  beforeAll(async () => {
    await pgAdmin([`create database ${db}`, `create role "${role}" login`]);
    await pgAdmin(
      [
        'create schema a',
        'create schema b',
        'create table a.t (x integer)',
        'create table b.t (x integer)',
        `grant usage on schema a, b to "${role}"`,
        `grant select on a.t to "${role}"`,
      ],
      pgDatabaseUrl(db),
    );
    const u = new URL(pgDatabaseUrl(db));
    u.username = encodeURIComponent(role);
    client = new Client({ connectionString: u.toString() });
    await client.connect();
  });
  afterAll(async () => {
    await client.end();
    await pgAdmin([`drop database if exists ${db} with (force)`, `drop role if exists "${role}"`]);
  });

  const refused = async (sql: string): Promise<string> => {
    const err = await client.query(sql).then(
      () => new Error(`${sql} was not refused`),
      (e: unknown) => e as Error,
    );
    expect((err as { code?: string }).code).toBe('42501');
    return err.message;
  };
  const diagnose = (message: string, sql: string) =>
    diagnosePrivilege(
      async (q, params) => (await client.query(q, params)).rows as Array<Record<string, unknown>>,
      message,
      sql,
    );

  it('names the privilege the statement needs on the table it names, and quotes the role', async () => {
    const sql = 'insert into "a"."t" (x) values (1)';
    const found = await diagnose(await refused(sql), sql);
    expect(found?.grant).toBe(`grant insert on a.t to "${role}"`);
    const select = 'select * from b.t';
    expect((await diagnose(await refused(select), select))?.grant).toBe(`grant select on b.t to "${role}"`);
  });

  it('names CREATE, and USAGE it also lacks, on the schema a statement creates in', async () => {
    await pgAdmin('create schema c', pgDatabaseUrl(db));
    const sql = '/* a comment */ create table if not exists "c"."n" (x integer)';
    expect((await diagnose(await refused(sql), sql))?.grant).toBe(
      `grant usage, create on schema c to "${role}"`,
    );
    const read = 'select 1 from c.n';
    expect((await diagnose('permission denied for schema c', read))?.grant).toBe(
      `grant usage on schema c to "${role}"`,
    );
  });

  it('names a table on the search path when the statement does not qualify it, and nothing it cannot tell', async () => {
    await client.query('set search_path = a, b');
    await pgAdmin(`revoke select on a.t from "${role}"`, pgDatabaseUrl(db));
    const sql = 'delete from t';
    const message = await refused(sql);
    expect((await diagnose(message, sql))?.grant).toBe(`grant delete on a.t to "${role}"`);
    // two tables of that name, both refusing it
    const both = 'select * from a.t join b.t using (x)';
    expect(await diagnose(await refused(both), both)).toBeUndefined();
    // a table the role may use after all (a view's owner, a column privilege or a policy refused)
    await pgAdmin(`grant all on a.t to "${role}"`, pgDatabaseUrl(db));
    expect(await diagnose(message, sql)).toBeUndefined();
    // messages of another kind, or a database refused on anything but creating a schema
    expect(await diagnose('permission denied for sequence s', 'select nextval($1)')).toBeUndefined();
    expect(await diagnose(`permission denied for database ${db}`, 'select 1')).toBeUndefined();
  });
});
