import { stat } from 'node:fs/promises';
import { ingestTree } from '../../content/ingest.js';
import { hasManifest } from '../../content/library.js';
import { packManifest } from '../../content/pack.js';
import {
  addStatusMessage,
  clearRefreshRequest,
  getPackage,
  deleteDpStatus,
  getPackageStatus,
  getTargets,
  listDps,
  listRefreshRequests,
  setDpStatus,
  setPackageManifest,
  setSourceProblem,
  type Dp,
  type DpStatus,
  type Package,
} from '../../db/index.js';
import { SitecastError, isSitecastError } from '../../errors.js';
import { dropFile } from '../../inbox/index.js';
import { installOnDp, isInstalled, removeFromDp } from '../../dp/install.js';
import type { SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';
import { packageIcon } from './icon.js';
import { buildInstructions, pkgArchivePath } from './instructions.js';
import { Semaphore, backoffMs } from './limit.js';
import { type PackageState, previousOf, readState, writeState } from './state.js';
import { forEachBounded } from '../../content/concurrency.js';
import { isReceived, receivedState } from './received.js';
import { requestReplication } from './replicate.js';
import { childToward, getSent, listSiteNodes } from '../../db/hierarchy.js';

export interface DistributionSettings {
  /** DPs of one package installed at once. */
  dpConcurrency: number;
  retryInitialMs: number;
  retryMaxMs: number;
  /** How long a replaced share version stays readable. */
  graceMs: number;
}

export interface PackageJob {
  ctx: SiteContext;
  log: ComponentLog;
  settings: DistributionSettings;
  /** Ingest is CPU-bound and already spreads over every core: one at a time. */
  ingestLimit: Semaphore;
  signal: AbortSignal;
  /** Told when the package's current version replaced an older one in the site library (that one may now be collected). */
  onVersionReplaced?: () => void;
}

export type PackageOutcome = 'done' | 'failed' | 'retry';

/** The error the handler throws so the inbox keeps the wake-up file and tries again after a back-off. */
export function retryError(packageId: string, dps: string[]): SitecastError {
  return new SitecastError('SITECAST_E_IO', `${packageId}: ${dps.length} DP(s) not yet installed (${dps.join(', ')}); will retry`);
}

/**
 * Why ingest failed because of the package's source folder (missing,
 * unreadable, holding what a package cannot), as opposed to the site's own
 * library (full disk): the first fails the package, the second is retried.
 */
function sourceProblem(err: unknown, source: string): string | undefined {
  if (!isSitecastError(err)) return undefined;
  if (err.code === 'SITECAST_E_SPECIAL_FILE') return err.message;
  if (err.code === 'SITECAST_E_USAGE' && err.message.includes(source)) return err.message;
  if (err.code === 'SITECAST_E_NOT_FOUND' && err.message.startsWith('source folder')) return err.message;
  const readsSource = [`cannot read source folder ${source}`, `cannot read ${source}`, `cannot list ${source}`].some((p) => err.message.startsWith(p));
  if (err.code === 'SITECAST_E_IO' && readsSource) return err.message;
  return undefined;
}

function describe(err: unknown): string {
  if (isSitecastError(err)) return `${err.code}: ${err.message}`;
  return err instanceof Error ? err.message : String(err);
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/**
 * Distributes one package within this site, idempotently: ingest the source
 * when its version is new, write the compressed package, install on every
 * targeted DP of this site, write the instruction files. Returns 'retry' when
 * a DP could not be written (the caller keeps the wake-up file).
 */
export async function distributePackage(job: PackageJob, packageId: string): Promise<PackageOutcome> {
  const { ctx, log } = job;
  const pkg = await getPackage(ctx.db, packageId);
  if (pkg === undefined) {
    // Packages are never deleted: a wake-up file for one this site does not know was not written by its database monitor.
    throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', `it names package ${packageId}, which does not exist at this site`, {
      hint: 'wake-up files are written by the database monitor for packages of this site',
    });
  }
  const targets = (await getTargets(ctx.db, packageId)).filter((t) => t.site === ctx.siteCode);
  const dps = new Map((await listDps(ctx.db, { site: ctx.siteCode })).map((d) => [d.name, d]));
  const local = targets.map((t) => dps.get(t.dp)).filter((d): d is Dp => d !== undefined);

  const state = await ensureIngested(job, pkg, local);
  if (state === undefined) return 'failed';
  signalCheck(job);
  // The package archive is written while the DPs are installed (neither needs the other); the package is done when both are.
  const packing = (async () => {
    if (state.packed && (await exists(pkgArchivePath(ctx.paths.smspkg, packageId)))) return;
    const packed = await packManifest(ctx.paths.library, state.manifest, pkgArchivePath(ctx.paths.smspkg, packageId));
    state.packed = true;
    await writeState(ctx.paths.distmgrState, state);
    log.info(`${packageId}: smspkg/${packageId}.pkg written (${packed.bytes} bytes, ${packed.chunks} chunks)`);
  })();
  packing.catch(() => undefined); // observed below, whichever way this goes
  try {
    return await installAndPublish(job, pkg, state, local, packing);
  } catch (err) {
    // Never left running; the first failure is the one reported.
    await packing.catch(() => undefined);
    throw err;
  }
}

