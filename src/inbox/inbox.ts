import { type FSWatcher, watch } from 'node:fs';
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type ErrorCode, SitecastError, ioError } from '../errors.js';
import { DEFAULT_BAD_CODES, describeBadInput, holdForBad, isBadInput, placeInBad } from './bad.js';
import { removeIfUnchanged, restoreClaims } from './claim.js';
import { BAD_FOLDER } from './name.js';
import { type InboxEntry, oldestFirst, scanInbox } from './scan.js';

/**
 * Handles one file. It must be idempotent: the file is deleted only after the
 * returned promise resolves, so a crash anywhere before that hands the same
 * file over again on the next start.
 */
export type InboxHandler = (file: InboxEntry, signal: AbortSignal) => Promise<void>;

export interface InboxOptions {
  dir: string;
  handler: InboxHandler;
  /** Files handled at the same time (default 1, which keeps the order strict). */
  concurrency?: number;
  /** Full rescan period; catches files whose events were lost (default 5000 ms). */
  rescanMs?: number;
  /** Wake on file-system events (default true); the rescan runs either way. */
  watch?: boolean;
  /** Codes of SitecastErrors that mean "this file is bad", added to DEFAULT_BAD_CODES. */
  badCodes?: Iterable<ErrorCode>;
  /**
   * Called before a bad file is moved to bad/, so the caller can write a status
   * message. If it throws, the file stays and is retried: the message is
   * written at least once. A file that vanished from the inbox before it could
   * be held for bad/ is not reported.
   */
  onBad?: (name: string, reason: string) => void | Promise<unknown>;
  /** Transient failures (handler, scan, watcher); the inbox goes on. */
  onError?: (err: unknown, name: string | undefined) => void;
  /** Order of handling (default oldest first, then by name). */
  sort?: (a: InboxEntry, b: InboxEntry) => number;
  /** Files this inbox handles; others are left alone (default all). */
  accept?: (name: string) => boolean;
  /** Back-off after a transient failure: doubles from initialMs up to maxMs. */
  retry?: { initialMs?: number; maxMs?: number };
  /** Aborting closes the inbox. */
  signal?: AbortSignal;
}

export interface InboxStats {
  inFlight: number;
  queued: number;
  retrying: number;
}

interface Job {
  entry: InboxEntry;
  /** Set when the file is refused before any handler sees it. */
  refuse?: string;
}

function identityKey(entry: InboxEntry): string {
  return `${entry.name}\u0000${entry.ino}\u0000${entry.mtimeMs}\u0000${entry.size}`;
}

interface Backoff {
  attempts: number;
  notBefore: number;
}

export class Inbox {
  readonly dir: string;
  private readonly options: InboxOptions;
  private readonly badCodes: ReadonlySet<ErrorCode>;
  private readonly controller = new AbortController();
  private readonly inFlight = new Map<string, Promise<void>>();
  private readonly backoff = new Map<string, Backoff>();
  private retryTimer: { at: number; timer: NodeJS.Timeout } | undefined;
  private queue: Job[] = [];
  private watcher: FSWatcher | undefined;
  private interval: NodeJS.Timeout | undefined;
  private scanning: Promise<void> | undefined;
  /**
   * Files whose handler finished, by identity, with the scan number after
   * which their removal was complete (Infinity while it runs). A scan that
   * started before that may still list them and must not hand them out again.
   */
  private readonly finished = new Map<string, number>();
  private scanSeq = 0;
  /** Names a scan skipped because their handler was running: the inbox is scanned again when it ends. */
  private readonly lookAgain = new Set<string>();
  private rescanRequested = false;
  private started = false;
  private closing: Promise<void> | undefined;
  private readonly onExternalAbort = (): void => void this.close();

  constructor(options: InboxOptions) {
    this.options = options;
    this.dir = options.dir;
    this.badCodes = new Set([...DEFAULT_BAD_CODES, ...(options.badCodes ?? [])]);
  }

  private get concurrency(): number {
    return Math.max(1, this.options.concurrency ?? 1);
  }

  async start(): Promise<void> {
    if (this.closing !== undefined) throw new SitecastError('SITECAST_E_CLOSED', `inbox ${this.dir} was closed`);
    if (this.started) return;
    this.started = true;
    try {
      await mkdir(join(this.dir, BAD_FOLDER), { recursive: true });
    } catch (err) {
      this.started = false;
      throw ioError(`cannot create inbox ${this.dir}`, err);
    }
    await removeHolds(join(this.dir, BAD_FOLDER));
    await restoreClaims(this.dir);
    const signal = this.options.signal;
    if (signal?.aborted === true) {
      await this.close();
      return;
    }
    signal?.addEventListener('abort', this.onExternalAbort, { once: true });
    this.startWatcher();
    this.interval = setInterval(() => {
      if (this.watcher === undefined) this.startWatcher();
      this.wake();
    }, this.options.rescanMs ?? 5000);
    this.wake();
  }

