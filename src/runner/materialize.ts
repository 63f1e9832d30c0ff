import { createHash } from 'node:crypto';
import { UserError, errorMessage } from '../errors';
import type { SqlRunner, Warehouse } from '../warehouse/types';
import { pgRelations, quoteCatalogName, quoteIdent, quoteText } from '../warehouse/types';
import { isFragmented } from '../warehouse/fragmentation';

export type RelationKind = 'table' | 'view';

// DuckDB answers its own catalog functions about 3x faster than information_schema (a build asks ~60 times).
const DUCKDB_RELATION_SQL =
  "select 'BASE TABLE' as table_type from duckdb_tables() where database_name = current_database() and schema_name = $1 and table_name = $2" +
  " union all select 'VIEW' from duckdb_views() where database_name = current_database() and schema_name = $1 and view_name = $2";

/**
 * The columns of one DuckDB relation, in order; none when it does not exist. pragma_table_info looks the one
 * relation up, where duckdb_columns() lists every column of every catalog first: about 1 ms against 4-7 ms, on
 * ~60 lookups per build. Its error for a missing relation comes from the binder, which leaves an open
 * transaction usable. The name carries its catalog: "schema"."name" alone would find a temporary table of
 * that name first. (Names are plain identifiers, see quoteIdent: pragma_table_info misreads a doubled quote.)
 */
async function duckdbColumns(
  wh: SqlRunner,
  schema: string,
  name: string,
  temp: boolean,
): Promise<{ column_name: string; data_type: string }[]> {
  try {
    return await wh.query<{ column_name: string; data_type: string }>(
      temp
        ? 'select name as column_name, type as data_type from pragma_table_info($1) order by cid'
        : 'select name as column_name, type as data_type from pragma_table_info(current_database() || $1) order by cid',
      [temp ? `temp.main.${quoteIdent(name)}` : `.${quoteIdent(schema)}.${quoteIdent(name)}`],
    );
  } catch (err) {
    if (/Catalog Error: .* does not exist/.test(errorMessage(err))) return [];
    throw err;
  }
}

/** What exists at schema.name: a table, a view, or nothing. */
export async function relationKind(
  wh: SqlRunner,
  schema: string,
  name: string,
): Promise<RelationKind | null> {
  const rows = await wh.query<{ table_type: string }>(
    wh.dialect === 'duckdb'
      ? DUCKDB_RELATION_SQL
      : `select r.table_type from ${pgRelations()} where r.table_schema = $1 and r.table_name = $2`,
    [schema, name],
  );
  if (rows.length === 0) return null;
  return /view/i.test(rows[0].table_type) ? 'view' : 'table';
}

const rel = (schema: string, name: string): string => `${quoteIdent(schema)}.${quoteIdent(name)}`;

function dropSql(wh: SqlRunner, kind: RelationKind, schema: string, name: string): string {
  // PostgreSQL views that select from the old relation are dropped with it, as dbt-postgres does; a swap
  // recreates them at once (see buildSwap), and a selected one is rebuilt later in the run anyway.
  const cascade = wh.dialect === 'postgres' ? ' cascade' : '';
  return `drop ${kind} if exists ${rel(schema, name)}${cascade}`;
}

async function dropIfExists(wh: SqlRunner, schema: string, name: string): Promise<void> {
  const kind = await relationKind(wh, schema, name);
  if (kind) await wh.exec(dropSql(wh, kind, schema, name));
}

/** The intermediate relation dbt builds before swapping it in. */
export function tmpName(name: string): string {
  return suffixedName(name, '__dbt_tmp');
}

/**
 * `name` + `suffix` (a temporary or backup relation). A name too long for the suffix within PostgreSQL's 63
 * characters is cut, as dbt-postgres cuts it, plus a hash of the whole name, so that two long names sharing
 * their first characters never build into the same relation.
 */
function suffixedName(name: string, suffix: string): string {
  const t = `${name}${suffix}`;
  if (t.length <= 63) return t;
  const hash = createHash('md5').update(name).digest('hex').slice(0, 8);
  return `${name.slice(0, 63 - suffix.length - 9)}_${hash}${suffix}`;
}

async function countRows(wh: SqlRunner, schema: string, name: string): Promise<number> {
  const r = await wh.query<{ n: number | bigint }>(`select count(*) as n from ${rel(schema, name)}`);
  return Number(r[0]?.n ?? 0);
}

/**
 * Builds `sql` into `name__dbt_tmp`, then in one transaction drops the old relation and renames the new one
 * into place, so a failing model never leaves a half-built or missing relation behind.
 */
/** dbt-postgres's `indexes` config: `[{columns: ['user_id'], unique: true, type: 'btree'}]`. */
export interface IndexSpec {
  columns: string[];
  unique: boolean;
  type?: string;
}

const INDEX_TYPES = new Set(['btree', 'hash', 'gist', 'spgist', 'gin', 'brin']);

/** Validates the `indexes` config of a model; throws a UserError naming what is wrong. */
export function parseIndexes(value: unknown, where: string): IndexSpec[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value))
    throw new UserError(`${where} has indexes that are not a list: use [{columns: [...]}].`);
  return value.map((v) => {
    const o = (v ?? {}) as Record<string, unknown>;
    const cols = o.columns;
    if (!Array.isArray(cols) || cols.length === 0 || !cols.every((c) => typeof c === 'string')) {
      throw new UserError(
        `${where} has an index without a list of column names: use {columns: ['user_id']}.`,
      );
    }
    const type = o.type === undefined ? undefined : String(o.type).toLowerCase();
    if (type !== undefined && !INDEX_TYPES.has(type)) {
      throw new UserError(
        `${where} has an index of unknown type ${type}: use ${[...INDEX_TYPES].join(', ')}.`,
      );
    }
    return { columns: cols as string[], unique: o.unique === true, type };
  });
}

