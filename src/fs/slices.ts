import { performance } from 'node:perf_hooks';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** How long synchronous file-system work may hold the event loop before it yields. */
const SLICE_MS = 8;

/**
 * Runs many small synchronous file-system calls (stat, link, rename, unlink)
 * in slices: the caller calls `await slices.tick()` between calls, and every
 * few milliseconds that yields one turn of the event loop.
 *
 * Why not the promise API: each awaited call is a round trip through libuv's
 * thread pool, about 100 µs on a virtual machine against a few µs for the
 * call itself (walking a 3,400-entry tree one `await lstat()` at a time took
 * 0.33 s, and 22 ms synchronously). Why slices: the site server runs these
 * loops beside its HTTP server, which must keep answering. Only for the
 * site's own library: a path that may be on a network share (a package
 * source, a DP) is handled in a chunk worker instead, where a hung share
 * cannot stop the event loop.
 */
export class Slices {
  private started = performance.now();

  async tick(): Promise<void> {
    if (performance.now() - this.started < SLICE_MS) return;
    await nextTurn();
    this.started = performance.now();
  }
}
