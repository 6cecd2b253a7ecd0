import { readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';

/** The file that says a site server runs on this root: `<root>/site.lock`. */
export const LOCK_FILE = 'site.lock';

interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
}

export interface SiteLock {
  /** Removes the lock if it is still this process's. Idempotent. */
  release(): Promise<void>;
}

function parse(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid === 'number' && typeof v.host === 'string' && typeof v.startedAt === 'string') return { pid: v.pid, host: v.host, startedAt: v.startedAt };
  } catch {
    // fall through: not a lock we wrote
  }
  return undefined;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Takes the site root for this process: one site server per root, since two
 * would process the same inboxes and write the same DPs. The lock is a file
 * created exclusively, naming the process and the host; a lock left by a
 * process that no longer runs on this host (a crash, `kill -9`) is taken
 * over. A lock held by a live process, or by another host (a root on a
 * shared file system), is refused with SITECAST_E_SITE_RUNNING.
 */
export async function lockSiteRoot(root: string, code: string): Promise<SiteLock> {
  const path = join(root, LOCK_FILE);
  const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; ; attempt++) {
    try {
      await writeFile(path, text, { flag: 'wx', mode: 0o644 });
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw ioError(`cannot create ${path}`, err);
    }
    const held = parse(await readFile(path, 'utf8').catch(() => ''));
    const stale = held === undefined || (held.host === mine.host && !alive(held.pid));
    if (!stale || attempt > 0) {
      const who = held === undefined ? 'another process' : held.host === mine.host ? `process ${held.pid} (since ${held.startedAt})` : `process ${held.pid} on host ${held.host} (since ${held.startedAt})`;
      throw new SitecastError('SITECAST_E_SITE_RUNNING', `site ${code} at ${root} is already running in ${who}`, {
        hint: `stop that server first (SIGTERM); if no Sitecast server runs on this root any more, remove ${path}`,
      });
    }
    // Left by a process that is gone: take it over.
    await rm(path, { force: true });
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      const held = parse(await readFile(path, 'utf8').catch(() => ''));
      if (held?.pid === mine.pid && held.host === mine.host && held.startedAt === mine.startedAt) await rm(path, { force: true });
    },
  };
}
