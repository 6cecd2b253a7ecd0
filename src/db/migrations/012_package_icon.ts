import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * A package's own icon: the path of an `.ICO` file inside its source folder,
 * so the icon travels and versions with the content. Null: the default icon.
 * Set when the package is created (and received with its first definition),
 * so the change-log triggers need not watch it.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema.alterTable('packages').addColumn('icon', 'text').execute();
}

export const packageIcon: Migration = { version: 12, name: 'package_icon', up };
