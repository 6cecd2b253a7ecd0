import { posix } from 'node:path';
import { ArchiveWriter } from './archive-writer.js';
import { loadManifest, openLibrary } from './library.js';
import { serializeManifest } from './manifest.js';
import { forEachBounded } from './concurrency.js';
import { ChunkPool } from './pool.js';
import { chunkStoredSize, readChunkFrame } from './store.js';
import type { FileEntry, Manifest, ProgressFn, Sha256Hex } from './types.js';

export interface DeltaResult {
  bytes: number;
  chunks: number;
  patches: number;
  /** Compressed bytes of chunks sent as they are. */
  chunkBytes: number;
  /** Bytes of patches. */
  patchBytes: number;
}

function files(manifest: Manifest): FileEntry[] {
  return manifest.entries.filter((e): e is FileEntry => e.type === 'file');
}

/**
 * The old file a new file is most likely an edit of: the same path, else the
 * only old file with the same name (a renamed folder), else none.
 */
function baseFor(file: FileEntry, byPath: Map<string, FileEntry>, byName: Map<string, FileEntry[]>): FileEntry | undefined {
  const same = byPath.get(file.path);
  if (same) return same;
  const named = byName.get(posix.basename(file.path));
  return named?.length === 1 ? named[0] : undefined;
}

/**
 * Builds a delta archive: what a holder of `oldId` lacks to rebuild `newId`.
 * A new file whose chunks are all in the old version costs nothing. A changed
 * file is sent as a patch against its old version when that is smaller than
 * its missing chunks, else as those chunks. Each chunk travels once.
 */
export async function buildDelta(
  libraryDir: string,
  oldId: Sha256Hex,
  newId: Sha256Hex,
  out: string,
  options: { onProgress?: ProgressFn; signal?: AbortSignal } = {},
): Promise<DeltaResult> {
  const lib = await openLibrary(libraryDir);
  const oldManifest = await loadManifest(lib, oldId);
  const newManifest = await loadManifest(lib, newId);
  const held = new Set<Sha256Hex>(files(oldManifest).flatMap((f) => f.chunks.map((c) => c.hash)));
  const byPath = new Map(files(oldManifest).map((f) => [f.path, f]));
  const byName = new Map<string, FileEntry[]>();
  for (const f of files(oldManifest)) {
    const name = posix.basename(f.path);
    byName.set(name, [...(byName.get(name) ?? []), f]);
  }

  const work = files(newManifest).filter((f) => f.chunks.some((c) => !held.has(c.hash)));
  const total = work.reduce((sum, f) => sum + f.size, 0);
  let done = 0;

  // Patches are computed in the chunk workers, both cores at once; the
  // decisions are then taken in manifest order, as if one after another.
  const pool = new ChunkPool(lib.dir);
  const patchFor = new Map<FileEntry, Buffer | null>();
  try {
    const jobs = new Map<Sha256Hex, { file: FileEntry; base: FileEntry }>();
    for (const file of work) {
      const base = baseFor(file, byPath, byName);
      if (base && base.size > 0 && !jobs.has(file.hash)) jobs.set(file.hash, { file, base });
    }
    await forEachBounded(jobs.values(), pool.size, async ({ file, base }) => {
      options.signal?.throwIfAborted();
      const limit = file.chunks.filter((c) => !held.has(c.hash)).reduce((sum, c) => sum + (chunkStoredSize(lib.dir, c.hash) ?? c.size), 0);
      patchFor.set(file, await pool.patch(base, file, limit));
      done += file.size;
      options.onProgress?.(done, total);
    });
  } finally {
    await pool.close();
  }

  const covered = new Set<Sha256Hex>(held);
  const patched = new Set<Sha256Hex>();
  const patches: { meta: { path: string; base: string; target: string }; data: Buffer }[] = [];
  const sendChunks: Sha256Hex[] = [];
  for (const file of work) {
    const missing = file.chunks.filter((c) => !covered.has(c.hash));
    if (missing.length === 0 || patched.has(file.hash)) continue;
    const patch = patchFor.get(file);
    const base = baseFor(file, byPath, byName);
    if (patch && base) {
      patches.push({ meta: { path: file.path, base: base.hash, target: file.hash }, data: patch });
      patched.add(file.hash);
      for (const c of file.chunks) covered.add(c.hash);
      continue;
    }
    for (const c of missing) {
      // A chunk may repeat inside a file (runs of zeros): it travels once.
      if (covered.has(c.hash)) continue;
      covered.add(c.hash);
      sendChunks.push(c.hash);
    }
  }

  const writer = await ArchiveWriter.create(out, {
    kind: 'delta',
    manifest: newId,
    base: oldId,
    created: new Date().toISOString(),
    chunks: sendChunks.length,
    patches: patches.length,
  });
  try {
    await writer.manifest(serializeManifest(newManifest));
    let patchBytes = 0;
    for (const p of patches) {
      await writer.patch(p.meta, p.data);
      patchBytes += p.data.length;
    }
    let chunkBytes = 0;
    for (const hash of sendChunks) {
      const frame = readChunkFrame(lib.dir, hash);
      chunkBytes += frame.length;
      await writer.chunk(hash, frame);
    }
    const bytes = await writer.finish();
    return { bytes, chunks: sendChunks.length, patches: patches.length, chunkBytes, patchBytes };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
