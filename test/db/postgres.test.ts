import { freePort as closedPort } from '../../src/site/lab-chain.js';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MIGRATIONS, addSite, createPackage, listAppliedMigrations, openSiteDb, redactDsn } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { postgresAvailable, testDatabase } from '../helpers/postgres.js';
import { tempDir } from './backends.js';

const run = promisify(execFile);
const noServer = postgresAvailable() ? false : 'no PostgreSQL server (set SITECAST_TEST_PG or install postgresql)';

test('redactDsn hides the password in the authority and in the query', () => {
  assert.equal(redactDsn('postgres://site:hunter2@db.example.net:5432/sitecast'), 'postgres://site:***@db.example.net:5432/sitecast');
  assert.equal(redactDsn('postgres://site@db/sitecast?password=hunter2&sslmode=require'), 'postgres://site@db/sitecast?password=***&sslmode=require');
  assert.ok(!redactDsn('postgres://a:hunter2@/x%').includes('hunter2'));
});

test('PostgreSQL unreachable at open: SITECAST_E_DB naming the DSN without its password', async () => {
  const port = await closedPort();
  const url = `postgres://sitecast:s3cret-Pw@127.0.0.1:${port}/sitecast`;
  await assert.rejects(openSiteDb({ kind: 'postgres', url, connectTimeoutMs: 3000 }), (err: unknown) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_DB'), String(err));
    assert.ok(err.message.includes(`postgres://sitecast:***@127.0.0.1:${port}/sitecast`), err.message);
    assert.ok(err.hint?.includes('PostgreSQL server'));
    const everything = `${err.message} ${err.hint ?? ''} ${String(err.stack)} ${String(err.cause)} ${JSON.stringify(err)}`;
    assert.ok(!everything.includes('s3cret-Pw'), 'the password appears in the error');
    return true;
  });
});

// Two real processes, as when a server and a CLI command start at once against a new database.
const OPENER = fileURLToPath(new URL('./open-once.js', import.meta.url));

test('two processes migrating one new PostgreSQL database at once: both succeed, each migration applied once', { skip: noServer }, async (t) => {
  const dir = await tempDir(t);
  const url = await testDatabase(dir);
  const results = await Promise.all([run(process.execPath, [OPENER, url]), run(process.execPath, [OPENER, url])]);
  for (const r of results) assert.equal(r.stdout.trim(), String(MIGRATIONS.length));
  const site = await openSiteDb({ kind: 'postgres', url });
  t.after(() => site.close());
  assert.deepEqual(
    await listAppliedMigrations(site.db),
    MIGRATIONS.map((m) => ({ version: m.version, name: m.name })),
  );
});

test('the PostgreSQL triggers notify a listener when a change commits, and not when it rolls back', { skip: noServer }, async (t) => {
  const dir = await tempDir(t);
  const site = await openSiteDb({ kind: 'postgres', url: await testDatabase(dir) });
  t.after(() => site.close());
  await addSite(site, { code: 'CEN', name: 'Central', isLocal: true });
  assert.ok(site.dialect.subscribeChanges !== undefined);
  let notified = 0;
  const sub = await site.dialect.subscribeChanges(() => (notified += 1));
  t.after(() => sub.close());

  await assert.rejects(
    site.db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      await trx
        .insertInto('packages')
        .values({ id: 'CEN00009', name: 'x', version: '', source_path: '/x', priority: 'low', source_version: 1, created_at: now, updated_at: now })
        .execute();
      throw new Error('roll back');
    }),
  );
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(notified, 0, 'a rolled-back change notifies nobody');

  const started = Date.now();
  await createPackage(site, { name: 'Office', sourcePath: '/srv/src/office' });
  while (notified === 0 && Date.now() - started < 2000) await new Promise((r) => setTimeout(r, 5));
  assert.ok(notified > 0, 'no notification');
  assert.ok(Date.now() - started < 500, `took ${Date.now() - started} ms`);
});
