import assert from 'node:assert/strict';
import { rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { sql } from 'kysely';
import pg from 'pg';
import { DatabaseMonitor } from '../../src/components/dbmon/index.js';
import { type SiteDb, addSite, createPackage, listStatusMessages, openSiteDb, readChanges, updatePackage } from '../../src/db/index.js';
import { postgresAvailable, postgresBinDir, startThrowAwayServer, testDatabase } from '../helpers/postgres.js';
import { eventually, newSite, openContext } from '../helpers/site.js';

const noServer = postgresAvailable() ? false : 'no PostgreSQL server (set SITECAST_TEST_PG or install postgresql)';

/** A site folder whose database is on PostgreSQL (a fresh test database, or `url`), with its local site row. */
async function pgSite(t: Parameters<typeof newSite>[0], server?: string): Promise<{ site: Awaited<ReturnType<typeof newSite>>; base: Awaited<ReturnType<typeof openContext>>; db: SiteDb; url: string }> {
  const site = await newSite(t);
  const base = await openContext(site);
  const url = server ?? (await testDatabase(site.dir));
  const db = await openSiteDb(server === undefined ? { kind: 'postgres', url } : { kind: 'postgres', url, connectTimeoutMs: 1000 });
  site.defer(() => db.close());
  await addSite(db, { code: 'CEN', name: 'Central', isLocal: true });
  return { site, base, db, url };
}

test('on PostgreSQL, NOTIFY brings a change written by another process to the monitor well under a second, with a one-minute poll', { skip: noServer }, async (t) => {
  const { site, base, db, url } = await pgSite(t);
  const ctx = { ...base, db };
  const mon = new DatabaseMonitor(ctx, { pollMs: 60_000 });
  await mon.start();
  site.defer(() => mon.close());
  await mon.drain();
  // Give LISTEN its moment: the monitor says so in its log, but a short wait is simpler than reading it.
  await new Promise((r) => setTimeout(r, 200));

  // Another connection, as another process (the CLI, a second server) would write: no in-process nudge.
  const writer = await openSiteDb({ kind: 'postgres', url });
  site.defer(() => writer.close());
  const started = Date.now();
  const pkg = await createPackage(writer, { name: 'Office', sourcePath: join(site.dir, 'src') });
  const pkn = join(ctx.paths.distmgr, `${pkg.id}.PKN`);
  await eventually('the wake-up file', async () => ((await stat(pkn).catch(() => undefined)) === undefined ? undefined : true), 2000);
  const took = Date.now() - started;
  assert.ok(took < 500, `took ${took} ms`);
});

test('on PostgreSQL, a lost notification connection is re-established and changes keep arriving', { skip: noServer }, async (t) => {
  const { site, base, db, url } = await pgSite(t);
  const mon = new DatabaseMonitor({ ...base, db }, { pollMs: 60_000, relistenMs: 100 });
  await mon.start();
  site.defer(() => mon.close());
  await mon.drain();
  await new Promise((r) => setTimeout(r, 200));

  // Every other connection to this database is cut, as a server restart or a failover would.
  const writer = await openSiteDb({ kind: 'postgres', url });
  site.defer(() => writer.close());
  await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`.execute(writer.db);
  await new Promise((r) => setTimeout(r, 600));

  const started = Date.now();
  const pkg = await createPackage(writer, { name: 'Tools', sourcePath: join(site.dir, 'src') });
  const pkn = join(base.paths.distmgr, `${pkg.id}.PKN`);
  await eventually('the wake-up file', async () => ((await stat(pkn).catch(() => undefined)) === undefined ? undefined : true), 3000);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
});

test('a PostgreSQL outage: the monitor retries, catches up when the server is back, and a status message says so', { skip: postgresBinDir() === undefined ? 'needs the PostgreSQL server binaries' : false }, async (t) => {
  const server = await startThrowAwayServer();
  t.after(async () => server.stop());
  const { site, base, db } = await pgSite(t, server.url);
  const mon = new DatabaseMonitor({ ...base, db }, { pollMs: 100, relistenMs: 100 });
  await mon.start();
  site.defer(() => mon.close());
  await mon.drain();

  server.pause();
  await new Promise((r) => setTimeout(r, 500));
  server.resume();
  const pkg = await createPackage(db, { name: 'After', sourcePath: join(site.dir, 'src') });
  const pkn = join(base.paths.distmgr, `${pkg.id}.PKN`);
  await eventually('the wake-up file', async () => ((await stat(pkn).catch(() => undefined)) === undefined ? undefined : true), 5000);
  const said = await eventually(
    'the status message',
    async () => (await listStatusMessages(db, { component: 'dbmon' })).find((m) => /could not be read.*resumed/.test(m.text)),
    5000,
  );
  assert.equal(said.severity, 'warning');
});

test('on PostgreSQL, a change that commits after a later one (a lower change id seen late) still gets its wake-up file', { skip: noServer }, async (t) => {
  const { site, base, db, url } = await pgSite(t);
  const early = await createPackage(db, { name: 'Early', sourcePath: join(site.dir, 'a') });
  const late = await createPackage(db, { name: 'Late', sourcePath: join(site.dir, 'b') });
  const mon = new DatabaseMonitor({ ...base, db }, { pollMs: 60_000 });
  await mon.start();
  site.defer(() => mon.close());
  await mon.drain();
  const earlyPkn = join(base.paths.distmgr, `${early.id}.PKN`);
  const latePkn = join(base.paths.distmgr, `${late.id}.PKN`);
  await rm(earlyPkn, { force: true });
  await rm(latePkn, { force: true });

  // Transaction A takes a change id first but commits last, as one of many concurrent administrators would.
  const a = new pg.Client({ connectionString: url });
  await a.connect();
  site.defer(() => a.end());
  await a.query('BEGIN');
  await a.query("UPDATE packages SET name = 'Early 2' WHERE id = $1", [early.id]);
  await updatePackage(db, late.id, { name: 'Late 2' });
  await mon.drain();
  assert.ok(await exists(latePkn), 'the change committed first');
  assert.equal(await exists(earlyPkn), false, 'not committed yet');

  await a.query('COMMIT');
  await mon.drain();
  assert.ok(await exists(earlyPkn), 'the change with the lower id, committed later');
  assert.deepEqual(await readChanges(db), []);
});

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => undefined)) !== undefined;
}
