import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Bandwidth limits of an address, shared by every transfer to it. A sender
 * asks `take(n)` before it puts n bytes on the link and waits for the answer.
 */
export interface Throttle {
  take(bytes: number, signal?: AbortSignal): Promise<void>;
}

/** What limits an address now: a rate in bytes per second (null: unlimited), or pulses. */
export type Limit = { mode: 'rate'; bytesPerSecond: number | null } | { mode: 'pulse'; blockBytes: number; delayMs: number };

type Clock = () => number;
const monotonic: Clock = () => performance.now();

/**
 * A token bucket that starts empty and may go into debt: a taker deducts at
 * once and waits until the debt is paid back at the current rate. The long-
 * run rate is exact whatever the timer jitter (time is read, not counted),
 * and the burst allowance (`burstSeconds` of rate, 50 ms by default) keeps
 * every one-second window close to the rate. A rate that changes (the hour
 * turned) takes effect at the next take.
 */
export class TokenBucket implements Throttle {
  private tokens = 0;
  private last: number;

  constructor(
    private readonly rate: () => number | null,
    private readonly burstSeconds = 0.05,
    private readonly now: Clock = monotonic,
  ) {
    this.last = now();
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    const rate = this.rate();
    const t = this.now();
    if (rate === null || rate <= 0) {
      this.tokens = 0;
      this.last = t;
      return;
    }
    this.tokens = Math.min(rate * this.burstSeconds, this.tokens + ((t - this.last) / 1000) * rate);
    this.last = t;
    this.tokens -= bytes;
    if (this.tokens >= 0) return;
    await sleep(Math.ceil((-this.tokens / rate) * 1000), undefined, signal ? { signal } : {});
  }
}

/**
 * Pulse mode: a block of bytes goes at full speed, then the link rests for
 * the delay. Meant for slow or shared links, where a steady trickle would
 * hold the line all day.
 */
export class PulseGate implements Throttle {
  private inBlock = 0;
  private restUntil = 0;

  constructor(
    private readonly blockBytes: () => number,
    private readonly delayMs: () => number,
    private readonly now: Clock = monotonic,
  ) {}

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    for (;;) {
      const wait = this.restUntil - this.now();
      if (wait <= 0) break;
      await sleep(Math.ceil(wait), undefined, signal ? { signal } : {});
    }
    this.inBlock += bytes;
    if (this.inBlock >= this.blockBytes()) {
      this.inBlock = 0;
      this.restUntil = this.now() + this.delayMs();
    }
  }
}

/**
 * The throttle of one address: follows the address's limit as it changes
 * (the hour turns, an administrator switches to pulse mode) without losing
 * the state of the mode in force.
 */
export class AddressThrottle implements Throttle {
  private limit: Limit;
  private readonly bucket: TokenBucket;
  private readonly pulse: PulseGate;

  constructor(limit: () => Limit) {
    this.limit = limit();
    const read = (): Limit => (this.limit = limit());
    this.bucket = new TokenBucket(() => {
      const l = read();
      return l.mode === 'rate' ? l.bytesPerSecond : null;
    });
    this.pulse = new PulseGate(
      () => (this.limit.mode === 'pulse' ? this.limit.blockBytes : Number.MAX_SAFE_INTEGER),
      () => (this.limit.mode === 'pulse' ? this.limit.delayMs : 0),
    );
  }

  async take(bytes: number, signal?: AbortSignal): Promise<void> {
    await this.bucket.take(bytes, signal);
    if (this.limit.mode === 'pulse') await this.pulse.take(bytes, signal);
  }
}

export const unlimited: Throttle = { take: async () => undefined };

/**
 * The largest slice a sender should hand the throttle at once: small enough
 * that a one-second window never runs far over the rate, large enough to keep
 * system calls few.
 */
export function sliceSize(limit: Limit): number {
  if (limit.mode === 'pulse') return Math.max(1024, Math.min(64 * 1024, limit.blockBytes));
  if (limit.bytesPerSecond === null) return 256 * 1024;
  return Math.max(1024, Math.min(64 * 1024, Math.floor(limit.bytesPerSecond / 50)));
}
