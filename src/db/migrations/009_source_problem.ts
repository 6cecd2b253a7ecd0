import type { Kysely } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * Why Distribution Manager could not use a package's source folder, and for
 * which source version: a package whose source is missing or unreadable is
 * `failed` even when no DP is targeted yet (its DPs, if any, are failed too).
 * Bookkeeping columns: the change-log triggers do not watch them.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  await db.schema.alterTable('packages').addColumn('source_problem', 'text').execute();
  await db.schema.alterTable('packages').addColumn('source_problem_version', 'integer').execute();
}

export const sourceProblem: Migration = { version: 9, name: 'source_problem', up };
