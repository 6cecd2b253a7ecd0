import { mkdir, stat } from 'node:fs/promises';
import type { Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';
import { dpPaths } from './layout.js';
import { BackgroundFlusher, flushFileSystem } from '../content/library.js';
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
 * Installs one version of a package on a distribution point: the chunks into
 * the DP's content library, the share built from them, one flush, the
 * library's manifest, then the share switched in atomically. Safe to repeat
 * after a failure or a crash at any point.
 */
export async function installOnDp(options: InstallOptions): Promise<InstallResult> {
  const dp = dpPaths(options.dpPath);
  await ensureFolders([dp.root, dp.library, dp.smspkg]);
  const sync = await copyChunks(options.siteLibrary, dp.library, options.manifestId, options.signal, { verify: options.refresh === true });
  // One flush for the chunks and the share built from them: the library's
  // manifest is written after it, so the DP library never names a chunk that
  // is not on disk. Write-back of the chunks starts while the share is built.
  const flusher = new BackgroundFlusher(dp.library);
  if (sync.copied > 0) flusher.kick();
  let committed = sync.held;
  const commit = async (): Promise<void> => {
    if (committed) return;
    // A library on a file system of its own is not covered by the share's flush.
    if ((await stat(dp.library)).dev !== (await stat(dp.root)).dev) await flushFileSystem(dp.library);
    await commitLibrary(options.siteLibrary, dp.library, options.manifestId);
    committed = true;
  };
  let share: Awaited<ReturnType<typeof installShare>>;
  try {
    share = await installShare({
      dp,
      packageId: options.packageId,
      sourceVersion: options.sourceVersion,
      manifestId: options.manifestId,
      manifest: sync.manifest,
      afterFlush: commit,
      ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
      ...(options.refresh === true ? { rebuild: true } : {}),
    });
  } finally {
    await flusher.idle();
  }
  if (!committed) {
    // The share was already live at this version: nothing flushed the chunks yet.
    await flushFileSystem(dp.library);
    await commit();
  }
  return {
    changed: share.changed || sync.copied > 0,
    chunksCopied: sync.copied,
    bytesCopied: sync.copiedBytes,
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
