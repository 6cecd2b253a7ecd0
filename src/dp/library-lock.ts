import { resolve } from 'node:path';

/**
 * Readers and writers of one DP library inside this process. An install
 * stores chunks before its manifest names them, so a collection running in
 * between would take them for garbage: installs hold the lock shared (many
 * at once), a collection holds it alone. Every writer of a DP library is in
 * the site server's process (Distribution Manager), so a lock in memory is
 * enough; a collection waits for running installs, and new installs wait for
 * a running collection.
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

  get idle(): boolean {
    return !this.writer && this.readers === 0 && this.waiting.length === 0;
  }

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

/** Runs `fn` holding the lock of the DP library at `library`, shared (an install) or alone (a collection). */
export async function withDpLibrary<T>(library: string, mode: 'shared' | 'exclusive', fn: () => Promise<T>): Promise<T> {
  const key = resolve(library);
  let lock = locks.get(key);
  if (lock === undefined) {
    lock = new SharedExclusive();
    locks.set(key, lock);
  }
  try {
    return await (mode === 'shared' ? lock.shared(fn) : lock.exclusive(fn));
  } finally {
    if (lock.idle) locks.delete(key);
  }
}
