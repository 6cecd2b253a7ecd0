import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, appendFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveWriter } from '../../src/content/archive-writer.js';
import { buildDelta } from '../../src/content/delta.js';
import { extractManifest } from '../../src/content/extract.js';
import { importArchive } from '../../src/content/import.js';
import { ingestTree } from '../../src/content/ingest.js';
import { listChunks, listManifests, openLibrary } from '../../src/content/library.js';
import { serializeManifest, manifestId } from '../../src/content/manifest.js';
import { packManifest } from '../../src/content/pack.js';
import { ChunkCodec, sha256 } from '../../src/content/store.js';
import type { Manifest } from '../../src/content/types.js';
import { describeTree, makeTree, tempDir, textBytes } from '../helpers/fixtures.js';

async function packedLibrary(dir: string): Promise<{ manifest: string; archive: string }> {
  await makeTree(join(dir, 'src'));
  const r = await ingestTree(join(dir, 'lib'), join(dir, 'src'));
  const archive = join(dir, 'pkg.scpkg');
  await packManifest(join(dir, 'lib'), r.manifest, archive);
  return { manifest: r.manifest, archive };
}

/** What a library holds, to prove a refused archive changed nothing. */
async function libraryState(libDir: string): Promise<string> {
  const lib = await openLibrary(libDir, { create: true });
  return JSON.stringify({ manifests: await listManifests(lib), chunks: await listChunks(lib) });
}

test('pack then unpack into another library gives the same version, byte for byte', async (t) => {
  const dir = await tempDir(t);
  const { manifest, archive } = await packedLibrary(dir);
  const r = await importArchive(join(dir, 'lib2'), archive);
  assert.equal(r.manifest, manifest);
  assert.equal(r.kind, 'full');
  await extractManifest(join(dir, 'lib2'), manifest, join(dir, 'out'));
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'src')));
});

test('truncated, corrupt, foreign and trailing-garbage archives are refused and change nothing', async (t) => {
  const dir = await tempDir(t);
  const { archive } = await packedLibrary(dir);
  const target = join(dir, 'target');
  await makeTree(join(dir, 'other'), 'other');
  await ingestTree(target, join(dir, 'other'));
  const before = await libraryState(target);
  const size = (await stat(archive)).size;
  const bytes = await readFile(archive);

  const cases: { name: string; make: (file: string) => Promise<void>; code: string; message: RegExp }[] = [
    { name: 'truncated', make: async (f) => { await writeFile(f, bytes); await truncate(f, size - 100); }, code: 'SITECAST_E_BAD_ARCHIVE', message: /truncated/ },
    { name: 'cut in the header', make: (f) => writeFile(f, bytes.subarray(0, 20)), code: 'SITECAST_E_BAD_ARCHIVE', message: /truncated/ },
    { name: 'flipped byte', make: (f) => { const c = Buffer.from(bytes); c.writeUInt8(c.readUInt8(size >> 1) ^ 1, size >> 1); return writeFile(f, c); }, code: '', message: /corrupt|does not|checksum/ },
    { name: 'not an archive', make: (f) => writeFile(f, 'hello, this is a text file'), code: 'SITECAST_E_BAD_ARCHIVE', message: /not a Sitecast package archive/ },
    { name: 'future format', make: (f) => { const c = Buffer.from(bytes); c.writeUInt16LE(9, 8); return writeFile(f, c); }, code: 'SITECAST_E_UNSUPPORTED_FORMAT', message: /format 9/ },
    { name: 'trailing data', make: async (f) => { await writeFile(f, bytes); await appendFile(f, 'extra'); }, code: 'SITECAST_E_BAD_ARCHIVE', message: /after its end record/ },
  ];
  for (const c of cases) {
    const file = join(dir, `${c.name}.scpkg`);
    await c.make(file);
    await assert.rejects(importArchive(target, file), (err: Error & { code?: string }) => {
      if (c.code) assert.equal(err.code, c.code, c.name);
      assert.match(err.message, c.message, c.name);
      return true;
    });
    assert.equal(await libraryState(target), before, `${c.name} changed the library`);
  }
});

/** A zstd frame header that declares 1 TiB of content, followed by one tiny raw block. */
function hugeFrame(): Buffer {
  const b = Buffer.alloc(4 + 1 + 8 + 3 + 1);
  b.writeUInt32LE(0xfd2fb528, 0);
  b.writeUInt8(0xe0, 4); // 8-byte content size, single segment
  b.writeBigUInt64LE(1n << 40n, 5);
  b.writeUIntLE((1 << 3) | 1, 13, 3); // last block, raw, 1 byte
  return b;
}

/** Writes a well-framed archive (valid checksum) with hostile content. */
async function hostile(file: string, manifest: Manifest, chunks: { hash: string; frame: Buffer }[], header: { kind?: 'full' | 'delta'; id?: string } = {}): Promise<void> {
  const bytes = serializeManifest(manifest);
  const w = await ArchiveWriter.create(file, { kind: header.kind ?? 'full', manifest: header.id ?? manifestId(bytes), created: 'now', chunks: chunks.length, patches: 0 });
  await w.manifest(bytes);
  for (const c of chunks) await w.chunk(c.hash, c.frame);
  await w.finish();
}

