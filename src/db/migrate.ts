import type { Kysely } from 'kysely';
import { SitecastError } from '../errors.js';
import type { DbDialect } from './dialect.js';
import type { Migration } from './migration.js';
import type { Database } from './schema.js';

export interface MigrationResult {
  from: number;
  to: number;
}

/** Current schema version (0 for an empty database). */
export async function schemaVersion(db: Kysely<Database>): Promise<number> {
  const row = await db
    .selectFrom('schema_migrations')
    .select((eb) => eb.fn.max('version').as('version'))
    .executeTakeFirst();
  return Number(row?.version ?? 0);
}

/**
 * Brings the schema up to the newest migration this build knows. Each step
 * runs in its own transaction together with its row in schema_migrations, so a
 * crash leaves the database at a whole version. A database already past what
 * this build knows is refused untouched: old code must not write a schema it
 * does not understand.
 */
export async function migrate(
  db: Kysely<Database>,
  dialect: DbDialect,
  migrations: readonly Migration[],
): Promise<MigrationResult> {
  const ordered = [...migrations].sort((a, b) => a.version - b.version);
  ordered.forEach((m, i) => {
    if (m.version !== i + 1) throw new Error(`migrations must be numbered 1, 2, 3…; found ${m.version} at ${i + 1}`);
  });
  // On PostgreSQL a second process waits here until the first has finished, then finds nothing to do.
  if (dialect.withMigrationLock !== undefined) return dialect.withMigrationLock(db, (locked) => migrateLocked(locked, dialect, ordered));
  return migrateLocked(db, dialect, ordered);
}

async function migrateLocked(
  db: Kysely<Database>,
  dialect: DbDialect,
  ordered: readonly Migration[],
): Promise<MigrationResult> {
  const latest = ordered.length;
  await db.schema
    .createTable('schema_migrations')
    .ifNotExists()
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .execute();
  const from = await schemaVersion(db);
  if (from > latest) throw tooNew(dialect, from, latest);
  for (const migration of ordered.slice(from)) {
    await db.transaction().execute(async (trx) => {
      // Another process may have migrated while we waited for the lock.
      const current = await schemaVersion(trx);
      if (current >= migration.version) return;
      await migration.up(trx as unknown as Kysely<unknown>, dialect);
      await trx
        .insertInto('schema_migrations')
        .values({ version: migration.version, name: migration.name, applied_at: new Date().toISOString() })
        .execute();
    });
  }
  return { from, to: Math.max(from, latest) };
}

/** The version of a database opened without migrating it; one newer than `latest` is refused like migrate() does. */
export async function checkVersion(db: Kysely<Database>, dialect: DbDialect, latest: number): Promise<MigrationResult> {
  const version = await schemaVersion(db);
  if (version > latest) throw tooNew(dialect, version, latest);
  return { from: version, to: version };
}

function tooNew(dialect: DbDialect, version: number, latest: number): SitecastError {
  return new SitecastError(
    'SITECAST_E_DB_TOO_NEW',
    `the site database ${dialect.location} has schema version ${version}; this Sitecast knows versions up to ${latest}`,
    { hint: 'run the Sitecast version that last opened this database, or a newer one' },
  );
}

/** For tests and repair tools: what the database says about itself. */
export async function listAppliedMigrations(db: Kysely<Database>): Promise<{ version: number; name: string }[]> {
  const rows = await db.selectFrom('schema_migrations').select(['version', 'name']).orderBy('version').execute();
  return rows.map((r) => ({ version: Number(r.version), name: r.name }));
}
