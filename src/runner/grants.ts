import { UserError } from '../errors';
import type { SqlRunner } from '../warehouse/types';
import { quoteCatalogName, quoteIdent } from '../warehouse/types';

/** PostgreSQL's privileges on tables and views, as `aclexplode` names them (lowercased). */
const PRIVILEGES = ['select', 'insert', 'update', 'delete', 'truncate', 'references', 'trigger', 'maintain'];

/** One grantee: the role name as PostgreSQL stores it (`public` for everyone) and how SQL names it. */
interface Grantee {
  role: string;
  sql: string;
}

/** A model's `grants` config, validated: privilege → grantees. */
export type Grants = Map<string, Grantee[]>;

const toList = (v: unknown): unknown[] => (v === undefined || v === null ? [] : Array.isArray(v) ? v : [v]);

/**
 * Merges a more specific `grants` config over a less specific one as dbt does: each privilege's grantees
 * replace the inherited ones, unless the privilege is written `+select`, which adds to them.
 */
export function mergeGrants(base: unknown, over: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  if (base && typeof base === 'object' && !Array.isArray(base)) {
    for (const [p, g] of Object.entries(base)) out[p.replace(/^\+/, '').toLowerCase()] = g;
  }
  for (const [p0, g] of Object.entries(over)) {
    const p = p0.replace(/^\+/, '').toLowerCase();
    out[p] = p0.startsWith('+') ? [...toList(out[p]), ...toList(g)] : g;
  }
  return out;
}

/**
 * A grantee as dbt users write it for dbt-postgres, where it lands in the SQL unquoted: a plain name (which
 * PostgreSQL folds to lower case), `public`, or a double-quoted name kept as written.
 */
function parseGrantee(raw: unknown, where: string): Grantee {
  const s = typeof raw === 'string' ? raw.trim() : '';
  if (/^[A-Za-z_][A-Za-z0-9_$]*$/.test(s)) {
    const role = s.toLowerCase();
    return role === 'public' ? { role, sql: 'public' } : { role, sql: `"${role}"` };
  }
  const quoted = /^"((?:[^"]|"")+)"$/.exec(s);
  if (quoted) return { role: quoted[1].replace(/""/g, '"'), sql: s };
  throw new UserError(
    `${where} grants to ${JSON.stringify(raw)}, which is not a role name: use a plain name (reporter) or a double-quoted one ('"BI Readers"').`,
  );
}

/** Validates a model's `grants` config; null when it has none (dbt then leaves grants alone). */
export function parseGrants(value: unknown, where: string): Grants | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UserError(`${where} has grants that are not a mapping: use {select: ['reporter']}.`);
  }
  const out: Grants = new Map();
  for (const [p0, g] of Object.entries(value as Record<string, unknown>)) {
    const p = p0.replace(/^\+/, '').toLowerCase();
    if (!PRIVILEGES.includes(p)) {
      throw new UserError(`${where} grants the unknown privilege ${p0}: use ${PRIVILEGES.join(', ')}.`);
    }
    const grantees = toList(g).map((x) => parseGrantee(x, where));
    out.set(p, [...new Map(grantees.map((x) => [x.role, x])).values()]);
  }
  return out.size ? out : null;
}

/**
 * Applies the grants config to a PostgreSQL relation in the transaction that puts it in place, as
 * dbt-postgres does: the missing grants are granted; on a relation kept (`revoke`: a table an incremental run
 * keeps, or a view replaced in place), the privileges the building role granted to others that the config
 * lacks are revoked too (also those of a privilege the config does not name). A relation just created has
 * only what default privileges gave it, which dbt-postgres leaves (its copy_grants is false), and so does
 * this.
 */
export async function applyGrants(
  tx: SqlRunner,
  schema: string,
  name: string,
  grants: Grants,
  revoke: boolean,
): Promise<void> {
  const current = await tx.query<{ privilege: string; role: string }>(
    `select lower(a.privilege_type) as privilege,
            case when a.grantee = 0 then 'public' else pg_get_userbyid(a.grantee) end as role
     from pg_class c join pg_namespace n on n.oid = c.relnamespace, aclexplode(c.relacl) a
     where n.nspname = $1 and c.relname = $2
       and a.grantor = (select oid from pg_roles where rolname = current_user)
       and a.grantee <> (select oid from pg_roles where rolname = current_user)`,
    [schema, name],
  );
  const relation = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const has = new Set(current.map((c) => `${c.privilege}\u0000${c.role}`));
  for (const c of revoke ? current : []) {
    if (grants.get(c.privilege)?.some((g) => g.role === c.role)) continue;
    const who = c.role === 'public' ? 'public' : quoteCatalogName(c.role);
    await tx.exec(`revoke ${c.privilege} on ${relation} from ${who}`);
  }
  for (const [privilege, grantees] of grants) {
    const missing = grantees.filter((g) => !has.has(`${privilege}\u0000${g.role}`));
    if (missing.length) {
      await tx.exec(`grant ${privilege} on ${relation} to ${missing.map((g) => g.sql).join(', ')}`);
    }
  }
}
