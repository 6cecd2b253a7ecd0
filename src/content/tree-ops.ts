import { chmodSync, linkSync, lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { ioError } from '../errors.js';

/**
 * The many small file-system calls that shape a tree (folders, links, modes,
 * hard links to an unchanged earlier copy), run synchronously in a chunk
 * worker (`ChunkPool.treeOps`) and in the order given.
 *
 * Why not the promise API on the main thread: each awaited call is a round
 * trip through libuv's thread pool, about 100 µs on a virtual machine
 * against a few µs for the call itself (node's 600 folders and their modes
 * cost 0.1 s that way). Why not synchronous calls on the main thread: a DP
 * folder may sit on a network share, and a slow or hung one must hold a
 * worker, never the site server's event loop. `name` is the path shown in
 * errors (relative to the tree).
 */
export type TreeOp =
  | { op: 'mkdir'; path: string; name: string; mode?: number }
  | { op: 'symlink'; path: string; name: string; target: string }
  | { op: 'chmod'; path: string; name: string; mode: number }
  /** Hard-links `from` (a regular file of `size` bytes) to `path`; its result says whether it did. */
  | { op: 'linkIfSame'; path: string; name: string; from: string; size: number };

/** Runs the operations in order; returns one flag per `linkIfSame` (true: linked; false: that copy is not usable). */
export function runTreeOps(ops: readonly TreeOp[]): boolean[] {
  const linked: boolean[] = [];
  for (const op of ops) {
    if (op.op === 'linkIfSame') linked.push(linkIfSame(op));
    else if (op.op === 'mkdir') named(`cannot create folder ${op.name}`, () => mkdirSync(op.path, op.mode === undefined ? {} : { mode: op.mode }));
    else if (op.op === 'symlink') named(`cannot create link ${op.name}`, () => symlinkSync(op.target, op.path));
    else named(`cannot set the mode of ${op.name}`, () => chmodSync(op.path, op.mode));
  }
  return linked;
}

/** Runs one call; its system error becomes a product error saying what could not be done. */
function named(what: string, call: () => unknown): void {
  try {
    call();
  } catch (err) {
    throw ioError(what, err);
  }
}

function linkIfSame(op: Extract<TreeOp, { op: 'linkIfSame' }>): boolean {
  try {
    const st = lstatSync(op.from);
    if (!st.isFile() || st.size !== op.size) return false;
    linkSync(op.from, op.path);
    return true;
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    // Gone, another file system or a link limit: the caller writes it instead. A full disk is a real failure.
    if (code === 'ENOENT' || code === 'EXDEV' || code === 'EMLINK' || code === 'EPERM') return false;
    throw ioError(`cannot link ${op.name}`, err);
  }
}
