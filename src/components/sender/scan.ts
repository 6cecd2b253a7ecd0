import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isBadInput } from '../../inbox/bad.js';
import { DEFAULT_BAD_CODES } from '../../inbox/bad.js';
import { scanInbox } from '../../inbox/scan.js';
import { SENDER_KINDS, SRQ_SUFFIX, SRS_SUFFIX, type SenderKind } from '../../formats/srq.js';
import { readSendFile } from '../../formats/srs.js';
import type { Pending } from './queue.js';

interface Cached {
  key: string;
  pending: Pending;
}
const cache = new Map<string, Cached>();
const BAD = new Set(DEFAULT_BAD_CODES);

/**
 * Reads an outbox with the inbox scan (temporary and dot names skipped,
 * links and special files refused): every `.SRQ` and `.SRS`, parsed once per
 * version of the file. Files that do not parse are returned as bad.
 */
export async function scanOutbox(
  dir: string,
  sender: SenderKind,
  busy: (name: string) => boolean,
): Promise<{ requests: Pending[]; bad: { path: string; name: string; reason: string }[] }> {
  const { files, refused } = await scanInbox(dir);
  const requests: Pending[] = [];
  const bad = refused.map((r) => ({ path: r.entry.path, name: r.entry.name, reason: r.reason }));
  for (const f of files) {
    if (!f.name.endsWith(SRQ_SUFFIX) && !f.name.endsWith(SRS_SUFFIX)) continue;
    if (busy(f.name) || busy(f.name.replace(/\.SRS$/, SRQ_SUFFIX))) continue;
    const key = `${f.ino}:${f.mtimeMs}:${f.size}`;
    const hit = cache.get(f.path);
    if (hit?.key === key) {
      requests.push(hit.pending);
      continue;
    }
    try {
      const { request, status } = await readSendFile(f.path);
      const pending: Pending = { name: f.name, path: f.path, sender, request, status };
      cache.set(f.path, { key, pending });
      requests.push(pending);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      if (isBadInput(err, BAD)) bad.push({ path: f.path, name: f.name, reason: err instanceof Error ? err.message : String(err) });
    }
  }
  for (const path of cache.keys()) if (path.startsWith(`${dir}/`) && !files.some((f) => f.path === path)) cache.delete(path);
  return { requests, bad };
}

export interface AddressQueue {
  to: string;
  /** Requests waiting: `.SRQ`, and `.SRS` retrying or failed. */
  queued: number;
  /** Requests connecting or sending now. */
  sending: number;
}

/** What waits and what is being sent, per target site, read from the outboxes. */
export async function addressQueues(scheduleOutboxes: string): Promise<Map<string, AddressQueue>> {
  const out = new Map<string, AddressQueue>();
  for (const kind of SENDER_KINDS) {
    const dir = join(scheduleOutboxes, kind);
    const names = await readdir(dir).catch(() => [] as string[]);
    for (const name of names) {
      if (name.startsWith('.') || (!name.endsWith(SRQ_SUFFIX) && !name.endsWith(SRS_SUFFIX))) continue;
      const path = join(dir, name);
      if (!(await lstat(path).then((s) => s.isFile(), () => false))) continue;
      const parsed = await readSendFile(path).catch(() => undefined);
      if (parsed === undefined) continue;
      const q = out.get(parsed.request.to) ?? { to: parsed.request.to, queued: 0, sending: 0 };
      const state = parsed.status?.state;
      if (name.endsWith(SRS_SUFFIX) && (state === 'connecting' || state === 'sending')) q.sending += 1;
      else q.queued += 1;
      out.set(q.to, q);
    }
  }
  return out;
}
