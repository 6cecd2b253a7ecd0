import { type Kysely, type RawBuilder, sql } from 'kysely';
import type { DbDialect } from '../../db/dialect.js';
import type { CellValue } from './format.js';

/** What a backup needs to know about one table of the site database. */
export interface TableSpec {
  readonly name: string;
  /** The primary key: rows are read in its order, a page at a time. */
  readonly key: readonly string[];
  /** An auto-incremented id column (PostgreSQL: an identity whose sequence is moved past the restored ids). */
  readonly identity?: string;
}

/**
 * Every table of the site database (schema_migrations aside: a restore makes
 * its own by running the migrations), parents before children so rows can be
 * inserted in this order with foreign keys enforced. change_log comes last: the
 * change triggers fire while the other tables are restored, and the rows they
 * write are replaced by the backup's own. A test checks that this list names
 * every table the newest schema has; a new migration adds its tables here.
 */
export const TABLES: readonly TableSpec[] = [
  { name: 'counters', key: ['name'] },
  { name: 'site', key: ['code'] },
  { name: 'packages', key: ['id'] },
  { name: 'programs', key: ['package_id', 'name'] },
  { name: 'dps', key: ['site_code', 'name'] },
  { name: 'package_targets', key: ['package_id', 'site_code', 'dp_name'] },
  { name: 'package_dp_status', key: ['package_id', 'site_code', 'dp_name'] },
  { name: 'status_messages', key: ['id'], identity: 'id' },
  { name: 'admin_tokens', key: ['id'] },
  { name: 'addresses', key: ['to_site'] },
  { name: 'join_tokens', key: ['token_sha256'] },
  { name: 'site_holdings', key: ['site_code', 'package_id'] },
  { name: 'replication_sent', key: ['site_code', 'package_id'] },
  { name: 'clients', key: ['id'] },
  { name: 'client_settings', key: ['name'] },
  { name: 'boundaries', key: ['name'] },
  { name: 'collections', key: ['name'] },
  { name: 'collection_members', key: ['collection', 'member'] },
  { name: 'collection_rules', key: ['collection', 'position'] },
  { name: 'advertisements', key: ['id'] },
  { name: 'advertisement_status', key: ['advertisement_id', 'client_id'] },
  { name: 'dp_refresh_requests', key: ['package_id', 'site_code', 'dp_name'] },
  { name: 'wanted_versions', key: ['package_id'] },
  { name: 'received_definitions', key: ['package_id'] },
  { name: 'change_log', key: ['id'], identity: 'id' },
];

/** Tables and their columns as the database has them (the current schema only, on PostgreSQL). */
export async function tableColumns(db: Kysely<unknown>, dialect: DbDialect): Promise<Map<string, string[]>> {
  let schema: string | undefined;
  if (dialect.name === 'postgres') {
    const r = await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db);
    schema = r.rows[0]?.s;
  }
  const out = new Map<string, string[]>();
  for (const t of await db.introspection.getTables()) {
    if (schema !== undefined && t.schema !== schema) continue;
    out.set(t.name, t.columns.map((c) => c.name));
  }
  return out;
}

function refs(names: readonly string[]): RawBuilder<unknown> {
  return sql.join(names.map((n) => sql.ref(n)));
}

/**
 * One page of a table in key order, after the key of the last row of the page
 * before (keyset paging: each page costs an index seek, not a rescan).
 */
export async function readPage(
  db: Kysely<unknown>,
  spec: TableSpec,
  columns: readonly string[],
  options: { after: readonly CellValue[] | undefined; limit: number },
): Promise<CellValue[][]> {
  const where =
    options.after === undefined ? sql`` : sql`WHERE (${refs(spec.key)}) > (${sql.join(options.after.map((v) => sql`${v}`))})`;
  const r = await sql<Record<string, unknown>>`SELECT ${refs(columns)} FROM ${sql.table(spec.name)} ${where} ORDER BY ${refs(spec.key)} LIMIT ${options.limit}`.execute(db);
  return r.rows.map((row) =>
    columns.map((c) => {
      const v = row[c];
      if (v === null || v === undefined) return null;
      if (typeof v === 'string' || typeof v === 'number') return v;
      if (typeof v === 'bigint') return Number(v);
      throw new Error(`${spec.name}.${c} holds a ${typeof v}, which a backup cannot carry`);
    }),
  );
}

/** Inserts rows (columns in the given order) as they are, ids included. */
export async function insertRows(db: Kysely<unknown>, into: { table: string; columns: readonly string[] }, rows: readonly CellValue[][]): Promise<void> {
  const { table, columns } = into;
  // A few hundred rows per statement keeps well under both databases' limit on bound parameters.
  const per = Math.max(1, Math.floor(8000 / columns.length));
  for (let i = 0; i < rows.length; i += per) {
    const values = rows.slice(i, i + per).map((row) => sql`(${sql.join(row.map((v) => sql`${v}`))})`);
    await sql`INSERT INTO ${sql.table(table)} (${refs(columns)}) VALUES ${sql.join(values)}`.execute(db);
  }
}

export async function deleteAll(db: Kysely<unknown>, table: string): Promise<void> {
  await sql`DELETE FROM ${sql.table(table)}`.execute(db);
}

/** PostgreSQL: moves an identity column's sequence past the highest restored id. SQLite's AUTOINCREMENT follows explicit ids by itself. */
export async function fixIdentity(db: Kysely<unknown>, dialect: DbDialect, spec: TableSpec): Promise<void> {
  if (dialect.name !== 'postgres' || spec.identity === undefined) return;
  const table = sql.lit(spec.name);
  const column = sql.lit(spec.identity);
  await sql`SELECT setval(pg_get_serial_sequence(${table}, ${column}), COALESCE(MAX(${sql.ref(spec.identity)}), 0) + 1, false) FROM ${sql.table(spec.name)}`.execute(db);
}
