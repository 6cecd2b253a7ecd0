import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { type Address, type SiteDb, dpStateSchema, listAddresses, listPackages } from '../../db/index.js';
import { guard } from '../../db/guard.js';
import type { DpState } from '../../db/values.js';
import { addressQueues } from '../../components/sender/scan.js';
import { BAD_FOLDER, badFileNames } from '../../inbox/index.js';
import type { SitePaths } from '../layout.js';

/**
 * What the console and /metrics show, read cheaply from the site database
 * and the inbox folders. Each read is one query or one folder walk; the live
 * event hub compares two snapshots and pushes only what changed.
 */

export interface DpStateRow {
  packageId: string;
  site: string;
  dp: string;
  state: DpState;
  sourceVersion: number;
  retryCount: number;
  lastMessage: string | null;
  updatedAt: string;
}

export interface PackageRow {
  id: string;
  name: string;
  version: string;
  sourceVersion: number;
  updatedAt: string;
}

export interface AddressRow {
  to: string;
  sender: string;
  paused: boolean;
  queued: number;
  sending: number;
  bytesSent: number;
  rate: number;
  lastError: string | null;
}

/** One inbox (or one sub-queue of it): files waiting, and files refused into bad/. */
export interface InboxBacklog {
  component: string;
  inbox: string;
  files: number;
  bad: number;
}

export const DP_STATES: readonly DpState[] = ['pending', 'installed', 'retrying', 'failed'];

export async function readDpStates(site: SiteDb): Promise<DpStateRow[]> {
  const rows = await guard(site, 'package status', () =>
    site.db.selectFrom('package_dp_status').selectAll().orderBy('package_id').orderBy('site_code').orderBy('dp_name').execute(),
  );
  return rows.map((r) => ({
    packageId: r.package_id,
    site: r.site_code,
    dp: r.dp_name,
    state: dpStateSchema.parse(r.state),
    sourceVersion: Number(r.source_version),
    retryCount: Number(r.retry_count),
    lastMessage: r.last_message,
    updatedAt: r.updated_at,
  }));
}

export async function readPackages(site: SiteDb): Promise<PackageRow[]> {
  return (await listPackages(site)).map((p) => ({ id: p.id, name: p.name, version: p.version, sourceVersion: p.sourceVersion, updatedAt: p.updatedAt }));
}

export async function readAddresses(site: SiteDb, paths: Pick<SitePaths, 'scheduleOutboxes'>): Promise<AddressRow[]> {
  const queues = await addressQueues(paths.scheduleOutboxes).catch(() => new Map<string, { queued: number; sending: number }>());
  const rows: Address[] = await listAddresses(site);
  const out = rows.map((a) => ({
    to: a.to,
    sender: a.sender,
    paused: a.paused,
    queued: queues.get(a.to)?.queued ?? 0,
    sending: queues.get(a.to)?.sending ?? 0,
    bytesSent: a.bytesSent,
    rate: a.currentRate,
    lastError: a.lastError,
  }));
  const known = new Set(out.map((a) => a.to));
  for (const [to, q] of queues) {
    if (!known.has(to)) out.push({ to, sender: 'http', paused: false, queued: q.queued, sending: q.sending, bytesSent: 0, rate: 0, lastError: null });
  }
  return out.sort((a, b) => (a.to < b.to ? -1 : 1));
}

/** The component that reads each inbox, as in the seed. */
const READERS: Record<string, string> = {
  'distmgr.box': 'distmgr',
  'pkginfo.box': 'inboxmgr',
  'replmgr.box': 'replmgr',
  'schedule.box': 'scheduler',
  'despoolr.box': 'despooler',
  'statmgr.box': 'statmgr',
};
/** Sub-folders that belong to another reader than their box. */
const SUB_READERS: Record<string, string> = { 'schedule.box/outboxes': 'sender' };
/** Folders whose files are work products, not work waiting. */
const NOT_BACKLOG = new Set([BAD_FOLDER, 'tosend']);

function isWaiting(name: string): boolean {
  // Half-written files (`.name.xxxx.tmp`) and other dot files are not yet in the inbox.
  return !name.startsWith('.');
}

async function walk(dir: string, box: string, rel: string, out: Map<string, InboxBacklog>): Promise<void> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return;
  }
  const key = rel === '' ? box : `${box}/${rel}`;
  const reader = SUB_READERS[key] ?? out.get(box)?.component ?? READERS[box] ?? box.replace(/\.box$/, '');
  let files = 0;
  let bad = 0;
  for (const e of entries) {
    if (e.isDirectory()) {
      // Dot folders are bookkeeping (upload markers in receive/.partial), not work waiting.
      if (!isWaiting(e.name)) continue;
      if (e.name === BAD_FOLDER) {
        bad += badFileNames(await readdir(join(dir, e.name)).catch(() => [] as string[])).length;
        continue;
      }
      if (NOT_BACKLOG.has(e.name)) continue;
      await walk(join(dir, e.name), box, rel === '' ? e.name : `${rel}/${e.name}`, out);
      continue;
    }
    if (isWaiting(e.name)) files += 1;
  }
  // A folder with neither files nor a bad/ of its own is only structure; its parent line says enough.
  if (rel === '' || files > 0 || bad > 0 || SUB_READERS[key] !== undefined) {
    out.set(key, { component: reader, inbox: key, files, bad });
  }
}

/** Files waiting in every inbox of the site (each `*.box`, and its queues with work in them). */
export async function readBacklogs(paths: Pick<SitePaths, 'inboxes'>): Promise<InboxBacklog[]> {
  const out = new Map<string, InboxBacklog>();
  const boxes = await readdir(paths.inboxes, { withFileTypes: true }).catch(() => []);
  for (const b of boxes) {
    if (!b.isDirectory() || !b.name.endsWith('.box')) continue;
    await walk(join(paths.inboxes, b.name), b.name, '', out);
  }
  return [...out.values()].sort((a, b) => (a.inbox < b.inbox ? -1 : 1));
}

/** Per-state counts over every DP of every package (for metrics and the console's summary). */
export function countStates(rows: readonly DpStateRow[]): Record<DpState, number> {
  const counts: Record<DpState, number> = { pending: 0, installed: 0, retrying: 0, failed: 0 };
  for (const r of rows) counts[r.state] += 1;
  return counts;
}
