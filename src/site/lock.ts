import { existsSync, linkSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { link, readFile, rm, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';

/** The file that says a site server runs on this root: `<root>/site.lock`. */
export const LOCK_FILE = 'site.lock';

/** A process, told apart from any later holder of its pid: what the site lock and the library's markers (src/site/library.ts) record. */
export interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  /**
   * When the process started, in clock ticks since boot (`starttime` of
   * /proc/<pid>/stat): with the pid it names one process, not whichever
   * process holds that pid now. Absent off Linux and in locks of older versions.
   */
  startTicks?: number;
  /**
   * The boot the process ran in (/proc/sys/kernel/random/boot_id): a lock
   * from an earlier boot names no running process, whatever its pid and
   * start time are now. Absent off Linux and in locks of older versions.
   */
  bootId?: string;
}

export interface SiteLock {
  /** Removes the lock if it is still this process's. Idempotent. */
  release(): Promise<void>;
}

export function parseLockInfo(text: string): LockInfo | undefined {
  try {
    const v = JSON.parse(text) as Partial<LockInfo>;
    if (typeof v.pid !== 'number' || typeof v.host !== 'string' || typeof v.startedAt !== 'string') return undefined;
    const info: LockInfo = { pid: v.pid, host: v.host, startedAt: v.startedAt };
    if (Number.isSafeInteger(v.startTicks)) info.startTicks = v.startTicks as number;
    if (typeof v.bootId === 'string') info.bootId = v.bootId;
    return info;
  } catch {
    // fall through: not a lock we wrote
  }
  return undefined;
}

function signalable(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

interface ProcStat {
  /** Field 3: R, S, D, …; Z a zombie (dead, not yet reaped), X (x before Linux 3.14) dead. */
  state: string;
  /** Field 22: start time in clock ticks since boot. */
  startTicks: number;
}

/**
 * Reads /proc/<pid>/stat: 'gone' when the process does not exist, undefined
 * when it cannot be told (no /proc, not Linux; a line that does not parse).
 */
async function procStat(pid: number): Promise<ProcStat | 'gone' | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // ESRCH: the process ended while its file was read.
    return (code === 'ENOENT' && existsSync('/proc/self/stat')) || code === 'ESRCH' ? 'gone' : undefined;
  }
  // Field 2, the command name, is in parentheses and may itself hold spaces
  // and parentheses: the fields after it start after the last ')'.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const state = fields[0] ?? '';
  const ticks = fields[19] ?? '';
  if (!/^[A-Za-z]$/.test(state) || !/^\d+$/.test(ticks)) return undefined;
  return { state, startTicks: Number(ticks) };
}

/** This boot's id, or undefined off Linux. */
async function currentBoot(): Promise<string | undefined> {
  const text = await readFile('/proc/sys/kernel/random/boot_id', 'utf8').catch(() => undefined);
  const id = text?.trim();
  return id === undefined || id === '' ? undefined : id;
}

/**
 * Whether the process a lock names on this host still runs. After `kill -9`
 * the server can linger a moment as a zombie, which kill(pid, 0) still
 * reaches; after a reboot its pid may belong to an unrelated process. The
 * boot id and the start time tell both apart from the server; without /proc
 * (not Linux) only kill(pid, 0) is left.
 */
async function ownerRuns(held: LockInfo, boot: string | undefined): Promise<boolean> {
  if (held.bootId !== undefined && boot !== undefined && held.bootId !== boot) return false;
  const stat = await procStat(held.pid);
  if (stat === 'gone') return false;
  if (stat === undefined) return signalable(held.pid);
  if (stat.state === 'Z' || stat.state === 'X' || stat.state === 'x') return false;
  if (held.startTicks !== undefined) return stat.startTicks === held.startTicks;
  return signalable(held.pid);
}

