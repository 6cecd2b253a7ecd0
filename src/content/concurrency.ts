/**
 * Runs `fn` over `items` with at most `limit` at once. Stops starting new
 * work after the first failure, waits for what is running, then throws that
 * first failure: no rejection is ever dropped.
 */
export async function forEachBounded<T>(items: Iterable<T>, limit: number, fn: (item: T) => Promise<void>): Promise<void> {
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  for (const item of items) {
    if (failure) break;
    const work = fn(item).then(
      () => undefined,
      (err: unknown) => {
        failure ??= { err };
      },
    );
    running.add(work);
    void work.finally(() => running.delete(work));
    if (running.size >= limit) await Promise.race(running);
  }
  await Promise.all(running);
  if (failure) throw failure.err;
}
