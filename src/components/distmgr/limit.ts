/** At most `limit` holders at once; waiters are served in order. */
export class Semaphore {
  private used = 0;
  private readonly waiters: (() => void)[] = [];

  constructor(private readonly limit: number) {}

  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.used >= this.limit) await new Promise<void>((resolve) => this.waiters.push(resolve));
    else this.used += 1;
    try {
      return await fn();
    } finally {
      const next = this.waiters.shift();
      if (next !== undefined) next();
      else this.used -= 1;
    }
  }
}

/** Delay before retry number `attempt` (1-based): doubles from initialMs, capped at maxMs. */
export function backoffMs(attempt: number, initialMs: number, maxMs: number): number {
  return Math.min(maxMs, initialMs * 2 ** Math.min(Math.max(attempt - 1, 0), 30));
}