/** Installs on the local DPs while `packing` runs, then (packing done: one writer of the state at a time) the instruction files. */
async function installAndPublish(job: PackageJob, pkg: Package, state: PackageState, local: Dp[], packing: Promise<void>): Promise<PackageOutcome> {
  const { ctx, log } = job;
  const packageId = pkg.id;
  await requestReplication(ctx, log, pkg);

  const statuses = new Map((await getPackageStatus(ctx.db, packageId)).filter((s) => s.site === ctx.siteCode).map((s) => [s.dp, s]));
  const refresh = await listRefreshRequests(ctx.db, packageId, ctx.siteCode);
  for (const [dp, requestedAt] of refresh) {
    // Asked for a DP that is no longer a target of the package: nothing to copy.
    if (!local.some((d) => d.name === dp)) await clearRefreshRequest(ctx.db, { packageId, site: ctx.siteCode, dp }, requestedAt);
  }
  const waiting: string[] = [];
  await forEachBounded(local, job.settings.dpConcurrency, async (dp) => {
    const ok = await installOne(job, pkg, state, dp, statuses.get(dp.name), refresh.get(dp.name));
    if (!ok) waiting.push(dp.name);
  });
  await packing;
  signalCheck(job);

  const after = new Map((await getPackageStatus(ctx.db, packageId)).map((s) => [`${s.site}/${s.dp}`, s]));
  const holders = local.filter((dp) => {
    const s = after.get(`${dp.site}/${dp.name}`);
    return s?.state === 'installed' && s.sourceVersion === pkg.sourceVersion;
  });
  const base = ctx.baseUrl() ?? `http://${ctx.config.listen.host}:${ctx.config.listen.port}`;
  const icon = await packageIcon(ctx.paths.library, pkg, state.manifest);
  const instructions = buildInstructions(pkg, state.manifest, holders, { baseUrl: base, icon: icon.data });
  if (instructions.hash !== state.instructions) {
    if (icon.problem !== undefined) {
      log.warn(`${packageId}: ${icon.problem}`);
      await addStatusMessage(ctx.db, { severity: 'warning', component: 'distmgr', site: ctx.siteCode, packageId, text: `${packageId}: ${icon.problem}`.slice(0, 8000) });
    }
    for (const f of instructions.files) await dropFile(ctx.paths.pkginfo, f.name, f.data);
    state.instructions = instructions.hash;
    await writeState(ctx.paths.distmgrState, state);
    ctx.wake('inboxmgr');
    log.info(`${packageId}: ${instructions.files.map((f) => f.name).join(', ')} written to pkginfo.box (${holders.length} DP location(s))`);
  }
  // DPs of this site the package no longer targets (undistribute): taken off
  // them once the .NAL no longer names them.
  const untargeted = [...statuses.keys()].filter((name) => !local.some((d) => d.name === name));
  if (untargeted.length > 0) {
    const paths = new Map((await listDps(ctx.db, { site: ctx.siteCode })).map((d) => [d.name, d.path]));
    for (const name of untargeted) {
      if (!(await takeOff(job, packageId, name, paths.get(name)))) waiting.push(name);
    }
  }
  await forgetRemoteUntargeted(job, packageId, [...after.values()]);
  return waiting.length > 0 ? 'retry' : 'done';
}

/**
 * DPs of sites below this one that the package no longer targets, toward a
 * child that was never sent the package (or was sent its withdrawal): this
 * site stops showing them. Toward a child that was sent it, the Scheduler
 * forgets the row when it sends the new definition or the withdrawal: should
 * the DP be targeted again before then, nothing is sent, the child's row does
 * not change, and the one here is the only copy of it.
 */
