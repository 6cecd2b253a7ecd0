import { mkdir, stat } from 'node:fs/promises';
import type { FileEntry, Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';
import { dpPaths } from './layout.js';
import { flushFileSystem, hasManifest, loadManifest, openLibrary } from '../content/library.js';
import { commitLibrary, copyChunks } from './library-sync.js';
import { installShare, readLiveShare } from './share.js';

export interface InstallOptions {
  siteLibrary: string;
  dpPath: string;
  packageId: string;
  sourceVersion: number;
  manifestId: Sha256Hex;
  graceMs?: number;
  signal?: AbortSignal;
  /**
   * A redistribution: every chunk in the DP library is re-checked (bad ones
   * copied again) and the share is rebuilt from chunks even when this version
   * is already live, without reusing any file of the live copy.
   */
  refresh?: boolean;
}

export interface InstallResult {
  changed: boolean;
  chunksCopied: number;
  bytesCopied: number;
  filesWritten: number;
  filesLinked: number;
}

/**
 * Installs one version of a package on a distribution point, in one pass
 * over its chunks: each is read from the site library, verified, stored into
 * the DP's content library if the DP lacks it, and written into the new share.
 * Then one flush, the library's manifest, and the share switched in
 * atomically. Safe to repeat after a failure or a crash at any point: the DP
 * library never names a chunk it does not hold, and only chunks that passed
 * their hash reach it.
 */
export async function installOnDp(options: InstallOptions): Promise<InstallResult> {
  const dp = dpPaths(options.dpPath);
  await ensureFolders([dp.root, dp.library, dp.smspkg]);
  const refresh = options.refresh === true;
  const manifest = await loadManifest(await openLibrary(options.siteLibrary), options.manifestId);
  // A DP library that already names this version holds all its chunks.
  const held = !refresh && (await hasManifest(await openLibrary(dp.library, { create: true }), options.manifestId));
  const copied = { chunks: 0, bytes: 0 };
  let committed = held;
  const commit = async (): Promise<void> => {
    if (committed) return;
    // A library on a file system of its own is not covered by the share's flush.
    if ((await stat(dp.library)).dev !== (await stat(dp.root)).dev) await flushFileSystem(dp.library);
    await commitLibrary(options.siteLibrary, dp.library, options.manifestId);
    committed = true;
  };
  /** Chunks of the files the share did not write (linked unchanged from the live version): the DP library must hold them too. */
  const copyRest = async (files: readonly FileEntry[]): Promise<void> => {
    if (committed || files.length === 0) return;
    const rest = await copyChunks(options.siteLibrary, dp.library, files, options.signal);
    copied.chunks += rest.copied;
    copied.bytes += rest.copiedBytes;
  };
  const share = await installShare({
    dp,
    packageId: options.packageId,
    sourceVersion: options.sourceVersion,
    manifestId: options.manifestId,
    manifest,
    chunksFrom: options.siteLibrary,
    ...(held ? {} : { copyInto: { library: dp.library, checkExisting: refresh } }),
    beforeFlush: copyRest,
    afterFlush: commit,
    ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(refresh ? { rebuild: true } : {}),
  });
  copied.chunks += share.copied;
  copied.bytes += share.copiedBytes;
  if (!committed) {
    // The share was already live at this version but the DP library does not
    // name it (its manifest lost or collected): bring every chunk back, then record it.
    const all = await copyChunks(options.siteLibrary, dp.library, manifest.entries, options.signal);
    copied.chunks += all.copied;
    copied.bytes += all.copiedBytes;
    await flushFileSystem(dp.library);
    await commit();
  }
  return {
    changed: share.changed || copied.chunks > 0,
    chunksCopied: copied.chunks,
    bytesCopied: copied.bytes,
    filesWritten: share.written,
    filesLinked: share.linked,
  };
}

/**
 * One level at a time, so a read-only or full file system is reported as
 * such (a recursive mkdir reports ENOENT for a parent it could not create).
 */
async function ensureFolders(dirs: string[]): Promise<void> {
  for (const dir of dirs) {
    try {
      await mkdir(dir, dir === dirs[0] ? { recursive: true } : {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create ${dir}`, err);
    }
  }
}

/** True when the DP's share is live at exactly this version and manifest (a cheap check: one link, one small file). */
export async function isInstalled(dpPath: string, packageId: string, sourceVersion: number, manifestId: Sha256Hex): Promise<boolean> {
  const live = await readLiveShare(dpPaths(dpPath), packageId).catch(() => undefined);
  return live !== undefined && live.marker.sourceVersion === sourceVersion && live.marker.manifest === manifestId;
}
