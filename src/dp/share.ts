import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, readdir, readlink, rename, rm, symlink, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { finishingOps, writeTree } from '../content/extract.js';
import { flushFileSystem, loadManifest } from '../content/library.js';
import { ChunkPool, type CopyInto } from '../content/pool.js';
import type { TreeOp } from '../content/tree-ops.js';
import type { FileEntry, Manifest, Sha256Hex } from '../content/types.js';
import { SitecastError, ioError } from '../errors.js';
import { syncDirectory, writeFileAtomic } from '../fs/atomic.js';
import { type DpPaths, isInstallerName, isInstallerTempName, markerPath, sharePath, versionName } from './layout.js';
import { listFolder } from '../fs/list.js';

/**
 * A share `<dp>/SMSPKG/<PKGID>` must change from one version to the next in
 * one step: a client reading it sees the old version or the new one, never a
 * mix and never a missing file. A folder cannot be replaced atomically
 * (rename(2) onto a non-empty folder fails, and moving the old one away first
 * leaves a moment with no share at all). A symbolic link can: rename(2) of a
 * new link over the old one swaps what the name points to in one step.
 *
 * So `<PKGID>` is a link to a version folder `.<PKGID>.v<N>`. A new version is
 * built complete beside it, flushed, recorded, then the link is swapped. The
 * old folder is removed after a grace period, so a reader that resolved the
 * old link a moment before the swap still finds its files.
 */
const markerSchema = z.strictObject({
  format: z.literal(1),
  packageId: z.string(),
  sourceVersion: z.number().int().min(1),
  manifest: z.string().regex(/^[0-9a-f]{64}$/),
});
type Marker = z.infer<typeof markerSchema>;

export interface LiveShare {
  /** Folder name the link points to. */
  version: string;
  marker: Marker;
}

/** What the share of a package currently holds, or undefined (no link, or a link without its record). */
export async function readLiveShare(dp: DpPaths, packageId: string): Promise<LiveShare | undefined> {
  let target: string;
  try {
    target = await readlink(sharePath(dp, packageId));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EINVAL') return undefined;
    throw ioError(`cannot read the share link of ${packageId}`, err);
  }
  if (target.includes('/') || !isInstallerName(packageId, target)) return undefined;
  try {
    const marker = markerSchema.parse(JSON.parse(await readFile(markerPath(dp, target), 'utf8')));
    if (marker.packageId !== packageId) return undefined;
    return { version: target, marker };
  } catch {
    return undefined;
  }
}

/**
 * The manifests the version records in SMSPKG name: every package's live
 * version and any replaced version still in its grace period (its record is
 * removed with its folder). A DP library keeps these and may drop the rest.
 */
export async function recordedManifests(dp: DpPaths): Promise<Sha256Hex[]> {
  const found = new Set<Sha256Hex>();
  for (const name of await listFolder(dp.smspkg)) {
    if (!name.startsWith('.') || !name.endsWith('.json')) continue;
    try {
      found.add(markerSchema.parse(JSON.parse(await readFile(join(dp.smspkg, name), 'utf8'))).manifest);
    } catch {
      // Not a record (or one half written): it names nothing.
    }
  }
  return [...found];
}

export interface ShareOptions {
  dp: DpPaths;
  packageId: string;
  sourceVersion: number;
  manifestId: Sha256Hex;
  /** The version's manifest. */
  manifest: Manifest;
  /** The library the share's files are written from (default: the DP's own library). */
  chunksFrom?: string;
  /** Every chunk read for the share is also stored here when missing (a DP install fills its library in the same pass). */
  copyInto?: CopyInto;
  /**
   * Runs once the new version's folder is complete and before the flush,
   * with the files hard-linked from the live version (their chunks were not
   * read): a DP install makes sure its library holds those chunks too.
   */
  beforeFlush?: (linked: FileEntry[]) => Promise<void>;
  /** How long the replaced version stays readable after the switch (default 1000 ms). */
  graceMs?: number;
  signal?: AbortSignal;
  /** Build a new copy even when this version is live, every file written from chunks (a redistribution). */
  rebuild?: boolean;
  /**
   * Runs after the flush that makes the new version durable and before it
   * is recorded and switched in (a DP install writes its library's manifest
   * here: its chunks went to disk with the same flush).
   */
  afterFlush?: () => Promise<void>;
}

export interface ShareResult {
  changed: boolean;
  /** An earlier version was live and has been replaced (its chunks may now be garbage in the DP library). */
  replaced: boolean;
  /** Files written from chunks (new or changed). */
  written: number;
  /** Files hard-linked from the previous version (unchanged). */
  linked: number;
  /** Chunks stored into `copyInto` while the files were written. */
  copied: number;
  copiedBytes: number;
}

