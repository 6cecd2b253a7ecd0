import { runMeasured } from './exec.js';
import { failure } from './outcome.js';
import type { Median, Outcome, Side } from './types.js';

/** The median of values already sorted. */
export function middle(sorted: number[]): number {
  const n = sorted.length;
  const hi = sorted[Math.floor(n / 2)] ?? Number.NaN;
  const lo = sorted[Math.floor((n - 1) / 2)] ?? Number.NaN;
  return (hi + lo) / 2;
}

class Series<T> {
  readonly samples: number[] = [];
  readonly values: T[] = [];

  /** Flushes the previous run's dirty pages (untimed), so no run pays another's writeback. */
  async once(side: Side<T>): Promise<void> {
    await side.prepare();
    await runMeasured('sync', []);
    const started = process.hrtime.bigint();
    this.values.push(await side.body());
    this.samples.push(Number(process.hrtime.bigint() - started) / 1e9);
  }

  median(): Median<T> {
    const seconds = middle([...this.samples].sort((a, b) => a - b));
    return { seconds, samples: this.samples, values: this.values };
  }
}

export async function medianOf<T>(runs: number, side: Side<T>): Promise<Median<T>> {
  const series = new Series<T>();
  for (let i = 0; i < runs; i++) await series.once(side);
  return series.median();
}

/**
 * Alternates reference and ours run by run, so drift on a shared machine hits
 * both sides alike. A side that fails stops; the other goes on.
 */
export async function pairedMedians<R, O>(
  runs: number,
  reference: Side<R>,
  ours: Side<O>,
): Promise<{ reference: Outcome<Median<R>>; ours: Outcome<Median<O>> }> {
  const ref = new Series<R>();
  const our = new Series<O>();
  let refFailed: Outcome<Median<R>> | undefined;
  let ourFailed: Outcome<Median<O>> | undefined;
  for (let i = 0; i < runs; i++) {
    if (refFailed === undefined) await ref.once(reference).catch((err: unknown) => (refFailed = failure(err)));
    if (ourFailed === undefined) await our.once(ours).catch((err: unknown) => (ourFailed = failure(err)));
  }
  return {
    reference: refFailed ?? { ok: true, value: ref.median() },
    ours: ourFailed ?? { ok: true, value: our.median() },
  };
}
