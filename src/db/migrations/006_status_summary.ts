import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * The hierarchy summary (state counts of every package, dpsummary.ts) groups
 * every package–DP status row by package and state. The primary key leads
 * with package_id but does not hold the state, so both databases read the
 * whole table for it: over a second on 2.5 million rows. This index covers
 * the query (an index-only scan, already in package order), at the price of
 * one more index entry written per status row.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema.createIndex('package_dp_status_state').on('package_dp_status').columns(['package_id', 'state']).execute();
}

export const statusSummary: Migration = { version: 6, name: 'status_summary', up };
