import { addStatusMessage, dpHolders, getPackage, getTargets, removeDp, setDpStatus } from '../../db/index.js';
import { childToward, forgetHoldingAndRepeatSend, getSent, isAtOrBelow, listSiteNodes, setHolding, upsertSite, type SiteNode } from '../../db/hierarchy.js';
import { storeDefinitions } from '../../db/received.js';
import { isSitecastError } from '../../errors.js';
import type { BundleHeader, SitePayload } from '../../formats/bundle.js';
import { REPLICATION_FORMAT, RPT_SUFFIX, serialize, stampedName } from '../../formats/replication.js';
import { dropFile } from '../../inbox/index.js';
import { writeReplicationRequest } from '../distmgr/replicate.js';
import type { SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';

type StatusHeader = Extract<BundleHeader, { kind: 'status' }>;
type SiteHeader = Extract<BundleHeader, { kind: 'site' }>;

/**
 * A status report from a child: DP states of its site and the sites below
 * it, what its library holds (the base of the next delta), and status
 * messages about packages. A child speaks only for its own subtree; rows
 * about other sites, or packages not known here, are left out.
 */
export async function applyStatus(ctx: SiteContext, log: ComponentLog, header: StatusHeader): Promise<void> {
  await storeSubtree(ctx, header.from, header.status.sites);
  const sites = await listSiteNodes(ctx.db);
  const mine = (code: string): boolean => isAtOrBelow(sites, code, header.from);
  const known = new Map<string, boolean>();
  const exists = async (id: string): Promise<boolean> => {
    let v = known.get(id);
    if (v === undefined) {
      v = (await getPackage(ctx.db, id)) !== undefined;
      known.set(id, v);
    }
    return v;
  };
  let rows = 0;
  let skipped = 0;
  // A report written before a withdrawal reached that site must not bring the DP back.
  const targeted = new Map<string, Set<string>>();
  const targets = async (id: string): Promise<Set<string>> => {
    let v = targeted.get(id);
    if (v === undefined) {
      v = new Set((await getTargets(ctx.db, id)).map((t) => `${t.site}/${t.dp}`));
      targeted.set(id, v);
    }
    return v;
  };
  for (const r of header.status.dps) {
    if (!mine(r.site) || !(await exists(r.packageId)) || !(await targets(r.packageId)).has(`${r.site}/${r.dp}`)) {
      skipped++;
      continue;
    }
    try {
      await setDpStatus(ctx.db, { ...r });
      rows++;
    } catch (err) {
      // An older report overtaken by a newer one: the newer state stays.
      if (!isSitecastError(err, 'SITECAST_E_ROLLBACK')) throw err;
      skipped++;
    }
  }
  for (const h of header.status.holdings) {
    if (await exists(h.packageId)) await setHolding(ctx.db, { site: header.from, packageId: h.packageId, sourceVersion: h.sourceVersion, manifest: h.manifest });
  }
  for (const w of header.status.wants ?? []) {
    const pkg = await getPackage(ctx.db, w.packageId);
    if (pkg === undefined || pkg.sourceVersion < w.sourceVersion) continue;
    // Already sent again since the child found it missing: that send is on its way.
    const sent = await getSent(ctx.db, header.from, w.packageId);
    if (sent !== undefined && sent.sentAt > w.since && sent.sourceVersion >= w.sourceVersion) continue;
    await forgetHoldingAndRepeatSend(ctx.db, header.from, w.packageId);
    await writeReplicationRequest(ctx, pkg, [header.from], { alone: true });
    const text = `${header.from} cannot build source version ${w.sourceVersion} of ${pkg.id} (the version its delta was made against is gone there); sending source version ${pkg.sourceVersion} whole`;
    log.warn(`${header.id}: ${text}`);
    await addStatusMessage(ctx.db, { severity: 'warning', component: 'despooler', site: ctx.siteCode, packageId: pkg.id, text });
  }
  let messages = 0;
  for (const m of header.status.messages) {
    if (!mine(m.site)) continue;
    await addStatusMessage(ctx.db, { ...m });
    messages++;
  }
  log.info(`${header.id}: status from ${header.from}: ${rows} DP state(s), ${header.status.holdings.length} holding(s), ${messages} message(s)${skipped > 0 ? `, ${skipped} row(s) left out` : ''}`);
  ctx.wake('statmgr');
}

/** The sites of a report that lie in the sender's subtree (by the parents the report itself gives). */
function subtree(from: string, local: string, defs: SitePayload['sites']): SitePayload['sites'] {
  const allowed = new Set([from]);
  let grew = true;
  while (grew) {
    grew = false;
    for (const s of defs) {
      if (!allowed.has(s.code) && s.parentCode !== null && allowed.has(s.parentCode) && s.code !== local) {
        allowed.add(s.code);
        grew = true;
      }
    }
  }
  return defs.filter((s) => allowed.has(s.code));
}

/** Records the sites a child reports for its subtree; returns those accepted. */
async function storeSubtree(ctx: SiteContext, from: string, defs: SitePayload['sites']): Promise<SitePayload['sites']> {
  const accepted = subtree(from, ctx.siteCode, defs);
  for (const s of accepted) {
    // A child is first-hand for itself (its URL may change at each start), but it cannot move itself elsewhere or change its key.
    if (s.code === from) {
      const known = (await listSiteNodes(ctx.db)).find((n) => n.code === s.code);
      await upsertSite(ctx.db, { ...s, parentCode: ctx.siteCode, publicKey: known?.publicKey ?? s.publicKey });
    } else await upsertSite(ctx.db, s);
  }
  return accepted;
}

/**
 * Site and DP definitions. From a child (up): the child and its subtree,
 * recorded here and reported further up by the status reporter. From the
 * parent (down): DPs to create here, or to pass on towards the site below
 * that they belong to, and DPs to remove (`removed`), likewise.
 */
export async function applySite(ctx: SiteContext, log: ComponentLog, header: SiteHeader, parent: string | null): Promise<void> {
  const payload = header.site;
  if (header.from === parent) {
    await storeDefinitions(ctx.db, payload);
    const sites = await listSiteNodes(ctx.db);
    const onward = new Map<string, { dps: SitePayload['dps']; removed: NonNullable<SitePayload['removed']> }>();
    const passOn = (d: { site: string; name: string }): { dps: SitePayload['dps']; removed: NonNullable<SitePayload['removed']> } | undefined => {
      const child = childToward(sites, ctx.siteCode, d.site);
      if (child === undefined) {
        log.warn(`${header.id}: DP ${d.site}/${d.name} is not below this site; not passed on`);
        return undefined;
      }
      const entry = onward.get(child) ?? { dps: [], removed: [] };
      onward.set(child, entry);
      return entry;
    };
    for (const d of payload.dps) if (d.site !== ctx.siteCode) passOn(d)?.dps.push(d);
    for (const d of payload.removed ?? []) if (d.site !== ctx.siteCode) passOn(d)?.removed.push(d);
    for (const [child, { dps, removed }] of onward) {
      const name = `${stampedName(`SI-${child}`)}${RPT_SUFFIX}`;
      const defs = dps.map((d) => sites.find((s) => s.code === d.site)).filter((s): s is SiteNode => s !== undefined);
      const siteDefs = defs.map((s) => ({ code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: s.url }));
      const site = { sites: siteDefs, dps, ...(removed.length > 0 ? { removed } : {}) };
      await dropFile(ctx.paths.replmgrOutbound.high, name, serialize({ format: REPLICATION_FORMAT, kind: 'site', to: child, site, created: new Date().toISOString() }));
      ctx.wake('replmgr');
    }
    for (const d of payload.removed ?? []) if (d.site === ctx.siteCode) await removeAtParentsRequest(ctx, log, header, d.name);
    const here = payload.dps.filter((d) => d.site === ctx.siteCode).map((d) => d.name);
    log.info(`${header.id}: definitions from ${header.from}${here.length > 0 ? `; DP(s) ${here.join(', ')} created here` : ''}${onward.size > 0 ? `; passed on to ${[...onward.keys()].join(', ')}` : ''}`);
    if (here.length > 0) {
      await addStatusMessage(ctx.db, { severity: 'info', component: 'despooler', site: ctx.siteCode, text: `DP(s) ${here.join(', ')} created at ${ctx.siteCode} by ${header.from}` });
    }
    return;
  }
  const accepted = await storeSubtree(ctx, header.from, payload.sites);
  const codes = new Set(accepted.map((s) => s.code));
  const dps = payload.dps.filter((d) => codes.has(d.site));
  await storeDefinitions(ctx.db, { sites: [], dps });
  log.info(`${header.id}: definitions from ${header.from}: ${accepted.length} site(s), ${dps.length} DP(s)${payload.sites.length > accepted.length ? `; ${payload.sites.length - accepted.length} site(s) outside its subtree left out` : ''}`);
  await forgetRemovedDps(ctx, log, header, codes);
  ctx.wake('statmgr');
}

/**
 * The parent asks this site to remove one of its DPs (`dp remove --site`
 * above): removed when nothing is left on it, like `dp remove` here, and the
 * status reporter's next site definitions tell every site above. Refused, a
 * warning says why; it names a package that keeps the DP, so that a package
 * received from above carries the message up to the site that asked.
 */
async function removeAtParentsRequest(ctx: SiteContext, log: ComponentLog, header: SiteHeader, name: string): Promise<void> {
  const ref = `${ctx.siteCode}/${name}`;
  try {
    await removeDp(ctx.db, { site: ctx.siteCode, name });
  } catch (err) {
    if (isSitecastError(err, 'SITECAST_E_NOT_FOUND')) {
      log.info(`${header.id}: ${header.from} asked to remove DP ${ref}, which is not here (already removed)`);
      return;
    }
    if (!isSitecastError(err, 'SITECAST_E_CONFLICT')) throw err;
    const holders = await dpHolders(ctx.db, { site: ctx.siteCode, name });
    const text = `${header.from} asked to remove DP ${ref}; not removed: ${err.message}`;
    log.warn(`${header.id}: ${text}`);
    await addStatusMessage(ctx.db, { severity: 'warning', component: 'despooler', site: ctx.siteCode, packageId: holders.targeted[0] ?? holders.clearing[0]?.packageId ?? null, text: text.slice(0, 8000) });
    return;
  }
  const text = `DP ${ref} removed at the request of ${header.from}; its folder is left as it is`;
  log.info(`${header.id}: ${text}`);
  await addStatusMessage(ctx.db, { severity: 'info', component: 'despooler', site: ctx.siteCode, text });
  ctx.wake('statmgr');
}

/**
 * DPs a child reports removed (in its own subtree only, and not defined again
 * in the same report) are forgotten here, with the copies of their status
 * rows; the status reporter then tells the site above. One a package still
 * targets here stays, with a warning: the next bundle for that package brings
 * the DP's definition back to the child.
 */
async function forgetRemovedDps(ctx: SiteContext, log: ComponentLog, header: SiteHeader, codes: ReadonlySet<string>): Promise<void> {
  const again = new Set(header.site.dps.map((d) => `${d.site}/${d.name}`));
  for (const d of header.site.removed ?? []) {
    const ref = `${d.site}/${d.name}`;
    if (!codes.has(d.site) || again.has(ref)) continue;
    try {
      await removeDp(ctx.db, d, { statusRows: 'forget' });
    } catch (err) {
      if (isSitecastError(err, 'SITECAST_E_NOT_FOUND')) continue;
      if (!isSitecastError(err, 'SITECAST_E_CONFLICT')) throw err;
      const text = `${header.from} reports DP ${ref} removed, but it is kept here: ${err.message}`;
      log.warn(`${header.id}: ${text}`);
      await addStatusMessage(ctx.db, { severity: 'warning', component: 'despooler', site: ctx.siteCode, text: text.slice(0, 8000) });
      continue;
    }
    const text = `DP ${ref} removed at ${d.site} (reported by ${header.from}); forgotten here`;
    log.info(`${header.id}: ${text}`);
    await addStatusMessage(ctx.db, { severity: 'info', component: 'despooler', site: ctx.siteCode, text });
  }
}
