import { UserError } from '../errors';
import type { SqlRunner } from '../warehouse/types';
import { quoteCatalogName, quoteIdent, quoteText } from '../warehouse/types';
import type { RelationKind } from './materialize';
import { columnsOf } from './materialize';
import type { ModelNode } from './project';

/** dbt's `persist_docs` config: write schema.yml descriptions into the warehouse as comments. */
export interface PersistDocs {
  relation: boolean;
  columns: boolean;
}

/** Validates a model's `persist_docs` config; null when nothing is to be written. */
export function parsePersistDocs(value: unknown, where: string): PersistDocs | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'object' || Array.isArray(value)) {
    throw new UserError(
      `${where} has persist_docs that is not a mapping: use {relation: true, columns: true}.`,
    );
  }
  const o = value as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'relation' && k !== 'columns') {
      throw new UserError(`${where} has an unknown persist_docs key ${k}: use relation and columns.`);
    }
  }
  const docs = { relation: o.relation === true, columns: o.columns === true };
  return docs.relation || docs.columns ? docs : null;
}

/**
 * Writes the model's description and its columns' descriptions as comments on the relation just put in
 * place (dbt's persist_docs), in the same transaction. Columns schema.yml describes but the relation lacks
 * are skipped, as dbt-postgres does. One batch, so an incremental run pays one round trip per model.
 */
export async function persistDocs(
  tx: SqlRunner,
  kind: RelationKind,
  schema: string,
  name: string,
  node: ModelNode,
  docs: PersistDocs,
  render: (text: string) => string = (t) => t,
): Promise<void> {
  const rel = `${quoteIdent(schema)}.${quoteIdent(name)}`;
  const statements: string[] = [];
  if (docs.relation && node.description !== undefined) {
    statements.push(`comment on ${kind} ${rel} is ${quoteText(tx.dialect, render(node.description))}`);
  }
  if (docs.columns) {
    const described = node.columns.filter((c) => c.description !== undefined);
    if (described.length) {
      const present = new Map((await columnsOf(tx, schema, name)).map((c) => [c.toLowerCase(), c]));
      for (const c of described) {
        const col = present.get(c.name.toLowerCase());
        if (col === undefined) continue;
        statements.push(
          `comment on column ${rel}.${quoteCatalogName(col)} is ${quoteText(tx.dialect, render(c.description ?? ''))}`,
        );
      }
    }
  }
  if (statements.length) await tx.exec(statements.join(';\n'));
}
