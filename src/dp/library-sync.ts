import { copyManifest, openLibrary } from '../content/library.js';
import { ChunkPool, type CopyCount } from '../content/pool.js';
import type { ManifestEntry, Sha256Hex } from '../content/types.js';

/** Chunks per request to the worker that copies them (a stop is noticed between requests). */
const COPY_BATCH = 256;

/**
 * Copies the chunks of these files that the DP library lacks from the site
 * library, as the compressed frame; nothing is flushed and no manifest
 * written: the caller flushes, then calls {@link commitLibrary}, so a DP
 * library never names a chunk it does not hold. A DP install copies most
 * chunks while building its share (see installOnDp); this covers the rest.
 * A chunk already there is kept if its size matches the site's copy; a
 * truncated one (a power cut before the flush) is replaced.
 */
export async function copyChunks(siteLibraryDir: string, dpLibraryDir: string, files: readonly ManifestEntry[], signal?: AbortSignal): Promise<CopyCount> {
  const chunks = new Set<string>();
  for (const e of files) if (e.type === 'file') for (const c of e.chunks) chunks.add(c.hash);
  // A worker copies (synchronous calls, a few per chunk; a DP folder on a slow share holds only that worker).
  const pool = new ChunkPool(siteLibraryDir);
  const total: CopyCount = { copied: 0, copiedBytes: 0 };
  try {
    const list = [...chunks];
    for (let i = 0; i < list.length; i += COPY_BATCH) {
      signal?.throwIfAborted();
      const r = await pool.copyChunks(dpLibraryDir, list.slice(i, i + COPY_BATCH));
      total.copied += r.copied;
      total.copiedBytes += r.copiedBytes;
    }
  } finally {
    await pool.close();
  }
  signal?.throwIfAborted();
  return total;
}

/** Writes the version's manifest into the DP library; only once its chunks are flushed. */
export async function commitLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex): Promise<void> {
  await copyManifest(await openLibrary(siteLibraryDir), await openLibrary(dpLibraryDir), id);
}