async function createIndexes(
  wh: Warehouse,
  schema: string,
  table: string,
  name: string,
  indexes: IndexSpec[],
) {
  for (const [i, ix] of indexes.entries()) {
    // Named after the final model, unique per build, so a rename never collides with the old table's index.
    const idx = `${name.slice(0, 40)}__ix${i}_${Date.now().toString(36)}`;
    const using = ix.type ? ` using ${ix.type}` : '';
    await wh.exec(
      `create ${ix.unique ? 'unique ' : ''}index ${quoteIdent(idx)} on ${rel(schema, table)}${using} (${ix.columns.map(quoteIdent).join(', ')})`,
    );
  }
}

/** Runs inside the transaction that puts a model in place (its post-hooks, as dbt runs them by default). */
export type AfterApply = (
  tx: SqlRunner,
  /** kept: the relation was changed in place (an incremental table, a view replaced), not created anew */
  info: { kept: boolean },
) => Promise<void>;

/**
 * dbt's sql_header (a `set`, a temporary function) goes right before the create statement, in the same request,
 * as dbt's create_table_as and create_view_as put it.
 */
function headerLines(sqlHeader: string | undefined): string {
  const h = sqlHeader?.trim();
  if (!h) return '';
  // a header without its closing semicolon would run into the create
  return `${h.endsWith(';') ? h : `${h};`}\n`;
}

export async function buildSwap(
  wh: Warehouse,
  kind: RelationKind,
  schema: string,
  name: string,
  sql: string,
  indexes: IndexSpec[] = [],
  afterApply?: AfterApply,
  /** receives what the swap could not keep of other relations (PostgreSQL views over this one) */
  notes: string[] = [],
  /** dbt's sql_header: statements sent before each create, in the same request */
  sqlHeader?: string,
): Promise<number | null> {
  const tmp = tmpName(name);
  const header = headerLines(sqlHeader);
  await dropIfExists(wh, schema, tmp);
  try {
    await wh.exec(`${header}create ${kind} ${rel(schema, tmp)} as (\n${sql}\n)`);
    if (kind === 'table' && wh.dialect === 'postgres') {
      // Like dbt-duckdb, DuckDB ignores the indexes config (its zone maps serve these scans).
      await createIndexes(wh, schema, tmp, name, indexes);
      // Downstream models read this table within seconds, long before autovacuum would gather statistics;
      // without them the planner guesses row counts and can pick nested loops over millions of rows.
      await wh.exec(`analyze ${rel(schema, tmp)}`);
    }
  } catch (err) {
    await dropIfExists(wh, schema, tmp).catch(() => undefined);
    throw err;
  }
  const rows = kind === 'table' ? await countRows(wh, schema, tmp) : null;
  try {
    await swapRetryingDeadlock(wh, schema, name, notes, async (tx, swapNotes) => {
      const old = await relationKind(tx, schema, name);
      // A view whose columns keep their names and types is replaced in place: the same object, so the views
      // over it (an analyst's, whoever owns them) are not touched at all. Otherwise it is swapped like a table.
      const replaced =
        old === 'view' &&
        kind === 'view' &&
        tx.dialect === 'postgres' &&
        (await attempt(tx, `${header}create or replace view ${rel(schema, name)} as (\n${sql}\n)`)) === null;
      if (replaced) {
        await tx.exec(dropSql(tx, 'view', schema, tmp));
      } else if (old && tx.dialect === 'postgres') {
        await swapKeepingDependents(tx, old, kind, schema, name, swapNotes);
      } else {
        if (old) await tx.exec(dropSql(tx, old, schema, name));
        await tx.exec(`alter ${kind} ${rel(schema, tmp)} rename to ${quoteIdent(name)}`);
      }
      if (afterApply) await afterApply(tx, { kept: replaced });
    });
  } catch (err) {
    // a failing post-hook rolled the rename back: the new relation is still the tmp one
    await dropIfExists(wh, schema, tmp).catch(() => undefined);
    throw err;
  }
  return rows;
}

/** PostgreSQL's deadlock_detected. */
const DEADLOCK = '40P01';

/**
 * Runs the transaction that puts `name` in place, once more if PostgreSQL ended it to break a deadlock with
 * another session. The swap locks the views over the relation before the relation, as their readers do, but a
 * transaction that read the relation itself and then a view over it (or a materialized view's reader) takes
 * them the other way round; when the build is the one stopped, everything it did was rolled back and the other
 * session goes on, so the swap is tried again. `notes` receives those of the try that committed.
 */
async function swapRetryingDeadlock(
  wh: Warehouse,
  schema: string,
  name: string,
  notes: string[],
  swap: (tx: SqlRunner, notes: string[]) => Promise<void>,
): Promise<void> {
  for (let tries = 1; ; tries++) {
    const these: string[] = [];
    try {
      await wh.transaction((tx) => swap(tx, these));
      notes.push(...these);
      return;
    } catch (err) {
      if ((err as { code?: unknown }).code !== DEADLOCK) throw err;
      if (tries < 2) continue;
      throw new Error(
        `deadlock detected twice while putting ${rel(schema, name)} in place, with sessions reading it or the views over it: run the build again`,
        { cause: err },
      );
    }
  }
}

/** A view or materialized view that selects from a PostgreSQL relation, as the catalog describes it. */
type Dependent = {
  /** `"schema"."name"`, quoted by PostgreSQL (a view of someone else's may have any name) */
  qualified: string;
  kind: 'v' | 'm';
  /** 1 when it selects from the relation itself (it may also through other views) */
  minDepth: number;
  definition: string;
  /** its reloptions (`security_barrier=true`, `check_option=local`, a materialized view's storage) */
  options: string | null;
  /** grants, comments and a materialized view's indexes, as statements PostgreSQL formatted */
  restore: string[];
  /** its owner, quoted for `set role`, when that is not the build's role */
  ownerRole: string | null;
  ownerName: string;
};

/**
 * The recursive dependents (views and materialized views) of a relation, with everything needed to recreate
 * them as they were. Read with search_path set to pg_catalog alone, so every name in the definitions comes
 * out schema-qualified.
 */