/** This process, as a lock or marker records it. */
export async function thisProcess(): Promise<LockInfo> {
  const mine: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString() };
  const self = await procStat(process.pid);
  if (self !== undefined && self !== 'gone') mine.startTicks = self.startTicks;
  const boot = await currentBoot();
  if (boot !== undefined) mine.bootId = boot;
  return mine;
}

/**
 * Whether the process `held` names may still run: true for a process of
 * another host (that cannot be told from here), else as `ownerRuns` tells.
 */
export async function processMayRun(held: LockInfo): Promise<boolean> {
  if (held.host !== hostname()) return true;
  return ownerRuns(held, await currentBoot());
}

/**
 * Creates the lock with its whole content in one step: written under a
 * temporary name, then hard-linked to the lock's name (link(2) fails when the
 * name exists). A reader never sees an empty lock. False when a lock exists.
 */
async function createWhole(path: string, text: string): Promise<boolean> {
  const tmp = `${path}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { flag: 'wx', mode: 0o644 });
    await link(tmp, path);
    return true;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
    throw ioError(`cannot create ${path}`, err);
  } finally {
    await rm(tmp, { force: true });
  }
}

/**
 * Removes a stale lock whose content was `stale`. It is renamed aside first
 * and compared: if another starter replaced it meanwhile, that new lock is
 * put back (when the name is still free) instead of being removed.
 */
async function retire(path: string, stale: string): Promise<void> {
  const aside = `${path}.${randomBytes(6).toString('hex')}.stale`;
  // Synchronous from the move to the put-back: an await in between let another starter of this process create a
  // lock while the one moved aside was live, and both won.
  try {
    renameSync(path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`cannot take over ${path}`, err);
  }
  try {
    if (readFileSync(aside, 'utf8') !== stale) {
      try {
        linkSync(aside, path);
      } catch {
        // another starter made a lock meanwhile: it stands
      }
    }
  } finally {
    rmSync(aside, { force: true });
  }
}

/**
 * Takes the site root for this process: one site server per root, since two
 * would process the same inboxes and write the same DPs. The lock is a file
 * created exclusively, naming the process (pid and start time) and the
 * host; a lock left by a process that no longer runs on this host (a crash,
 * `kill -9`, a reboot) is taken over. A lock held by a live process, or by
 * another host (a root on a shared file system), is refused with
 * SITECAST_E_SITE_RUNNING.
 */
export async function lockSiteRoot(root: string, code: string): Promise<SiteLock> {
  const path = join(root, LOCK_FILE);
  const mine = await thisProcess();
  const boot = mine.bootId;
  const text = `${JSON.stringify(mine)}\n`;
  for (let attempt = 0; ; attempt++) {
    if (await createWhole(path, text)) break;
    const heldText = await readFile(path, 'utf8').catch(() => undefined);
    if (heldText === undefined) continue; // removed meanwhile: try again
    const held = parseLockInfo(heldText);
    const stale = held === undefined || (held.host === mine.host && !(await ownerRuns(held, boot)));
    if (!stale || attempt > 2) {
      const who = held === undefined ? 'another process' : held.host === mine.host ? `process ${held.pid} (since ${held.startedAt})` : `process ${held.pid} on host ${held.host} (since ${held.startedAt})`;
      throw new SitecastError('SITECAST_E_SITE_RUNNING', `site ${code} at ${root} is already running in ${who}`, {
        hint: `stop that server first (SIGTERM); if no Sitecast server runs on this root any more, remove ${path}`,
      });
    }
    // Left by a process that is gone: take it over. Moved aside first, so
    // that a lock another starter took over a moment ago is not removed.
    await retire(path, heldText);
  }
  let released = false;
  return {
    release: async () => {
      if (released) return;
      released = true;
      const held = parseLockInfo(await readFile(path, 'utf8').catch(() => ''));
      if (held?.pid === mine.pid && held.host === mine.host && held.startedAt === mine.startedAt) await rm(path, { force: true });
    },
  };
}