function sameFile(a: FileEntry, b: FileEntry): boolean {
  return a.hash === b.hash && a.mode === b.mode && a.size === b.size;
}

/** Installs one version as the share of a package on a DP; does nothing if it is already live. */
export async function installShare(options: ShareOptions): Promise<ShareResult> {
  const { dp, packageId, sourceVersion, manifestId, manifest } = options;
  await mkdir(dp.smspkg, { recursive: true }).catch((err: unknown) => {
    throw ioError(`cannot create ${dp.smspkg}`, err);
  });
  const live = await readLiveShare(dp, packageId);
  if (options.rebuild !== true && live !== undefined && live.marker.sourceVersion === sourceVersion && live.marker.manifest === manifestId) {
    // Already switched (perhaps just before a crash): only what the crash left behind remains to remove.
    await removeStale(dp, packageId, live.version);
    return { changed: false, replaced: false, written: 0, linked: 0, copied: 0, copiedBytes: 0 };
  }
  if (live !== undefined && live.marker.sourceVersion > sourceVersion) {
    throw new SitecastError('SITECAST_E_ROLLBACK', `${packageId} on ${dp.root} holds source version ${live.marker.sourceVersion}; refusing to install the older ${sourceVersion}`);
  }
  // Leftovers of an interrupted install (or a version whose grace period a restart cut short).
  await removeStale(dp, packageId, live?.version);
  let name = versionName(packageId, sourceVersion);
  if (name === live?.version) name = versionName(packageId, sourceVersion, randomBytes(3).toString('hex'));
  const build = join(dp.smspkg, name);
  const liveManifest = live === undefined ? undefined : await loadLiveManifest(dp, live);
  let result: BuildResult;
  try {
    await mkdir(build).catch((err: unknown) => {
      throw ioError(`cannot create ${build}`, err);
    });
    // A rebuild trusts nothing of the live copy: no file is linked from it.
    const previous = live === undefined || options.rebuild === true ? undefined : { dir: join(dp.smspkg, live.version), manifest: liveManifest };
    result = await buildVersion({ build, library: options.chunksFrom ?? dp.library, copyInto: options.copyInto, manifest, previous, signal: options.signal });
    await options.beforeFlush?.(result.linkedFiles);
    // Everything of the new version durable before anything points at it.
    await flushFileSystem(dp.root);
    await options.afterFlush?.();
    const marker: Marker = { format: 1, packageId, sourceVersion, manifest: manifestId };
    await writeFileAtomic(markerPath(dp, name), `${JSON.stringify(marker)}\n`);
  } catch (err) {
    await rm(build, { recursive: true, force: true }).catch(() => undefined);
    throw err;
  }
  await switchLink(dp, packageId, name);
  if (live !== undefined) {
    // The new version is live now: the old one goes after a grace period for
    // readers still inside it, in the background, so "installed" is not held
    // back by it. A restart's removeStale finishes the job if this is cut short.
    const old = live.version;
    const retirement = (async () => {
      if (options.signal?.aborted !== true) await sleep(options.graceMs ?? 1000, undefined, { signal: options.signal }).catch(() => undefined);
      if (options.signal?.aborted !== true) await retire(dp, old);
    })().catch(() => undefined);
    retirements.add(retirement);
    void retirement.finally(() => retirements.delete(retirement));
  }
  return { changed: true, replaced: live !== undefined, written: result.written, linked: result.linkedFiles.length, copied: result.copied, copiedBytes: result.copiedBytes };
}

const retirements = new Set<Promise<void>>();

/** Waits for old share versions still being retired (a component's close() calls this). */
export async function retirementsSettled(): Promise<void> {
  await Promise.allSettled([...retirements]);
}

async function loadLiveManifest(dp: DpPaths, live: LiveShare): Promise<Manifest | undefined> {
  try {
    return await loadManifest({ dir: dp.library }, live.marker.manifest);
  } catch {
    // Without the old manifest nothing is reused: every file is written from chunks.
    return undefined;
  }
}

interface BuildJob {
  build: string;
  library: string;
  copyInto: CopyInto | undefined;
  manifest: Manifest;
  previous: { dir: string; manifest: Manifest | undefined } | undefined;
  signal: AbortSignal | undefined;
}

interface BuildResult {
  written: number;
  linkedFiles: FileEntry[];
  copied: number;
  copiedBytes: number;
}

