import { copyManifest, hasManifest, loadManifest, openLibrary } from '../content/library.js';
import { ChunkPool } from '../content/pool.js';
import type { FileEntry, Manifest, Sha256Hex } from '../content/types.js';

/** Chunks per request to the worker that copies them (a stop is noticed between requests). */
const COPY_BATCH = 256;

export interface SyncResult {
  manifest: Manifest;
  /** Chunks copied because the DP library lacked them. */
  copied: number;
  copiedBytes: number;
}

/** Chunks brought into a DP library, not yet flushed, and the manifest not yet written ({@link commitLibrary} does both). */
export interface CopiedChunks extends SyncResult {
  /** True when the DP library already named this version (nothing to commit). */
  held: boolean;
}

/**
 * Copies every chunk of a version (with `only`, of those files) that the DP
 * library lacks from the site library, as the compressed frame; nothing is
 * flushed and no manifest written: the caller flushes, then calls
 * {@link commitLibrary}, so a DP library never names a chunk it does not
 * hold. A DP install copies most chunks while building its share (see
 * installOnDp); this covers the rest.
 *
 * A chunk already there is kept if its size matches the site's copy; a
 * truncated one (a power cut before the flush) is replaced. With `verify`,
 * every chunk is decompressed and hashed, and any that does not match is
 * copied again from the site.
 */
export async function copyChunks(
  siteLibraryDir: string,
  dpLibraryDir: string,
  id: Sha256Hex,
  signal?: AbortSignal,
  options: { verify?: boolean; only?: readonly FileEntry[] } = {},
): Promise<CopiedChunks> {
  const site = await openLibrary(siteLibraryDir);
  const manifest = await loadManifest(site, id);
  const dp = await openLibrary(dpLibraryDir, { create: true });
  if (options.verify !== true && (await hasManifest(dp, id))) return { manifest, copied: 0, copiedBytes: 0, held: true };
  const chunks = new Map<string, number>();
  for (const e of options.only ?? manifest.entries) if (e.type === 'file') for (const c of e.chunks) chunks.set(c.hash, c.size);
  // A worker copies (synchronous calls, a few per chunk; a DP folder on a slow share holds only that worker).
  const pool = new ChunkPool(site.dir);
  let copied = 0;
  let copiedBytes = 0;
  try {
    const list = [...chunks];
    for (let i = 0; i < list.length; i += COPY_BATCH) {
      signal?.throwIfAborted();
      const r = await pool.copyChunks(dp.dir, list.slice(i, i + COPY_BATCH), options.verify === true);
      copied += r.copied;
      copiedBytes += r.copiedBytes;
    }
  } finally {
    await pool.close();
  }
  signal?.throwIfAborted();
  return { manifest, copied, copiedBytes, held: false };
}

/** Writes the version's manifest into the DP library; only once its chunks are flushed. */
export async function commitLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex): Promise<void> {
  await copyManifest(await openLibrary(siteLibraryDir), await openLibrary(dpLibraryDir), id);
}
