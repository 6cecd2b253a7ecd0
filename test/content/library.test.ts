import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, mkdir, readdir, readFile, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { extractManifest } from '../../src/content/extract.js';
import { gcLibrary } from '../../src/content/gc.js';
import { ingestTree } from '../../src/content/ingest.js';
import { hasManifest, listChunks, listManifests, loadManifest, openLibrary, readManifestBytes, saveManifest } from '../../src/content/library.js';
import { ChunkCodec, chunkPath, chunkTmpName, putChunkFrame, readChunk } from '../../src/content/store.js';
import { verifyLibrary } from '../../src/content/verify.js';
import { describeTree, makeTree, randomBytesFrom, snapshot, tempDir, textBytes } from '../helpers/fixtures.js';

test('ingest then extract reproduces the tree: bytes, modes, empty folders, in-tree links (chains, "./", trailing "/", to a folder above)', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  // The shapes of a shared-library folder: a chain of links, written as tools write them.
  await writeFile(join(dir, 'src/lib/libfoo.so.1.2.3'), 'elf');
  await symlink('libfoo.so.1', join(dir, 'src/lib/libfoo.so'));
  await symlink('./libfoo.so.1.2.3', join(dir, 'src/lib/libfoo.so.1'));
  await symlink('deep/', join(dir, 'src/lib/deep-slash'));
  await symlink('..', join(dir, 'src/lib/deep/up'));
  await symlink('dir-link/data.json', join(dir, 'src/lib/through-link'));
  const r = await ingestTree(join(dir, 'lib'), join(dir, 'src'));
  assert.match(r.manifest, /^[0-9a-f]{64}$/);
  assert.equal(r.files, 6);
  assert.ok(r.storedBytes > 0 && r.storedBytes === r.newBytes);
  await extractManifest(join(dir, 'lib'), r.manifest, join(dir, 'out'));
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'src')));
});

test('the same tree twice stores nothing new and gives the same manifest; shared files cost nothing', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const first = await ingestTree(join(dir, 'lib'), join(dir, 'src'));
  const again = await ingestTree(join(dir, 'lib'), join(dir, 'src'));
  assert.equal(again.manifest, first.manifest);
  assert.equal(again.newBytes, 0);
  // A second package with the same big file plus one new small file.
  await mkdir(join(dir, 'other'));
  await writeFile(join(dir, 'other/big.bin'), await readFile(join(dir, 'src/lib/big.bin')));
  await writeFile(join(dir, 'other/new.txt'), textBytes('other', 3000));
  const other = await ingestTree(join(dir, 'lib'), join(dir, 'other'));
  assert.ok(other.newBytes < 3000, `second package added ${other.newBytes} bytes`);
  assert.deepEqual((await listManifests(await openLibrary(join(dir, 'lib')))).length, 2);
});

test('special files and links out of the tree are refused, naming each, and nothing is stored', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await makeTree(src);
  execFileSync('mkfifo', [join(src, 'a-fifo')]);
  // A name that is not UTF-8 (Latin-1 "ÿ"): a manifest path could not hold it.
  await writeFile(Buffer.concat([Buffer.from(`${src}/bad`), Buffer.from([0xff]), Buffer.from('name')]), 'x');
  // A device node (root only: mknod needs CAP_MKNOD).
  const device = process.getuid?.() === 0 && spawnSync('mknod', [join(src, 'a-device'), 'c', '1', '3']).status === 0;
  await symlink('/etc/passwd', join(src, 'escape'));
  await symlink('../../outside', join(src, 'lib/escape2'));
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(join(src, 'a-socket'), resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  await assert.rejects(ingestTree(join(dir, 'lib'), src), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_SPECIAL_FILE');
    if (device) assert.ok(err.message.includes('a-device (device or special file)'), err.message);
    assert.ok(err.message.includes('bad\\xffname (name is not valid UTF-8)'), err.message);
    for (const name of ['a-fifo (fifo)', 'a-socket (socket)', 'escape (symlink that points at absolute path "/etc/passwd")', 'lib/escape2 (symlink that points out of the package', 'lib/escape2']) assert.ok(err.message.includes(name), `${name} in ${err.message}`);
    return true;
  });
  // Refused before anything was written: not even a library was created.
  await assert.rejects(stat(join(dir, 'lib')), { code: 'ENOENT' });
});

