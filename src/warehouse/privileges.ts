import type { MissingPrivilege } from '../errors';

/**
 * Works out the grant a PostgreSQL permission error (SQLSTATE 42501) calls for, from its message, the statement
 * it refused and the catalog, asked on the same connection once the statement (and its transaction) ended:
 *
 * - `permission denied for schema X`: CREATE (and USAGE, which using what it creates needs) when the statement
 *   creates a table or view in X, else USAGE; only what the role lacks of it.
 * - `permission denied for table T` (or view): the privilege the statement needs on T, which PostgreSQL does not
 *   name: INSERT for the table an `insert` or `copy … from stdin` writes, UPDATE, DELETE or TRUNCATE for the one an
 *   `update`, `delete` or `truncate` changes (then SELECT, for its conditions, once it has that), SELECT for any
 *   other. T is the one the statement names, schema-qualified as cdp-lifecycle always writes it, or one the
 *   views it names read (a model's view over the raw tables), as far as the role owns those views: PostgreSQL
 *   checks what a view reads as its owner.
 * - `permission denied for database D`, on `create schema`: CREATE on D.
 *
 * The role is current_user. Undefined whenever that is not certain (another message, two tables of that name
 * that both refuse it, one reached through another role's view, a privilege the role holds after all: a column
 * privilege or a row-level policy refused), and the caller keeps the warehouse's own message.
 */
export async function diagnosePrivilege(
  query: (sql: string, params: unknown[]) => Promise<Array<Record<string, unknown>>>,
  message: string,
  statement: string,
): Promise<MissingPrivilege | undefined> {
  const why = message.split('\n')[0];
  const sql = stripLeadingComments(statement);
  let m = /^permission denied for schema (.+)$/.exec(why);
  if (m) {
    const schema = m[1];
    const [r] = await query(
      `select quote_ident(current_user) as role, quote_ident(nspname) as name,
         has_schema_privilege(oid, 'USAGE') as usage, has_schema_privilege(oid, 'CREATE') as "create"
       from pg_catalog.pg_namespace where nspname = $1`,
      [schema],
    );
    if (!r) return undefined;
    const needs = createdIn(sql) === schema ? ['usage', 'create'] : ['usage'];
    const lacking = needs.filter((p) => r[p] !== true);
    if (lacking.length === 0) return undefined;
    const name = String(r.name);
    return {
      role: String(r.role),
      kind: 'schema',
      object: schema,
      name,
      grant: `grant ${lacking.join(', ')} on schema ${name} to ${String(r.role)}`,
    };
  }
  m = /^permission denied for (?:table|relation|view|materialized view) (.+)$/.exec(why);
  if (m) {
    const table = m[1];
    const named = relationsNamed(sql);
    // the relations the statement names (or, naming none, those of that name on the search path), and the ones
    // their views read, as far as each view's owner is the role: PostgreSQL checks a view's reads as its owner
    const rows = await query(
      `with recursive reach(oid, via) as (
         select c.oid, null::oid
         from pg_catalog.pg_class as c join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
         where (n.nspname, c.relname) in (select * from unnest($2::text[], $3::text[]))
           or (cardinality($2::text[]) = 0 and c.relname = $1 and pg_catalog.pg_table_is_visible(c.oid))
         union
         select d.refobjid, v.relowner
         from reach as r
         join pg_catalog.pg_class as v on v.oid = r.oid and v.relkind in ('v', 'm')
         join pg_catalog.pg_rewrite as w on w.ev_class = v.oid
         join pg_catalog.pg_depend as d on d.classid = 'pg_catalog.pg_rewrite'::regclass and d.objid = w.oid
           and d.refclassid = 'pg_catalog.pg_class'::regclass and d.refobjid <> v.oid
       )
       select distinct quote_ident(current_user) as role, n.nspname as schema, r.via is null as named,
         quote_ident(n.nspname) || '.' || quote_ident(c.relname) as name,
         has_table_privilege(c.oid, 'SELECT') as "select", has_table_privilege(c.oid, 'INSERT') as "insert",
         has_table_privilege(c.oid, 'UPDATE') as "update", has_table_privilege(c.oid, 'DELETE') as "delete",
         has_table_privilege(c.oid, 'TRUNCATE') as "truncate"
       from reach as r
       join pg_catalog.pg_class as c on c.oid = r.oid
       join pg_catalog.pg_namespace as n on n.oid = c.relnamespace
       where c.relname = $1
         and (r.via is null or r.via = (select oid from pg_catalog.pg_roles where rolname = current_user))`,
      [table, named.map((x) => x[0]), named.map((x) => x[1])],
    );
    const found = new Map<string, MissingPrivilege>();
    for (const r of rows) {
      const { certain, possible } =
        r.named === true ? tableNeeds(sql, String(r.schema), table) : { certain: ['select'], possible: [] };
      let lacking = certain.filter((p) => r[p] !== true);
      if (lacking.length === 0) lacking = possible.filter((p) => r[p] !== true);
      if (lacking.length === 0) continue;
      const name = String(r.name);
      const grant = `grant ${lacking.join(', ')} on ${name} to ${String(r.role)}`;
      // (one table reached both by name and through a view needs what its name needs, which includes SELECT)
      if (found.has(name) && r.named !== true) continue;
      found.set(name, {
        role: String(r.role),
        kind: 'table',
        object: `${String(r.schema)}.${table}`,
        name,
        grant,
      });
    }
    return found.size === 1 ? [...found.values()][0] : undefined;
  }
  m = /^permission denied for database (.+)$/.exec(why);
  if (m && /^create\s+schema\b/i.test(sql)) {
    const [r] = await query(
      `select quote_ident(current_user) as role, quote_ident(datname) as name,
         has_database_privilege(oid, 'CREATE') as "create"
       from pg_catalog.pg_database where datname = $1`,
      [m[1]],
    );
    if (!r || r.create === true) return undefined;
    const name = String(r.name);
    return {
      role: String(r.role),
      kind: 'database',
      object: m[1],
      name,
      grant: `grant create on database ${name} to ${String(r.role)}`,
    };
  }
  return undefined;
}

