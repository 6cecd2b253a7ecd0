import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long synchronous file-system work may hold the event loop before it yields. */
const SLICE_MS = 8;

/**
 * Runs many small synchronous file-system calls (stat, mkdir, link, chmod)
 * in slices: the caller calls `await slices.tick()` between calls, and every
 * few milliseconds that yields one turn of the event loop.
 *
 * Why not the promise API: each awaited call is a round trip through libuv's
 * thread pool, about 100 µs on a virtual machine against a few µs for the
 * call itself, so walking a 3,400-entry tree one `await lstat()` at a time
 * took 0.33 s, and 22 ms synchronously. Why slices: the site server runs
 * these loops beside its HTTP server, which must keep answering.
 */
export class Slices {
  private started = performance.now();

  async tick(): Promise<void> {
    if (performance.now() - this.started < SLICE_MS) return;
    await nextTurn();
    this.started = performance.now();
  }
}
