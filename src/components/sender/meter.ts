/**
 * Bytes per second over a sliding window (3 s by default), from the bytes a
 * sender reports as they cross the link.
 */
export class RateMeter {
  private readonly events: { at: number; bytes: number }[] = [];

  constructor(
    private readonly windowMs = 3000,
    private readonly now: () => number = () => performance.now(),
  ) {}

  add(bytes: number): void {
    if (bytes > 0) this.events.push({ at: this.now(), bytes });
  }

  rate(): number {
    const t = this.now();
    while (this.events.length > 0 && (this.events[0]?.at ?? t) < t - this.windowMs) this.events.shift();
    const first = this.events[0];
    if (first === undefined) return 0;
    const sum = this.events.reduce((s, e) => s + e.bytes, 0);
    return sum / (Math.max(t - first.at, 1000) / 1000);
  }
}

/** One observation: `bytes` seen at time `at` (ms). */
export interface RateSample {
  at: number;
  bytes: number;
}

/**
 * How steady a flow was: the mean rate from the first to the last sample
 * (bytes/s), and the largest number of bytes seen in any window of
 * `windowMs` (sliding, aligned on samples) expressed as bytes/s. What the
 * rate-limit tests and the benchmark check: mean within a few percent of the
 * limit, no window far above it.
 */
export function rateWindows(samples: readonly RateSample[], windowMs = 1000): { mean: number; maxWindow: number; bytes: number; seconds: number } {
  const sorted = [...samples].sort((a, b) => a.at - b.at);
  const first = sorted[0];
  const last = sorted.at(-1);
  if (first === undefined || last === undefined) return { mean: 0, maxWindow: 0, bytes: 0, seconds: 0 };
  const bytes = sorted.reduce((s, x) => s + x.bytes, 0);
  const seconds = (last.at - first.at) / 1000;
  // The first sample's bytes arrived before the clock started: leave them out of the mean.
  const mean = seconds > 0 ? (bytes - first.bytes) / seconds : 0;
  let maxWindow = 0;
  let sum = 0;
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    sum += (sorted[hi] as RateSample).bytes;
    while ((sorted[hi] as RateSample).at - (sorted[lo] as RateSample).at >= windowMs) sum -= (sorted[lo++] as RateSample).bytes;
    if ((sorted[hi] as RateSample).at - first.at >= windowMs) maxWindow = Math.max(maxWindow, sum / (windowMs / 1000));
  }
  return { mean, maxWindow, bytes, seconds };
}
