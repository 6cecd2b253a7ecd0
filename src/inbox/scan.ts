import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { isTempName } from '../fs/atomic.js';
import { unsafeNameReason } from './name.js';

/** One file waiting in an inbox, as seen by the scan that found it. */
export interface InboxEntry {
  readonly name: string;
  readonly path: string;
  readonly size: number;
  readonly mtimeMs: number;
  /** inode number: tells a re-dropped file of the same name from the one handled. */
  readonly ino: number;
}

export interface ScanResult {
  files: InboxEntry[];
  /** Entries no handler may see (unsafe name, link, device…), with the reason. */
  refused: { entry: InboxEntry; reason: string }[];
}

/**
 * Lists what an inbox holds. Names starting with a dot (temporary files of a
 * write in flight, editor droppings) and sub-folders (bad/, outbound/…) are not
 * part of the inbox and are skipped. A file that vanished between readdir and
 * stat was taken by someone else and is skipped too.
 */
export async function scanInbox(dir: string): Promise<ScanResult> {
  const result: ScanResult = { files: [], refused: [] };
  const dirents = await readdir(dir, { withFileTypes: true });
  for (const dirent of dirents) {
    const name = dirent.name;
    if (name.startsWith('.') || isTempName(name) || dirent.isDirectory()) continue;
    const path = join(dir, name);
    let stats;
    try {
      stats = await lstat(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw err;
    }
    if (stats.isDirectory()) continue;
    const entry: InboxEntry = { name, path, size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino };
    const unsafe = unsafeNameReason(name);
    if (unsafe !== undefined) result.refused.push({ entry, reason: `unsafe file name: ${unsafe}` });
    else if (!stats.isFile()) result.refused.push({ entry, reason: 'not a regular file (link, fifo, socket or device)' });
    else result.files.push(entry);
  }
  return result;
}

/** Oldest first; the name breaks ties so the order is stable across scans. */
export function oldestFirst(a: InboxEntry, b: InboxEntry): number {
  if (a.mtimeMs !== b.mtimeMs) return a.mtimeMs - b.mtimeMs;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}
