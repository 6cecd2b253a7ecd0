import { type Kysely, sql } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * The hierarchy: where each known site answers, the one-time join tokens a
 * parent issues, what each child site holds (the base for deltas), what was
 * last sent to it, and the cursors of what was last reported up.
 */
async function up(db: Kysely<unknown>, dialect: DbDialect): Promise<void> {
  const s = db.schema;
  await s.alterTable('site').addColumn('url', 'text').execute();

  await s
    .createTable('join_tokens')
    .addColumn('token_sha256', 'text', (c) => c.primaryKey())
    .addColumn('child_code', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('site_holdings')
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addColumn('source_version', 'integer', (c) => c.notNull())
    .addColumn('manifest_sha256', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('site_holdings_pk', ['site_code', 'package_id'])
    .addCheckConstraint('site_holdings_version', sql`source_version >= 1`)
    .execute();

  await s
    .createTable('replication_sent')
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text', (c) => c.notNull())
    .addColumn('source_version', 'integer', (c) => c.notNull())
    .addColumn('definition_sha256', 'text', (c) => c.notNull())
    .addColumn('send_id', 'text', (c) => c.notNull())
    .addColumn('bytes', dialect.bigIntegerType, (c) => c.notNull())
    .addColumn('sent_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('replication_sent_pk', ['site_code', 'package_id'])
    .execute();
}

export const hierarchy: Migration = { version: 3, name: 'hierarchy', up };
