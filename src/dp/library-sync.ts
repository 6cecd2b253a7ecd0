import { link, mkdir, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { forEachBounded } from '../content/concurrency.js';
import { flushFileSystem, hasManifest, loadManifest, manifestPath, openLibrary } from '../content/library.js';
import { chunkPath } from '../content/store.js';
import type { Manifest, Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';
import { writeContentAddressed, writeFileAtomic } from '../fs/atomic.js';

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

/**
 * Brings one version into a DP's content library: every chunk the DP lacks is
 * hard-linked from the site library when both are on one file system, else
 * copied (as the compressed frame, not recompressed),
 * the file system is flushed once, and the manifest is written last. A DP
 * library therefore never names a chunk it does not hold, whatever moment a
 * crash or a full disk interrupts the copy.
 *
 * A chunk already there is kept if its size matches the site's copy; a
 * truncated one (a power cut before the flush) is replaced. Full
 * re-verification is content validation's job, not every install's.
 */
export async function syncLibrary(siteLibraryDir: string, dpLibraryDir: string, id: Sha256Hex, signal?: AbortSignal): Promise<SyncResult> {
  const site = await openLibrary(siteLibraryDir);
  const manifest = await loadManifest(site, id);
  const dp = await openLibrary(dpLibraryDir, { create: true });
  if (await hasManifest(dp, id)) return { manifest, copied: 0, copiedBytes: 0 };
  const chunks = new Set<string>();
  for (const e of manifest.entries) if (e.type === 'file') for (const c of e.chunks) chunks.add(c.hash);
  let copied = 0;
  let copiedBytes = 0;
  await forEachBounded(chunks, 8, async (hash) => {
    signal?.throwIfAborted();
    const target = chunkPath(dp.dir, hash);
    const source = chunkPath(site.dir, hash);
    const [have, want] = await Promise.all([sizeOf(target), sizeOf(source)]);
    if (have !== undefined && have === want) return;
    if (have !== undefined) await unlink(target).catch(() => undefined);
    // Chunk files are immutable (mode 0444, named by their hash): on the same
    // file system a hard link shares one copy; across file systems we copy.
    if (await linkChunk(source, target, dp.dir, hash)) {
      copied += 1;
      copiedBytes += want ?? 0;
      return;
    }
    let frame: Buffer;
    try {
      frame = await readFile(source);
    } catch (err) {
      throw ioError(`cannot read chunk ${hash} from the site library`, err);
    }
    await writeContentAddressed(target, frame, { durable: false, mode: 0o444 });
    copied += 1;
    copiedBytes += frame.length;
  });
  signal?.throwIfAborted();
  await flushFileSystem(dp.dir);
  let bytes: Buffer;
  try {
    bytes = await readFile(manifestPath(site, id));
  } catch (err) {
    throw ioError(`cannot read manifest ${id} from the site library`, err);
  }
  await writeFileAtomic(manifestPath(dp, id), bytes);
  return { manifest, copied, copiedBytes };
}

/** Links a site chunk into a DP library; false when they are on different file systems (or links are refused). */
async function linkChunk(source: string, target: string, dpDir: string, hash: string): Promise<boolean> {
  try {
    await mkdir(dirname(target), { recursive: true });
    await link(source, target);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') return true;
    if (code === 'EXDEV' || code === 'EPERM' || code === 'EMLINK' || code === 'ENOTSUP') return false;
    throw ioError(`cannot store chunk ${hash} in DP library ${dpDir}`, err);
  }
}
