import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * The status reporter of a child site looks, every few seconds, for DP
 * status rows changed since it last looked (`updated_at` from a cursor,
 * minus a window for late commits). Without this index every look read the
 * whole table: one row per package and DP, millions in a large hierarchy.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema.createIndex('package_dp_status_updated').on('package_dp_status').columns(['updated_at']).execute();
}

export const statusChanges: Migration = { version: 7, name: 'status_changes', up };
