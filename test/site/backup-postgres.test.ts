import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { getLocalSite, openSiteDb } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { backupSite } from '../../src/site/backup/backup.js';
import { restoreSite } from '../../src/site/backup/restore.js';
import { startSite } from '../../src/site/server.js';
import { api, packageStatus, siblings, siteWithPackage, waitState } from '../helpers/backup.js';
import { postgresAvailable, testDatabase } from '../helpers/postgres.js';

const noServer = postgresAvailable() ? false : 'no PostgreSQL server (set SITECAST_TEST_PG or install postgresql)';

async function messageIds(url: string, token: string): Promise<number[]> {
  return ((await (await api(url, token, 'GET', '/status-messages')).json()) as { messages: { id: number }[] }).messages.map((m) => m.id);
}

test('a SQLite site restored onto PostgreSQL, and back onto SQLite: same packages and statuses, ids continue, work resumes', { skip: noServer }, async (t) => {
  const s = await siteWithPackage(t);
  const { site, handle, token } = s;
  const installed = await packageStatus(handle.url, token, s.installed);
  const list = await (await api(handle.url, token, 'GET', '/packages')).json();
  const ids = await messageIds(handle.url, token);
  const first = join(site.dir, 'sqlite.backup');
  await backupSite(site.root, first, { sitecast: 'test' });
  await handle.close();
  await rm(s.blocker);

  const url = await testDatabase(join(site.dir, 'pg'));
  const pgRoot = join(site.dir, 'on-postgres');
  const r = await restoreSite(first, pgRoot, { database: url });
  assert.equal(r.tables.packages, 2);
  assert.ok(!(await readdir(pgRoot)).some((n) => n.startsWith('site.db')), 'no SQLite file for a PostgreSQL site');
  const h2 = await startSite(pgRoot, { distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 500 } } });
  site.defer(() => h2.close());
  assert.equal(h2.ctx.db.dialect.name, 'postgres');
  assert.deepEqual(await (await api(h2.url, token, 'GET', '/packages')).json(), list);
  assert.deepEqual(await packageStatus(h2.url, token, s.installed), installed);
  await waitState(h2.url, token, s.waiting, 'dp2', 'installed');
  // The identity sequences were moved past the restored ids: new rows insert, and number after them.
  const after = await messageIds(h2.url, token);
  assert.ok(ids.every((id) => after.includes(id)));
  assert.ok(after.some((id) => id > Math.max(...ids)));

  // A backup of the PostgreSQL site, taken while it runs, restores onto SQLite.
  const second = join(site.dir, 'postgres.backup');
  const made = await backupSite(pgRoot, second, { sitecast: 'test' });
  const sqliteRoot = join(site.dir, 'back-on-sqlite');
  await restoreSite(second, sqliteRoot);
  await h2.close();
  const h3 = await startSite(sqliteRoot);
  site.defer(() => h3.close());
  assert.equal(h3.ctx.db.dialect.name, 'sqlite');
  assert.deepEqual(await (await api(h3.url, token, 'GET', '/packages')).json(), list);
  assert.deepEqual((await packageStatus(h3.url, token, s.waiting)).map((d) => d.state), ['installed']);
  assert.ok((made.tables.status_messages ?? 0) >= after.length);
  const onSqlite = await messageIds(h3.url, token);
  assert.ok(after.every((id) => onSqlite.includes(id)), 'every status message made on PostgreSQL came back');
  await h3.close();

  // A database that already holds a site is refused, and left as it was.
  const again = join(site.dir, 'again');
  const before = await siblings(again);
  await assert.rejects(restoreSite(first, again, { database: url }), (err: unknown) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_SITE_EXISTS'), String(err));
    assert.doesNotMatch(err.message, /password|s3cret/);
    return true;
  });
  assert.deepEqual(await siblings(again), before);
  const db = await openSiteDb({ kind: 'postgres', url });
  try {
    assert.equal((await getLocalSite(db))?.code, 'CEN');
  } finally {
    await db.close();
  }
});
