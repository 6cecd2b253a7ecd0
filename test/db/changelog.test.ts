import assert from 'node:assert/strict';
import {
  ackChanges,
  addDp,
  createPackage,
  readChanges,
  setPackageManifest,
  setTargets,
  updatePackage,
} from '../../src/db/index.js';
import { eachBackend, fixture } from './backends.js';

const MANIFEST = 'a'.repeat(64);

eachBackend('triggers record every definition change of a package in change_log', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const pkg = await createPackage(site, {
    name: 'Office',
    sourcePath: '/srv/src/office',
    programs: [{ name: 'install', commandLine: 'setup.exe /q' }],
  });
  await addDp(site, { site: 'CEN', name: 'dp1', path: '/srv/dp1' });
  await setTargets(site, pkg.id, [{ site: 'CEN', dp: 'dp1' }]);
  await updatePackage(site, pkg.id, { priority: 'high' });
  await updatePackage(site, pkg.id, { programs: [{ name: 'install', commandLine: 'setup.exe /quiet' }] });

  const changes = await readChanges(site);
  assert.deepEqual(
    changes.map((c) => [c.table, c.op, c.objectKey]),
    [
      ['packages', 'insert', pkg.id],
      ['programs', 'insert', pkg.id],
      ['package_targets', 'insert', pkg.id],
      ['packages', 'update', pkg.id],
      ['programs', 'delete', pkg.id],
      ['programs', 'insert', pkg.id],
    ],
  );
  assert.ok(changes.every((c, i) => i === 0 || c.id > (changes[i - 1]?.id ?? 0)));
  assert.match(changes[0]?.time ?? '', /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
});

eachBackend('bookkeeping writes (manifest hash) do not wake the monitor', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const pkg = await createPackage(site, { name: 'Tools', sourcePath: '/srv/src/tools' });
  const [first] = await readChanges(site);
  assert.ok(first);
  await ackChanges(site, first.id);
  await setPackageManifest(site, pkg.id, MANIFEST);
  await updatePackage(site, pkg.id, { name: 'Tools' });
  assert.deepEqual(await readChanges(site), []);
});

eachBackend('readChanges pages after a cursor; ackChanges removes what was handled', async (t, backend) => {
  const { site } = await fixture(t, backend);
  for (let i = 0; i < 5; i += 1) await createPackage(site, { name: `p${i}`, sourcePath: `/srv/src/p${i}` });
  const firstTwo = await readChanges(site, 0, 2);
  assert.deepEqual(
    firstTwo.map((c) => c.objectKey),
    ['CEN00001', 'CEN00002'],
  );
  const rest = await readChanges(site, firstTwo[1]?.id ?? 0);
  assert.deepEqual(
    rest.map((c) => c.objectKey),
    ['CEN00003', 'CEN00004', 'CEN00005'],
  );
  assert.equal(await ackChanges(site, firstTwo[1]?.id ?? 0), 2);
  assert.equal((await readChanges(site)).length, 3);
  assert.equal(await ackChanges(site, rest[2]?.id ?? 0), 3);
  assert.deepEqual(await readChanges(site), []);
  // Ids keep growing after an ack: a cursor never sees an old id again.
  await updatePackage(site, 'CEN00001', { refreshSource: true });
  const [next] = await readChanges(site);
  assert.ok((next?.id ?? 0) > (rest[2]?.id ?? 0));
});
