import { chmodSync, copyFileSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync } from 'node:fs';
import { dirname } from 'node:path';
import { copyManifest, hasManifest, loadManifest, openLibrary } from '../content/library.js';
import { ChunkCodec, chunkPath, chunkTmpName } from '../content/store.js';
import type { FileEntry, Manifest, Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';
import { Slices } from '../fs/slices.js';

export interface SyncResult {
  manifest: Manifest;
  /** Chunks copied because the DP library lacked them. */
  copied: number;
  copiedBytes: number;
}

function sizeOf(path: string): number | undefined {
  try {
    return statSync(path).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`cannot inspect ${path}`, err);
  }
}

/** True when the chunk file decompresses to bytes of its size and SHA-256 (a redistribution's check). */
function intact(codec: ChunkCodec, path: string, hash: string, size: number): boolean {
  try {
    codec.decompressVerified(hash, readFileSync(path), size);
    return true;
  } catch {
    return false;
  }
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
  let copied = 0;
  let copiedBytes = 0;
  const codec = options.verify === true ? new ChunkCodec() : undefined;
  /** Prefix folders known to exist (one mkdir each, not one per chunk). */
  const made = new Set<string>();
  // Synchronous calls in slices (see Slices): a few per chunk, thousands of chunks.
  const slices = new Slices();
  for (const [hash, size] of chunks) {
    signal?.throwIfAborted();
    await slices.tick();
    const target = chunkPath(dp.dir, hash);
    const source = chunkPath(site.dir, hash);
    const have = sizeOf(target);
    const want = sizeOf(source);
    if (have !== undefined && have === want && (codec === undefined || intact(codec, target, hash, size))) continue;
    // A DP holds its own copy, never a link to the site's: a damaged file on
    // one must not damage the other. The kernel copies (copy_file_range).
    const tmp = chunkTmpName(target);
    try {
      const folder = dirname(target);
      if (!made.has(folder)) {
        mkdirSync(folder, { recursive: true });
        made.add(folder);
      }
      copyFileSync(source, tmp);
      chmodSync(tmp, 0o444);
      renameSync(tmp, target);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created
      }
      throw ioError(`cannot copy chunk ${hash} into DP library ${dp.dir}`, err);
    }
    copied += 1;
    copiedBytes += want ?? 0;
  }
  signal?.throwIfAborted();
  return { manifest, copied, copiedBytes, held: false };
}

/** Writes the version's manifest into the DP library; only once its chunks are flushed. */
export async function commitLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex): Promise<void> {
  await copyManifest(await openLibrary(siteLibraryDir), await openLibrary(dpLibraryDir), id);
}
