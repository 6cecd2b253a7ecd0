import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmod, mkdir, readFile, readdir, readlink, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestTree } from '../../src/content/ingest.js';
import { hasManifest, loadManifest, openLibrary } from '../../src/content/library.js';
import { chunkPath } from '../../src/content/store.js';
import { installOnDp, isInstalled, pruneDpLibrary, prunesSettled, removeFromDp } from '../../src/dp/install.js';
import { withLibrary } from '../../src/content/library-lock.js';
import { verifyLibrary } from '../../src/content/verify.js';
import { retirementsSettled } from '../../src/dp/share.js';
import { describeTree, makeTree, tempDir, textBytes } from '../helpers/fixtures.js';

/** Every chunk a version of the library uses. */
async function chunksIn(library: string, id: string): Promise<Set<string>> {
  const m = await loadManifest(await openLibrary(library), id);
  return new Set(m.entries.flatMap((e) => (e.type === 'file' ? e.chunks.map((c) => c.hash) : [])));
}

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

test('installOnDp: the DP library names a version only once its chunks and share are flushed; a share that fails leaves no manifest; a refresh repairs', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-order');
  const src = join(dir, 'src');
  await makeTree(src, 'dp-order');
  const lib = join(dir, 'library');
  const v1 = await ingestTree(lib, src);
  const manifest = await loadManifest(await openLibrary(lib), v1.manifest);
  const file = manifest.entries.find((e) => e.type === 'file' && e.chunks.length > 0);
  assert.ok(file?.type === 'file');
  const damaged = chunkPath(lib, file.chunks[0]?.hash as string);
  const good = await readFile(damaged);
  const bad = Buffer.from(good);
  bad.writeUInt8(bad.readUInt8(bad.length >> 1) ^ 0xff, bad.length >> 1);
  await chmod(damaged, 0o644);
  await writeFile(damaged, bad);

  const dpPath = join(dir, 'dp');
  const base = { siteLibrary: lib, dpPath, packageId: 'CEN00002', sourceVersion: 1, manifestId: v1.manifest, graceMs: 0 };
  await assert.rejects(installOnDp(base), { code: 'SITECAST_E_CORRUPT_CHUNK' });
  assert.equal(await hasManifest(await openLibrary(join(dpPath, 'library')), v1.manifest), false, 'no manifest for a version whose share never became durable');
  await assert.rejects(stat(chunkPath(join(dpPath, 'library'), file.chunks[0]?.hash as string)), { code: 'ENOENT' }, 'a chunk that fails its hash never reaches the DP library');
  assert.equal(await isInstalled(dpPath, 'CEN00002', 1, v1.manifest), false);
  assert.deepEqual(await readdir(join(dpPath, 'SMSPKG')), [], 'no half-built share left');

  // The site's chunk repaired; a refresh re-checks the DP's copies and replaces the bad one.
  await writeFile(damaged, good);
  const fixed = await installOnDp({ ...base, refresh: true });
  assert.equal(fixed.changed, true);
  assert.ok(await isInstalled(dpPath, 'CEN00002', 1, v1.manifest));
  assert.ok(await hasManifest(await openLibrary(join(dpPath, 'library')), v1.manifest));
  assert.deepEqual(await describeTree(join(dpPath, 'SMSPKG', 'CEN00002')), await describeTree(src));
});

test('installOnDp: one pass fills the DP library; chunks of files linked from the live version are brought back if missing; a refresh replaces a damaged DP copy', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-pass');
  const src = join(dir, 'src');
  await makeTree(src, 'dp-pass');
  const lib = join(dir, 'library');
  const v1 = await ingestTree(lib, src);
  const dpPath = join(dir, 'dp');
  const dpLib = join(dpPath, 'library');
  const base = { siteLibrary: lib, dpPath, packageId: 'CEN00003', graceMs: 0 };
  const chunksOf = (id: string): Promise<Set<string>> => chunksIn(lib, id);

  const first = await installOnDp({ ...base, sourceVersion: 1, manifestId: v1.manifest });
  const v1Chunks = await chunksOf(v1.manifest);
  assert.ok(first.chunksCopied >= v1Chunks.size, 'every chunk was copied while the share was written');
  for (const hash of v1Chunks) assert.deepEqual(await readFile(chunkPath(dpLib, hash)), await readFile(chunkPath(lib, hash)), `chunk ${hash} copied as the site holds it`);

  // A chunk of an unchanged file lost from the DP library: version 2 links that file and copies the chunk back.
  const m1 = await loadManifest(await openLibrary(lib), v1.manifest);
  const tool = m1.entries.find((e) => e.path === 'bin/tool');
  assert.ok(tool?.type === 'file');
  const lost = tool.chunks[0]?.hash as string;
  await unlink(chunkPath(dpLib, lost));
  await writeFile(join(src, 'README.txt'), 'version two');
  const v2 = await ingestTree(lib, src);
  const second = await installOnDp({ ...base, sourceVersion: 2, manifestId: v2.manifest });
  assert.deepEqual([second.filesWritten, second.filesLinked], [1, 4]);
  assert.deepEqual(await readFile(chunkPath(dpLib, lost)), await readFile(chunkPath(lib, lost)), 'the linked file\'s chunk is back');
  for (const hash of await chunksOf(v2.manifest)) await stat(chunkPath(dpLib, hash));
  assert.ok(await hasManifest(await openLibrary(dpLib), v2.manifest));

  // A DP copy damaged in place (same size): a plain install trusts it, a refresh compares it with the verified frame and replaces it.
  const victim = chunkPath(dpLib, lost);
  const good = await readFile(victim);
  const bad = Buffer.from(good);
  bad.writeUInt8(bad.readUInt8(bad.length >> 1) ^ 0xff, bad.length >> 1);
  await chmod(victim, 0o644);
  await writeFile(victim, bad);
  const again = await installOnDp({ ...base, sourceVersion: 2, manifestId: v2.manifest });
  assert.equal(again.changed, false);
  const refreshed = await installOnDp({ ...base, sourceVersion: 2, manifestId: v2.manifest, refresh: true });
  assert.equal(refreshed.chunksCopied, 1, 'only the damaged copy is written again');
  assert.deepEqual(await readFile(victim), good);
  await retirementsSettled();
  assert.deepEqual(await describeTree(join(dpPath, 'SMSPKG', 'CEN00003')), await describeTree(src));
});

