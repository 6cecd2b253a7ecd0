import assert from 'node:assert/strict';
import {
  addDp,
  addStatusMessage,
  createAdminToken,
  createPackage,
  deleteStatusMessagesBefore,
  getLocalSite,
  getPackage,
  getPackageStatus,
  getTargets,
  listAdminTokens,
  listDps,
  listPackages,
  listSites,
  listStatusMessages,
  revokeAdminToken,
  setDpStatus,
  setPackageManifest,
  setTargets,
  updatePackage,
  verifyAdminToken,
} from '../../src/db/index.js';
import { countRows, eachBackend, fixture } from './backends.js';

eachBackend('sites: the local site and its neighbours', async (t, backend) => {
  const { site } = await fixture(t, backend);
  assert.equal((await getLocalSite(site))?.code, 'CEN');
  assert.deepEqual(
    (await listSites(site)).map((s) => [s.code, s.parentCode, s.isLocal]),
    [
      ['CEN', null, true],
      ['PRI', 'CEN', false],
    ],
  );
});

eachBackend('packages: ids from the counter, programs, updates and source versions', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const created = await createPackage(site, {
    name: 'Office 2000',
    version: '9.0',
    sourcePath: '/srv/src/office',
    priority: 'high',
    programs: [
      { name: 'uninstall', commandLine: 'setup.exe /x', maxRunTimeSeconds: 600 },
      { name: 'install', commandLine: 'setup.exe /q' },
    ],
  });
  assert.equal(created.id, 'CEN00001');
  assert.equal(created.sourceVersion, 1);
  assert.equal(created.manifestSha256, null);
  assert.deepEqual(await getPackage(site, 'CEN00001'), created);
  assert.deepEqual(
    created.programs.map((p) => [p.name, p.maxRunTimeSeconds]),
    [
      ['install', 3600],
      ['uninstall', 600],
    ],
  );
  for (let i = 2; i <= 11; i += 1) await createPackage(site, { name: `p${i}`, sourcePath: `/srv/p${i}` });
  const all = await listPackages(site);
  assert.equal(all.length, 11);
  assert.equal(all[9]?.id, 'CEN0000A');
  assert.equal(all[10]?.priority, 'medium');

  const renamed = await updatePackage(site, 'CEN00001', { name: 'Office 2000 SR1', priority: 'low' });
  assert.equal(renamed.sourceVersion, 1, 'a rename does not need new content');
  const newSource = await updatePackage(site, 'CEN00001', { sourcePath: '/srv/src/office-sr1', programs: [] });
  assert.equal(newSource.sourceVersion, 2);
  assert.deepEqual(newSource.programs, []);
  const refreshed = await updatePackage(site, 'CEN00001', { refreshSource: true });
  assert.equal(refreshed.sourceVersion, 3);
  await setPackageManifest(site, 'CEN00001', 'b'.repeat(64));
  const stored = await getPackage(site, 'CEN00001');
  assert.equal(stored?.name, 'Office 2000 SR1');
  assert.equal(stored?.manifestSha256, 'b'.repeat(64));
  assert.equal(await getPackage(site, 'CEN000FF'), undefined);
});

