import { createHash } from 'node:crypto';
import { linkSync, mkdirSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';
import { Slices } from '../fs/slices.js';
import type { ArchiveHeader, PatchMeta } from './archive-format.js';
import { readArchive } from './archive-reader.js';
import { libraryFileSource } from './file-source.js';
import { flushFileSystem, hasManifest, loadManifest, makeStaging, openLibrary, openLibraryToWrite, removeQuietly, saveManifest, type Library } from './library.js';
import { parseManifest } from './manifest.js';
import { applyPatch, type ByteSource } from './patch.js';
import { ChunkPool } from './pool.js';
import { ChunkCodec, chunkPath, readChunk } from './store.js';
import type { FileEntry, Manifest, ProgressFn, Sha256Hex } from './types.js';

export interface ImportResult {
  manifest: Sha256Hex;
  kind: 'full' | 'delta';
  chunks: number;
  patches: number;
}

export interface ImportOptions {
  /** Refuse archives of the other kind (`content unpack` takes full archives and deltas alike). */
  expect?: 'full' | 'delta';
  onProgress?: ProgressFn;
}

function bad(message: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_ARCHIVE', message, { hint: 'nothing from it was applied' });
}

/**
 * Applies a full archive or a delta to a library. Nothing is trusted: the
 * framing and checksum (reader), the manifest (parsed and checked against its
 * id), every chunk (decompressed and hashed before it is staged), every
 * patched file (rebuilt chunk by chunk against the manifest's hashes, then
 * its whole SHA-256). Chunks carried by the archive are staged privately
 * until the end record verifies; chunks rebuilt from patches go to the store
 * as soon as each verifies. The manifest is written last, so a refused archive
 * leaves every manifest the library had unchanged and adds none; at worst it
 * leaves verified chunks no manifest names, which gc removes.
 */
export async function importArchive(libraryDir: string, path: string, options: ImportOptions = {}): Promise<ImportResult> {
  // A delta needs its base, so only a full archive may create the library (and a refused one removes it again).
  const { lib, discard } = options.expect === 'delta' ? { lib: await openLibrary(libraryDir), discard: () => Promise.resolve() } : await openLibraryToWrite(libraryDir);
  try {
    return await importInto(lib, path, options);
  } catch (err) {
    await discard();
    throw err;
  }
}

async function importInto(lib: Library, path: string, options: ImportOptions): Promise<ImportResult> {
  const staging = await makeStaging(lib, 'import');
  const codec = new ChunkCodec();
  const staged = new Set<Sha256Hex>();
  const patches: { meta: PatchMeta; file: string }[] = [];
  let header: ArchiveHeader | undefined;
  let manifest: Manifest | undefined;
  let base: Manifest | undefined;
  let needed = new Set<Sha256Hex>();
  try {
    // Progress by the archive's bytes (records are counted by their payload).
    const total = options.onProgress === undefined ? 0 : await stat(path).then((st) => st.size, () => 0);
    let done = 0;
    const step = (bytes: number): void => {
      done += bytes;
      if (total > 0) options.onProgress?.(Math.min(done, total), total);
    };
    for await (const record of readArchive(path)) {
      step(record.type === 'chunk' ? record.frame.length + 37 : record.type === 'patch' ? record.data.length : record.type === 'manifest' ? record.bytes.length : 0);
      switch (record.type) {
        case 'header':
          header = record.header;
          if (options.expect && header.kind !== options.expect) throw bad(`${path} is a ${header.kind} archive, not a ${options.expect}`);
          if (header.kind === 'delta') base = await loadBase(lib, header);
          break;
        case 'manifest':
          manifest = parseManifest(record.bytes, header?.manifest);
          needed = new Set(manifest.entries.flatMap((e) => (e.type === 'file' ? e.chunks.map((c) => c.hash) : [])));
          break;
        case 'chunk':
          if (!needed.has(record.hash)) throw bad(`archive carries chunk ${record.hash}, which its manifest does not use`);
          codec.decompressVerified(record.hash, record.frame);
          if (!staged.has(record.hash)) {
            await writeStaged(join(staging, record.hash), record.frame);
            staged.add(record.hash);
          }
          break;
        case 'patch': {
          const file = join(staging, `patch-${patches.length}`);
          await writeStaged(file, record.data);
          patches.push({ meta: record.meta, file });
          break;
        }
        case 'end':
          break;
      }
    }
    if (!header || !manifest) throw bad(`${path} has no manifest`);
    if (patches.length > 0 && !base) throw bad(`${path} carries patches but is not a delta`);
    const pool = new ChunkPool(lib.dir);
    try {
      for (const patch of patches) await applyOnePatch(lib, pool, { base: base as Manifest, manifest, ...patch });
    } finally {
      await pool.close();
    }
    await commitStaged(lib, staging, staged, codec);
    await checkComplete(lib, manifest);
    await flushFileSystem(lib.dir);
    const id = await saveManifest(lib, manifest);
    return { manifest: id, kind: header.kind, chunks: staged.size, patches: patches.length };
  } finally {
    await removeQuietly(staging);
  }
}

async function loadBase(lib: Library, header: ArchiveHeader): Promise<Manifest> {
  if (!header.base) throw bad('delta archive names no base version');
  if (!(await hasManifest(lib, header.base))) {
    throw new SitecastError('SITECAST_E_MISSING_BASE', `this delta needs base version ${header.base}, which library ${lib.dir} does not hold`, {
      hint: 'apply a full archive (`sitecast content unpack`) or bring the base version first; nothing was applied',
    });
  }
  return loadManifest(lib, header.base);
}

async function writeStaged(file: string, data: Buffer): Promise<void> {
  await writeFile(file, data, { flag: 'wx', mode: 0o444 }).catch((err: unknown) => {
    throw ioError(`cannot stage ${file}`, err);
  });
}

/** Rebuilds one changed file from its old version and a patch, storing its chunks verified. */
async function applyOnePatch(
  lib: Library,
  pool: ChunkPool,
  job: { base: Manifest; manifest: Manifest; meta: PatchMeta; file: string },
): Promise<void> {
  const { meta } = job;
  const target = job.manifest.entries.find((e): e is FileEntry => e.type === 'file' && e.path === meta.path && e.hash === meta.target);
  if (!target) throw bad(`patch for "${meta.path}" does not match any file of the new version`);
  const old = job.base.entries.find((e): e is FileEntry => e.type === 'file' && e.hash === meta.base);
  if (!old) throw bad(`patch for "${meta.path}" is against a file the base version does not hold`);
  const data = await readFile(job.file);
  const source = localSource(libraryFileSource(lib.dir, old), meta.path);
  const pending: Promise<unknown>[] = [];
  const fileHash = createHash('sha256');
  let index = 0;
  let carry: Buffer = Buffer.alloc(0);
  let total = 0;
  const flushChunks = (final: boolean): void => {
    for (;;) {
      const ref = target.chunks[index];
      if (!ref) {
        if (carry.length > 0) throw bad(`patch for "${meta.path}" rebuilds more bytes than the file has`);
        return;
      }
      if (carry.length < ref.size) {
        if (final) throw bad(`patch for "${meta.path}" rebuilds fewer bytes than the file has`);
        return;
      }
      const piece = Buffer.from(carry.subarray(0, ref.size));
      carry = carry.subarray(ref.size);
      // A mismatch here is the archive's fault: the patch does not rebuild what the manifest names.
      const p = pool.store(piece, ref.hash).catch((err: unknown) => {
        throw bad(`patch for "${meta.path}" does not rebuild the file the manifest names (${err instanceof Error ? err.message : String(err)})`);
      });
      p.catch(() => undefined); // observed by Promise.all below
      pending.push(p);
      index++;
    }
  };
  try {
    for await (const piece of applyPatch(source, data)) {
      total += piece.length;
      if (total > target.size) throw bad(`patch for "${meta.path}" rebuilds more bytes than the file has`);
      fileHash.update(piece);
      carry = carry.length === 0 ? piece : Buffer.concat([carry, piece]);
      flushChunks(false);
      if (pending.length > 32) await Promise.all(pending.splice(0, pending.length - 16));
    }
    flushChunks(true);
    await Promise.all(pending);
  } catch (err) {
    await Promise.allSettled(pending);
    throw err;
  }
  if (fileHash.digest('hex') !== target.hash) throw bad(`patch for "${meta.path}" rebuilds a file whose SHA-256 is not the manifest's`);
}

/** Errors reading the base version are this library's damage, not the archive's: say so. */
function localSource(source: ByteSource, path: string): ByteSource {
  return {
    size: source.size,
    read: (offset, length) =>
      source.read(offset, length).catch((err: unknown) => {
        const why = err instanceof Error ? err.message : String(err);
        throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `the base version of "${path}" in this library is damaged (${why})`, {
          hint: 'run `sitecast content verify`, then re-import the base version; nothing was applied',
          cause: err,
        });
      }),
  };
}

