import { getTargets, type Package } from '../../db/index.js';
import { childToward, listSentSites, listSiteNodes } from '../../db/hierarchy.js';
import { REPLICATION_FORMAT, RPT_SUFFIX, serialize } from '../../formats/replication.js';
import { dropFile } from '../../inbox/index.js';
import type { SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';

/**
 * Step 5 of the flow: for each child site that holds a targeted DP, or leads
 * to one, a replication request `<PKGID>.RPT` goes into
 * `replmgr.box/outbound/<priority>/`. Writing it again is harmless: the
 * Scheduler sends a version and definition a child already has only once.
 * Targets at sites not below this one are not ours to serve and are skipped.
 * A child the package was sent to that no target is at or below any more
 * (undistribute) is named too: the Scheduler sends it the withdrawal.
 */
export async function requestReplication(ctx: SiteContext, log: ComponentLog, pkg: Package): Promise<string[]> {
  const remote = (await getTargets(ctx.db, pkg.id)).filter((t) => t.site !== ctx.siteCode);
  const children = new Set<string>(await listSentSites(ctx.db, pkg.id));
  if (remote.length === 0 && children.size === 0) return [];
  const sites = await listSiteNodes(ctx.db);
  for (const t of remote) {
    const child = childToward(sites, ctx.siteCode, t.site);
    if (child === undefined) log.warn(`${pkg.id}: target ${t.site}/${t.dp} is not below site ${ctx.siteCode}; not replicated from here`);
    else children.add(child);
  }
  if (children.size === 0) return [];
  const list = [...children].sort();
  const name = await writeReplicationRequest(ctx, pkg, list);
  log.info(`${pkg.id}: ${name} written to replmgr.box/outbound/${pkg.priority} for ${list.join(', ')}`);
  return list;
}

/**
 * Writes the replication request of a package's current version into
 * `replmgr.box/outbound/<priority>/` and wakes Replication Manager; returns
 * its name: `<PKGID>.RPT`, or with `alone` (one child, a version resent
 * whole) `<PKGID>-<CHILD>.RPT`, which never replaces the package's own.
 */
export async function writeReplicationRequest(ctx: SiteContext, pkg: Package, sites: string[], options: { alone?: boolean } = {}): Promise<string> {
  const name = options.alone === true && sites.length === 1 ? `${pkg.id}-${sites[0]}${RPT_SUFFIX}` : `${pkg.id}${RPT_SUFFIX}`;
  await dropFile(
    ctx.paths.replmgrOutbound[pkg.priority],
    name,
    serialize({ format: REPLICATION_FORMAT, kind: 'package', package: pkg.id, sourceVersion: pkg.sourceVersion, sites, created: new Date().toISOString() }),
  );
  ctx.wake('replmgr');
  return name;
}
