import { hasManifest } from '../../content/library.js';
import type { Package } from '../../db/index.js';
import { SitecastError } from '../../errors.js';
import type { SiteContext } from '../../site/context.js';
import { type PackageState, previousOf, writeState } from './state.js';

/** A package created at another site and received from the parent: its id carries the origin's code. */
export function isReceived(pkg: Package, siteCode: string): boolean {
  return !pkg.id.startsWith(siteCode);
}

/**
 * The state of a received package's current version. Its content is not
 * ingested here: the Despooler imported it into the library and recorded
 * the manifest with the version, in one transaction. Until that manifest is
 * in the library there is nothing to install (the wake-up file is retried).
 */
export async function receivedState(ctx: SiteContext, pkg: Package, known: PackageState | undefined): Promise<PackageState> {
  const manifest = pkg.manifestSha256;
  if (manifest === null || !(await hasManifest({ dir: ctx.paths.library }, manifest))) {
    throw new SitecastError('SITECAST_E_IO', `${pkg.id}: the content of source version ${pkg.sourceVersion} has not been received yet; will retry`);
  }
  if (known !== undefined && known.sourceVersion === pkg.sourceVersion && known.manifest === manifest) return known;
  const state: PackageState = {
    format: 1,
    packageId: pkg.id,
    sourceVersion: pkg.sourceVersion,
    manifest,
    packed: false,
    instructions: known?.instructions ?? null,
    previous: previousOf(known, manifest),
  };
  await writeState(ctx.paths.distmgrState, state);
  return state;
}
