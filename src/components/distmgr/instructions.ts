import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { Dp, Package } from '../../db/index.js';
import { type NalFile, type PkgFile, instructionName, serializeInstruction } from '../../formats/instructions.js';
import { dpPaths, sharePath } from '../../dp/layout.js';

export interface InstructionFiles {
  files: { name: string; data: Buffer }[];
  /** Identifies the set: unchanged definitions give the same hash and are not dropped again. */
  hash: string;
}

/** Where clients fetch a DP's share: the DP's own URL if it has one, else this site server's. */
export function shareUrl(dp: Dp, packageId: string, siteBaseUrl: string): string {
  const base = dp.url ?? `${siteBaseUrl.replace(/\/$/, '')}/dp/${encodeURIComponent(dp.name)}`;
  return `${base.replace(/\/$/, '')}/${packageId}/`;
}

/**
 * The three instruction files of a package: programs (.PKG), the DPs holding
 * the current source version (.NAL) and the icon (.ICO, see `packageIcon`).
 */
export function buildInstructions(pkg: Package, manifest: string, holders: Dp[], site: { baseUrl: string; icon: Buffer }): InstructionFiles {
  const pkgFile: PkgFile = {
    format: 1,
    packageId: pkg.id,
    name: pkg.name,
    version: pkg.version,
    priority: pkg.priority,
    sourceVersion: pkg.sourceVersion,
    manifest,
    programs: pkg.programs.map((p) => ({ name: p.name, commandLine: p.commandLine, maxRunTimeSeconds: p.maxRunTimeSeconds })),
  };
  const nal: NalFile = {
    format: 1,
    packageId: pkg.id,
    sourceVersion: pkg.sourceVersion,
    locations: holders.map((dp) => ({
      site: dp.site,
      dp: dp.name,
      url: shareUrl(dp, pkg.id, site.baseUrl),
      path: sharePath(dpPaths(dp.path), pkg.id),
    })),
  };
  const files = [
    { name: instructionName(pkg.id, 'PKG'), data: Buffer.from(serializeInstruction(pkgFile)) },
    { name: instructionName(pkg.id, 'NAL'), data: Buffer.from(serializeInstruction(nal)) },
    { name: instructionName(pkg.id, 'ICO'), data: site.icon },
  ];
  const hash = createHash('sha256');
  for (const f of files) hash.update(f.name).update('\0').update(f.data).update('\0');
  return { files, hash: hash.digest('hex') };
}

export function pkgArchivePath(smspkg: string, packageId: string): string {
  return join(smspkg, `${packageId}.pkg`);
}
