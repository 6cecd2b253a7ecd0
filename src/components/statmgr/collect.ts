import { createHash } from 'node:crypto';
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { hasManifest } from '../../content/library.js';
import { getLocalSite, listDps, listPackages, listStatusMessages, type Package, type StatusMessage } from '../../db/index.js';
import { isAtOrBelow, listSiteNodes, listWanted, type SiteNode } from '../../db/hierarchy.js';
import type { SitePayload, StatusPayload } from '../../formats/bundle.js';
import type { SiteContext } from '../../site/context.js';

/** What was last reported up, so each report carries only what changed. */
export interface ReportState {
  format: 1;
  /**
   * Per `PKGID/SITE/dp` looked at within the window: the row's `updated_at`,
   * a space, and a fingerprint of the DP state last reported. Rows that fall
   * out of the window are forgotten: they are read again only if they change.
   */
  dps: Record<string, string>;
  /** The newest `updated_at` of the DP status rows looked at; absent: none yet, read them all. */
  dpCursor?: string | undefined;
  holdings: string;
  /** Fingerprint of the wanted versions last reported ('' or absent: none). */
  wants?: string | undefined;
  sites: string;
  /** The DPs (`SITE/dp`) of the last site definitions reported; absent (an older build's state): removals since are not known. */
  reportedDps?: string[] | undefined;
  /** Status messages up to this id were looked at. */
  messageId: number;
  /**
   * Ids below `messageId` not seen when it passed them, with the time each
   * was first found missing: a message whose transaction took its id before
   * a later one but committed after it (PostgreSQL's sequences allow it), or
   * one rolled back. Looked for again each time until found or older than the
   * window.
   */
  messageGaps?: Record<string, string> | undefined;
}

export const EMPTY_STATE: ReportState = { format: 1, dps: {}, holdings: '', sites: '', messageId: 0 };

/**
 * Each look at the DP status rows starts this long before the newest change
 * seen last time. A row's `updated_at` is stamped when its transaction writes
 * it, not when it commits: one stamped just before the newest row seen but
 * committed after that look is still found, and the fingerprints keep what
 * was already reported from going up twice.
 */
export const LATE_COMMIT_WINDOW_MS = 5 * 60_000;
/** At most this many ids are remembered as missing (the newest kept): a jump of the sequence is not a thousand late commits. */
const MAX_GAPS = 200;
/** A cursor further ahead of this clock than this means the clock went back: everything is read again. */
const CLOCK_SLACK_MS = 60_000;

/**
 * Kept by the reporter between looks, in memory: the holdings last found and
 * what they were found from (the received versions, and the time the
 * library's manifests folder last changed).
 */
export interface HoldingsCache {
  key?: string;
  holdings?: StatusPayload['holdings'];
}

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
 * this site's library holds of them, the versions it needs whole (a delta
 * refused for a missing base), status messages about them, and the
 * definitions of this site, the sites below it and their DPs (with the DPs
 * reported before and removed since).
 */
export async function collectReport(ctx: SiteContext, state: ReportState, cache: HoldingsCache = {}): Promise<Collected> {
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
    const current = dpDefs.map((d) => `${d.site}/${d.name}`);
    const now = new Set(current);
    const removed = (state.reportedDps ?? []).filter((ref) => !now.has(ref)).map((ref) => ({ site: ref.slice(0, 3), name: ref.slice(4) }));
    site = { sites: siteDefs, dps: dpDefs, ...(removed.length > 0 ? { removed } : {}) };
    next.sites = siteHash;
    next.reportedDps = current;
  }

  const received = (await listPackages(ctx.db)).filter((p) => !p.id.startsWith(ctx.siteCode));
  const ids = new Set(received.map((p) => p.id));
  const { dps, cursor } = await changedDpStates(ctx, state, next, codes);
  if (cursor !== undefined) next.dpCursor = cursor;

  const holdings = await heldVersions(ctx, received, cache);
  const holdingHash = hash(holdings);
  const holdingsChanged = holdingHash !== state.holdings;
  next.holdings = holdingHash;
  const wants = (await listWanted(ctx.db)).filter((w) => ids.has(w.packageId));
  const wantHash = wants.length === 0 ? '' : hash(wants);
  const wantsChanged = wantHash !== (state.wants ?? '');
  next.wants = wantHash;

  const { found, gaps, lastId } = await newMessages(ctx, state);
  next.messageGaps = gaps;
  if (lastId !== undefined) next.messageId = lastId;
  const messages = found
    .filter((m) => m.packageId !== null && ids.has(m.packageId) && codes.has(m.site))
    .map((m) => ({ time: m.time, severity: m.severity, component: m.component, site: m.site, packageId: m.packageId, text: m.text }));

  const named = new Set(dps.map((r) => r.site));
  const status =
    dps.length > 0 || holdingsChanged || wantsChanged || messages.length > 0
      ? { sites: siteDefs.filter((s) => named.has(s.code) && s.code !== ctx.siteCode), dps, holdings, messages, ...(wants.length > 0 ? { wants } : {}) }
      : undefined;
  return { parent, status, site, next };
}

const iso = (ms: number): string => new Date(ms).toISOString();

/**
 * The DP states (packages received from above, DPs of this subtree) changed
 * since the last report: rows from the cursor less the late-commit window,
 * in `updated_at` order, those whose fingerprint matches what was reported
 * skipped, at most MAX_ROWS reported. Updates `next.dps` and returns the new
 * cursor (undefined: unchanged).
 */