async function forgetRemoteUntargeted(job: PackageJob, packageId: string, statuses: readonly DpStatus[]): Promise<void> {
  const { ctx, log } = job;
  const targeted = new Set((await getTargets(ctx.db, packageId)).map((t) => `${t.site}/${t.dp}`));
  const rows = statuses.filter((s) => s.site !== ctx.siteCode && !targeted.has(`${s.site}/${s.dp}`));
  if (rows.length === 0) return;
  const sites = await listSiteNodes(ctx.db);
  for (const s of rows) {
    const child = childToward(sites, ctx.siteCode, s.site);
    if (child !== undefined && (await getSent(ctx.db, child, packageId)) !== undefined) continue;
    await deleteDpStatus(ctx.db, { packageId, site: s.site, dp: s.dp });
    log.info(`${packageId}: no longer targets ${s.site}/${s.dp}; its site takes it off`);
  }
}

/** Removes a package's share and chunks from a DP it no longer targets, then its status row; false to retry. */
async function takeOff(job: PackageJob, packageId: string, dpName: string, dpPath: string | undefined): Promise<boolean> {
  const { ctx, log } = job;
  try {
    const r = dpPath === undefined ? undefined : await removeFromDp({ dpPath, packageId, graceMs: job.settings.graceMs, signal: job.signal });
    await deleteDpStatus(ctx.db, { packageId, site: ctx.siteCode, dp: dpName });
    const freed = r === undefined ? '' : ` (${r.hadShare ? 'share removed' : 'no share'}; ${r.pruned.chunks} chunks, ${r.pruned.bytes} bytes freed from its library)`;
    log.info(`${packageId}: taken off ${dpName}${freed}`);
    await addStatusMessage(ctx.db, { severity: 'info', component: 'distmgr', site: ctx.siteCode, packageId, text: `${packageId} taken off DP ${dpName}${freed}` });
    return true;
  } catch (err) {
    if (job.signal.aborted) throw err;
    log.warn(`${packageId}: cannot take it off ${dpName}: ${describe(err)}; next attempt with the package's next wake-up`);
    return false;
  }
}

function signalCheck(job: PackageJob): void {
  job.signal.throwIfAborted();
}

/** The ingested state of the package's current source version, or undefined when its source failed (DPs marked failed). */
async function ensureIngested(job: PackageJob, pkg: Package, local: Dp[]): Promise<PackageState | undefined> {
  const { ctx, log } = job;
  const known = await readState(ctx.paths.distmgrState, pkg.id);
  if (isReceived(pkg, ctx.siteCode)) {
    const state = await receivedState(ctx, pkg, known);
    if (known !== undefined && known.manifest !== state.manifest) job.onVersionReplaced?.();
    return state;
  }
  if (known !== undefined && known.sourceVersion === pkg.sourceVersion && (await hasManifest({ dir: ctx.paths.library }, known.manifest))) {
    return known;
  }
  log.info(`${pkg.id}: ingesting source version ${pkg.sourceVersion} from ${pkg.sourcePath}`);
  const started = Date.now();
  let result;
  try {
    result = await job.ingestLimit.run(() => ingestTree(ctx.paths.library, pkg.sourcePath, { signal: job.signal }));
  } catch (err) {
    const why = sourceProblem(err, pkg.sourcePath);
    if (why === undefined || job.signal.aborted) throw err;
    await failPackage(job, pkg, local, why);
    return undefined;
  }
  await setPackageManifest(ctx.db, pkg.id, result.manifest);
  const state: PackageState = {
    format: 1,
    packageId: pkg.id,
    sourceVersion: pkg.sourceVersion,
    manifest: result.manifest,
    packed: false,
    instructions: known?.instructions ?? null,
    previous: previousOf(known, result.manifest),
  };
  await writeState(ctx.paths.distmgrState, state);
  if (known !== undefined && known.manifest !== state.manifest) job.onVersionReplaced?.();
  log.info(
    `${pkg.id}: source version ${pkg.sourceVersion} is manifest ${result.manifest} (${result.files} files, ${result.bytes} bytes, ${result.newBytes} new compressed bytes, ${Date.now() - started} ms)`,
  );
  return state;
}

async function failPackage(job: PackageJob, pkg: Package, local: Dp[], why: string): Promise<void> {
  const { ctx, log } = job;
  log.error(`${pkg.id}: cannot use the source folder: ${why}`);
  await setSourceProblem(ctx.db, pkg.id, pkg.sourceVersion, why);
  for (const dp of local) {
    await setDpStatus(ctx.db, { packageId: pkg.id, site: dp.site, dp: dp.name, state: 'failed', nextAttempt: null, lastMessage: `source folder: ${why}`.slice(0, 8000) });
  }
  const where = local.length === 0 ? 'no DP of this site is targeted' : `not installed on ${local.map((d) => d.name).join(', ')}`;
  await addStatusMessage(ctx.db, {
    severity: 'error',
    component: 'distmgr',
    site: ctx.siteCode,
    packageId: pkg.id,
    text: `${pkg.id} source version ${pkg.sourceVersion} failed: ${why}; ${where}. Fix the source folder and update the package.`.slice(0, 8000),
  });
}

