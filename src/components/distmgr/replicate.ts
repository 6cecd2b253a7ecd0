import { getTargets, type Package } from '../../db/index.js';
import { childToward, listSiteNodes } from '../../db/hierarchy.js';
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
 */
export async function requestReplication(ctx: SiteContext, log: ComponentLog, pkg: Package): Promise<string[]> {
  const remote = (await getTargets(ctx.db, pkg.id)).filter((t) => t.site !== ctx.siteCode);
  if (remote.length === 0) return [];
  const sites = await listSiteNodes(ctx.db);
  const children = new Set<string>();
  for (const t of remote) {
    const child = childToward(sites, ctx.siteCode, t.site);
    if (child === undefined) log.warn(`${pkg.id}: target ${t.site}/${t.dp} is not below site ${ctx.siteCode}; not replicated from here`);
    else children.add(child);
  }
  if (children.size === 0) return [];
  const list = [...children].sort();
  await dropFile(
    ctx.paths.replmgrOutbound[pkg.priority],
    `${pkg.id}${RPT_SUFFIX}`,
    serialize({ format: REPLICATION_FORMAT, kind: 'package', package: pkg.id, sourceVersion: pkg.sourceVersion, sites: list, created: new Date().toISOString() }),
  );
  ctx.wake('replmgr');
  log.info(`${pkg.id}: ${pkg.id}${RPT_SUFFIX} written to replmgr.box/outbound/${pkg.priority} for ${list.join(', ')}`);
  return list;
}