test('verify finds corrupt and missing chunks and names the manifests and paths they break', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const libDir = join(dir, 'lib');
  const r = await ingestTree(libDir, join(dir, 'src'));
  const clean = await verifyLibrary(libDir);
  assert.equal(clean.bad.length, 0);
  assert.equal(clean.manifests, 1);
  const manifest = await loadManifest(await openLibrary(libDir), r.manifest);
  const files = manifest.entries.filter((e) => e.type === 'file' && e.chunks.length > 0);
  const tool = files.find((e) => e.path === 'bin/tool');
  const readme = files.find((e) => e.path === 'README.txt');
  assert.ok(tool?.type === 'file' && readme?.type === 'file');
  const corrupt = tool.chunks[0]?.hash as string;
  const missing = readme.chunks[0]?.hash as string;
  await chmod(chunkPath(libDir, corrupt), 0o644);
  const bytes = await readFile(chunkPath(libDir, corrupt));
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
  await writeFile(chunkPath(libDir, corrupt), bytes);
  await unlink(chunkPath(libDir, missing));
  const result = await verifyLibrary(libDir);
  const byChunk = new Map(result.bad.map((b) => [b.chunk, b]));
  assert.equal(byChunk.get(corrupt)?.problem, 'corrupt');
  assert.deepEqual(byChunk.get(corrupt)?.breaks, [{ manifest: r.manifest, path: 'bin/tool' }]);
  assert.equal(byChunk.get(missing)?.problem, 'missing');
  assert.deepEqual(byChunk.get(missing)?.breaks, [{ manifest: r.manifest, path: 'README.txt' }]);
  // Extraction refuses the corrupt data and leaves no half-written destination.
  await assert.rejects(extractManifest(libDir, r.manifest, join(dir, 'out')), (err: Error & { code?: string }) => {
    assert.ok(err.code === 'SITECAST_E_CORRUPT_CHUNK' || err.code === 'SITECAST_E_NOT_FOUND', String(err.code));
    return true;
  });
  assert.deepEqual((await readdir(dir)).sort(), ['lib', 'src']);
  // Re-ingesting the source repairs the store.
  await ingestTree(libDir, join(dir, 'src'));
  assert.equal((await verifyLibrary(libDir)).bad.length, 0);
});

test('gc keeps what kept manifests use and removes the rest; an unknown --keep removes nothing', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'a'), 'a');
  await makeTree(join(dir, 'b'), 'b');
  const libDir = join(dir, 'lib');
  const a = await ingestTree(libDir, join(dir, 'a'));
  const b = await ingestTree(libDir, join(dir, 'b'));
  const lib = await openLibrary(libDir);
  const before = await listChunks(lib);
  await assert.rejects(gcLibrary(libDir, ['f'.repeat(64)]), { code: 'SITECAST_E_NOT_FOUND' });
  await assert.rejects(gcLibrary(libDir, ['nope']), { code: 'SITECAST_E_USAGE' });
  assert.deepEqual(await listChunks(lib), before);
  const r = await gcLibrary(libDir, [a.manifest]);
  assert.ok(r.removed > 0);
  assert.equal(r.removedManifests, 1);
  assert.deepEqual(await listManifests(lib), [a.manifest]);
  assert.equal((await verifyLibrary(libDir)).bad.length, 0);
  await extractManifest(libDir, a.manifest, join(dir, 'out'));
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'a')));
  assert.ok(b.manifest !== a.manifest);
});

test('extract refuses a non-empty destination and an unknown manifest, changing nothing', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const r = await ingestTree(join(dir, 'lib'), join(dir, 'src'));
  await mkdir(join(dir, 'busy'));
  await writeFile(join(dir, 'busy/keep.txt'), 'mine');
  await assert.rejects(extractManifest(join(dir, 'lib'), r.manifest, join(dir, 'busy')), { code: 'SITECAST_E_USAGE' });
  assert.deepEqual(await snapshot(join(dir, 'busy')), new Map([['keep.txt', 'file:' + (await import('node:crypto')).createHash('sha256').update('mine').digest('hex')]]));
  await assert.rejects(extractManifest(join(dir, 'lib'), 'e'.repeat(64), join(dir, 'out')), { code: 'SITECAST_E_NOT_FOUND' });
  await assert.rejects(extractManifest(join(dir, 'nolib'), r.manifest, join(dir, 'out')), { code: 'SITECAST_E_LIBRARY' });
});

