import { resolve } from 'node:path';

/**
 * Users and the collector of one content library inside this process. A
 * writer stores chunks before a manifest names them, and a reader needs the
 * chunks of a version that may stop being in use while it reads, so a
 * collection running in between would take them for garbage: users hold the
 * lock shared (many at once), a collection holds it alone. It waits for the
 * users that hold it, and new users wait while it runs (not while it waits:
 * a collection may wait for a quiet moment, a user never waits for one).
 * Every writer of a site's library and of its DP libraries is in the site
 * server's process, so a lock in memory is enough; `site backup`, the one
 * reader in another process, is kept apart by `src/site/library.ts`.
 */
class SharedExclusive {
  private readers = 0;
  private writer = false;
  private waiting: (() => void)[] = [];

  async shared<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer) await this.next();
    this.readers += 1;
    try {
      return await fn();
    } finally {
      this.readers -= 1;
      this.wakeAll();
    }
  }

  async exclusive<T>(fn: () => Promise<T>): Promise<T> {
    while (this.writer || this.readers > 0) await this.next();
    this.writer = true;
    try {
      return await fn();
    } finally {
      this.writer = false;
      this.wakeAll();
    }
  }

  /**
   * Callers inside `withLibrary` (holding, waiting, or woken and not yet
   * back): the lock may be dropped only when none is left. `waiting` alone
   * does not tell: a waiter woken by one holder's release has left it before
   * it runs again, and another holder's release may look in between.
   */
  callers = 0;

  private next(): Promise<void> {
    return new Promise((done) => this.waiting.push(done));
  }

  private wakeAll(): void {
    const waiting = this.waiting;
    this.waiting = [];
    for (const wake of waiting) wake();
  }
}

const locks = new Map<string, SharedExclusive>();

/** Runs `fn` holding the lock of the content library at `library`, shared (a user: ingest, install, pack) or alone (a collection). */
export async function withLibrary<T>(library: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
  const key = resolve(library);
  let lock = locks.get(key);
  if (lock === undefined) {
    lock = new SharedExclusive();
    locks.set(key, lock);
  }
  lock.callers += 1;
  try {
    return await (mode === 'shared' ? lock.shared(fn) : lock.exclusive(fn));
  } finally {
    lock.callers -= 1;
    if (lock.callers === 0) locks.delete(key);
  }
}
