import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseMonitor } from '../../src/components/dbmon/index.js';
import { addDp, addStatusMessage, createPackage, listStatusMessages, readChanges, setTargets, updatePackage } from '../../src/db/index.js';
import { parsePkn } from '../../src/formats/pkn.js';
import { eventually, newSite, openContext } from '../helpers/site.js';

test('a package write becomes <PKGID>.PKN in distmgr.box within a second, and the change log is acknowledged', async (t) => {
  const site = await newSite(t);
  const { dir } = site;
  const ctx = await openContext(site);
  const mon = new DatabaseMonitor(ctx, { pollMs: 200 });
  await mon.start();
  site.defer(() => mon.close());

  const started = Date.now();
  const pkg = await createPackage(ctx.db, { name: 'Office', sourcePath: join(dir, 'src') });
  const pkn = join(ctx.paths.distmgr, `${pkg.id}.PKN`);
  await eventually('the wake-up file', async () => ((await stat(pkn).catch(() => undefined)) === undefined ? undefined : true), 1000);
  assert.ok(Date.now() - started < 1000, `took ${Date.now() - started} ms`);
  const body = parsePkn(`${pkg.id}.PKN`, await readFile(pkn));
  assert.equal(body.packageId, pkg.id);
  await eventually('the acknowledgement', async () => ((await readChanges(ctx.db)).length === 0 ? true : undefined), 1000);
  assert.ok(ctx.woken.includes('distmgr'), 'Distribution Manager is woken in-process');
  assert.deepEqual((await readdir(ctx.paths.distmgr)).filter((n) => !n.startsWith('.') && n !== 'bad'), [`${pkg.id}.PKN`]);
});

test('nudge() delivers at once even with a slow poll; several changes of one package give one file', async (t) => {
  const site = await newSite(t);
  const { dir } = site;
  const ctx = await openContext(site);
  const mon = new DatabaseMonitor(ctx, { pollMs: 60_000 });
  await mon.start();
  site.defer(() => mon.close());
  await mon.drain();

  const pkg = await createPackage(ctx.db, { name: 'Tools', sourcePath: join(dir, 'src') });
  await addDp(ctx.db, { site: 'CEN', name: 'DP1', path: join(dir, 'dp1') });
  await setTargets(ctx.db, pkg.id, [{ site: 'CEN', dp: 'DP1' }]);
  await updatePackage(ctx.db, pkg.id, { refreshSource: true });
  const started = Date.now();
  mon.nudge();
  await eventually('the wake-up file', async () => ((await stat(join(ctx.paths.distmgr, `${pkg.id}.PKN`)).catch(() => undefined)) ? true : undefined), 1000);
  assert.ok(Date.now() - started < 500);
  await mon.drain();
  assert.equal((await readChanges(ctx.db)).length, 0);
  assert.equal((await readdir(ctx.paths.distmgr)).filter((n) => n.endsWith('.PKN')).length, 1);
});

test('rows left unacknowledged by a crash are delivered on the next start; close() is idempotent', async (t) => {
  const site = await newSite(t);
  const { dir } = site;
  const ctx = await openContext(site);
  const a = await createPackage(ctx.db, { name: 'A', sourcePath: join(dir, 'a') });
  const b = await createPackage(ctx.db, { name: 'B', sourcePath: join(dir, 'b') });
  assert.equal((await readChanges(ctx.db)).length, 2, 'written while no monitor ran');
  const mon = new DatabaseMonitor(ctx);
  await mon.start();
  await mon.drain();
  const names = (await readdir(ctx.paths.distmgr)).filter((n) => n.endsWith('.PKN')).sort();
  assert.deepEqual(names, [`${a.id}.PKN`, `${b.id}.PKN`]);
  await Promise.all([mon.close(), mon.close()]);
  await mon.close();
  const log = await readFile(join(site.root, 'logs', 'smsdbmon.log'), 'utf8');
  assert.match(log, new RegExp(`${a.id}\\.PKN written`));
});

test('site maintenance: status messages older than statusMessageDays are deleted at start and then every period, newer ones kept; 0 keeps them all', async (t) => {
  const site = await newSite(t);
  const base = await openContext(site);
  const day = 86_400_000;
  const at = (daysAgo: number): string => new Date(Date.now() - daysAgo * day).toISOString();
  const add = (daysAgo: number, text: string) => addStatusMessage(base.db, { severity: 'info', component: 'distmgr', site: 'CEN', text, time: at(daysAgo) });
  for (let i = 0; i < 12; i++) await add(10 + i, `old ${i}`);
  await add(6, 'six days');
  await add(0, 'today');
  const texts = async (): Promise<string[]> => (await listStatusMessages(base.db, { limit: 100 })).map((m) => m.text).sort();

  // 0: kept for ever.
  const forever = new DatabaseMonitor({ ...base, config: { ...base.config, statusMessageDays: 0 } }, { maintenanceMs: 50 });
  await forever.start();
  await new Promise((r) => setTimeout(r, 200));
  await forever.close();
  assert.equal((await texts()).length, 14);

  const mon = new DatabaseMonitor({ ...base, config: { ...base.config, statusMessageDays: 7 } }, { maintenanceMs: 100 });
  await mon.start();
  site.defer(() => mon.close());
  await eventually('aged messages deleted at start', async () => ((await texts()).length === 2 ? true : undefined));
  assert.deepEqual(await texts(), ['six days', 'today']);
  // Messages arriving later (a child's report of old events, say) go at the next period.
  await add(8, 'reported late');
  await eventually('deleted at the next period', async () => ((await texts()).includes('reported late') ? undefined : true));
  await mon.close();
  const log = await readFile(join(site.root, 'logs', 'smsdbmon.log'), 'utf8');
  assert.match(log, /maintenance: 12 status messages older than 7 days \(before [0-9T:.Z-]+\) deleted/);
  assert.match(log, /maintenance: 1 status messages older than 7 days/);
});