eachBackend('DPs, targets and per-DP status', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const pkg = await createPackage(site, { name: 'Tools', sourcePath: '/srv/src/tools' });
  await addDp(site, { site: 'CEN', name: 'dp1', path: '/srv/dp1', url: 'http://dp1.example:8080/' });
  await addDp(site, { site: 'CEN', name: 'dp2', path: '/srv/dp2' });
  await addDp(site, { site: 'PRI', name: 'dp1', path: '/srv/pri-dp1' });
  assert.deepEqual(
    (await listDps(site)).map((d) => `${d.site}/${d.name}`),
    ['CEN/dp1', 'CEN/dp2', 'PRI/dp1'],
  );
  assert.equal((await listDps(site, { site: 'PRI' })).length, 1);

  await setTargets(site, pkg.id, [
    { site: 'CEN', dp: 'dp1' },
    { site: 'PRI', dp: 'dp1' },
  ]);
  let status = await getPackageStatus(site, pkg.id);
  assert.deepEqual(
    status.map((s) => [s.site, s.dp, s.state, s.sourceVersion]),
    [
      ['CEN', 'dp1', 'pending', 0],
      ['PRI', 'dp1', 'pending', 0],
    ],
  );

  await setDpStatus(site, { packageId: pkg.id, site: 'CEN', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  const next = '2030-01-01T00:05:00.000Z';
  await setDpStatus(site, {
    packageId: pkg.id,
    site: 'PRI',
    dp: 'dp1',
    state: 'retrying',
    retryCount: 2,
    nextAttempt: next,
    lastMessage: 'link down',
  });
  await setTargets(site, pkg.id, [
    { site: 'CEN', dp: 'dp1' },
    { site: 'CEN', dp: 'dp2' },
  ]);
  assert.deepEqual(
    (await getTargets(site, pkg.id)).map((x) => `${x.site}/${x.dp}`),
    ['CEN/dp1', 'CEN/dp2'],
  );
  status = await getPackageStatus(site, pkg.id);
  assert.deepEqual(
    status.map((s) => [s.site, s.dp, s.state, s.sourceVersion, s.retryCount, s.nextAttempt, s.lastMessage]),
    [
      ['CEN', 'dp1', 'installed', 1, 0, null, null],
      ['CEN', 'dp2', 'pending', 0, 0, null, null],
      ['PRI', 'dp1', 'retrying', 0, 2, next, 'link down'],
    ],
  );
});

eachBackend('status messages: stored and filtered', async (t, backend) => {
  const { site } = await fixture(t, backend);
  await createPackage(site, { name: 'Tools', sourcePath: '/srv/src/tools' });
  const a = await addStatusMessage(site, { severity: 'info', component: 'distmgr', site: 'CEN', packageId: 'CEN00001', text: 'started' });
  await addStatusMessage(site, { severity: 'warning', component: 'sender', site: 'CEN', text: 'link slow' });
  await addStatusMessage(site, { severity: 'error', component: 'distmgr', site: 'PRI', packageId: 'CEN00001', text: 'disk full' });
  assert.deepEqual(
    (await listStatusMessages(site)).map((m) => m.text),
    ['disk full', 'link slow', 'started'],
  );
  assert.deepEqual(
    (await listStatusMessages(site, { packageId: 'CEN00001' })).map((m) => m.text),
    ['disk full', 'started'],
  );
  assert.deepEqual(
    (await listStatusMessages(site, { minSeverity: 'warning' })).map((m) => m.severity),
    ['error', 'warning'],
  );
  assert.deepEqual(
    (await listStatusMessages(site, { component: 'distmgr', site: 'CEN' })).map((m) => m.id),
    [a.id],
  );
  assert.deepEqual(
    (await listStatusMessages(site, { afterId: a.id, limit: 1 })).map((m) => m.text),
    ['link slow'],
  );
  assert.equal((await listStatusMessages(site, { since: '2999-01-01T00:00:00.000Z' })).length, 0);
});

eachBackend('admin tokens: stored hashed, verified, revoked', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const admin = await createAdminToken(site, { role: 'admin', label: 'initial' });
  const reader = await createAdminToken(site, { role: 'read-only' });
  assert.match(admin.token, /^sct_[A-Za-z0-9_-]{43}$/);
  const stored = await site.db.selectFrom('admin_tokens').selectAll().execute();
  assert.equal(stored.length, 2);
  assert.ok(stored.every((r) => !JSON.stringify(r).includes(admin.token.slice(4))));
  assert.equal((await verifyAdminToken(site, admin.token))?.role, 'admin');
  assert.equal((await verifyAdminToken(site, reader.token))?.role, 'read-only');
  assert.equal(await verifyAdminToken(site, admin.token.slice(0, -1) + 'x'), undefined);
  assert.equal(await verifyAdminToken(site, ''), undefined);
  assert.equal(await verifyAdminToken(site, "sct_' OR 1=1 --"), undefined);
  assert.equal((await listAdminTokens(site)).length, 2);
  assert.equal(await revokeAdminToken(site, reader.id), true);
  assert.equal(await revokeAdminToken(site, reader.id), false);
  assert.equal(await verifyAdminToken(site, reader.token), undefined);
  assert.equal(await countRows(site, 'admin_tokens'), 1);
});

eachBackend('status messages: the aged ones deleted in batches, a cutoff that is not a time refused', async (t, backend) => {
  const { site } = await fixture(t, backend);
  for (let i = 0; i < 25; i++) await addStatusMessage(site, { severity: 'info', component: 'distmgr', site: 'CEN', text: `m${i}`, time: new Date(Date.UTC(2026, 0, 1 + i)).toISOString() });
  assert.equal(await deleteStatusMessagesBefore(site, new Date(Date.UTC(2026, 0, 21)).toISOString(), { batch: 7 }), 20);
  assert.deepEqual((await listStatusMessages(site, { limit: 100 })).map((m) => m.text).sort(), ['m20', 'm21', 'm22', 'm23', 'm24']);
  await assert.rejects(deleteStatusMessagesBefore(site, 'last week'), (err: Error & { code?: string }) => err.code === 'SITECAST_E_INVALID_VALUE');
  assert.equal((await listStatusMessages(site, { limit: 100 })).length, 5, 'nothing more deleted');
});