async function dependentsOf(tx: SqlRunner, schema: string, name: string): Promise<Dependent[]> {
  const [{ path: saved }] = await tx.query<{ path: string }>("select current_setting('search_path') as path");
  await tx.exec('set local search_path = pg_catalog');
  // (if the read fails, the transaction rolls back, and the setting with it)
  const rows = await tx.query<{
    qualified: string;
    kind: 'v' | 'm';
    min_depth: number;
    definition: string;
    options: string | null;
    grants: string[];
    comments: string[];
    indexes: string[];
    owner_role: string | null;
    owner_name: string;
  }>(
    `with recursive deps (oid, depth) as (
       select r.ev_class, 1
       from pg_depend d join pg_rewrite r on r.oid = d.objid
       where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
         and d.refobjid = (select c.oid from pg_class c join pg_namespace n on n.oid = c.relnamespace
                           where n.nspname = $1 and c.relname = $2)
         and r.ev_class <> d.refobjid
       -- union, not union all: pg_depend has a row per column a view reads, and duplicates would multiply
       -- at every level of views over views
       union
       select r.ev_class, deps.depth + 1
       from deps join pg_depend d on d.refobjid = deps.oid
         and d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
       join pg_rewrite r on r.oid = d.objid
       where r.ev_class <> d.refobjid and deps.depth < 100
     ),
     found as (
       select oid, min(depth) as min_depth, max(depth) as max_depth from deps group by oid
     )
     select
       format('%I.%I', n.nspname, c.relname) as qualified,
       c.relkind::text as kind,
       f.min_depth::int as min_depth,
       pg_get_viewdef(c.oid) as definition,
       array_to_string(c.reloptions, ', ') as options,
       array(
         select format('grant %s on %I.%I to %s%s', a.privilege_type, n.nspname, c.relname,
                       case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end,
                       case when a.is_grantable then ' with grant option' else '' end)
         from aclexplode(c.relacl) a where a.grantee <> c.relowner
         union all
         select format('grant %s (%I) on %I.%I to %s%s', a.privilege_type, att.attname, n.nspname, c.relname,
                       case when a.grantee = 0 then 'public' else quote_ident(pg_get_userbyid(a.grantee)) end,
                       case when a.is_grantable then ' with grant option' else '' end)
         from pg_attribute att, aclexplode(att.attacl) a
         where att.attrelid = c.oid and att.attnum > 0 and not att.attisdropped and a.grantee <> c.relowner
       ) as grants,
       array(
         select format('comment on %s %I.%I is %L',
                       case c.relkind when 'm' then 'materialized view' else 'view' end,
                       n.nspname, c.relname, obj_description(c.oid, 'pg_class'))
         where obj_description(c.oid, 'pg_class') is not null
         union all
         select format('comment on column %I.%I.%I is %L', n.nspname, c.relname, a.attname,
                       col_description(c.oid, a.attnum))
         from pg_attribute a
         where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
           and col_description(c.oid, a.attnum) is not null
       ) as comments,
       array(select pg_get_indexdef(i.indexrelid) from pg_index i where i.indrelid = c.oid) as indexes,
       case when c.relowner <> (select oid from pg_roles where rolname = current_user)
         then quote_ident(pg_get_userbyid(c.relowner))
       end as owner_role,
       pg_get_userbyid(c.relowner) as owner_name
     from found f join pg_class c on c.oid = f.oid join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('v', 'm')
     order by f.max_depth, n.nspname, c.relname`,
    [schema, name],
  );
  // the rest of the transaction (the recreated views, the model's post-hooks) resolves names as before
  await tx.query("select set_config('search_path', $1, true)", [saved]);
  return rows.map((r) => ({
    qualified: r.qualified,
    kind: r.kind,
    minDepth: Number(r.min_depth),
    definition: r.definition,
    options: r.options,
    restore: [...r.indexes, ...r.grants, ...r.comments],
    ownerRole: r.owner_role,
    ownerName: r.owner_name,
  }));
}

/**
 * The relations whose views (or rules) read each of `columns` of a relation directly, by column: PostgreSQL
 * refuses to drop or retype a column only when a view reads that column (pg_depend holds a row per column a
 * view reads, with refobjsubid = its attnum), not when views read only other columns of the table.
 */
async function columnReaders(
  tx: SqlRunner,
  schema: string,
  name: string,
  columns: string[],
): Promise<Map<string, string[]>> {
  const rows = await tx.query<{ col: string; qualified: string }>(
    `select distinct a.attname as col, format('%I.%I', n.nspname, c.relname) as qualified
     from pg_depend d
     join pg_rewrite r on r.oid = d.objid
     join pg_class c on c.oid = r.ev_class
     join pg_namespace n on n.oid = c.relnamespace
     join pg_attribute a on a.attrelid = d.refobjid and a.attnum = d.refobjsubid
     where d.classid = 'pg_rewrite'::regclass and d.refclassid = 'pg_class'::regclass
       and d.refobjid = (select t.oid from pg_class t join pg_namespace tn on tn.oid = t.relnamespace
                         where tn.nspname = $1 and t.relname = $2)
       and r.ev_class <> d.refobjid
     order by 2`,
    [schema, name],
  );
  const wanted = new Set(columns);
  const out = new Map<string, string[]>();
  for (const r of rows) if (wanted.has(r.col)) out.set(r.col, [...(out.get(r.col) ?? []), r.qualified]);
  return out;
}

/**
 * Runs one statement in a savepoint: null, or the error's first line when it failed (the transaction goes on).
 * A lock it could not get (a deadlock, the role's lock_timeout) is no answer about the statement: that error
 * ends the transaction (see swapRetryingDeadlock).
 */