test('installOnDp: temporary files a crash left (a marker half written, a link never renamed) are removed for that package only', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-tmp');
  const src = join(dir, 'src');
  await makeTree(src, 'dp-tmp');
  const lib = join(dir, 'library');
  const v1 = await ingestTree(lib, src);
  const dpPath = join(dir, 'dp');
  const smspkg = join(dpPath, 'SMSPKG');
  const base = { siteLibrary: lib, dpPath, graceMs: 0, sourceVersion: 1, manifestId: v1.manifest };
  await installOnDp({ ...base, packageId: 'CEN00005' });
  // What `kill -9` during writeFileAtomic of a marker, or during switchLink, leaves behind.
  const leftovers = (id: string): string[] => [`..${id}.v1.json.7033005ec746.tmp`, `..${id}.v0.json.0123456789ab.tmp`, `.${id}.link-0badc0de`];
  for (const name of [...leftovers('CEN00004'), ...leftovers('CEN00005')]) await writeFile(join(smspkg, name), '{"format":');
  const ofB = [...leftovers('CEN00005'), '.CEN00005.v1', '.CEN00005.v1.json', 'CEN00005'].sort();

  await installOnDp({ ...base, packageId: 'CEN00004' });
  assert.deepEqual((await readdir(smspkg)).sort(), [...ofB, '.CEN00004.v1', '.CEN00004.v1.json', 'CEN00004'].sort());
  assert.deepEqual(await describeTree(join(smspkg, 'CEN00004')), await describeTree(src));
  assert.ok(await isInstalled(dpPath, 'CEN00004', 1, v1.manifest));

  // A crash after the switch: the version is live and only its leftovers go; the live folder and its marker stay.
  await writeFile(join(smspkg, '..CEN00004.v1.json.fedcba987654.tmp'), '{"format":');
  assert.equal((await installOnDp({ ...base, packageId: 'CEN00004' })).changed, false);
  assert.deepEqual((await readdir(smspkg)).sort(), [...ofB, '.CEN00004.v1', '.CEN00004.v1.json', 'CEN00004'].sort());
  assert.ok(await isInstalled(dpPath, 'CEN00004', 1, v1.manifest));
  assert.ok(await isInstalled(dpPath, 'CEN00005', 1, v1.manifest), 'the other package is untouched');
});