test('manifests are stored compressed under their id; a format-1 library (plain .json manifests) is read, upgraded, and gc removes either form; a damaged one is a bad manifest', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const lib = join(dir, 'lib');
  const { manifest } = await ingestTree(lib, join(dir, 'src'));
  const stored = await readdir(join(lib, 'manifests'));
  assert.deepEqual(stored, [`${manifest}.zst`]);
  const library = await openLibrary(lib);
  const bytes = await readManifestBytes(library, manifest);
  assert.equal(createHash('sha256').update(bytes).digest('hex'), manifest, 'the canonical JSON, whose SHA-256 is the id');
  assert.ok((await readFile(join(lib, 'manifests', `${manifest}.zst`))).length < bytes.length);

  // As a format-1 library left it: the marker says 1, the manifest is plain JSON.
  await writeFile(join(lib, 'library.json'), '{"format":1}\n');
  await unlink(join(lib, 'manifests', `${manifest}.zst`));
  await writeFile(join(lib, 'manifests', `${manifest}.json`), bytes);
  const old = await openLibrary(lib);
  assert.deepEqual(JSON.parse(await readFile(join(lib, 'library.json'), 'utf8')), { format: 2 }, 'opening upgrades the marker');
  assert.equal(await hasManifest(old, manifest), true);
  assert.deepEqual(await listManifests(old), [manifest]);
  assert.equal((await loadManifest(old, manifest)).entries.length > 0, true);
  await extractManifest(lib, manifest, join(dir, 'out'));
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'src')));
  assert.deepEqual((await verifyLibrary(lib)).badManifests, []);
  // A library from a newer build is refused by name.
  await writeFile(join(lib, 'library.json'), '{"format":3}\n');
  await assert.rejects(openLibrary(lib), (err: Error & { code?: string }) => err.code === 'SITECAST_E_UNSUPPORTED_FORMAT' && /formats 1 and 2/.test(err.message));
  await writeFile(join(lib, 'library.json'), '{"format":2}\n');

  // gc removes a manifest in either form.
  await mkdir(join(dir, 'other'));
  await writeFile(join(dir, 'other', 'a.txt'), textBytes('other', 2000));
  const kept = await ingestTree(lib, join(dir, 'other'));
  await gcLibrary(lib, [kept.manifest]);
  assert.deepEqual(await readdir(join(lib, 'manifests')), [`${kept.manifest}.zst`]);

  // A compressed manifest damaged on disk: verify names it, load refuses it.
  const again = await ingestTree(lib, join(dir, 'src'));
  const path = join(lib, 'manifests', `${again.manifest}.zst`);
  const frame = await readFile(path);
  const mid = Math.floor(frame.length / 2);
  frame[mid] = (frame[mid] ?? 0) ^ 0xff;
  await writeFile(path, frame);
  await assert.rejects(loadManifest(await openLibrary(lib), again.manifest), (err: Error & { code?: string }) => err.code === 'SITECAST_E_BAD_MANIFEST');
  const report = await verifyLibrary(lib);
  assert.deepEqual(report.badManifests.map((m) => m.manifest), [again.manifest]);
});

test('a file of many segments (written in place by the workers, hashed from disk in order): exact copy; a corrupt chunk in its middle or a wrong file hash refused, nothing left behind', async (t) => {
  const dir = await tempDir(t);
  const src = join(dir, 'src');
  await mkdir(src);
  // 11 MB: three segments of about 4 MiB, some chunks repeated.
  const part = randomBytesFrom('segments', 3_000_000);
  const big = Buffer.concat([part, randomBytesFrom('segments-2', 2_500_000), part, randomBytesFrom('segments-3', 2_500_000)]);
  await writeFile(join(src, 'big.bin'), big);
  const libDir = join(dir, 'lib');
  const r = await ingestTree(libDir, src);
  await extractManifest(libDir, r.manifest, join(dir, 'out'));
  assert.ok((await readFile(join(dir, 'out', 'big.bin'))).equals(big));

  // The same chunks under a manifest that claims another file hash: every chunk verifies, the file does not.
  const lib = await openLibrary(libDir);
  const manifest = await loadManifest(lib, r.manifest);
  const lying = { ...manifest, entries: manifest.entries.map((e) => (e.type === 'file' ? { ...e, hash: createHash('sha256').update('other').digest('hex') } : e)) };
  const lyingId = await saveManifest(lib, lying);
  await assert.rejects(extractManifest(libDir, lyingId, join(dir, 'out2')), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_CORRUPT_CHUNK');
    assert.match(err.message, /file "big\.bin" does not match its SHA-256/);
    return true;
  });

  // A chunk of the second segment damaged on disk.
  const entry = manifest.entries.find((e) => e.type === 'file');
  assert.ok(entry?.type === 'file' && entry.chunks.length > 40, `${entry?.type === 'file' ? entry.chunks.length : 0} chunks`);
  const middle = entry.chunks[Math.floor(entry.chunks.length / 2)]?.hash as string;
  await chmod(chunkPath(libDir, middle), 0o644);
  const bytes = await readFile(chunkPath(libDir, middle));
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
  await writeFile(chunkPath(libDir, middle), bytes);
  await assert.rejects(extractManifest(libDir, r.manifest, join(dir, 'out3')), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_CORRUPT_CHUNK');
    return true;
  });
  assert.deepEqual((await readdir(dir)).sort(), ['lib', 'out', 'src']);
});

