import { type Kysely, sql } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/** One address per target site: how, when and how fast this site sends to it, and what it has sent. */
async function up(db: Kysely<unknown>, dialect: DbDialect): Promise<void> {
  await db.schema
    .createTable('addresses')
    .addColumn('to_site', 'text', (c) => c.primaryKey())
    .addColumn('sender', 'text', (c) => c.notNull())
    .addColumn('path', 'text')
    .addColumn('schedule', 'text', (c) => c.notNull())
    .addColumn('rate_limit', 'text', (c) => c.notNull())
    .addColumn('pulse_block_kb', 'integer')
    .addColumn('pulse_delay_ms', 'integer')
    .addColumn('max_concurrent', 'integer', (c) => c.notNull())
    .addColumn('retries', 'integer', (c) => c.notNull())
    .addColumn('retry_delay_ms', 'integer', (c) => c.notNull())
    .addColumn('paused', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('bytes_sent', dialect.bigIntegerType, (c) => c.notNull().defaultTo(0))
    .addColumn('current_rate', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addCheckConstraint('addresses_sender', sql`sender IN ('http', 'lan', 'courier')`)
    .addCheckConstraint('addresses_paused_bool', sql`paused IN (0, 1)`)
    .addCheckConstraint('addresses_max_concurrent', sql`max_concurrent >= 1`)
    .addCheckConstraint('addresses_counters', sql`bytes_sent >= 0 AND current_rate >= 0 AND retries >= 0 AND retry_delay_ms >= 0`)
    .execute();
}

export const addresses: Migration = { version: 2, name: 'addresses', up };
