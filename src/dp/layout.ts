import { join } from 'node:path';
import { isTempName } from '../fs/atomic.js';

/**
 * A distribution point is a folder:
 *
 *   <dp path>/library/                 its own content library (chunks, manifests)
 *   <dp path>/SMSPKG/<PKGID>           symbolic link to the live version folder
 *   <dp path>/SMSPKG/.<PKGID>.v<N>/    version N of the share: an exact copy of the source
 *   <dp path>/SMSPKG/.<PKGID>.v<N>.json  which manifest version N holds
 *
 * Clients and the HTTP server only ever go through `<PKGID>`; the dotted
 * names are the installer's. A crash can also leave the installer's
 * temporary names: `.<PKGID>.link-<hex>` (a link not yet renamed over
 * `<PKGID>`) and `..<PKGID>.v<N>.json.<hex>.tmp` (a marker half written).
 */
export interface DpPaths {
  root: string;
  library: string;
  smspkg: string;
}

export function dpPaths(dpPath: string): DpPaths {
  return { root: dpPath, library: join(dpPath, 'library'), smspkg: join(dpPath, 'SMSPKG') };
}

export function sharePath(dp: DpPaths, packageId: string): string {
  return join(dp.smspkg, packageId);
}

/** The folder name of one version of a share (relative, as the link stores it). */
export function versionName(packageId: string, sourceVersion: number, attempt?: string): string {
  return attempt === undefined ? `.${packageId}.v${sourceVersion}` : `.${packageId}.v${sourceVersion}.${attempt}`;
}

export function markerPath(dp: DpPaths, version: string): string {
  return join(dp.smspkg, `${version}.json`);
}

/** Matches the installer's own names for one package: version folders, their markers, temporary links. */
export function isInstallerName(packageId: string, name: string): boolean {
  return name.startsWith(`.${packageId}.v`) || name.startsWith(`.${packageId}.link-`);
}

const TEMP_TARGET = /^\.(.+)\.[0-9a-f]+\.tmp$/;

/**
 * Matches a temporary file of writeFileAtomic (`.<target>.<hex>.tmp`) whose
 * target is one of the installer's names for the package: a write cut short
 * by a crash, which nothing else would ever remove.
 */
export function isInstallerTempName(packageId: string, name: string): boolean {
  if (!isTempName(name)) return false;
  const target = TEMP_TARGET.exec(name)?.[1];
  return target !== undefined && isInstallerName(packageId, target);
}

const VERSION = /^\.([A-Z0-9]{3}[0-9A-F]{5})\.v(\d+)(?:\.[a-z0-9]+)?$/;

/** The source version a version folder name holds, or undefined if it is not one. */
export function parseVersionName(name: string): { packageId: string; sourceVersion: number } | undefined {
  const m = VERSION.exec(name);
  if (m === null) return undefined;
  return { packageId: m[1] as string, sourceVersion: Number(m[2]) };
}
