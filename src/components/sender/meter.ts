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