test('well-framed archives with unsafe paths, bad chunks or missing chunks are refused and change nothing', async (t) => {
  const dir = await tempDir(t);
  const target = join(dir, 'target');
  await makeTree(join(dir, 'src'));
  await ingestTree(target, join(dir, 'src'));
  const before = await libraryState(target);
  const codec = new ChunkCodec();
  const data = textBytes('hostile', 1000);
  const hash = sha256(data);
  const good = { hash, frame: codec.compress(data) };
  const fileEntry = (path: string) => ({ type: 'file' as const, path, mode: 0o644, size: data.length, hash, chunks: [{ hash, size: data.length }] });

  const cases: { name: string; manifest: Manifest; chunks: { hash: string; frame: Buffer }[]; code: string; message: RegExp; id?: string }[] = [
    { name: 'dotdot', manifest: { format: 1, entries: [fileEntry('../../etc/cron.d/x')] }, chunks: [good], code: 'SITECAST_E_UNSAFE_PATH', message: /climbs out/ },
    { name: 'absolute', manifest: { format: 1, entries: [fileEntry('/etc/passwd')] }, chunks: [good], code: 'SITECAST_E_UNSAFE_PATH', message: /absolute/ },
    { name: 'link out', manifest: { format: 1, entries: [{ type: 'symlink', path: 'l', target: '../../x' }] }, chunks: [], code: 'SITECAST_E_UNSAFE_PATH', message: /points out/ },
    { name: 'duplicate', manifest: { format: 1, entries: [fileEntry('a'), fileEntry('a')] }, chunks: [good], code: 'SITECAST_E_UNSAFE_PATH', message: /duplicate/ },
    { name: 'through a file', manifest: { format: 1, entries: [fileEntry('a'), fileEntry('a/b')] }, chunks: [good], code: 'SITECAST_E_UNSAFE_PATH', message: /goes through/ },
    { name: 'corrupt chunk', manifest: { format: 1, entries: [fileEntry('a')] }, chunks: [{ hash, frame: codec.compress(textBytes('other', 1000)) }], code: 'SITECAST_E_CORRUPT_CHUNK', message: /does not match/ },
    { name: 'frame claiming a terabyte', manifest: { format: 1, entries: [fileEntry('a')] }, chunks: [{ hash, frame: hugeFrame() }], code: 'SITECAST_E_CORRUPT_CHUNK', message: /declares 1099511627776 bytes/ },
    { name: 'missing chunk', manifest: { format: 1, entries: [fileEntry('a')] }, chunks: [], code: 'SITECAST_E_BAD_ARCHIVE', message: /lacks chunk/ },
    { name: 'wrong id', manifest: { format: 1, entries: [fileEntry('a')] }, chunks: [good], code: 'SITECAST_E_BAD_MANIFEST', message: /does not match its id/, id: 'c'.repeat(64) },
  ];
  for (const c of cases) {
    const file = join(dir, `${c.name}.scpkg`);
    await hostile(file, c.manifest, c.chunks, c.id ? { id: c.id } : {});
    await assert.rejects(importArchive(target, file), (err: Error & { code?: string }) => {
      assert.equal(err.code, c.code, `${c.name}: ${err.message}`);
      assert.match(err.message, c.message, c.name);
      return true;
    });
    assert.equal(await libraryState(target), before, `${c.name} changed the library`);
  }
});

test('a delta rebuilds the new version from the old one, and is refused without its base', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'v1'), 'v');
  await makeTree(join(dir, 'v2'), 'v');
  // Edits: a changed text file (patched), a changed big file, a new file, a removed file.
  await writeFile(join(dir, 'v2/README.txt'), Buffer.concat([textBytes('v', 5000), Buffer.from(' and a new line')]));
  const big = await readFile(join(dir, 'v2/lib/big.bin'));
  big.write('CHANGED IN VERSION TWO', 1_000_000);
  await writeFile(join(dir, 'v2/lib/big.bin'), big);
  await writeFile(join(dir, 'v2/NEW.txt'), textBytes('new', 20_000));
  const { rm } = await import('node:fs/promises');
  await rm(join(dir, 'v2/lib/deep/er/data.json'));

  const libDir = join(dir, 'lib');
  const v1 = await ingestTree(libDir, join(dir, 'v1'));
  const v2 = await ingestTree(libDir, join(dir, 'v2'));
  const deltaFile = join(dir, 'v1-v2.scdelta');
  const delta = await buildDelta(libDir, v1.manifest, v2.manifest, deltaFile);
  assert.ok(delta.bytes < v2.storedBytes / 4, `delta ${delta.bytes} bytes vs ${v2.storedBytes} stored`);

  // A receiver holding only v1.
  const receiver = join(dir, 'receiver');
  await packManifest(libDir, v1.manifest, join(dir, 'v1.scpkg'));
  await importArchive(receiver, join(dir, 'v1.scpkg'));
  const applied = await importArchive(receiver, deltaFile, { expect: 'delta' });
  assert.equal(applied.manifest, v2.manifest);
  await extractManifest(receiver, v2.manifest, join(dir, 'out'));
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'v2')));

  // A library without the base: refused, nothing changed.
  const stranger = join(dir, 'stranger');
  await makeTree(join(dir, 'x'), 'x');
  await ingestTree(stranger, join(dir, 'x'));
  const before = await libraryState(stranger);
  await assert.rejects(importArchive(stranger, deltaFile, { expect: 'delta' }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_MISSING_BASE');
    assert.match(err.message, new RegExp(v1.manifest));
    return true;
  });
  assert.equal(await libraryState(stranger), before);
  // A full archive is not a delta.
  await assert.rejects(importArchive(receiver, join(dir, 'v1.scpkg'), { expect: 'delta' }), { code: 'SITECAST_E_BAD_ARCHIVE' });
});