/** Moves verified staged chunks into the store; an existing copy is kept unless it is corrupt. */
async function commitStaged(lib: Library, staging: string, staged: Set<Sha256Hex>, codec: ChunkCodec): Promise<void> {
  // Synchronous calls in slices (see Slices): three per chunk, thousands of chunks.
  const slices = new Slices();
  const made = new Set<string>();
  for (const hash of staged) {
    await slices.tick();
    const target = chunkPath(lib.dir, hash);
    const from = join(staging, hash);
    try {
      const prefix = join(lib.dir, 'chunks', hash.slice(0, 2));
      if (!made.has(prefix)) {
        mkdirSync(prefix, { recursive: true });
        made.add(prefix);
      }
      try {
        linkSync(from, target);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        if (!existingIsGood(lib, codec, hash)) renameSync(from, target);
      }
    } catch (err) {
      throw ioError(`cannot store chunk ${hash}`, err);
    }
    try {
      unlinkSync(from);
    } catch {
      // already moved by the rename, or the staging folder goes anyway
    }
  }
}

function existingIsGood(lib: Library, codec: ChunkCodec, hash: Sha256Hex): boolean {
  try {
    readChunk(lib.dir, codec, hash);
    return true;
  } catch {
    return false;
  }
}

async function checkComplete(lib: Library, manifest: Manifest): Promise<void> {
  const slices = new Slices();
  for (const entry of manifest.entries) {
    if (entry.type !== 'file') continue;
    for (const chunk of entry.chunks) {
      await slices.tick();
      try {
        statSync(chunkPath(lib.dir, chunk.hash));
      } catch {
        throw bad(`archive lacks chunk ${chunk.hash} of "${entry.path}", and the library does not hold it`);
      }
    }
  }
}
