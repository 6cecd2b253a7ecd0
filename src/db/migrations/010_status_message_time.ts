import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * Status messages by time: the database monitor's maintenance task deletes
 * those older than the site keeps (`statusMessageDays`), a little at a time,
 * without reading the whole table each round.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema.createIndex('status_messages_time').on('status_messages').columns(['time', 'id']).execute();
}

export const statusMessageTime: Migration = { version: 10, name: 'status_message_time', up };