async function attempt(tx: SqlRunner, sql: string): Promise<string | null> {
  await tx.exec('savepoint cdp_attempt');
  try {
    await tx.exec(sql);
    await tx.exec('release savepoint cdp_attempt');
    return null;
  } catch (err) {
    await tx.exec('rollback to savepoint cdp_attempt');
    const code = (err as { code?: unknown }).code;
    if (code === DEADLOCK || code === '55P03') throw err;
    return errorMessage(err).split('\n')[0];
  }
}

const withOptions = (d: Dependent): string => (d.options ? ` with (${d.options})` : '');

/**
 * Puts `name__dbt_tmp` in place of `name` on PostgreSQL without losing what selects from the old relation.
 * PostgreSQL binds a view to the relation itself, not its name, so dropping the old relation drops every view
 * over it, an analyst's views in other schemas included, with their grants, comments and owner. Instead, the
 * old relation is renamed away, the new one takes its name, and each view that selects from it directly is
 * pointed at the new one with `create or replace view` and its stored definition: the view stays the same
 * object, so its grants, comments, owner and the views over it stay too. A view that cannot be replaced (a
 * column it reads changed type or is gone, or the build's role does not own it) and a materialized view (it
 * holds rows of the old relation) go with the old relation and are recreated as they were, by their owner
 * (`set role`), with their grants, comments and indexes. One whose owner the build's role may not act as,
 * or that no longer fits the new relation, stays dropped and is named in `notes` (a project model among
 * them is rebuilt from its model, see restoreDroppedViews).
 */
async function swapKeepingDependents(
  tx: SqlRunner,
  oldKind: RelationKind,
  kind: RelationKind,
  schema: string,
  name: string,
  notes: string[],
): Promise<void> {
  const dependents = await dependentsOf(tx, schema, name);
  // A query locks a view before what the view reads. Renaming the relation first, then replacing the views
  // over it, took the locks the other way round: a reader that came while the swap waited for an earlier one
  // held the view and waited for the relation, which the swap held while it waited for the view (`deadlock
  // detected`, the build or the reader stopped). So each view over it is locked first, outermost first (a
  // view over a view before that view), as its readers lock them: by replacing it with its own definition,
  // which locks what it reads only as a reader does (a `lock table` on a view would lock every table under it
  // against readers and writers). One the build's role may not replace is left to the drop below, as before.
  for (const d of [...dependents].reverse()) {
    if (d.kind === 'v')
      await attempt(tx, `create or replace view ${d.qualified}${withOptions(d)} as ${d.definition}`);
  }
  const backup = suffixedName(name, '__dbt_bak');
  const oldBackup = await relationKind(tx, schema, backup);
  if (oldBackup) await tx.exec(dropSql(tx, oldBackup, schema, backup));
  await tx.exec(`alter ${oldKind} ${rel(schema, name)} rename to ${quoteIdent(backup)}`);
  await tx.exec(`alter ${kind} ${rel(schema, tmpName(name))} rename to ${quoteIdent(name)}`);
  for (const d of dependents) {
    if (d.kind === 'v' && d.minDepth === 1) {
      await attempt(tx, `create or replace view ${d.qualified}${withOptions(d)} as ${d.definition}`);
    }
  }
  // what still selects from the old relation goes with it, and comes back as it was
  const left = new Set((await dependentsOf(tx, schema, backup)).map((d) => d.qualified));
  await tx.exec(dropSql(tx, oldKind, schema, backup));
  await recreateDependents(
    tx,
    dependents.filter((d) => left.has(d.qualified)),
    notes,
  );
}

/**
 * Creates again, as they were, views and materialized views dropped with the relation they selected from:
 * by their owner (`set role`), with their grants, comments and indexes. One whose owner the build's role may
 * not act as, or that no longer fits, stays dropped and is named in `notes`.
 */
async function recreateDependents(tx: SqlRunner, dependents: Dependent[], notes: string[]): Promise<void> {
  for (const d of dependents) {
    const what = d.kind === 'm' ? 'materialized view' : 'view';
    // Created again by its owner, with the owner's rights only: created by the build's role, someone else's
    // view would read what only the build's role may read, and a materialized view's query would run with
    // the build's rights. A build's role that may not act as the owner leaves it dropped, as dbt does.
    if (d.ownerRole) {
      const denied = await attempt(tx, `set local role ${d.ownerRole}`);
      if (denied) {
        notes.push(
          `dropped the ${what} ${d.qualified} over it: only its owner ${d.ownerName} may create it again (grant ${d.ownerName} to the build's role to keep it)`,
        );
        continue;
      }
    }
    try {
      const failed = await attempt(tx, `create ${what} ${d.qualified}${withOptions(d)} as ${d.definition}`);
      if (failed) {
        notes.push(`dropped the ${what} ${d.qualified} over it, which could not be created again: ${failed}`);
        continue;
      }
      for (const sql of d.restore) await attempt(tx, sql);
    } finally {
      if (d.ownerRole) await tx.exec('reset role');
    }
  }
}

/** `temp`: a DuckDB temporary table `name` (catalog temp, schema main) instead of `schema.name`. */
export async function columnsOf(
  wh: SqlRunner,
  schema: string,
  name: string,
  temp = false,
): Promise<string[]> {
  const rows =
    wh.dialect === 'duckdb'
      ? await duckdbColumns(wh, schema, name, temp)
      : await wh.query<{ column_name: string }>(
          `select a.attname as column_name
           from ${pgRelations(true)}
           join pg_catalog.pg_attribute as a on a.attrelid = r.relid and a.attnum > 0 and not a.attisdropped
           where r.table_schema = $1 and r.table_name = $2
           order by a.attnum`,
          [schema, name],
        );
  return rows.map((r) => r.column_name);
}