  /** Asks for a scan now (coalesced with one already running). */
  wake(): void {
    if (!this.started || this.closing !== undefined) return;
    this.rescanRequested = true;
    this.scanning ??= this.runScans();
  }

  stats(): InboxStats {
    return { inFlight: this.inFlight.size, queued: this.queue.length, retrying: this.backoff.size };
  }

  /**
   * Stops watching, cancels handlers through their signal and waits for them.
   * Every step runs even if an earlier one fails; calling it again returns the
   * same promise. Files not yet deleted stay for the next start.
   */
  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    this.options.signal?.removeEventListener('abort', this.onExternalAbort);
    this.controller.abort();
    this.queue = [];
    if (this.interval !== undefined) clearInterval(this.interval);
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer.timer);
    this.retryTimer = undefined;
    try {
      this.watcher?.close();
    } catch (err) {
      this.report(err, undefined);
    }
    this.watcher = undefined;
    await this.scanning;
    await Promise.allSettled([...this.inFlight.values()]);
  }

  private startWatcher(): void {
    if (this.options.watch === false || this.closing !== undefined) return;
    try {
      const watcher = watch(this.dir, (_event, filename) => {
        // Temporary files announce themselves too; only the rename into place matters.
        if (typeof filename === 'string' && filename.startsWith('.')) return;
        this.wake();
      });
      watcher.on('error', (err) => {
        // Lost watcher (folder removed, too many watches): the rescan timer carries on and retries it.
        this.report(err, undefined);
        watcher.close();
        if (this.watcher === watcher) this.watcher = undefined;
      });
      this.watcher = watcher;
    } catch (err) {
      this.report(err, undefined);
    }
  }

  private async runScans(): Promise<void> {
    try {
      while (this.rescanRequested && this.closing === undefined) {
        this.rescanRequested = false;
        try {
          await this.scanOnce();
        } catch (err) {
          this.report(ioError(`cannot scan inbox ${this.dir}`, err), undefined);
        }
      }
    } finally {
      // Cleared in the same turn as the loop test, so a wake() cannot fall between them.
      this.scanning = undefined;
    }
  }

  private async scanOnce(): Promise<void> {
    const seq = ++this.scanSeq;
    for (const [key, doneAt] of this.finished) if (doneAt < seq) this.finished.delete(key);
    const { files, refused } = await scanInbox(this.dir);
    if (this.closing !== undefined) return;
    const now = Date.now();
    const present = new Set<string>();
    const accept = this.options.accept ?? ((): boolean => true);
    const ready = (entry: InboxEntry): boolean => {
      present.add(entry.name);
      // A file seen by readdir just before its handler finished and deleted it.
      if (this.finished.has(identityKey(entry))) return false;
      if (this.inFlight.has(entry.name)) {
        // Its handler runs (on this file or an older one of the name): look again when it ends.
        this.lookAgain.add(entry.name);
        return false;
      }
      const wait = this.backoff.get(entry.name);
      if (wait === undefined || wait.notBefore <= now) return true;
      this.wakeAt(wait.notBefore);
      return false;
    };
    const jobs: Job[] = refused.filter((r) => ready(r.entry)).map((r) => ({ entry: r.entry, refuse: r.reason }));
    const sort = this.options.sort ?? oldestFirst;
    const handled = files.filter((f) => accept(f.name) && ready(f)).sort(sort);
    for (const entry of handled) jobs.push({ entry });
    for (const name of this.backoff.keys()) if (!present.has(name)) this.backoff.delete(name);
    this.queue = jobs;
    this.pump();
  }

  private pump(): void {
    while (this.closing === undefined && this.inFlight.size < this.concurrency) {
      const job = this.queue.shift();
      if (job === undefined) return;
      const name = job.entry.name;
      if (this.inFlight.has(name)) continue;
      const run = this.process(job).finally(() => {
        this.inFlight.delete(name);
        if (this.lookAgain.delete(name)) this.wake();
        this.pump();
      });
      this.inFlight.set(name, run);
    }
  }

  /** Never rejects: every outcome is delete, bad/, or retry later. */
  private async process(job: Job): Promise<void> {
    const { entry } = job;
    if (job.refuse !== undefined) {
      await this.moveToBad(entry, job.refuse);
      return;
    }
    const signal = this.controller.signal;
    try {
      await this.options.handler(entry, signal);
    } catch (err) {
      if (signal.aborted) return;
      if (isBadInput(err, this.badCodes)) await this.moveToBad(entry, describeBadInput(err));
      else this.retryLater(entry.name, err);
      return;
    }
    try {
      const outcome = await this.removing(entry, () => removeIfUnchanged(entry));
      // A writer dropped a new file of the same name while we worked: it stays, to be handled again.
      if (outcome === 'replaced') this.wake();
    } catch (err) {
      this.retryLater(entry.name, ioError(`cannot delete ${entry.path}`, err));
      return;
    }
    this.backoff.delete(entry.name);
  }

  private async moveToBad(entry: InboxEntry, reason: string): Promise<void> {
    const badDir = join(this.dir, BAD_FOLDER);
    let held: string | undefined;
    try {
      const identity = await this.identity(entry);
      if (identity === 'gone') return;
      if (identity === 'replaced') {
        this.wake();
        return;
      }
      const hold = await holdForBad(entry, badDir);
      // Removed by someone else since the scan: nothing was written, so there is nothing to report.
      if (hold === 'gone') return;
      if (hold === 'replaced') {
        this.wake();
        return;
      }
      held = hold === 'unsupported' ? undefined : hold;
      await this.options.onBad?.(entry.name, reason);
      await this.removing(entry, () => placeInBad(entry, { badDir, held, reason }));
      this.backoff.delete(entry.name);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
      this.retryLater(entry.name, err);
    } finally {
      // Still there only when the move did not happen (onBad failed, or the move itself).
      if (held !== undefined) await rm(held, { force: true }).catch(() => undefined);
    }
  }

  private async removing<T>(entry: InboxEntry, remove: () => Promise<T>): Promise<T> {
    const key = identityKey(entry);
    this.finished.set(key, Infinity);
    try {
      return await remove();
    } finally {
      this.finished.set(key, this.scanSeq);
    }
  }

  /** Whether the name still holds the file handed out, another one, or nothing. */
  private async identity(entry: InboxEntry): Promise<'same' | 'replaced' | 'gone'> {
    try {
      const now = await lstat(entry.path);
      const same = now.ino === entry.ino && now.mtimeMs === entry.mtimeMs && now.size === entry.size;
      return same ? 'same' : 'replaced';
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
      throw err;
    }
  }

  private retryLater(name: string, err: unknown): void {
    if (this.closing !== undefined) return;
    const attempts = (this.backoff.get(name)?.attempts ?? 0) + 1;
    const initial = this.options.retry?.initialMs ?? 1000;
    const max = this.options.retry?.maxMs ?? 5 * 60_000;
    const delay = Math.min(max, initial * 2 ** Math.min(attempts - 1, 30));
    const notBefore = Date.now() + delay;
    this.backoff.set(name, { attempts, notBefore });
    this.report(err, name);
    this.wakeAt(notBefore);
  }

  /** One timer, for the earliest retry due; a scan re-arms it for what is still waiting. */
  private wakeAt(at: number): void {
    if (this.closing !== undefined) return;
    if (this.retryTimer !== undefined && this.retryTimer.at <= at) return;
    if (this.retryTimer !== undefined) clearTimeout(this.retryTimer.timer);
    // Timers may fire a little before Date.now() reaches `at`; the margin avoids a wasted scan.
    const timer = setTimeout(() => {
      this.retryTimer = undefined;
      this.wake();
    }, Math.max(0, at - Date.now()) + 2);
    this.retryTimer = { at, timer };
  }

  private report(err: unknown, name: string | undefined): void {
    try {
      this.options.onError?.(err, name);
    } catch {
      // A failing error reporter must not stop the inbox.
    }
  }
}

/**
 * Second links a crash left in bad/ between holding a bad file and moving it
 * there (see holdForBad): the file itself is still in the inbox (and is
 * judged again) or was removed by hand; the hold is only a name to drop.
 */
async function removeHolds(badDir: string): Promise<void> {
  const names = await readdir(badDir).catch(() => [] as string[]);
  for (const name of names) {
    if (name.startsWith('.held.') && name.endsWith('.tmp')) await rm(join(badDir, name), { force: true }).catch(() => undefined);
  }
}
