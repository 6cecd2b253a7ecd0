import type { Outcome } from './types.js';

export function failure(err: unknown): { ok: false; error: string } {
  return { ok: false, error: err instanceof Error ? err.message : String(err) };
}

export async function attempt<T>(fn: () => Promise<T>): Promise<Outcome<T>> {
  try {
    return { ok: true, value: await fn() };
  } catch (err) {
    return failure(err);
  }
}

/** Runs the next step only if the previous one worked; otherwise passes its error on. */
export function chain<T, U>(previous: Outcome<T>, next: (value: T) => Promise<U>): Promise<Outcome<U>> {
  if (!previous.ok) return Promise.resolve(previous);
  return attempt(() => next(previous.value));
}

/** Derives a figure from an outcome (e.g. bytes from a richer result). */
export function map<T, U>(outcome: Outcome<T>, fn: (value: T) => U): Outcome<U> {
  return outcome.ok ? { ok: true, value: fn(outcome.value) } : outcome;
}
