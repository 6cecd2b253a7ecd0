import assert from 'node:assert/strict';
import { type ErrorCode, isSitecastError } from '../../src/errors.js';
import {
  addDp,
  addSite,
  addStatusMessage,
  createAdminToken,
  createPackage,
  getPackage,
  readChanges,
  setDpStatus,
  setTargets,
  updatePackage,
  type SiteDb,
} from '../../src/db/index.js';
import { countRows, eachBackend, fixture } from './backends.js';

const TABLES = [
  'site',
  'packages',
  'programs',
  'dps',
  'package_targets',
  'package_dp_status',
  'status_messages',
  'change_log',
  'admin_tokens',
] as const;

async function snapshot(site: SiteDb): Promise<string> {
  const parts: unknown[] = [];
  for (const table of TABLES) parts.push([table, await countRows(site, table)]);
  parts.push(await site.db.selectFrom('counters').selectAll().execute());
  parts.push(await site.db.selectFrom('packages').selectAll().execute());
  parts.push(await site.db.selectFrom('package_dp_status').selectAll().execute());
  return JSON.stringify(parts);
}

function named(code: ErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isSitecastError(err, code), `expected ${code}, got ${String(err)}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

eachBackend('bad values are refused with a named error and nothing is written', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const pkg = await createPackage(site, { name: 'Tools', sourcePath: '/srv/src/tools' });
  await addDp(site, { site: 'CEN', name: 'dp1', path: '/srv/dp1' });
  await setTargets(site, pkg.id, [{ site: 'CEN', dp: 'dp1' }]);
  await setDpStatus(site, { packageId: pkg.id, site: 'CEN', dp: 'dp1', state: 'installed', sourceVersion: 2 });
  const before = await snapshot(site);
  const invalid = named('SITECAST_E_INVALID_VALUE');

  const badPackages: unknown[] = [
    { name: 'x', sourcePath: '/srv/x', priority: 'urgent' },
    { name: 'x', sourcePath: 'relative/path' },
    { name: '   ', sourcePath: '/srv/x' },
    { name: 'two\nlines', sourcePath: '/srv/x' },
    { name: 'x', sourcePath: '/srv/x', programs: [{ name: 'a', commandLine: 'a' }, { name: 'a', commandLine: 'b' }] },
    { name: 'x', sourcePath: '/srv/x', programs: [{ name: 'a', commandLine: 'run', maxRunTimeSeconds: -1 }] },
    { name: 'x', sourcePath: '/srv/x', programs: [{ name: 'a', commandLine: 'run\nrm -rf /' }] },
    { name: 'x', sourcePath: '/srv/x', programs: [{ name: '../evil', commandLine: 'run' }] },
  ];
  for (const input of badPackages) {
    await assert.rejects(createPackage(site, input as Parameters<typeof createPackage>[1]), invalid, JSON.stringify(input));
  }
  await assert.rejects(
    createPackage(site, { name: 'x', sourcePath: '/srv/x', priority: 'urgent' as 'high' }),
    named('SITECAST_E_INVALID_VALUE', /priority/),
  );
  for (const id of ['cen00001', 'CEN0001', 'CEN000001', '../CEN00001', 'CEN0000G', '']) {
    await assert.rejects(getPackage(site, id), named('SITECAST_E_INVALID_VALUE', /package id/), id);
  }
  await assert.rejects(updatePackage(site, 'CEN-0001', { name: 'y' }), invalid);
  await assert.rejects(updatePackage(site, pkg.id, { priority: 'now' as 'low' }), invalid);
  await assert.rejects(updatePackage(site, 'CEN000FF', { name: 'y' }), named('SITECAST_E_NOT_FOUND'));

  await assert.rejects(addDp(site, { site: 'cen', name: 'dp9', path: '/srv/dp9' }), invalid);
  await assert.rejects(addDp(site, { site: 'CEN', name: '../dp', path: '/srv/dp9' }), invalid);
  await assert.rejects(addDp(site, { site: 'CEN', name: 'dp9', path: '/srv/dp9', url: 'file:///etc/passwd' }), invalid);
  await assert.rejects(addDp(site, { site: 'XYZ', name: 'dp9', path: '/srv/dp9' }), named('SITECAST_E_CONFLICT'));
  await assert.rejects(addDp(site, { site: 'CEN', name: 'dp1', path: '/srv/other' }), named('SITECAST_E_CONFLICT', /already exists/));
  await assert.rejects(addSite(site, { code: 'CEN', name: 'again' }), named('SITECAST_E_CONFLICT'));
  await assert.rejects(addSite(site, { code: 'TOOLONG', name: 'x' }), invalid);

  // A target on an unknown DP rolls back the whole set, including the removal of dp1.
  await assert.rejects(setTargets(site, pkg.id, [{ site: 'CEN', dp: 'nope' }]), named('SITECAST_E_CONFLICT'));
  await assert.rejects(setTargets(site, 'CEN000FF', []), named('SITECAST_E_NOT_FOUND'));
  await assert.rejects(
    setTargets(site, pkg.id, [
      { site: 'CEN', dp: 'dp1' },
      { site: 'CEN', dp: 'dp1' },
    ]),
    invalid,
  );

  await assert.rejects(
    setDpStatus(site, { packageId: pkg.id, site: 'CEN', dp: 'dp1', state: 'installed', sourceVersion: 1 }),
    named('SITECAST_E_ROLLBACK', /holds source version 2/),
  );
  await assert.rejects(setDpStatus(site, { packageId: pkg.id, site: 'CEN', dp: 'dp1', state: 'done' as 'failed' }), invalid);
  await assert.rejects(
    setDpStatus(site, { packageId: pkg.id, site: 'CEN', dp: 'dp1', state: 'retrying', nextAttempt: 'tomorrow' }),
    invalid,
  );

  await assert.rejects(addStatusMessage(site, { severity: 'fatal' as 'error', component: 'distmgr', site: 'CEN', text: 'x' }), invalid);
  await assert.rejects(addStatusMessage(site, { severity: 'info', component: 'Dist Mgr', site: 'CEN', text: 'x' }), invalid);
  await assert.rejects(addStatusMessage(site, { severity: 'info', component: 'distmgr', site: 'CEN', text: '' }), invalid);
  await assert.rejects(createAdminToken(site, { role: 'root' as 'admin' }), invalid);
  await assert.rejects(readChanges(site, -1), invalid);

  assert.equal(await snapshot(site), before);
});

eachBackend('a package cannot be created before the local site is recorded', async (t, backend) => {
  const { site } = await fixture(t, backend);
  await site.db.updateTable('site').set({ is_local: 0 }).execute();
  const before = await snapshot(site);
  await assert.rejects(createPackage(site, { name: 'x', sourcePath: '/srv/x' }), named('SITECAST_E_NOT_FOUND', /no local site/));
  assert.equal(await snapshot(site), before);
});

eachBackend('the package id counter ends at FFFFF', async (t, backend) => {
  const { site } = await fixture(t, backend);
  await site.db.updateTable('counters').set({ value: 0xffffe }).where('name', '=', 'package_id').execute();
  assert.equal((await createPackage(site, { name: 'last', sourcePath: '/srv/x' })).id, 'CENFFFFF');
  const before = await snapshot(site);
  await assert.rejects(createPackage(site, { name: 'one more', sourcePath: '/srv/x' }), named('SITECAST_E_ID_EXHAUSTED'));
  assert.equal(await snapshot(site), before);
});
