/** One reading of an address's transfer rate (bytes per second) at a time (ms since the epoch). */
export interface RateSample {
  t: number;
  rate: number;
}

/**
 * The transfer rate of each address over the last hour, kept by the site
 * server in memory: sampled every few seconds whether or not anyone watches,
 * so a console opened now draws the hour behind it, not only what happens
 * after. A restart starts an empty history (the rates are not worth a
 * database write every few seconds).
 */
export class RateHistory {
  readonly #windowMs: number;
  readonly #samples = new Map<string, RateSample[]>();

  constructor(windowMs = 60 * 60 * 1000) {
    this.#windowMs = windowMs;
  }

  /** Records the current rate of each address; addresses gone for a whole window are forgotten. */
  sample(addresses: readonly { to: string; rate: number }[], t = Date.now()): void {
    for (const a of addresses) {
      const list = this.#samples.get(a.to) ?? [];
      list.push({ t, rate: a.rate });
      this.#samples.set(a.to, list);
    }
    for (const [to, list] of this.#samples) {
      let drop = 0;
      while (drop < list.length && (list[drop] as RateSample).t < t - this.#windowMs) drop += 1;
      if (drop > 0) list.splice(0, drop);
      if (list.length === 0) this.#samples.delete(to);
    }
  }

  /** Every address's samples, oldest first (copies). */
  history(): Record<string, RateSample[]> {
    return Object.fromEntries([...this.#samples].map(([to, list]) => [to, list.map((s) => ({ ...s }))]));
  }
}
