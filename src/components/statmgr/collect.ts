import { createHash } from 'node:crypto';
import { hasManifest } from '../../content/library.js';
import { getLocalSite, listDps, listPackages, listStatusMessages } from '../../db/index.js';
import { isAtOrBelow, listSiteNodes, type SiteNode } from '../../db/hierarchy.js';
import type { SitePayload, StatusPayload } from '../../formats/bundle.js';
import type { SiteContext } from '../../site/context.js';

/** What was last reported up, so each report carries only what changed. */
export interface ReportState {
  format: 1;
  /** Per `PKGID/SITE/dp`: a fingerprint of the DP state last reported. */
  dps: Record<string, string>;
  holdings: string;
  sites: string;
  /** Status messages up to this id were looked at. */
  messageId: number;
}

export const EMPTY_STATE: ReportState = { format: 1, dps: {}, holdings: '', sites: '', messageId: 0 };

export interface Collected {
  parent: string | null;
  status: StatusPayload | undefined;
  site: SitePayload | undefined;
  next: ReportState;
}

const MAX_ROWS = 5000;
const MAX_MESSAGES = 1000;

function hash(value: unknown): string {
  return createHash('sha256').update(JSON.stringify(value)).digest('hex');
}

function definition(s: SiteNode, url: string | undefined): SitePayload['sites'][number] {
  return { code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: (s.isLocal ? url : undefined) ?? s.url };
}

/**
 * Everything the parent should hear that it has not yet: DP states of
 * packages received from above (this site's DPs and those below it), what
 * this site's library holds of them, status messages about them, and the
 * definitions of this site, the sites below it and their DPs.
 */
export async function collectReport(ctx: SiteContext, state: ReportState): Promise<Collected> {
  const local = await getLocalSite(ctx.db);
  const parent = local?.parentCode ?? null;
  const next: ReportState = { ...state, dps: { ...state.dps } };
  if (parent === null) return { parent, status: undefined, site: undefined, next };

  const sites = await listSiteNodes(ctx.db);
  const subtree = sites.filter((s) => isAtOrBelow(sites, s.code, ctx.siteCode));
  const codes = new Set(subtree.map((s) => s.code));
  const siteDefs = subtree.map((s) => definition(s, ctx.baseUrl()));
  const dpDefs = (await listDps(ctx.db)).filter((d) => codes.has(d.site)).map((d) => ({ site: d.site, name: d.name, path: d.path }));
  const siteHash = hash({ siteDefs, dpDefs });
  let site: SitePayload | undefined;
  if (siteHash !== state.sites) {
    site = { sites: siteDefs, dps: dpDefs };
    next.sites = siteHash;
  }

  const received = (await listPackages(ctx.db)).filter((p) => !p.id.startsWith(ctx.siteCode));
  const ids = new Set(received.map((p) => p.id));
  const rows = await ctx.db.db.selectFrom('package_dp_status').selectAll().orderBy('updated_at').execute();
  const dps: StatusPayload['dps'] = [];
  for (const r of rows) {
    if (!ids.has(r.package_id) || !codes.has(r.site_code) || dps.length >= MAX_ROWS) continue;
    const row = {
      packageId: r.package_id,
      site: r.site_code,
      dp: r.dp_name,
      state: r.state as StatusPayload['dps'][number]['state'],
      sourceVersion: Number(r.source_version),
      retryCount: Number(r.retry_count),
      nextAttempt: r.next_attempt,
      lastMessage: r.last_message === null ? null : r.last_message.slice(0, 8000),
    };
    const key = `${row.packageId}/${row.site}/${row.dp}`;
    const fp = hash(row);
    if (next.dps[key] === fp) continue;
    next.dps[key] = fp;
    dps.push(row);
  }

  const holdings: StatusPayload['holdings'] = [];
  for (const p of received) {
    if (p.manifestSha256 !== null && (await hasManifest({ dir: ctx.paths.library }, p.manifestSha256))) {
      holdings.push({ packageId: p.id, sourceVersion: p.sourceVersion, manifest: p.manifestSha256 });
    }
  }
  const holdingHash = hash(holdings);
  const holdingsChanged = holdingHash !== state.holdings;
  next.holdings = holdingHash;

  const fresh = await listStatusMessages(ctx.db, { afterId: state.messageId, limit: MAX_MESSAGES });
  const messages = fresh
    .filter((m) => m.packageId !== null && ids.has(m.packageId) && codes.has(m.site))
    .map((m) => ({ time: m.time, severity: m.severity, component: m.component, site: m.site, packageId: m.packageId, text: m.text }));
  const last = fresh[fresh.length - 1];
  if (last !== undefined) next.messageId = last.id;

  const named = new Set(dps.map((r) => r.site));
  const status =
    dps.length > 0 || holdingsChanged || messages.length > 0
      ? { sites: siteDefs.filter((s) => named.has(s.code) && s.code !== ctx.siteCode), dps, holdings, messages }
      : undefined;
  return { parent, status, site, next };
}