test('a chunk\'s temporary name left by a dead process with this pid does not stop a store; the chunk is stored whole and no temporary file stays', async (t) => {
  const dir = await tempDir(t);
  const libDir = join(dir, 'lib');
  await openLibrary(libDir, { create: true });
  const data = randomBytesFrom('stale-tmp', 100_000);
  const hash = createHash('sha256').update(data).digest('hex');
  const target = chunkPath(libDir, hash);
  // The name this thread will use next, taken now and left behind as a dead process would have.
  const probe = chunkTmpName(target);
  const counter = Number(probe.slice(probe.lastIndexOf('-') + 1, -'.tmp'.length));
  const stale = `${probe.slice(0, probe.lastIndexOf('-') + 1)}${counter + 1}.tmp`;
  await mkdir(join(libDir, 'chunks', hash.slice(0, 2)), { recursive: true });
  await writeFile(stale, 'half a chunk', { mode: 0o444 });
  const codec = new ChunkCodec();
  assert.equal(putChunkFrame(libDir, hash, codec.compress(data)), true);
  assert.ok(readChunk(libDir, codec, hash, data.length).equals(data));
  assert.deepEqual(await readdir(join(libDir, 'chunks', hash.slice(0, 2))), [hash]);
});

test('ingest: small files go to the workers while a large file is cut; a stop is noticed inside a large file, and no manifest is written', async (t) => {
  const dir = await tempDir(t, 'sitecast-ingest-order');
  const src = join(dir, 'src');
  await mkdir(join(src, 'a'), { recursive: true });
  // A large file first in walk order, then small ones: the manifest must still list each with its own content.
  await writeFile(join(src, 'a', 'big.bin'), Buffer.concat([randomBytesFrom('order-big', 16_000_000), textBytes('order', 16_000_000)]));
  for (let i = 0; i < 40; i++) await writeFile(join(src, `small-${String(i).padStart(2, '0')}.txt`), textBytes(`small-${i}`, 1000 + i * 37));
  const lib = join(dir, 'library');
  const result = await ingestTree(lib, src);
  const manifest = await loadManifest(await openLibrary(lib), result.manifest);
  for (const e of manifest.entries) {
    if (e.type !== 'file') continue;
    assert.equal(e.hash, createHash('sha256').update(await readFile(join(src, e.path))).digest('hex'), e.path);
  }
  const out = join(dir, 'out');
  await extractManifest(lib, result.manifest, out);
  assert.deepEqual(await describeTree(out), await describeTree(src));

  // Stopped once the large file's first block has gone to a worker.
  const lib2 = join(dir, 'library-2');
  const controller = new AbortController();
  let seen = 0;
  await assert.rejects(
    ingestTree(lib2, src, {
      signal: controller.signal,
      onProgress: (done) => {
        seen = done;
        if (done > 0) controller.abort();
      },
    }),
    { name: 'AbortError' },
  );
  assert.ok(seen < 32_000_000, 'stopped before the large file was read to its end');
  // A stopped first ingest leaves no library at all (and so no manifest).
  await assert.rejects(stat(lib2), { code: 'ENOENT' });
});

test('extract: a stop settles what is in flight, then leaves neither the destination nor a staging folder', async (t) => {
  const dir = await tempDir(t, 'sitecast-extract-stop');
  const src = join(dir, 'src');
  await mkdir(join(src, 'a'), { recursive: true });
  await writeFile(join(src, 'a', 'big.bin'), Buffer.concat([randomBytesFrom('stop-big', 16_000_000), textBytes('stop', 16_000_000)]));
  for (let i = 0; i < 40; i++) await writeFile(join(src, `small-${String(i).padStart(2, '0')}.txt`), textBytes(`stop-${i}`, 2000 + i));
  const lib = join(dir, 'library');
  const { manifest } = await ingestTree(lib, src);
  const out = join(dir, 'out');
  const controller = new AbortController();
  await assert.rejects(
    extractManifest(lib, manifest, out, {
      signal: controller.signal,
      onProgress: (done) => {
        if (done > 0) controller.abort();
      },
    }),
    { name: 'AbortError' },
  );
  assert.deepEqual((await readdir(dir)).sort(), ['library', 'src'], 'no destination and no staging folder left');
  // The library is untouched: a full extract afterwards is exact.
  await extractManifest(lib, manifest, out);
  assert.deepEqual(await describeTree(out), await describeTree(src));
});
