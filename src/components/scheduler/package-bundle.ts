import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { buildDelta } from '../../content/delta.js';
import { hasManifest } from '../../content/library.js';
import { packManifest } from '../../content/pack.js';
import { deleteDpStatus, getPackage, getPackageStatus, getTargets, listDps, type Package } from '../../db/index.js';
import { ancestry, getHolding, getSent, isAtOrBelow, listSiteNodes, type SiteNode } from '../../db/hierarchy.js';
import { SitecastError } from '../../errors.js';
import { type BundleHeader, type PackageDefinition, writeBundle } from '../../formats/bundle.js';
import { type Minijob, stampedName } from '../../formats/replication.js';
import { SENDER_KINDS, SRQ_SUFFIX, SRS_SUFFIX, outboxDir } from '../../formats/srq.js';
import type { SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';

type PackageJob = Extract<Minijob, { kind: 'package' }>;

export interface BuiltBundle {
  id: string;
  file: string;
  bytes: number;
  sha256: string;
  definition: string;
  sourceVersion: number;
  content: 'full' | 'delta' | 'none';
  contentBytes: number;
  /** The package was withdrawn from that site: its definition names no target there. */
  withdrawal: boolean;
}

export type PackagePlan = { skip: string } | { definition: PackageDefinition; hash: string; base: string | null; held: boolean; withdrawal?: true };

function siteDefinition(s: SiteNode): PackageDefinition['sites'][number] {
  return { code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: s.url };
}

/**
 * What a child site must receive of a package: the definition with the
 * targets at and below it (and the DPs and sites they name), and against
 * which version it holds the content is a delta. Nothing is sent when this
 * version and definition already went to that site. A child the package was
 * sent to that no target is at or below any more gets a withdrawal: the
 * definition with no targets and no content (it takes the package off its
 * DPs and passes the withdrawal on).
 */
export async function planPackage(ctx: SiteContext, job: PackageJob): Promise<PackagePlan> {
  const pkg = await getPackage(ctx.db, job.package);
  if (pkg === undefined) return { skip: `${job.package} does not exist (any more)` };
  if (pkg.sourceVersion !== job.sourceVersion) return { skip: `${job.package} is at source version ${pkg.sourceVersion} now; its own request follows` };
  const manifest = pkg.manifestSha256;
  if (manifest === null || !(await hasManifest({ dir: ctx.paths.library }, manifest))) {
    throw new SitecastError('SITECAST_E_IO', `${pkg.id}: the content of source version ${pkg.sourceVersion} is not in the library yet; will retry`);
  }
  const sites = await listSiteNodes(ctx.db);
  const targets = (await getTargets(ctx.db, pkg.id)).filter((t) => isAtOrBelow(sites, t.site, job.to));
  if (targets.length === 0) {
    if ((await getSent(ctx.db, job.to, pkg.id)) === undefined) return { skip: `${pkg.id} has no target at or below ${job.to} any more` };
    const withdrawal = definitionOf(pkg, manifest, [], [], []);
    return { definition: withdrawal, hash: definitionHash(withdrawal), base: null, held: true, withdrawal: true };
  }
  const named = new Set(targets.map((t) => `${t.site}/${t.dp}`));
  const dps = (await listDps(ctx.db)).filter((d) => named.has(`${d.site}/${d.name}`)).map((d) => ({ site: d.site, name: d.name, path: d.path }));
  const siteCodes = new Set<string>();
  for (const t of targets) {
    const chain = ancestry(sites, t.site);
    for (const code of chain.slice(0, chain.indexOf(job.to) + 1)) siteCodes.add(code);
  }
  const definition = definitionOf(pkg, manifest, targets, dps, sites.filter((s) => siteCodes.has(s.code)).map(siteDefinition));
  const hash = definitionHash(definition);
  const sent = await getSent(ctx.db, job.to, pkg.id);
  if (sent !== undefined && sent.sourceVersion === pkg.sourceVersion && sent.definition === hash) {
    return { skip: `${pkg.id} source version ${pkg.sourceVersion} already went to ${job.to} (${sent.sendId})` };
  }
  const holding = await getHolding(ctx.db, job.to, pkg.id);
  if (holding !== undefined && holding.sourceVersion > pkg.sourceVersion) {
    return { skip: `${job.to} reports source version ${holding.sourceVersion} of ${pkg.id}, newer than ${pkg.sourceVersion} here` };
  }
  if (holding?.manifest === manifest) return { definition, hash, base: null, held: true };
  const base = holding !== undefined && (await hasManifest({ dir: ctx.paths.library }, holding.manifest)) ? holding.manifest : null;
  return { definition, hash, base, held: false };
}

function definitionOf(pkg: Package, manifest: string, targets: PackageDefinition['targets'], dps: PackageDefinition['dps'], sites: PackageDefinition['sites']): PackageDefinition {
  return {
    id: pkg.id,
    name: pkg.name,
    version: pkg.version,
    sourcePath: pkg.sourcePath,
    sourceVersion: pkg.sourceVersion,
    priority: pkg.priority,
    programs: pkg.programs,
    manifest,
    targets,
    dps,
    sites,
    // Absent when the package has none: a child of an older build still reads the definition.
    ...(pkg.icon === null ? {} : { icon: pkg.icon }),
  };
}

function definitionHash(definition: PackageDefinition): string {
  return createHash('sha256').update(JSON.stringify(definition)).digest('hex');
}

/**
 * The id of a bundle: the same for the same version and definition, so a
 * minijob built again after a crash replaces what it wrote. Not while a send
 * request of that id waits or is sent (the definition went before, was
 * changed, and is back: undistribute, then distribute again): its file must
 * stay as it is until sent, and the sender removes it then, so this bundle
 * gets an id of its own.
 */
async function freeId(ctx: SiteContext, id: string): Promise<string> {
  for (const kind of SENDER_KINDS) {
    for (const name of [`${id}${SRQ_SUFFIX}`, `${id}${SRS_SUFFIX}`]) {
      if (existsSync(join(outboxDir(ctx.paths, kind), name))) return stampedName(id);
    }
  }
  return id;
}

/** Builds the bundle of a planned package into `schedule.box/tosend/<id>.bundle`. */
export async function buildPackageBundle(ctx: SiteContext, job: PackageJob, plan: Exclude<PackagePlan, { skip: string }>, signal: AbortSignal): Promise<BuiltBundle> {
  const def = plan.definition;
  const id = await freeId(ctx, `P-${def.id}-${job.to}-v${def.sourceVersion}-${plan.hash.slice(0, 8)}`);
  const file = `${id}.bundle`;
  const work = join(ctx.paths.scheduleToSend, `.${id}.archive.tmp`);
  const content = plan.held ? 'none' : plan.base === null ? 'full' : 'delta';
  try {
    if (content === 'delta' && plan.base !== null) await buildDelta(ctx.paths.library, plan.base, def.manifest, work, { signal });
    else if (content === 'full') await packManifest(ctx.paths.library, def.manifest, work);
    signal.throwIfAborted();
    const header: BundleHeader = {
      format: 1,
      id,
      from: ctx.siteCode,
      to: job.to,
      created: new Date().toISOString(),
      kind: 'package',
      package: def,
      content: content === 'none' ? null : { kind: content, base: content === 'delta' ? plan.base : null },
    };
    const written = await writeBundle(join(ctx.paths.scheduleToSend, file), {
      header,
      ...(content === 'none' ? {} : { content: work }),
      privateKey: ctx.keys.privateKey,
    });
    return {
      id,
      file,
      bytes: written.bytes,
      sha256: written.sha256,
      definition: plan.hash,
      sourceVersion: def.sourceVersion,
      content,
      contentBytes: written.contentBytes,
      withdrawal: plan.withdrawal === true,
    };
  } finally {
    await rm(work, { force: true }).catch(() => undefined);
  }
}

/**
 * The definition or withdrawal just sent tells `to` which of its DPs (and
 * those below it) the package no longer targets; that site takes it off them
 * and stops reporting them, so their rows here go now. Not before: a DP
 * targeted again before anything was sent keeps its row (see
 * distmgr/package.ts, forgetRemoteUntargeted).
 */
export async function forgetUntargetedBelow(ctx: SiteContext, log: ComponentLog, packageId: string, to: string): Promise<void> {
  const sites = await listSiteNodes(ctx.db);
  const targeted = new Set((await getTargets(ctx.db, packageId)).map((t) => `${t.site}/${t.dp}`));
  for (const s of await getPackageStatus(ctx.db, packageId)) {
    if (!isAtOrBelow(sites, s.site, to) || targeted.has(`${s.site}/${s.dp}`)) continue;
    await deleteDpStatus(ctx.db, { packageId, site: s.site, dp: s.dp });
    log.info(`${packageId}: no longer targets ${s.site}/${s.dp}; ${to} takes it off`);
  }
}
