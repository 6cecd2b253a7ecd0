import { freePort as closedPort } from '../../src/site/lab-chain.js';
import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { getLocalSite } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { initSite, loadSiteConfig } from '../../src/site/index.js';
import { startSite } from '../../src/site/server.js';
import { postgresAvailable, testDatabase } from '../helpers/postgres.js';

const noServer = postgresAvailable() ? false : 'no PostgreSQL server (set SITECAST_TEST_PG or install postgresql)';
type Ctx = { after: (fn: () => Promise<void>) => void };

async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-pgsite-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('site init --database postgres://…: no SQLite file, site.json 0600 names the database, the server runs on it', { skip: noServer }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'cen');
  const url = await testDatabase(dir);
  await initSite(root, { code: 'CEN', listen: '127.0.0.1:0', database: url });
  assert.ok(!(await readdir(root)).some((n) => n.startsWith('site.db')), 'a SQLite file was created');
  assert.equal((await stat(join(root, 'site.json'))).mode & 0o777, 0o600);
  const config = await loadSiteConfig(root);
  assert.deepEqual(config.database, { kind: 'postgres', url });

  const handle = await startSite(root);
  t.after(() => handle.close());
  assert.equal(handle.ctx.db.dialect.name, 'postgres');
  assert.equal((await getLocalSite(handle.ctx.db))?.code, 'CEN');
  assert.ok(!(await readdir(root)).some((n) => n.startsWith('site.db')));
  await handle.close();

  // A second site cannot take over a database that already holds one.
  await assert.rejects(initSite(join(dir, 'other'), { code: 'OTH', database: url }), (err: unknown) => isSitecastError(err, 'SITECAST_E_SITE_EXISTS'));
  assert.deepEqual((await readdir(dir)).filter((n) => n.startsWith('.') || n === 'other'), []);
});

test('site init with an unreachable PostgreSQL: SITECAST_E_DB without the password, nothing left behind', async (t) => {
  const dir = await tempDir(t);
  const port = await closedPort();
  const url = `postgres://sitecast:s3cret-Pw@127.0.0.1:${port}/sitecast`;
  await assert.rejects(initSite(join(dir, 'cen'), { code: 'CEN', database: url }), (err: unknown) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_DB'), String(err));
    assert.ok(err.message.includes(`127.0.0.1:${port}`));
    assert.ok(!`${err.message} ${String(err.stack)}`.includes('s3cret-Pw'));
    return true;
  });
  assert.deepEqual(await readdir(dir), []);
});

test('site init refuses a --database that is not a PostgreSQL URL, without repeating it', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(initSite(join(dir, 'cen'), { code: 'CEN', database: 'mysql://u:pw-xyz@h/db' }), (err: unknown) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_INVALID_VALUE'));
    assert.ok(!err.message.includes('pw-xyz'));
    return true;
  });
  assert.deepEqual(await readdir(dir), []);
});