/**
 * Installs on one DP and records the outcome; false when the DP must be
 * retried. `refreshRequested` (the time of an outstanding redistribution
 * request) makes it copy the version again even when the DP holds it.
 */
async function installOne(job: PackageJob, pkg: Package, state: PackageState, dp: Dp, status: DpStatus | undefined, refreshRequested?: string): Promise<boolean> {
  const { ctx, log } = job;
  const key = { packageId: pkg.id, site: dp.site, dp: dp.name };
  const refresh = refreshRequested !== undefined;
  if (!refresh && status?.state === 'installed' && status.sourceVersion === pkg.sourceVersion && (await isInstalled(dp.path, pkg.id, pkg.sourceVersion, state.manifest))) {
    return true;
  }
  if (status === undefined || status.state === 'installed' || status.state === 'failed') {
    await setDpStatus(ctx.db, { ...key, state: 'pending', lastMessage: `${refresh ? 'redistributing' : 'installing'} source version ${pkg.sourceVersion}` });
  }
  try {
    const r = await installOnDp({
      ...(refresh ? { refresh: true } : {}),
      siteLibrary: ctx.paths.library,
      dpPath: dp.path,
      packageId: pkg.id,
      sourceVersion: pkg.sourceVersion,
      manifestId: state.manifest,
      graceMs: job.settings.graceMs,
      signal: job.signal,
      onPruned: (outcome) => {
        if ('error' in outcome) log.warn(`DP ${dp.name}: its library could not be pruned after ${pkg.id} source version ${pkg.sourceVersion}: ${outcome.error}`);
        else if (outcome.pruned.manifests > 0) log.info(`DP ${dp.name}: ${outcome.pruned.manifests} older versions (${outcome.pruned.chunks} chunks, ${outcome.pruned.bytes} bytes) pruned from its library`);
      },
    });
    const detail = `${r.filesWritten} files written, ${r.filesLinked} unchanged files linked, ${r.chunksCopied} chunks (${r.bytesCopied} bytes) copied`;
    const done = refresh ? 'redistributed' : 'installed';
    await setDpStatus(ctx.db, { ...key, state: 'installed', sourceVersion: pkg.sourceVersion, retryCount: 0, nextAttempt: null, lastMessage: `source version ${pkg.sourceVersion} ${done}` });
    if (refreshRequested !== undefined) await clearRefreshRequest(ctx.db, key, refreshRequested);
    log.info(`${pkg.id}: source version ${pkg.sourceVersion} ${done} on ${dp.name} (${detail})`);
    await addStatusMessage(ctx.db, { severity: 'info', component: 'distmgr', site: ctx.siteCode, packageId: pkg.id, text: `${pkg.id} source version ${pkg.sourceVersion} ${done} on DP ${dp.name} (${detail})` });
    return true;
  } catch (err) {
    if (job.signal.aborted) throw err;
    if (isSitecastError(err, 'SITECAST_E_ROLLBACK')) {
      await setDpStatus(ctx.db, { ...key, state: 'failed', nextAttempt: null, lastMessage: err.message });
      await addStatusMessage(ctx.db, { severity: 'error', component: 'distmgr', site: ctx.siteCode, packageId: pkg.id, text: err.message });
      return true;
    }
    const retryCount = (status?.state === 'retrying' ? status.retryCount : 0) + 1;
    const next = new Date(Date.now() + backoffMs(retryCount, job.settings.retryInitialMs, job.settings.retryMaxMs)).toISOString();
    const why = describe(err);
    await setDpStatus(ctx.db, { ...key, state: 'retrying', retryCount, nextAttempt: next, lastMessage: why.slice(0, 8000) });
    log.warn(`${pkg.id}: cannot install on ${dp.name} (attempt ${retryCount}): ${why}; next attempt at ${next}`);
    if (retryCount === 1) {
      await addStatusMessage(ctx.db, {
        severity: 'warning',
        component: 'distmgr',
        site: ctx.siteCode,
        packageId: pkg.id,
        text: `${pkg.id} cannot be installed on DP ${dp.name}: ${why}; retrying with back-off`.slice(0, 8000),
      });
    }
    return false;
  }
}
