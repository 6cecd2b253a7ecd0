import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, readlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestTree } from '../../src/content/ingest.js';
import { installOnDp, isInstalled } from '../../src/dp/install.js';
import { retirementsSettled } from '../../src/dp/share.js';
import { describeTree, makeTree, tempDir } from '../helpers/fixtures.js';

test('installOnDp: leftovers of an interrupted install are removed, a repeat does nothing, an older version is refused', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp');
  const src = join(dir, 'src');
  await makeTree(src, 'dp-unit');
  const lib = join(dir, 'library');
  const v1 = await ingestTree(lib, src);
  const dpPath = join(dir, 'dp');
  // What a crash while building version 1 leaves: a partial version folder and a temporary link.
  await mkdir(join(dpPath, 'SMSPKG', '.CEN00001.v1', 'bin'), { recursive: true });
  await writeFile(join(dpPath, 'SMSPKG', '.CEN00001.v1', 'bin', 'tool'), 'half');
  await writeFile(join(dpPath, 'SMSPKG', '.CEN00001.link-0badc0de'), '');
  const base = { siteLibrary: lib, dpPath, packageId: 'CEN00001', graceMs: 0 };

  const first = await installOnDp({ ...base, sourceVersion: 1, manifestId: v1.manifest });
  assert.equal(first.changed, true);
  assert.equal(first.filesWritten, 5);
  assert.deepEqual(await describeTree(join(dpPath, 'SMSPKG', 'CEN00001')), await describeTree(src));
  assert.deepEqual((await readdir(join(dpPath, 'SMSPKG'))).sort(), ['.CEN00001.v1', '.CEN00001.v1.json', 'CEN00001']);
  assert.equal(await readlink(join(dpPath, 'SMSPKG', 'CEN00001')), '.CEN00001.v1', 'a relative link: the DP folder can move');
  assert.ok(await isInstalled(dpPath, 'CEN00001', 1, v1.manifest));

  const again = await installOnDp({ ...base, sourceVersion: 1, manifestId: v1.manifest });
  assert.deepEqual(again, { changed: false, chunksCopied: 0, bytesCopied: 0, filesWritten: 0, filesLinked: 0 });

  await writeFile(join(src, 'README.txt'), 'version two');
  const v2 = await ingestTree(lib, src);
  // A version folder left behind by a crash after an earlier switch.
  await mkdir(join(dpPath, 'SMSPKG', '.CEN00001.v0'));
  const second = await installOnDp({ ...base, sourceVersion: 2, manifestId: v2.manifest });
  assert.deepEqual([second.filesWritten, second.filesLinked], [1, 4]);
  // The old version is retired in the background, after the grace period.
  await retirementsSettled();
  assert.deepEqual((await readdir(join(dpPath, 'SMSPKG'))).sort(), ['.CEN00001.v2', '.CEN00001.v2.json', 'CEN00001']);
  assert.deepEqual(await describeTree(join(dpPath, 'SMSPKG', 'CEN00001')), await describeTree(src));

  await assert.rejects(installOnDp({ ...base, sourceVersion: 1, manifestId: v1.manifest }), { code: 'SITECAST_E_ROLLBACK' });
  assert.ok(await isInstalled(dpPath, 'CEN00001', 2, v2.manifest), 'the refused install changed nothing');
});
