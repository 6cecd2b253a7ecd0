import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * The newest package bundle applied from the parent, per package: its source
 * version and when the parent made it. Bundles about one package can reach
 * the Despooler out of order (one held back by a retry while a later one
 * arrives, parcels carried by courier in another order); one older than this
 * row is skipped, so a withdrawal is never undone by the definition it
 * followed. A withdrawal of a package this site never held records its row too.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema
    .createTable('received_definitions')
    .addColumn('package_id', 'text', (c) => c.primaryKey())
    .addColumn('source_version', 'integer', (c) => c.notNull())
    .addColumn('created', 'text', (c) => c.notNull())
    .addColumn('bundle_id', 'text', (c) => c.notNull())
    .addColumn('applied_at', 'text', (c) => c.notNull())
    .execute();
}

export const receivedDefinitions: Migration = { version: 11, name: 'received_definitions', up };
