import { statSync, unlinkSync } from 'node:fs';
import { readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';
import { Slices } from '../fs/slices.js';
import { checkManifestId, hasManifest, legacyManifestPath, listChunks, listManifests, loadManifest, manifestPath, openLibrary } from './library.js';
import { chunkPath } from './store.js';
import type { GcResult, ProgressFn, Sha256Hex } from './types.js';

/**
 * Removes every chunk that no kept manifest references, and the manifests
 * not kept. Every kept manifest must exist: a typo must not empty a library.
 * Manifests go first, so an interrupted run never leaves a manifest whose
 * chunks are gone. Must not run while another process writes to the library.
 */
export async function gcLibrary(libraryDir: string, keep: Sha256Hex[], options: { onProgress?: ProgressFn; emptyKeepRemovesAll?: boolean } = {}): Promise<GcResult> {
  const lib = await openLibrary(libraryDir);
  // An empty --keep is refused from the command line (it empties the library); a DP that holds no package any more asks for exactly that.
  if (keep.length === 0 && options.emptyKeepRemovesAll !== true) {
    throw new SitecastError('SITECAST_E_USAGE', 'gc needs at least one --keep <manifest>', {
      hint: 'name every manifest still in use; all others and their chunks are removed',
    });
  }
  for (const id of keep) {
    checkManifestId(id);
    if (!(await hasManifest(lib, id))) {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `manifest ${id} given to --keep is not in the library; nothing was removed`);
    }
  }
  const live = new Set<Sha256Hex>();
  for (const id of keep) {
    for (const entry of (await loadManifest(lib, id)).entries) {
      if (entry.type === 'file') for (const c of entry.chunks) live.add(c.hash);
    }
  }
  const keepSet = new Set(keep);
  let removedManifests = 0;
  for (const id of await listManifests(lib)) {
    if (keepSet.has(id)) continue;
    for (const path of [manifestPath(lib, id), legacyManifestPath(lib, id)]) {
      await unlink(path).catch((err: unknown) => {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot remove manifest ${id}`, err);
      });
    }
    removedManifests++;
  }
  let removed = 0;
  let removedBytes = 0;
  let kept = 0;
  // Synchronous calls in slices (see Slices): two per chunk removed.
  const slices = new Slices();
  const chunks = await listChunks(lib);
  let seen = 0;
  for (const hash of chunks) {
    if (++seen % 256 === 0) options.onProgress?.(seen, chunks.length);
    if (live.has(hash)) {
      kept++;
      continue;
    }
    await slices.tick();
    const path = chunkPath(lib.dir, hash);
    try {
      removedBytes += statSync(path).size;
      unlinkSync(path);
      removed++;
    } catch (err) {
      throw ioError(`cannot remove chunk ${hash}`, err);
    }
  }
  options.onProgress?.(chunks.length, chunks.length);
  await removeStaleTemporaries(lib.dir);
  return { kept, removed, removedBytes, removedManifests };
}

/** Temporary files a crashed writer left beside the chunks, in manifests/ and in tmp/. */
async function removeStaleTemporaries(dir: string): Promise<void> {
  const root = join(dir, 'chunks');
  for (const prefix of await readdir(root)) {
    for (const name of await readdir(join(root, prefix))) {
      if (name.endsWith('.tmp')) await rm(join(root, prefix, name), { force: true });
    }
  }
  for (const name of await readdir(join(dir, 'tmp'))) await rm(join(dir, 'tmp', name), { recursive: true, force: true });
  for (const name of await readdir(join(dir, 'manifests'))) {
    if (name.startsWith('.') && name.endsWith('.tmp')) await rm(join(dir, 'manifests', name), { force: true });
  }
}