const IDENT = String.raw`("(?:[^"]|"")+"|[A-Za-z_][A-Za-z0-9_$]*)`;

/** A name as PostgreSQL reads it: quoted as written, else folded to lower case. */
function identName(token: string): string {
  return token.startsWith('"') ? token.slice(1, -1).replace(/""/g, '"') : token.toLowerCase();
}

function stripLeadingComments(sql: string): string {
  let s = sql;
  for (;;) {
    const t = s.replace(/^\s+/, '');
    if (t.startsWith('--')) s = t.replace(/^--[^\n]*\n?/, '');
    else if (t.startsWith('/*')) s = t.replace(/^\/\*[\s\S]*?\*\//, '');
    else return t;
  }
}

const CREATES = new RegExp(
  String.raw`^create\s+(?:or\s+replace\s+)?(?:unlogged\s+)?(?:table|view|materialized\s+view|sequence)\s+(?:if\s+not\s+exists\s+)?${IDENT}\s*\.`,
  'i',
);

/** The schema a statement creates a table, view or sequence in, when it names one. */
function createdIn(sql: string): string | undefined {
  const m = CREATES.exec(sql);
  return m ? identName(m[1]) : undefined;
}

/**
 * The schema-qualified names a statement holds (`"cdp"."tracks"`, `cdp.tracks`), as [schema, name] pairs: each
 * two neighbours of a dotted name, so `db.schema.table` gives both (column references such as `u.user_id` come
 * along, and match no relation).
 */
function relationsNamed(sql: string): Array<[string, string]> {
  const chain = new RegExp(String.raw`${IDENT}(?:\s*\.\s*${IDENT})+`, 'g');
  const part = new RegExp(IDENT, 'g');
  const out = new Map<string, [string, string]>();
  for (const m of sql.matchAll(chain)) {
    const parts = [...m[0].matchAll(part)].map((p) => identName(p[0]));
    for (let i = 0; i + 1 < parts.length; i++)
      out.set(JSON.stringify([parts[i], parts[i + 1]]), [parts[i], parts[i + 1]]);
  }
  return [...out.values()];
}

const TARGET = new RegExp(
  String.raw`^(insert\s+into|copy|update(?:\s+only)?|delete\s+from(?:\s+only)?|truncate(?:\s+table)?(?:\s+only)?)\s+(?:${IDENT}\s*\.\s*)?${IDENT}`,
  'i',
);

/**
 * What a statement needs on `schema.table`: `certain`, what it needs whatever else it does; `possible`, what it
 * needs only for some of its clauses (a condition reads columns), named when the role holds all that is certain.
 */
function tableNeeds(sql: string, schema: string, table: string): { certain: string[]; possible: string[] } {
  const m = TARGET.exec(sql);
  const isTarget =
    m !== null && identName(m[3]) === table && (m[2] === undefined || identName(m[2]) === schema);
  if (!isTarget) return { certain: ['select'], possible: [] };
  const verb = m[1].toLowerCase();
  if (verb.startsWith('insert')) {
    return {
      certain: /\bon\s+conflict\b[\s\S]*\bdo\s+update\b/i.test(sql) ? ['insert', 'update'] : ['insert'],
      possible: ['select'],
    };
  }
  if (verb === 'copy')
    return { certain: /\bfrom\s+stdin\b/i.test(sql) ? ['insert'] : ['select'], possible: [] };
  if (verb.startsWith('update')) return { certain: ['update'], possible: ['select'] };
  if (verb.startsWith('delete')) return { certain: ['delete'], possible: ['select'] };
  return { certain: ['truncate'], possible: [] };
}