/** Exact column types (with precision), usable in `alter table … add column`, in column order. */
async function columnTypes(
  wh: SqlRunner,
  schema: string,
  name: string,
  temp = false,
): Promise<Map<string, string>> {
  const rows =
    wh.dialect === 'postgres'
      ? await wh.query<{ column_name: string; data_type: string }>(
          `select a.attname as column_name, format_type(a.atttypid, a.atttypmod) as data_type
           from pg_attribute a join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace
           where n.nspname = $1 and c.relname = $2 and a.attnum > 0 and not a.attisdropped
           order by a.attnum`,
          [schema, name],
        )
      : await duckdbColumns(wh, schema, name, temp);
  return new Map(rows.map((r) => [r.column_name, r.data_type]));
}

/**
 * Whether a stored column of type `from` must change to hold values of type `to`. A string column that
 * already holds any length (text, varchar without a length, DuckDB's VARCHAR) or at least `to`'s stays, as
 * dbt widens only.
 */
export function typeChanged(from: string, to: string): boolean {
  const norm = (t: string) => t.trim().toLowerCase().replace(/\s+/g, ' ');
  const [a, b] = [norm(from), norm(to)];
  if (a === b) return false;
  const str = /^(text|varchar|character varying|string|character|char|bpchar)(?:\((\d+)\))?$/;
  const [sa, sb] = [str.exec(a), str.exec(b)];
  if (sa && sb) return sa[2] !== undefined && (sb[2] === undefined || Number(sb[2]) > Number(sa[2]));
  return true;
}

const STRING_TYPE = /^(?:text|varchar|character varying|string|character|char|bpchar)(?:\((\d+)\))?$/i;

function isStringType(type: string): boolean {
  return STRING_TYPE.test(type.trim().replace(/\s+/g, ' '));
}

/** The length of a string type that has one (`character varying(3)`: 3), else undefined. */
function boundedStringSize(type: string): number | undefined {
  const size = STRING_TYPE.exec(type.trim().replace(/\s+/g, ' '))?.[1];
  return size === undefined ? undefined : Number(size);
}

/**
 * The type a string column is altered to for new rows of type `to`: a fixed-length string would pad the stored
 * values, so it becomes a varchar of that length, as dbt's Column.string_type does. An unbounded one (text)
 * stays so, where dbt's expand_column_types counts text as 256 characters and would cut longer values.
 */
function widenedType(to: string): string {
  const fixed = /^(?:character|char|bpchar)\((\d+)\)$/i.exec(to.trim());
  return fixed ? `character varying(${fixed[1]})` : to;
}

/** Of `widened`, the columns for which the new rows in `source` hold a string longer than the stored size. */
async function longerThanStored<W extends { column: string; size: number }>(
  tx: SqlRunner,
  source: string,
  srcByLower: Map<string, string>,
  widened: W[],
): Promise<W[]> {
  const out: W[] = [];
  for (const w of widened) {
    const c = quoteCatalogName(srcByLower.get(w.column.toLowerCase()) ?? w.column);
    const [hit] = await tx.query(`select 1 as hit from ${source} where length(${c}) > ${w.size} limit 1`);
    if (hit) out.push(w);
  }
  return out;
}

/**
 * `sql` with each `DBT_INTERNAL_DEST.` (any case) replaced by `to`, where it is SQL: not inside a string
 * ('…' with '' escapes, E'…' with backslash escapes, $tag$…$tag$), a quoted identifier ("…" with "" escapes) or a
 * comment (-- to the end of the line, or a block comment, nested as PostgreSQL nests them).
 */
export function replaceDestAlias(sql: string, to: string): string {
  const ident = /[\w$]/;
  let out = '';
  let code = 0;
  let i = 0;
  const flush = (end: number) => {
    out += sql.slice(code, end).replace(/\bDBT_INTERNAL_DEST\./gi, to);
  };
  while (i < sql.length) {
    const c = sql[i];
    let end = -1;
    if (c === "'" || c === '"') {
      // E'…' takes backslash escapes
      const backslash = c === "'" && i > 0 && /[eE]/.test(sql[i - 1]) && !(i > 1 && ident.test(sql[i - 2]));
      let j = i + 1;
      while (j < sql.length) {
        if (backslash && sql[j] === '\\') j += 2;
        else if (sql[j] === c && sql[j + 1] === c) j += 2;
        else if (sql[j] === c) break;
        else j++;
      }
      end = Math.min(j + 1, sql.length);
    } else if (c === '-' && sql[i + 1] === '-') {
      const nl = sql.indexOf('\n', i);
      end = nl < 0 ? sql.length : nl;
    } else if (c === '/' && sql[i + 1] === '*') {
      let j = i + 2;
      let depth = 1;
      while (j < sql.length && depth > 0) {
        if (sql.startsWith('/*', j)) {
          depth++;
          j += 2;
        } else if (sql.startsWith('*/', j)) {
          depth--;
          j += 2;
        } else j++;
      }
      end = j;
    } else if (c === '$' && !(i > 0 && ident.test(sql[i - 1]))) {
      const tag = /^\$(?:[A-Za-z_]\w*)?\$/.exec(sql.slice(i))?.[0];
      if (tag) {
        const close = sql.indexOf(tag, i + tag.length);
        end = close < 0 ? sql.length : close + tag.length;
      }
    }
    if (end < 0) {
      i++;
      continue;
    }
    flush(i);
    out += sql.slice(i, end);
    code = end;
    i = end;
  }
  flush(sql.length);
  return out;
}

export type OnSchemaChange = 'ignore' | 'fail' | 'append_new_columns' | 'sync_all_columns';

export type IncrementalStrategy = 'append' | 'delete+insert' | 'merge';

export interface IncrementalOptions {
  strategy: IncrementalStrategy;
  uniqueKey: string[];
  /**
   * A single unique_key written as an SQL expression (uniqueKey is then empty): delete+insert deletes the rows
   * of the table whose value of it the new rows hold, as dbt's `where (<key>) in (select (<key>) from …)`.
   */
  uniqueKeyExpression?: string;
  onSchemaChange: OnSchemaChange;
  /** merge only: the columns a matched row updates (default: all but the key) … */
  mergeUpdateColumns?: string[];
  /** … or all but these. */
  mergeExcludeColumns?: string[];
  /**
   * dbt's incremental_predicates: SQL conditions on `DBT_INTERNAL_DEST` (the table) that narrow which of its
   * rows delete+insert deletes and merge matches (there also on `DBT_INTERNAL_SOURCE`, the new rows); append
   * ignores them, as dbt does.
   */
  incrementalPredicates?: string[];
  /** dbt's sql_header, sent before the create of the new rows' table. */
  sqlHeader?: string;
}