async function changedDpStates(ctx: SiteContext, state: ReportState, next: ReportState, codes: Set<string>): Promise<{ dps: StatusPayload['dps']; cursor: string | undefined }> {
  const now = Date.now();
  const cursorMs = state.dpCursor === undefined ? Number.NaN : Date.parse(state.dpCursor);
  const since = Number.isNaN(cursorMs) || cursorMs > now + CLOCK_SLACK_MS ? undefined : iso(cursorMs - LATE_COMMIT_WINDOW_MS);
  let query = ctx.db.db
    .selectFrom('package_dp_status')
    .selectAll()
    // Received from above: a package made here has this site's code in its id.
    .where('package_id', 'not like', `${ctx.siteCode}%`)
    .where('site_code', 'in', [...codes]);
  if (since !== undefined) query = query.where('updated_at', '>=', since);
  const rows = await query.orderBy('updated_at').orderBy('package_id').orderBy('site_code').orderBy('dp_name').execute();

  const dps: StatusPayload['dps'] = [];
  let cursor: string | undefined;
  const read = new Set<string>();
  let whole = true;
  for (const r of rows) {
    if (dps.length >= MAX_ROWS) {
      whole = false;
      break;
    }
    read.add(`${r.package_id}/${r.site_code}/${r.dp_name}`);
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
    const seen = next.dps[key];
    next.dps[key] = `${r.updated_at} ${fp}`;
    cursor = r.updated_at;
    if (seen !== undefined && seen.slice(seen.indexOf(' ') + 1) === fp) continue;
    dps.push(row);
  }
  // A remembered row this look should have read and did not is gone (the package was taken off that DP). Its
  // fingerprint goes with it: should the DP get the package again, the same state is news to the parent, which
  // deleted its copy of the row.
  if (whole) {
    for (const [key, value] of Object.entries(next.dps)) {
      const space = value.indexOf(' ');
      if (!read.has(key) && (since === undefined || (space >= 0 && value.slice(0, space) >= since))) delete next.dps[key];
    }
  }
  // Never back, except after a full read (first look, or the clock went back).
  if (since !== undefined && state.dpCursor !== undefined && (cursor === undefined || cursor < state.dpCursor)) cursor = state.dpCursor;
  // Forget rows the next look will not read unless they change.
  const forgetBefore = cursor ?? state.dpCursor;
  if (forgetBefore !== undefined) {
    const edge = iso(Date.parse(forgetBefore) - LATE_COMMIT_WINDOW_MS);
    for (const [key, value] of Object.entries(next.dps)) {
      const space = value.indexOf(' ');
      // A fingerprint kept by an older build has no time: forgotten, at worst reported once more.
      if (space < 0 || value.slice(0, space) < edge) delete next.dps[key];
    }
  }
  return { dps, cursor };
}

/**
 * Status messages after the cursor, and those of earlier gaps that have
 * appeared since (late commits), oldest first; the gaps still open (new ones
 * added, found and expired ones removed) and the new cursor.
 */
async function newMessages(ctx: SiteContext, state: ReportState): Promise<{ found: StatusMessage[]; gaps: Record<string, string>; lastId: number | undefined }> {
  const now = Date.now();
  const gaps: Record<string, string> = {};
  for (const [id, since] of Object.entries(state.messageGaps ?? {})) if (now - Date.parse(since) <= LATE_COMMIT_WINDOW_MS) gaps[id] = since;
  const wanted = Object.keys(gaps).map(Number);
  const late = wanted.length === 0 ? [] : await listStatusMessages(ctx.db, { ids: wanted, limit: MAX_GAPS });
  for (const m of late) delete gaps[String(m.id)];
  const fresh = await listStatusMessages(ctx.db, { afterId: state.messageId, limit: MAX_MESSAGES });
  let previous = state.messageId;
  const stamp = iso(now);
  for (const m of fresh) {
    for (let id = Math.max(previous + 1, m.id - MAX_GAPS); id < m.id; id++) gaps[String(id)] = stamp;
    previous = m.id;
  }
  const open = Object.keys(gaps).map(Number).sort((a, b) => a - b);
  for (const id of open.slice(0, Math.max(0, open.length - MAX_GAPS))) delete gaps[String(id)];
  return { found: [...late, ...fresh], gaps, lastId: fresh[fresh.length - 1]?.id };
}

/**
 * The received versions whose manifest this site's library holds. Looking
 * costs a file check per package; it is done again only when the received
 * versions or the library's manifests folder (a manifest added or removed
 * changes its modification time) changed since the last look.
 */
async function heldVersions(ctx: SiteContext, received: Package[], cache: HoldingsCache): Promise<StatusPayload['holdings']> {
  const folder = join(ctx.paths.library, 'manifests');
  const changed = await stat(folder, { bigint: true }).then(
    (st) => st.mtimeNs.toString(),
    () => 'none',
  );
  const key = hash({ changed, received: received.map((p) => [p.id, p.sourceVersion, p.manifestSha256]) });
  if (cache.key === key && cache.holdings !== undefined) return cache.holdings;
  const holdings: StatusPayload['holdings'] = [];
  for (const p of received) {
    if (p.manifestSha256 !== null && (await hasManifest({ dir: ctx.paths.library }, p.manifestSha256))) {
      holdings.push({ packageId: p.id, sourceVersion: p.sourceVersion, manifest: p.manifestSha256 });
    }
  }
  cache.key = key;
  cache.holdings = holdings;
  return holdings;
}