async function buildVersion(job: BuildJob): Promise<BuildResult> {
  const { build, manifest, previous, signal } = job;
  const old = new Map<string, FileEntry>();
  for (const e of previous?.manifest?.entries ?? []) if (e.type === 'file') old.set(e.path, e);
  const pool = new ChunkPool(job.library);
  try {
    // Folders first, writable while the tree is filled; their modes are set
    // last. Folders, links, modes and hard links are made by a worker (see runTreeOps).
    await pool.treeOps(manifest.entries.flatMap((e): TreeOp[] => (e.type === 'dir' ? [{ op: 'mkdir', path: join(build, e.path), name: e.path, mode: 0o700 }] : [])));
    signal?.throwIfAborted();
    // Unchanged files (same path, hash, mode and size) are hard links to the live version's copy.
    const candidates: FileEntry[] = [];
    const files: FileEntry[] = [];
    for (const e of manifest.entries) {
      if (e.type !== 'file') continue;
      const before = old.get(e.path);
      if (previous !== undefined && before !== undefined && sameFile(before, e)) candidates.push(e);
      else files.push(e);
    }
    const results = previous === undefined ? [] : await pool.treeOps(candidates.map((e) => ({ op: 'linkIfSame', path: join(build, e.path), name: e.path, from: join(previous.dir, e.path), size: e.size })));
    const linked = candidates.filter((_, i) => results[i] === true);
    const toWrite = [...files, ...candidates.filter((_, i) => results[i] !== true)];
    const copy = { copied: 0, copiedBytes: 0 };
    if (toWrite.length > 0) {
      // Only the new and changed files: every chunk and every file hash is verified as it is written.
      const wrote = await writeTree(pool, { format: 1, entries: toWrite }, build, {
        ...(signal === undefined ? {} : { signal }),
        ...(job.copyInto === undefined ? {} : { copyInto: job.copyInto }),
      });
      copy.copied = wrote.copied;
      copy.copiedBytes = wrote.copiedBytes;
    }
    await pool.treeOps(finishingOps(manifest, build));
    await chmod(build, 0o755);
    return { written: toWrite.length, linkedFiles: linked, ...copy };
  } finally {
    await pool.close();
  }
}

/** Points `<PKGID>` at a version folder in one rename, and makes the new name durable. */
async function switchLink(dp: DpPaths, packageId: string, version: string): Promise<void> {
  const tmp = join(dp.smspkg, `.${packageId}.link-${randomBytes(4).toString('hex')}`);
  try {
    await symlink(version, tmp);
    await rename(tmp, sharePath(dp, packageId));
    await syncDirectory(dp.smspkg);
  } catch (err) {
    await unlink(tmp).catch(() => undefined);
    throw ioError(`cannot switch the share of ${packageId} to ${version}`, err);
  }
}

async function retire(dp: DpPaths, version: string): Promise<void> {
  await rm(join(dp.smspkg, version), { recursive: true, force: true }).catch(() => undefined);
  await rm(markerPath(dp, version), { force: true }).catch(() => undefined);
}

/**
 * Takes a package off a DP: the share link goes first (a new reader finds
 * nothing), then, after the grace period for readers already inside it, every
 * version folder and record of the package. True when there was a share.
 */
export async function removeShare(dp: DpPaths, packageId: string, options: { graceMs?: number; signal?: AbortSignal } = {}): Promise<boolean> {
  let had = true;
  try {
    await unlink(sharePath(dp, packageId));
    await syncDirectory(dp.smspkg);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot remove the share of ${packageId} from ${dp.root}`, err);
    had = false;
  }
  if (had && (options.graceMs ?? 1000) > 0) await sleep(options.graceMs ?? 1000, undefined, { signal: options.signal }).catch(() => undefined);
  options.signal?.throwIfAborted();
  await removeStale(dp, packageId, undefined);
  return had;
}

/**
 * Removes every installer folder, record, temporary link and half-written
 * record of a package except the live version and its record.
 */
export async function removeStale(dp: DpPaths, packageId: string, keep: string | undefined): Promise<void> {
  let names: string[];
  try {
    names = await readdir(dp.smspkg);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`cannot list ${dp.smspkg}`, err);
  }
  for (const name of names) {
    if (!isInstallerName(packageId, name) && !isInstallerTempName(packageId, name)) continue;
    if (keep !== undefined && (name === keep || name === `${keep}.json`)) continue;
    await rm(join(dp.smspkg, name), { recursive: true, force: true }).catch((err: unknown) => {
      throw ioError(`cannot remove ${join(dp.smspkg, name)}`, err);
    });
  }
}
