import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, appendFile, truncate, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArchiveWriter } from '../../src/content/archive-writer.js';
import { buildDelta } from '../../src/content/delta.js';
import { extractManifest } from '../../src/content/extract.js';
import { importArchive } from '../../src/content/import.js';
import { ingestTree } from '../../src/content/ingest.js';
import { listChunks, listManifests, loadManifest, openLibrary } from '../../src/content/library.js';
import { serializeManifest, manifestId } from '../../src/content/manifest.js';
import { packManifest } from '../../src/content/pack.js';
import { ChunkCodec, sha256 } from '../../src/content/store.js';
import type { FileEntry, Manifest, ManifestEntry } from '../../src/content/types.js';
import { ARCHIVE_FORMAT, ARCHIVE_MAGIC, RECORD, type PatchMeta } from '../../src/content/archive-format.js';
import { compress as zstdCompress } from 'zstd-napi';
import { createHash } from 'node:crypto';
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
async function hostile(
  file: string,
  manifest: Manifest,
  chunks: { hash: string; frame: Buffer }[],
  header: { kind?: 'full' | 'delta'; id?: string; base?: string; patches?: { meta: PatchMeta; data: Buffer }[] } = {},
): Promise<void> {
  const bytes = serializeManifest(manifest);
  const patches = header.patches ?? [];
  const w = await ArchiveWriter.create(file, {
    kind: header.kind ?? 'full',
    manifest: header.id ?? manifestId(bytes),
    ...(header.base === undefined ? {} : { base: header.base }),
    created: 'now',
    chunks: chunks.length,
    patches: patches.length,
  });
  await w.manifest(bytes);
  for (const p of patches) await w.patch(p.meta, p.data);
  for (const c of chunks) await w.chunk(c.hash, c.frame);
  await w.finish();
}

/** An archive written byte by byte (valid checksum), for framing the writer would never produce. */
async function rawArchive(file: string, records: { type: number; payload: Buffer }[]): Promise<void> {
  const preamble = Buffer.alloc(4);
  preamble.writeUInt16LE(ARCHIVE_FORMAT, 0);
  const parts: Buffer[] = [ARCHIVE_MAGIC, preamble];
  for (const r of records) {
    const head = Buffer.alloc(5);
    head.writeUInt8(r.type, 0);
    head.writeUInt32LE(r.payload.length, 1);
    parts.push(head, r.payload);
  }
  const body = Buffer.concat(parts);
  const end = Buffer.alloc(5);
  end.writeUInt8(RECORD.end, 0);
  end.writeUInt32LE(32, 1);
  await writeFile(file, Buffer.concat([body, end, createHash('sha256').update(body).digest()]));
}

test('framing the writer never makes (header not JSON, records out of order, an unknown record type), a chunk the manifest does not use, a wrong file hash, and hostile deltas are refused and change nothing', async (t) => {
  const dir = await tempDir(t);
  const target = join(dir, 'target');
  await makeTree(join(dir, 'src'));
  const base = await ingestTree(target, join(dir, 'src'));
  const before = await libraryState(target);
  const codec = new ChunkCodec();
  const data = textBytes('framing', 1000);
  const hash = sha256(data);
  const good = { hash, frame: codec.compress(data) };
  const fileEntry = (path: string, fileHash = hash): ManifestEntry => ({ type: 'file', path, mode: 0o644, size: data.length, hash: fileHash, chunks: [{ hash, size: data.length }] });
  const manifest: Manifest = { format: 1, entries: [fileEntry('a')] };
  const manifestBytes = serializeManifest(manifest);
  const headerJson = Buffer.from(JSON.stringify({ kind: 'full', manifest: manifestId(manifestBytes), created: 'now', chunks: 1, patches: 0 }));
  const manifestFrame = zstdCompress(manifestBytes);
  const chunkRecord = Buffer.concat([Buffer.from(hash, 'hex'), good.frame]);
  const unusedData = textBytes('unused', 500);
  const unused = { hash: sha256(unusedData), frame: codec.compress(unusedData) };
  const [baseFile] = (await loadManifest(await openLibrary(target), base.manifest)).entries.filter((e): e is FileEntry => e.type === 'file' && e.size > 0);
  assert.ok(baseFile);

  const cases: { name: string; make: (file: string) => Promise<void>; code: RegExp; message: RegExp }[] = [
    {
      name: 'header not JSON',
      make: (f) => rawArchive(f, [{ type: RECORD.header, payload: Buffer.from('{not json') }, { type: RECORD.manifest, payload: manifestFrame }]),
      code: /SITECAST_E_BAD_ARCHIVE/,
      message: /header is not valid JSON/,
    },
    {
      name: 'manifest before header',
      make: (f) => rawArchive(f, [{ type: RECORD.manifest, payload: manifestFrame }, { type: RECORD.header, payload: headerJson }]),
      code: /SITECAST_E_BAD_ARCHIVE/,
      message: /out of order/,
    },
    {
      name: 'chunk before manifest',
      make: (f) => rawArchive(f, [{ type: RECORD.header, payload: headerJson }, { type: RECORD.chunk, payload: chunkRecord }, { type: RECORD.manifest, payload: manifestFrame }]),
      code: /SITECAST_E_BAD_ARCHIVE/,
      message: /out of order/,
    },
    {
      name: 'unknown record type',
      make: (f) => rawArchive(f, [{ type: RECORD.header, payload: headerJson }, { type: RECORD.manifest, payload: manifestFrame }, { type: 0x09, payload: Buffer.from('?') }]),
      code: /SITECAST_E_BAD_ARCHIVE/,
      message: /unknown type 0x9/,
    },
    { name: 'unused chunk', make: (f) => hostile(f, manifest, [good, unused]), code: /SITECAST_E_BAD_ARCHIVE/, message: /which its manifest does not use/ },
    { name: 'wrong file hash', make: (f) => hostile(f, { format: 1, entries: [fileEntry('a', 'd'.repeat(64))] }, [good]), code: /SITECAST_E_BAD_MANIFEST/, message: /is not the SHA-256 of its one chunk/ },
    {
      name: 'delta with a path out',
      make: (f) => hostile(f, { format: 1, entries: [fileEntry('../escape')] }, [good], { kind: 'delta', base: base.manifest }),
      code: /SITECAST_E_UNSAFE_PATH/,
      message: /climbs out/,
    },
    {
      name: 'delta with a garbage patch',
      make: (f) => hostile(f, manifest, [], { kind: 'delta', base: base.manifest, patches: [{ meta: { path: 'a', base: baseFile.hash, target: hash }, data: textBytes('garbage', 300) }] }),
      code: /SITECAST_E_(BAD_ARCHIVE|CORRUPT_CHUNK)/,
      message: /patch|does not match/,
    },
    {
      name: 'delta patch for a file the new version lacks',
      make: (f) => hostile(f, manifest, [good], { kind: 'delta', base: base.manifest, patches: [{ meta: { path: 'nope', base: baseFile.hash, target: hash }, data: textBytes('garbage', 300) }] }),
      code: /SITECAST_E_BAD_ARCHIVE/,
      message: /does not match any file of the new version/,
    },
  ];
  for (const c of cases) {
    const file = join(dir, `${c.name}.scpkg`);
    await c.make(file);
    await assert.rejects(importArchive(target, file), (err: Error & { code?: string }) => {
      assert.match(err.code ?? '', c.code, `${c.name}: ${err.message}`);
      assert.match(err.message, c.message, c.name);
      return true;
    });
    assert.equal(await libraryState(target), before, `${c.name} changed the library`);
  }
});

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
