import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { importArchive } from '../../content/import.js';
import { hasManifest } from '../../content/library.js';
import { addStatusMessage, getPackage } from '../../db/index.js';
import { clearWanted, recordWanted } from '../../db/hierarchy.js';
import { type OrderedBundle, newerBundle, storeReceivedPackage, withdrawReceivedPackage } from '../../db/received.js';
import { SitecastError, ioError, isSitecastError } from '../../errors.js';
import { type BundleHeader, type VerifiedBundle, extractBundleContent } from '../../formats/bundle.js';
import type { SiteContext } from '../../site/context.js';
import { usingSiteLibrary } from '../../site/library.js';
import type { ComponentLog } from '../../site/log.js';

type PackageHeader = Extract<BundleHeader, { kind: 'package' }>;

/**
 * Applies a verified package bundle: refuse an older version, import the
 * content (the content engine checks the archive, the manifest against its
 * id and every chunk), check it is the manifest the definition names, then
 * store the package under its original id with its targets. Content first,
 * database last: a crash in between imports again (idempotent) and a refused
 * bundle leaves the database as it was.
 */
export async function applyPackage(ctx: SiteContext, log: ComponentLog, bundle: VerifiedBundle, header: PackageHeader): Promise<void> {
  try {
    // Imported chunks are garbage to a collection until the database names their version.
    await usingSiteLibrary(ctx.paths, () => apply(ctx, log, bundle, header));
  } catch (err) {
    // A delta whose base this site lost, or holds damaged (a patch read a chunk that fails its hash), cannot
    // be applied; the whole version can. The bundle is refused as before, and the parent hears (status up)
    // that this version is wanted whole. A whole version that fails is not wanted again: no resend loop.
    const baseGone = isSitecastError(err, 'SITECAST_E_MISSING_BASE');
    const baseDamaged = header.content?.kind === 'delta' && isSitecastError(err, 'SITECAST_E_CORRUPT_CHUNK');
    if (baseGone || baseDamaged) {
      const def = header.package;
      await recordWanted(ctx.db, { packageId: def.id, sourceVersion: def.sourceVersion, manifest: def.manifest, since: new Date().toISOString() });
      log.warn(`${header.id}: ${def.id} source version ${def.sourceVersion} cannot be built here (its base is ${baseGone ? 'gone' : 'damaged'}); the parent will be asked for the whole version`);
      ctx.wake('statmgr');
    }
    throw err;
  }
}

async function apply(ctx: SiteContext, log: ComponentLog, bundle: VerifiedBundle, header: PackageHeader): Promise<void> {
  const def = header.package;
  const held = await getPackage(ctx.db, def.id);
  const stamp = { bundleId: header.id, created: header.created };
  // Definitions name the targets at and below the receiving site only: none left is a withdrawal.
  if (def.targets.length === 0) {
    await withdraw(ctx, log, header, held !== undefined);
    return;
  }
  if (held !== undefined && def.sourceVersion < held.sourceVersion) {
    throw new SitecastError('SITECAST_E_ROLLBACK', `package ${def.id}: this site holds source version ${held.sourceVersion}; refusing the older version ${def.sourceVersion}`);
  }
  const newer = await newerBundle(ctx.db, def.id, { ...stamp, sourceVersion: def.sourceVersion });
  if (newer !== undefined) {
    await skipped(ctx, log, header, newer);
    return;
  }
  if (!def.targets.every((t) => def.sites.some((s) => s.code === t.site) || t.site === ctx.siteCode)) {
    throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id}: a target names a site the bundle does not define`);
  }
  let how = 'definition only';
  if (header.content === null) {
    if (!(await hasManifest({ dir: ctx.paths.library }, def.manifest))) {
      throw new SitecastError('SITECAST_E_MISSING_BASE', `bundle ${header.id} carries no content and this site does not hold manifest ${def.manifest}`);
    }
  } else {
    if (bundle.contentBytes === 0) throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id} announces content but carries none`);
    const work = join(ctx.root, 'state', 'despooler');
    await mkdir(work, { recursive: true }).catch((err: unknown) => Promise.reject(ioError(`cannot create ${work}`, err)));
    const archive = join(work, `${header.id}.archive`);
    try {
      await extractBundleContent(bundle, archive);
      const result = await importArchive(ctx.paths.library, archive, { expect: header.content.kind });
      if (result.manifest !== def.manifest) {
        throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id}: its content is manifest ${result.manifest}, the definition names ${def.manifest}`);
      }
      how = `${result.kind} content, ${bundle.contentBytes} bytes, ${result.chunks} chunks, ${result.patches} patches`;
    } finally {
      await rm(archive, { force: true }).catch(() => undefined);
    }
  }
  const stored = await storeReceivedPackage(ctx.db, def, stamp);
  if (stored.superseded !== null) {
    await skipped(ctx, log, header, stored.superseded);
    return;
  }
  await clearWanted(ctx.db, def.id, def.sourceVersion);
  ctx.wake('dbmon');
  const targets = def.targets.map((t) => `${t.site}/${t.dp}`).join(', ');
  const text = `${def.id} source version ${def.sourceVersion} received from ${header.from} (${how}); targets ${targets}`;
  log.info(`${header.id}: ${text}${stored.created ? '; new package' : ''}`);
  await addStatusMessage(ctx.db, { severity: 'info', component: 'despooler', site: ctx.siteCode, packageId: def.id, text: text.slice(0, 8000) });
}

/** The parent withdrew the package from this site and all below it: its targets go, its content stays. */
async function withdraw(ctx: SiteContext, log: ComponentLog, header: PackageHeader, known: boolean): Promise<void> {
  const def = header.package;
  // Recorded even for a package never received here: the definition it followed, arriving late, is then older.
  const { removed, superseded } = await withdrawReceivedPackage(ctx.db, def, { bundleId: header.id, created: header.created });
  if (superseded !== null) {
    await skipped(ctx, log, header, superseded);
    return;
  }
  if (!known) {
    log.info(`${header.id}: ${def.id} withdrawn by ${header.from}; this site never received it: nothing to do`);
    return;
  }
  ctx.wake('dbmon');
  const text = `${def.id} withdrawn by ${header.from}: no DP at or below this site is targeted any more (${removed.length === 0 ? 'none was' : `${removed.join(', ')} taken off`}); its content stays in the library`;
  log.info(`${header.id}: ${text}`);
  await addStatusMessage(ctx.db, { severity: 'info', component: 'despooler', site: ctx.siteCode, packageId: def.id, text: text.slice(0, 8000) });
}

/**
 * A bundle older than one already applied for its package (held back by a
 * retry while the later one arrived, or carried by courier in another order):
 * applying it would undo the newer one, a withdrawal say. Nothing is written.
 */
async function skipped(ctx: SiteContext, log: ComponentLog, header: PackageHeader, newer: OrderedBundle): Promise<void> {
  const def = header.package;
  const text = `${def.id}: bundle ${header.id} (source version ${def.sourceVersion}, made ${header.created}) is older than bundle ${newer.bundleId} (source version ${newer.sourceVersion}, made ${newer.created}), already applied; skipped, nothing changed`;
  log.warn(text);
  await addStatusMessage(ctx.db, { severity: 'warning', component: 'despooler', site: ctx.siteCode, packageId: def.id, text: text.slice(0, 8000) });
}