/**
 * Runs the model SQL into `name__dbt_tmp`, then applies it to the existing table in one transaction:
 * delete+insert removes the target rows whose unique key comes again, merge updates them in place, append
 * only inserts. Columns are matched by name; on_schema_change decides what happens to new or lost columns.
 */
export async function buildIncremental(
  wh: Warehouse,
  schema: string,
  name: string,
  sql: string,
  opts: IncrementalOptions,
  afterApply?: AfterApply,
): Promise<number> {
  const tmp = tmpName(name);
  // The new rows only live until the transaction below, so they are written nowhere durable: an unlogged
  // table on PostgreSQL, a temporary table on DuckDB (its one connection sees it; a persistent one cost a WAL
  // write and a commit of every staged row, about a third of user_days' daily run at 1M users).
  const temp = wh.dialect === 'duckdb';
  const source = temp ? `temp.main.${quoteIdent(tmp)}` : rel(schema, tmp);
  const dropTmp = async () => {
    if (temp) await wh.exec(`drop table if exists ${source}`);
    else await dropIfExists(wh, schema, tmp);
  };
  await dropTmp();
  try {
    await wh.exec(
      temp
        ? `${headerLines(opts.sqlHeader)}create temp table ${quoteIdent(tmp)} as (\n${sql}\n)`
        : `${headerLines(opts.sqlHeader)}create unlogged table ${source} as (\n${sql}\n)`,
    );
    // the new rows' columns with their types, in one lookup: the types serve the schema change below
    const srcTypes = await columnTypes(wh, schema, tmp, temp);
    const srcCols = [...srcTypes.keys()];
    // the table's columns with their types, in one lookup too: the names for the apply, the types for
    // on_schema_change
    const tgtTypes = await columnTypes(wh, schema, name);
    const tgtCols = [...tgtTypes.keys()];
    const lower = new Set(srcCols.map((c) => c.toLowerCase()));
    const cols = tgtCols.filter((c) => lower.has(c.toLowerCase()));
    const tgtLower = new Set(tgtCols.map((c) => c.toLowerCase()));
    const added = srcCols.filter((c) => !tgtLower.has(c.toLowerCase()));
    const removed = tgtCols.filter((c) => !lower.has(c.toLowerCase()));
    // A string column the new rows hold longer values for (varchar(3) -> varchar(6)) is widened whatever
    // on_schema_change says, before it is looked at, as dbt's incremental materialization calls
    // adapter.expand_target_column_types on every run: `fail` does not stop on it.
    const widened: Array<{ column: string; from: string; to: string; size: number }> = [];
    // dbt's fail and sync_all_columns also see a column whose type changed (an integer that now holds
    // decimals): fail stops, sync_all_columns alters the column, so that no value is cast into the old type.
    const retyped: Array<{ column: string; from: string; to: string }> = [];
    const srcByLower = new Map(srcCols.map((c) => [c.toLowerCase(), c]));
    for (const [column, from] of tgtTypes) {
      const src = srcByLower.get(column.toLowerCase());
      const to = src === undefined ? undefined : srcTypes.get(src);
      if (to === undefined || !typeChanged(from, to)) continue;
      const size = boundedStringSize(from);
      if (size !== undefined && isStringType(to)) widened.push({ column, from, to: widenedType(to), size });
      else if (opts.onSchemaChange === 'fail' || opts.onSchemaChange === 'sync_all_columns')
        retyped.push({ column, from, to });
    }
    if (opts.onSchemaChange === 'fail' && (added.length || removed.length || retyped.length)) {
      const types = retyped.length
        ? `; type changed: ${retyped.map((r) => `${r.column} ${r.from} -> ${r.to}`).join(', ')}`
        : '';
      throw new Error(
        `the columns changed (added: ${added.join(', ') || 'none'}; removed: ${removed.join(', ') || 'none'}${types}) and on_schema_change is fail: run with --full-refresh`,
      );
    }
    // A column the model no longer selects: with ignore, dbt's insert names every column of the table, so its
    // run fails on one. append_new_columns (and sync_all_columns, which drops it) insert the new rows' own
    // columns in dbt (process_schema_changes returns the source's columns), so there it is left null in the new
    // rows, as below, where only the columns of both are written.
    if (removed.length && opts.onSchemaChange === 'ignore') {
      throw new Error(
        `the model no longer selects ${removed.length === 1 ? 'the column' : 'the columns'} ${removed.join(', ')} of the existing table, which on_schema_change='ignore' keeps (dbt fails here too): set on_schema_change='append_new_columns' to leave ${removed.length === 1 ? 'it' : 'them'} null in the new rows or 'sync_all_columns' to drop ${removed.length === 1 ? 'it' : 'them'}, or run with --full-refresh`,
      );
    }
    for (const k of opts.uniqueKey) {
      if (!lower.has(k.toLowerCase()) || !tgtLower.has(k.toLowerCase())) {
        throw new Error(
          `the unique_key column ${k} is not a column of both the new rows and the existing table`,
        );
      }
    }
    const rows = Number(
      (await wh.query<{ n: number | bigint }>(`select count(*) as n from ${source}`))[0]?.n ?? 0,
    );
    const target = rel(schema, name);
    // dbt's append_new_columns / sync_all_columns: the table takes the new columns (typed as the new rows
    // are), and sync_all_columns also drops the columns the model no longer has, in the same transaction.
    const alters: string[] = [];
    // the columns dropped or retyped, which PostgreSQL refuses while a view reads them (dbt-postgres fails
    // there too)
    const dropped: string[] = [];
    if (opts.onSchemaChange === 'append_new_columns' || opts.onSchemaChange === 'sync_all_columns') {
      for (const c of added) {
        alters.push(`alter table ${target} add column ${quoteCatalogName(c)} ${srcTypes.get(c)}`);
        cols.push(c);
      }
      if (opts.onSchemaChange === 'sync_all_columns') {
        const keys = new Set(opts.uniqueKey.map((k) => k.toLowerCase()));
        for (const c of removed)
          if (!keys.has(c.toLowerCase())) {
            alters.push(`alter table ${target} drop column ${quoteCatalogName(c)}`);
            dropped.push(c);
          }
        for (const r of retyped) {
          const to = widenedType(r.to);
          alters.push(
            `alter table ${target} alter column ${quoteCatalogName(r.column)} type ${to} using ${quoteCatalogName(r.column)}::${to}`,
          );
        }
      }
    }
    // (retyped holds columns here only under sync_all_columns, which alters them: fail stopped above)
    const reshaped = [
      ...dropped.map((c) => ({ column: c, change: `${c} removed` })),
      ...retyped.map((r) => ({
        column: r.column,
        change: `${r.column} ${r.from} -> ${r.to}`,
      })),
    ];
    // names read from the catalog, which a model may have given any spelling ("Order Total")
    const colList = cols.map(quoteCatalogName).join(', ');
    // Each side's own spelling: a key or column matched without case ("UserId" in the config, "userid" or
    // "UserId" in a table) is a different quoted name on PostgreSQL.
    const srcName = new Map(srcCols.map((c) => [c.toLowerCase(), c]));
    const tgtName = new Map(tgtCols.map((c) => [c.toLowerCase(), c]));
    const fromSource = (c: string): string => quoteCatalogName(srcName.get(c.toLowerCase()) ?? c);
    const srcList = cols.map(fromSource).join(', ');
    // dbt's aliases, which incremental_predicates are written against
    const DEST = 'DBT_INTERNAL_DEST';
    const SRC = 'DBT_INTERNAL_SOURCE';
    const keyMatch = (t: string, s: string): string =>
      opts.uniqueKey
        .map((k) => `${t}.${quoteCatalogName(tgtName.get(k.toLowerCase()) ?? k)} = ${s}.${fromSource(k)}`)
        .join(' and ');
    // each in parentheses, so that a predicate with an `or` cannot widen the delete past the matched keys
    // (the closing parenthesis on a line of its own, so that a predicate ending in a `--` comment, which dbt
    // puts on a line of its own, does not comment it out)
    const predicates = (opts.incrementalPredicates ?? []).map((p) => ` and (${p}\n)`).join('');
    // Older dbt-adapters and dbt-duckdb name the table itself in the delete (a predicate may say
    // `{{ this }}.day >= …`), newer dbt-adapters alias it `as DBT_INTERNAL_DEST`: the table is named, and
    // `DBT_INTERNAL_DEST.` rewritten to that name, so both spellings work
    const deletePredicates = replaceDestAlias(predicates, `${target}.`);
    await wh.transaction(async (tx) => {
      // the widenings applied: all of them but on PostgreSQL those of a column a view reads (see below)
      let widening = widened;
      if ((reshaped.length || widened.length) && tx.dialect === 'postgres') {
        // PostgreSQL refuses to drop or retype a column a view reads, as dbt-postgres finds (a view that reads
        // only other columns of the table is no matter). Dropping the views and creating them again would lose
        // what hangs on them (an analyst's triggers, functions, defaults): say which they are and how to go on
        // instead.
        const readers = await columnReaders(tx, schema, name, [
          ...reshaped.map((r) => r.column),
          ...widened.map((w) => w.column),
        ]);
        if (readers.size) {
          // a widening only matters when the new rows' strings do not fit: otherwise the run goes on with the
          // column as it is, as it did before widening was done, rather than failing over views
          const readWidened = widened.filter((w) => readers.has(w.column));
          const tooLong = await longerThanStored(tx, source, srcByLower, readWidened);
          const blocked = [
            ...reshaped.filter((r) => readers.has(r.column)),
            ...tooLong.map((w) => ({ column: w.column, change: `${w.column} ${w.from} -> ${w.to}` })),
          ];
          if (blocked.length) {
            const views = [...new Set(blocked.flatMap((b) => readers.get(b.column) ?? []))].sort();
            throw new Error(
              `its columns changed (${blocked.map((b) => b.change).join(', ')}), which PostgreSQL cannot apply while views read ${blocked.length === 1 ? 'that column' : 'those columns'} (${views.join(', ')}): run it with --full-refresh, which rebuilds it and keeps the views over it where they still fit, or drop those views first`,
            );
          }
          widening = widened.filter((w) => !readers.has(w.column));
        }
      }
      const widenings = widening.map(
        (w) =>
          `alter table ${target} alter column ${quoteCatalogName(w.column)} type ${w.to} using ${quoteCatalogName(w.column)}::${w.to}`,
      );
      for (const a of [...widenings, ...alters]) await tx.exec(a);
      if (opts.strategy === 'delete+insert' && opts.uniqueKeyExpression !== undefined) {
        // dbt writes the expression bare on both sides: each side's columns are those of its own table
        const key = opts.uniqueKeyExpression;
        await tx.exec(
          `delete from ${target} where (${key}) in (select (${key}) from ${source} as ${SRC})${deletePredicates}`,
        );
        await tx.exec(`insert into ${target} (${colList}) select ${srcList} from ${source}`);
      } else if (opts.strategy === 'delete+insert' && opts.uniqueKey.length) {
        // dbt appends the predicates to the delete's where, outside the key match: they see the table's row
        await tx.exec(
          `delete from ${target} where exists (select 1 from ${source} as ${SRC} where ${keyMatch(target, SRC)})${deletePredicates}`,
        );
        await tx.exec(`insert into ${target} (${colList}) select ${srcList} from ${source}`);
      } else if (opts.strategy === 'merge' && opts.uniqueKey.length) {
        if (tx.dialect === 'postgres') {
          // dbt-postgres merges with MERGE, which refuses to update a row of the table from two new rows; an
          // update … from would keep one of them at random
          const keyCols = opts.uniqueKey.map((k) => `${SRC}.${fromSource(k)}`).join(', ');
          const [twice] = await tx.query<Record<string, unknown>>(
            `select ${keyCols} from ${source} as ${SRC} where exists (select 1 from ${target} as ${DEST} where ${keyMatch(DEST, SRC)}${predicates}) group by ${keyCols} having count(*) > 1 limit 1`,
          );
          if (twice)
            throw new Error(
              `the new rows hold the unique_key ${opts.uniqueKey.join(', ')} = ${Object.values(twice).map(String).join(', ')} more than once for one row of the table, which a merge cannot apply (dbt-postgres's MERGE fails here too: "cannot affect row a second time"): make the key unique in the model's SELECT`,
            );
        }
        const keys = new Set(opts.uniqueKey.map((k) => k.toLowerCase()));
        const only = opts.mergeUpdateColumns?.map((c) => c.toLowerCase());
        const skip = new Set((opts.mergeExcludeColumns ?? []).map((c) => c.toLowerCase()));
        const setCols = cols.filter(
          (c) =>
            !keys.has(c.toLowerCase()) &&
            !skip.has(c.toLowerCase()) &&
            (!only || only.includes(c.toLowerCase())),
        );
        // dbt's merge puts the predicates in its `on`, beside the key: a row of the table they exclude is not
        // matched, so it is not updated and the new row for its key is inserted beside it
        const unmatched = `from ${source} as ${SRC} where not exists (select 1 from ${target} as ${DEST} where ${keyMatch(DEST, SRC)}${predicates})`;
        // A MERGE matches once, before it changes anything; the update below could change a column a predicate
        // reads, and the insert after it would then take the updated row for new: with predicates, the rows to
        // insert are set aside first.
        const freshName = quoteIdent(suffixedName(name, '__dbt_new'));
        const fresh = predicates
          ? `${tx.dialect === 'duckdb' ? 'temp.main' : 'pg_temp'}.${freshName}`
          : undefined;
        if (fresh) await tx.exec(`create temp table ${freshName} as select * ${unmatched}`);
        if (setCols.length) {
          await tx.exec(
            `update ${target} as ${DEST} set ${setCols.map((c) => `${quoteCatalogName(c)} = ${SRC}.${fromSource(c)}`).join(', ')} ` +
              `from ${source} as ${SRC} where ${keyMatch(DEST, SRC)}${predicates}`,
          );
        }
        await tx.exec(
          `insert into ${target} (${colList}) select ${cols.map((c) => `${SRC}.${fromSource(c)}`).join(', ')} ` +
            (fresh ? `from ${fresh} as ${SRC}` : unmatched),
        );
        if (fresh) await tx.exec(`drop table ${fresh}`);
      } else {
        await tx.exec(`insert into ${target} (${colList}) select ${srcList} from ${source}`);
      }
      await tx.exec(`drop table ${source}`);
      if (afterApply) await afterApply(tx, { kept: true });
    });
    if (wh.dialect === 'postgres') await wh.exec(`analyze ${target}`);
    else await compactIfBloated(wh, schema, name);
    return rows;
  } catch (err) {
    await dropTmp().catch(() => undefined);
    throw err;
  }
}

