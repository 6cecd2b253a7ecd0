import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * Redistribution requests: an administrator asks for a package to be copied
 * again onto one DP of this site (its library chunks re-checked, its share
 * rebuilt from them). The row's change trigger wakes the database monitor,
 * which drops `<PKGID>.PKN` for Distribution Manager like any other change;
 * Distribution Manager deletes the row once the DP holds a fresh copy.
 */
async function up(db: Kysely<unknown>, dialect: DbDialect): Promise<void> {
  await db.schema
    .createTable('dp_refresh_requests')
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('dp_name', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('dp_refresh_requests_pk', ['package_id', 'site_code', 'dp_name'])
    .execute();
  for (const statement of dialect.changeTriggers({ table: 'dp_refresh_requests', keyColumn: 'package_id', updateColumns: ['requested_at'] })) {
    await statement.execute(db);
  }
}

export const refresh: Migration = { version: 5, name: 'refresh', up };
