import { type Kysely, sql } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

/**
 * Clients and what reaches them: registered clients (their Ed25519 public
 * keys), boundaries (IP ranges → site), collections (direct members and
 * rules), advertisements (package + program → collection) and each client's
 * state per advertisement.
 */
async function up(db: Kysely<unknown>, _dialect: DbDialect): Promise<void> {
  const s = db.schema;
  await s
    .createTable('clients')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('public_key', 'text', (c) => c.notNull().unique())
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('boundary', 'text')
    .addColumn('ip', 'text')
    .addColumn('approved', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('registered_at', 'text', (c) => c.notNull())
    .addColumn('last_seen_at', 'text')
    .addCheckConstraint('clients_approved_bool', sql`approved IN (0, 1)`)
    .execute();
  await s.createIndex('clients_name').on('clients').column('name').execute();

  await s
    .createTable('client_settings')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  await sql`INSERT INTO client_settings (name, value) VALUES ('require_approval', '0')`.execute(db);

  await s
    .createTable('boundaries')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('range_text', 'text', (c) => c.notNull())
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('mp_url', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await s
    .createTable('collections')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await s
    .createTable('collection_members')
    .addColumn('collection', 'text', (c) => c.notNull().references('collections.name').onDelete('cascade'))
    .addColumn('member', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('collection_members_pk', ['collection', 'member'])
    .execute();
  await s
    .createTable('collection_rules')
    .addColumn('collection', 'text', (c) => c.notNull().references('collections.name').onDelete('cascade'))
    .addColumn('position', 'integer', (c) => c.notNull())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('collection_rules_pk', ['collection', 'position'])
    .execute();

  await s
    .createTable('advertisements')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('package_id', 'text', (c) => c.notNull().references('packages.id'))
    .addColumn('program', 'text', (c) => c.notNull())
    .addColumn('collection', 'text', (c) => c.notNull().references('collections.name'))
    .addColumn('available_at', 'text', (c) => c.notNull())
    .addColumn('mandatory_at', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('rerun', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addCheckConstraint('advertisements_rerun', sql`rerun >= 0`)
    .execute();
  await s.createIndex('advertisements_collection').on('advertisements').column('collection').execute();

  await s
    .createTable('advertisement_status')
    .addColumn('advertisement_id', 'text', (c) => c.notNull().references('advertisements.id').onDelete('cascade'))
    .addColumn('client_id', 'text', (c) => c.notNull().references('clients.id').onDelete('cascade'))
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('exit_code', 'integer')
    .addColumn('rerun', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('message', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('advertisement_status_pk', ['advertisement_id', 'client_id'])
    .addCheckConstraint('advertisement_status_state', sql`state IN ('received', 'running', 'succeeded', 'failed')`)
    .execute();
  await s.createIndex('advertisement_status_client').on('advertisement_status').column('client_id').execute();

  // Bumped by every change that alters what some client's policy says; the management point rebuilds its cache when it moves.
  await sql`INSERT INTO counters (name, value) VALUES ('advertisement_id', 0), ('client_policy', 0)`.execute(db);
}

export const clients: Migration = { version: 4, name: 'clients', up };