/** Share of deleted rows past which an incremental DuckDB table is rewritten (see compactIfBloated). */
export const COMPACT_DEAD_SHARE = 0.3;

/**
 * DuckDB keeps the rows a delete+insert removed in place (the warehouse turns off the checkpoint's vacuum,
 * which rewrote the big tables on every run), so scans slowly read more dead rows. Once they pass
 * COMPACT_DEAD_SHARE of the table, it is rewritten and swapped in: one table copy every few daily runs
 * instead of a partial rewrite on each.
 */
export async function compactIfBloated(wh: Warehouse, schema: string, name: string): Promise<boolean> {
  if (wh.dialect !== 'duckdb') return false;
  const stored = await wh.query<{ n: number | bigint }>(
    'select estimated_size as n from duckdb_tables() where database_name = current_database() and schema_name = $1 and table_name = $2',
    [schema, name],
  );
  const total = Number(stored[0]?.n ?? 0);
  if (total === 0) return false;
  const live = await countRows(wh, schema, name);
  // deleted rows past the share, or row groups far more than the rows need (int_lifecycle__builds gains one
  // row, and so one row group of its own, per build: see isFragmented)
  if (total - live <= COMPACT_DEAD_SHARE * total && !(await isFragmented(wh, schema, name, live)))
    return false;
  // the copy would lose the comments persist_docs wrote on the table and its columns
  const comments = await wh.query<{ col: string | null; comment: string }>(
    `select null as col, comment from duckdb_tables()
     where database_name = current_database() and schema_name = $1 and table_name = $2 and comment is not null
     union all
     select column_name, comment from duckdb_columns()
     where database_name = current_database() and schema_name = $1 and table_name = $2 and comment is not null`,
    [schema, name],
  );
  const restore = comments.map((c) =>
    c.col === null
      ? `comment on table ${rel(schema, name)} is ${quoteText(wh.dialect, c.comment)}`
      : `comment on column ${rel(schema, name)}.${quoteCatalogName(c.col)} is ${quoteText(wh.dialect, c.comment)}`,
  );
  await buildSwap(wh, 'table', schema, name, `select * from ${rel(schema, name)}`, [], async (tx) => {
    if (restore.length) await tx.exec(restore.join(';\n'));
  });
  return true;
}

export async function existingKind(
  wh: Warehouse,
  schema: string,
  name: string,
): Promise<RelationKind | null> {
  return relationKind(wh, schema, name);
}
