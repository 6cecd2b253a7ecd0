import { mkdir, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { FileEntry, Sha256Hex } from '../content/types.js';
import { ioError } from '../errors.js';
import { type DpPaths, dpPaths } from './layout.js';
import { withLibrary } from '../content/library-lock.js';
import { gcLibrary } from '../content/gc.js';
import { flushFileSystem, hasManifest, loadManifest, openLibrary } from '../content/library.js';
import { commitLibrary, copyChunks } from './library-sync.js';
import { installShare, readLiveShare, recordedManifests, removeShare } from './share.js';

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
  /**
   * Told how the DP library's pruning went, when this install replaced an
   * earlier version (see pruneDpLibrary). Pruning runs after the install has
   * returned: it waits for the other installs on that DP to finish.
   */
  onPruned?: (outcome: PruneOutcome) => void;
}

export interface InstallResult {
  changed: boolean;
  chunksCopied: number;
  bytesCopied: number;
  filesWritten: number;
  filesLinked: number;
}

export interface PruneResult {
  chunks: number;
  bytes: number;
  manifests: number;
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
  const result = await withLibrary(dp.library, 'shared', () => install(dp, options));
  // A version was replaced: what only older versions used is garbage now.
  if (result.replaced) schedulePrune(options.dpPath, options.onPruned);
  return result.installed;
}

type PruneOutcome = { pruned: PruneResult } | { error: string };

/** Prunes scheduled or running, by DP library; one covers every install that finished before it reads the records. */
const prunes = new Map<string, Promise<PruneOutcome>>();

function schedulePrune(dpPath: string, onPruned: InstallOptions['onPruned']): void {
  const key = resolve(dpPaths(dpPath).library);
  let run = prunes.get(key);
  if (run === undefined) {
    const started = pruneDpLibrary(dpPath).then(
      (pruned): PruneOutcome => ({ pruned }),
      (err: unknown): PruneOutcome => ({ error: err instanceof Error ? err.message : String(err) }),
    );
    prunes.set(key, started);
    void started.then(() => {
      if (prunes.get(key) === started) prunes.delete(key);
    });
    run = started;
  }
  // A prune already waiting for the lock reads the records after this install wrote its own: it covers this one.
  if (onPruned !== undefined) {
    void run.then((outcome) => {
      try {
        onPruned(outcome);
      } catch {
        // A report that fails must not fail anything else.
      }
    });
  }
}

/** Waits for the DP library prunes scheduled by installs (a component's close() calls this). */
export async function prunesSettled(): Promise<void> {
  await Promise.allSettled([...prunes.values()]);
}

/**
 * Takes a package off a DP (its target was removed): the share and every
 * version of it, then the chunks no other package on that DP uses.
 */
export async function removeFromDp(options: { dpPath: string; packageId: string; graceMs?: number; signal?: AbortSignal }): Promise<{ hadShare: boolean; pruned: PruneResult }> {
  const dp = dpPaths(options.dpPath);
  const hadShare = await withLibrary(dp.library, 'shared', () =>
    removeShare(dp, options.packageId, {
      ...(options.graceMs === undefined ? {} : { graceMs: options.graceMs }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    }),
  );
  const pruned = existsSync(join(dp.library, 'library.json')) ? await pruneDpLibrary(options.dpPath) : { chunks: 0, bytes: 0, manifests: 0 };
  return { hadShare, pruned };
}

/**
 * Removes from a DP library every manifest and chunk that no version
 * recorded in its SMSPKG folder uses: the live version of each package, and a
 * replaced one still in its grace period (so the previous version goes at
 * the update after next). Runs alone on that library: installs wait for it
 * and it waits for them.
 */
export async function pruneDpLibrary(dpPath: string): Promise<PruneResult> {
  const dp = dpPaths(dpPath);
  return withLibrary(dp.library, 'exclusive', async () => {
    const lib = await openLibrary(dp.library);
    const recorded = await recordedManifests(dp);
    const keep: Sha256Hex[] = [];
    for (const id of recorded) if (await hasManifest(lib, id)) keep.push(id);
    // A recorded version whose manifest is missing: the library is not what the records say; leave it alone.
    if (keep.length < recorded.length) return { chunks: 0, bytes: 0, manifests: 0 };
    // Nothing recorded (the DP's last package was taken off it): everything goes.
    const r = await gcLibrary(dp.library, keep, { emptyKeepRemovesAll: true });
    return { chunks: r.removed, bytes: r.removedBytes, manifests: r.removedManifests };
  });
}

async function install(dp: DpPaths, options: InstallOptions): Promise<{ installed: InstallResult; replaced: boolean }> {
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
    installed: {
      changed: share.changed || copied.chunks > 0,
      chunksCopied: copied.chunks,
      bytesCopied: copied.bytes,
      filesWritten: share.written,
      filesLinked: share.linked,
    },
    replaced: share.replaced,
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
