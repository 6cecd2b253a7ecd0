import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sql } from 'kysely';
import { isSitecastError } from '../../src/errors.js';
import { MIGRATIONS, listAppliedMigrations, listPackages, type Migration } from '../../src/db/index.js';
import { countRows, eachBackend, fixture, tempDir } from './backends.js';

const NEWEST = MIGRATIONS.length;
const APPLIED = MIGRATIONS.map((m) => ({ version: m.version, name: m.name }));

eachBackend('a new database is migrated to the newest version, in WAL mode', async (t, backend) => {
  const dir = await tempDir(t);
  const site = await backend.open(dir);
  t.after(() => site.close());
  assert.equal(site.schemaVersion, MIGRATIONS.length);
  assert.deepEqual(await listAppliedMigrations(site.db), APPLIED);
  if (backend.name === 'sqlite') {
    const mode = await sql<{ journal_mode: string }>`PRAGMA journal_mode`.execute(site.db);
    assert.equal(mode.rows[0]?.journal_mode, 'wal');
    const timeout = await sql<{ timeout: number }>`PRAGMA busy_timeout`.execute(site.db);
    assert.ok(Number(timeout.rows[0]?.timeout) > 0);
  }
});

eachBackend('re-opening applies nothing twice and keeps the data', async (t, backend) => {
  const { dir, site } = await fixture(t, backend);
  await site.close();
  await site.close();
  const again = await backend.open(dir);
  t.after(() => again.close());
  assert.equal(again.schemaVersion, NEWEST);
  assert.deepEqual(await listAppliedMigrations(again.db), APPLIED);
  assert.equal(await countRows(again, 'site'), 2);
});

eachBackend('a later migration is applied on open; a failing one leaves the previous version whole', async (t, backend) => {
  const { dir, site } = await fixture(t, backend);
  await site.close();
  const failing: Migration = {
    version: NEWEST + 1,
    name: 'broken',
    up: async (db) => {
      await db.schema.createTable('half_done').addColumn('x', 'integer').execute();
      throw new Error('disk on fire');
    },
  };
  await assert.rejects(backend.open(dir, { migrations: [...MIGRATIONS, failing] }), (err: unknown) =>
    isSitecastError(err, 'SITECAST_E_DB'),
  );
  const check = await backend.open(dir);
  assert.equal(check.schemaVersion, NEWEST);
  const tables = await check.db.introspection.getTables();
  assert.ok(!tables.some((tb) => tb.name === 'half_done'));
  await check.close();

  const good: Migration = {
    version: NEWEST + 1,
    name: 'add_icons',
    up: async (db) => void (await db.schema.createTable('icons').addColumn('package_id', 'text').execute()),
  };
  const upgraded = await backend.open(dir, { migrations: [...MIGRATIONS, good] });
  t.after(() => upgraded.close());
  assert.equal(upgraded.schemaVersion, NEWEST + 1);
  assert.deepEqual(
    (await listAppliedMigrations(upgraded.db)).map((m) => m.name),
    [...APPLIED.map((m) => m.name), 'add_icons'],
  );
});

eachBackend('a database written by a newer Sitecast is refused and left untouched', async (t, backend) => {
  const { dir, site } = await fixture(t, backend);
  await site.db
    .insertInto('schema_migrations')
    .values({ version: NEWEST + 1, name: 'from_the_future', applied_at: new Date().toISOString() })
    .execute();
  await site.close();
  const before = backend.name === 'sqlite' ? await readFile(join(dir, 'site.db')) : undefined;
  await assert.rejects(backend.open(dir), (err: unknown) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_DB_TOO_NEW'));
    assert.match(err.message, new RegExp(`schema version ${NEWEST + 1}; this Sitecast knows versions up to ${NEWEST}`));
    return true;
  });
  if (before !== undefined) assert.deepEqual(await readFile(join(dir, 'site.db')), before);
  const newer = await backend.open(dir, {
    migrations: [...MIGRATIONS, { version: NEWEST + 1, name: 'from_the_future', up: async () => undefined }],
  });
  t.after(() => newer.close());
  assert.deepEqual(await listPackages(newer), []);
});
