import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * Versions this site could not take for want of their base: a delta (or a
 * bundle without content) refused because the library no longer holds the
 * version it was built against. The status reporter tells the parent, which
 * then sends the whole version; the row goes once that version is applied.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema
    .createTable('wanted_versions')
    .addColumn('package_id', 'text', (c) => c.primaryKey())
    .addColumn('source_version', 'integer', (c) => c.notNull())
    .addColumn('manifest_sha256', 'text', (c) => c.notNull())
    .addColumn('since', 'text', (c) => c.notNull())
    .execute();
}

export const wantedVersions: Migration = { version: 8, name: 'wanted_versions', up };
