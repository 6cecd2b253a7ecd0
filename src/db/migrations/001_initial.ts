import { type Kysely, sql } from 'kysely';
import type { DbDialect } from '../dialect.js';
import type { Migration } from '../migration.js';

async function up(db: Kysely<unknown>, dialect: DbDialect): Promise<void> {
  const s = db.schema;

  await s
    .createTable('counters')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute();
  await sql`INSERT INTO counters (name, value) VALUES ('package_id', 0)`.execute(db);

  await s
    .createTable('site')
    .addColumn('code', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('parent_code', 'text')
    .addColumn('public_key', 'text')
    .addColumn('is_local', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addCheckConstraint('site_is_local_bool', sql`is_local IN (0, 1)`)
    .execute();

  await s
    .createTable('packages')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('source_path', 'text', (c) => c.notNull())
    .addColumn('priority', 'text', (c) => c.notNull())
    .addColumn('source_version', 'integer', (c) => c.notNull())
    .addColumn('manifest_sha256', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addCheckConstraint('packages_priority', sql`priority IN ('high', 'medium', 'low')`)
    .addCheckConstraint('packages_source_version', sql`source_version >= 1`)
    .execute();

  await s
    .createTable('programs')
    .addColumn('package_id', 'text', (c) => c.notNull().references('packages.id').onDelete('cascade'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('command_line', 'text', (c) => c.notNull())
    .addColumn('max_run_time_seconds', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('programs_pk', ['package_id', 'name'])
    .addCheckConstraint('programs_max_run_time', sql`max_run_time_seconds > 0`)
    .execute();

  await s
    .createTable('dps')
    .addColumn('site_code', 'text', (c) => c.notNull().references('site.code'))
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('path', 'text', (c) => c.notNull())
    .addColumn('url', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('dps_pk', ['site_code', 'name'])
    .execute();

  await s
    .createTable('package_targets')
    .addColumn('package_id', 'text', (c) => c.notNull().references('packages.id').onDelete('cascade'))
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('dp_name', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('package_targets_pk', ['package_id', 'site_code', 'dp_name'])
    .addForeignKeyConstraint('package_targets_dp', ['site_code', 'dp_name'], 'dps', ['site_code', 'name'])
    .execute();

  await s
    .createTable('package_dp_status')
    .addColumn('package_id', 'text', (c) => c.notNull().references('packages.id').onDelete('cascade'))
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('dp_name', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('source_version', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('retry_count', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('next_attempt', 'text')
    .addColumn('last_message', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('package_dp_status_pk', ['package_id', 'site_code', 'dp_name'])
    .addCheckConstraint('package_dp_status_state', sql`state IN ('pending', 'installed', 'retrying', 'failed')`)
    .execute();

  await s
    .createTable('status_messages')
    .addColumn('id', 'integer', (c) => dialect.autoIncrementPrimaryKey(c))
    .addColumn('time', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('component', 'text', (c) => c.notNull())
    .addColumn('site_code', 'text', (c) => c.notNull())
    .addColumn('package_id', 'text')
    .addColumn('text', 'text', (c) => c.notNull())
    .addCheckConstraint('status_messages_severity', sql`severity IN ('info', 'warning', 'error')`)
    .execute();
  await s.createIndex('status_messages_package').on('status_messages').columns(['package_id', 'id']).execute();

  await s
    .createTable('admin_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_sha256', 'text', (c) => c.notNull().unique())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('label', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addCheckConstraint('admin_tokens_role', sql`role IN ('admin', 'read-only')`)
    .execute();

  await s
    .createTable('change_log')
    .addColumn('id', 'integer', (c) => dialect.autoIncrementPrimaryKey(c))
    .addColumn('table_name', 'text', (c) => c.notNull())
    .addColumn('object_key', 'text', (c) => c.notNull())
    .addColumn('op', 'text', (c) => c.notNull())
    .addColumn('time', 'text', (c) => c.notNull())
    .execute();

  // The "SQL Monitor" half that lives in the database: every write the
  // provider makes to a package definition leaves a row the monitor turns into
  // a <PKGID>.PKN wake-up file. Bookkeeping columns (manifest_sha256,
  // updated_at) are left out so Distribution Manager recording its own work
  // does not wake itself again.
  const specs = [
    {
      table: 'packages',
      keyColumn: 'id',
      updateColumns: ['name', 'version', 'source_path', 'priority', 'source_version'],
    },
    { table: 'programs', keyColumn: 'package_id', updateColumns: ['name', 'command_line', 'max_run_time_seconds'] },
    { table: 'package_targets', keyColumn: 'package_id', updateColumns: ['site_code', 'dp_name'] },
  ];
  for (const spec of specs) {
    for (const statement of dialect.changeTriggers(spec)) await statement.execute(db);
  }
}

export const initial: Migration = { version: 1, name: 'initial', up };
