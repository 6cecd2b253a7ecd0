import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { addDp, createPackage, listStatusMessages, setTargets } from '../../src/db/index.js';
import { startSite } from '../../src/site/server.js';
import { describeTree, makeTree } from '../helpers/fixtures.js';
import { statusWhen } from '../helpers/distribution.js';
import { mountSkip, mountTmpfs } from '../helpers/mounts.js';
import { newSite } from '../helpers/site.js';

test('a DP on a full file system: retrying with a count and a next attempt, installed once it has room; other DPs go on', { skip: mountSkip() }, async (t) => {
  const site = await newSite(t);
  const mnt = join(site.dir, 'small');
  const unmount = await mountTmpfs(mnt, '1m');
  if (unmount === undefined) {
    t.skip('cannot mount tmpfs here');
    return;
  }
  site.defer(async () => unmount());
  const src = join(site.dir, 'src');
  await makeTree(src, 'full-disk');
  const h = await startSite(site.root, { distmgr: { graceMs: 100, retry: { initialMs: 200, maxMs: 400 } }, provider: false });
  site.defer(() => h.close());
  const pkg = await createPackage(h.ctx.db, { name: 'Big', sourcePath: src });
  await addDp(h.ctx.db, { site: 'CEN', name: 'FULL', path: join(mnt, 'dp') });
  await addDp(h.ctx.db, { site: 'CEN', name: 'ROOMY', path: join(site.dir, 'roomy') });
  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'FULL' }, { site: 'CEN', dp: 'ROOMY' }]);
  h.ctx.wake('dbmon');

  const rows = await statusWhen(h.ctx, pkg.id, (s) => (s.dp === 'FULL' ? s.state === 'retrying' && s.retryCount >= 2 : s.state === 'installed'));
  const full = rows.find((r) => r.dp === 'FULL');
  assert.match(full?.lastMessage ?? '', /ENOSPC/);
  assert.ok(full?.nextAttempt !== null && Date.parse(full?.nextAttempt ?? '') > Date.parse(full?.updatedAt ?? ''));
  assert.equal(full?.sourceVersion, 0);
  const warnings = await listStatusMessages(h.ctx.db, { packageId: pkg.id, minSeverity: 'warning' });
  assert.equal(warnings.length, 1, 'one warning per outage, not one per retry');
  assert.match(warnings[0]?.text ?? '', /FULL.*ENOSPC/);

  assert.equal(spawnSync('mount', ['-o', 'remount,size=64m', mnt]).status, 0);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed' && s.sourceVersion === 1);
  assert.deepEqual(await describeTree(join(mnt, 'dp', 'SMSPKG', pkg.id)), await describeTree(src));
});

test('a DP on a read-only file system: retrying, then installed once it is writable', { skip: mountSkip() }, async (t) => {
  const site = await newSite(t);
  const mnt = join(site.dir, 'ro');
  const unmount = await mountTmpfs(mnt, '64m');
  if (unmount === undefined) {
    t.skip('cannot mount tmpfs here');
    return;
  }
  site.defer(async () => unmount());
  await mkdir(join(mnt, 'dp'));
  assert.equal(spawnSync('mount', ['-o', 'remount,ro', mnt]).status, 0);
  const src = join(site.dir, 'src');
  await makeTree(src, 'read-only');
  const h = await startSite(site.root, { distmgr: { graceMs: 100, retry: { initialMs: 200, maxMs: 400 } }, provider: false });
  site.defer(() => h.close());
  const pkg = await createPackage(h.ctx.db, { name: 'RO', sourcePath: src });
  await addDp(h.ctx.db, { site: 'CEN', name: 'RO', path: join(mnt, 'dp') });
  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'RO' }]);
  h.ctx.wake('dbmon');
  const [row] = await statusWhen(h.ctx, pkg.id, (s) => s.state === 'retrying');
  assert.match(row?.lastMessage ?? '', /EROFS/);
  assert.equal(spawnSync('mount', ['-o', 'remount,rw', mnt]).status, 0);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  assert.deepEqual(await describeTree(join(mnt, 'dp', 'SMSPKG', pkg.id)), await describeTree(src));
});
