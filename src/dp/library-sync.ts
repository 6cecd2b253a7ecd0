import { chmod, copyFile, mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { forEachBounded } from '../content/concurrency.js';
import { copyManifest, flushFileSystem, hasManifest, loadManifest, openLibrary } from '../content/library.js';
import { ChunkCodec, chunkPath } from '../content/store.js';
import type { FileEntry, Manifest, Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';

export interface SyncResult {
  manifest: Manifest;
  /** Chunks copied because the DP library lacked them. */
  copied: number;
  copiedBytes: number;
}

async function sizeOf(path: string): Promise<number | undefined> {
  try {
    return (await stat(path)).size;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw ioError(`cannot inspect ${path}`, err);
  }
}

/** True when the chunk file decompresses to bytes of its size and SHA-256 (a redistribution's check). */
async function intact(codec: ChunkCodec, path: string, hash: string, size: number): Promise<boolean> {
  try {
    codec.decompressVerified(hash, await readFile(path), size);
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
 * Brings one version into a DP's content library: every chunk the DP lacks is
 * copied from the site library (as the compressed frame, not recompressed),
 * the file system is flushed once, and the manifest is written last. A DP
 * library therefore never names a chunk it does not hold, whatever moment a
 * crash or a full disk interrupts the copy.
 *
 * A chunk already there is kept if its size matches the site's copy; a
 * truncated one (a power cut before the flush) is replaced. Full
 * re-verification is content validation's job, not every install's; with
 * `verify` (a redistribution) every chunk of the version is decompressed and
 * hashed, and any that does not match is copied again from the site.
 */
export async function syncLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex, signal?: AbortSignal, options: { verify?: boolean } = {}): Promise<SyncResult> {
  const copied = await copyChunks(siteLibraryDir, dpLibraryDir, id, signal, options);
  if (!copied.held) {
    await flushFileSystem(dpLibraryDir);
    await commitLibrary(siteLibraryDir, dpLibraryDir, id);
  }
  return { manifest: copied.manifest, copied: copied.copied, copiedBytes: copied.copiedBytes };
}

/**
 * The first half of {@link syncLibrary}: the chunks, unflushed, and no
 * manifest; with `only`, just the chunks of those files (a DP install copies
 * the rest while building its share). The caller flushes, then calls
 * {@link commitLibrary}.
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
  await forEachBounded(chunks.keys(), 8, async (hash) => {
    signal?.throwIfAborted();
    const target = chunkPath(dp.dir, hash);
    const source = chunkPath(site.dir, hash);
    const [have, want] = await Promise.all([sizeOf(target), sizeOf(source)]);
    if (have !== undefined && have === want && (codec === undefined || (await intact(codec, target, hash, chunks.get(hash) ?? 0)))) return;
    if (have !== undefined) await unlink(target).catch(() => undefined);
    // A DP holds its own copy, never a link to the site's: a damaged file on
    // one must not damage the other. The kernel copies (copy_file_range).
    const tmp = `${target}.${process.pid}.${copied}.tmp`;
    try {
      const folder = dirname(target);
      if (!made.has(folder)) {
        await mkdir(folder, { recursive: true });
        made.add(folder);
      }
      await copyFile(source, tmp);
      await chmod(tmp, 0o444);
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      throw ioError(`cannot copy chunk ${hash} into DP library ${dp.dir}`, err);
    }
    copied += 1;
    copiedBytes += want ?? 0;
  });
  signal?.throwIfAborted();
  return { manifest, copied, copiedBytes, held: false };
}

/** Writes the version's manifest into the DP library; only once its chunks are flushed. */
export async function commitLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex): Promise<void> {
  await copyManifest(await openLibrary(siteLibraryDir), await openLibrary(dpLibraryDir), id);
}