test('installOnDp: after an update the DP library keeps the live version and the one in its grace period; older versions and their own chunks go, other packages stay whole', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-prune');
  const lib = join(dir, 'library');
  const src = join(dir, 'src');
  const other = join(dir, 'other');
  await makeTree(src, 'prune');
  await makeTree(other, 'prune-other');
  const dpPath = join(dir, 'dp');
  const dpLib = join(dpPath, 'library');
  const chunksOf = (id: string): Promise<Set<string>> => chunksIn(lib, id);
  const otherVersion = await ingestTree(lib, other);
  await installOnDp({ siteLibrary: lib, dpPath, packageId: 'CEN00009', sourceVersion: 1, manifestId: otherVersion.manifest, graceMs: 0 });

  // Three versions of one package, each with a file of its own; the grace period outlasts the test's
  // installs (the stop at the end cuts it short, as a server's close does).
  const stop = new AbortController();
  const versions: string[] = [];
  for (let v = 1; v <= 3; v++) {
    await writeFile(join(src, 'lib', 'version.bin'), textBytes(`prune-v${v}`, 300_000));
    const r = await ingestTree(lib, src);
    versions.push(r.manifest);
    const outcomes: unknown[] = [];
    await installOnDp({ siteLibrary: lib, dpPath, packageId: 'CEN00003', sourceVersion: v, manifestId: r.manifest, graceMs: 60_000, signal: stop.signal, onPruned: (o) => void outcomes.push(o) });
    await prunesSettled();
    if (v === 1) assert.deepEqual(outcomes, [], 'a first install replaces nothing and prunes nothing');
    if (v === 2) assert.deepEqual(outcomes, [{ pruned: { chunks: 0, bytes: 0, manifests: 0 } }], 'version 1 is still in its grace period');
    if (v === 3) {
      const [only] = outcomes as { pruned: { manifests: number; chunks: number } }[];
      assert.equal(only?.pruned.manifests, 1, 'version 1 pruned');
      assert.ok((only?.pruned.chunks ?? 0) > 0);
    }
  }
  const [v1, v2, v3] = versions as [string, string, string];
  const dpLibrary = await openLibrary(dpLib);
  assert.equal(await hasManifest(dpLibrary, v1), false);
  for (const kept of [v2, v3, otherVersion.manifest]) {
    assert.ok(await hasManifest(dpLibrary, kept), kept);
    for (const hash of await chunksOf(kept)) await stat(chunkPath(dpLib, hash));
  }
  const keptChunks = new Set([...(await chunksOf(v2)), ...(await chunksOf(v3)), ...(await chunksOf(otherVersion.manifest))]);
  const onlyV1 = [...(await chunksOf(v1))].filter((h) => !keptChunks.has(h));
  assert.ok(onlyV1.length > 0);
  for (const hash of onlyV1) await assert.rejects(stat(chunkPath(dpLib, hash)), { code: 'ENOENT' }, `chunk ${hash} of version 1 only`);
  assert.deepEqual((await verifyLibrary(dpLib)).bad, []);
  stop.abort();
  await retirementsSettled();
});

test('pruneDpLibrary waits for installs in progress on that DP and installs wait for it (a chunk stored before its manifest is never taken for garbage)', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-prune-lock');
  const dpPath = join(dir, 'dp');
  await mkdir(join(dpPath, 'library'), { recursive: true });
  await openLibrary(join(dpPath, 'library'), { create: true });
  const order: string[] = [];
  let release: () => void = () => undefined;
  const installing = withLibrary(join(dpPath, 'library'), 'shared', async () => {
    order.push('install starts');
    await new Promise<void>((resolve) => (release = resolve));
    order.push('install ends');
  });
  const pruning = pruneDpLibrary(dpPath).then(() => void order.push('prune ran'));
  const second = withLibrary(join(dpPath, 'library'), 'shared', async () => void order.push('second install'));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(order, ['install starts', 'second install'], 'the prune waits; another install may share');
  release();
  await Promise.all([installing, pruning, second]);
  assert.deepEqual(order, ['install starts', 'second install', 'install ends', 'prune ran']);
  // Now a prune holds the library: an install waits until it is done.
  const held: string[] = [];
  let releasePrune: () => void = () => undefined;
  const exclusive = withLibrary(join(dpPath, 'library'), 'exclusive', async () => {
    held.push('prune');
    await new Promise<void>((resolve) => (releasePrune = resolve));
    held.push('prune ends');
  });
  const waiting = withLibrary(join(dpPath, 'library'), 'shared', async () => void held.push('install'));
  await new Promise((r) => setTimeout(r, 50));
  assert.deepEqual(held, ['prune']);
  releasePrune();
  await Promise.all([exclusive, waiting]);
  assert.deepEqual(held, ['prune', 'prune ends', 'install']);
});

test('removeFromDp: the last package taken off a DP leaves neither share nor records nor chunks; taking it off again does nothing', async (t) => {
  const dir = await tempDir(t, 'sitecast-dp-remove');
  const lib = join(dir, 'library');
  const src = join(dir, 'src');
  await makeTree(src, 'remove');
  const v1 = await ingestTree(lib, src);
  const dpPath = join(dir, 'dp');
  await installOnDp({ siteLibrary: lib, dpPath, packageId: 'CEN00004', sourceVersion: 1, manifestId: v1.manifest, graceMs: 0 });
  const first = await removeFromDp({ dpPath, packageId: 'CEN00004', graceMs: 0 });
  assert.equal(first.hadShare, true);
  assert.equal(first.pruned.manifests, 1);
  assert.ok(first.pruned.chunks > 0);
  assert.deepEqual(await readdir(join(dpPath, 'SMSPKG')), []);
  const dpLibrary = await openLibrary(join(dpPath, 'library'));
  assert.equal(await hasManifest(dpLibrary, v1.manifest), false);
  assert.deepEqual((await verifyLibrary(join(dpPath, 'library'))).chunks, 0);
  const again = await removeFromDp({ dpPath, packageId: 'CEN00004', graceMs: 0 });
  assert.deepEqual(again, { hadShare: false, pruned: { chunks: 0, bytes: 0, manifests: 0 } });
});
