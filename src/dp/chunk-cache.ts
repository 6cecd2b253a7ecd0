import type { Stats } from 'node:fs';

/** What a cached frame was read from: a changed, replaced or removed file is read again. */
interface Entry {
  frame: Buffer;
  ino: number;
  mtimeMs: number;
}

/**
 * The chunk frames a DP served last, in memory, least recently used dropped
 * first once they pass `maxBytes`. When a hundred clients fetch the same
 * package at once, each frame is read from disk once instead of a hundred
 * times (open, read, close and a new buffer each).
 *
 * A hit needs the file's current stat to match what was read (inode, size,
 * modification time), so a chunk removed from the DP is never served from
 * memory, and one rewritten in place (damage, or a repair) is read again.
 */
export class ChunkFrameCache {
  readonly #entries = new Map<string, Entry>();
  #bytes = 0;

  constructor(readonly maxBytes: number) {}

  get bytes(): number {
    return this.#bytes;
  }

  get size(): number {
    return this.#entries.size;
  }

  /** The cached frame of `path` if it is still what `st` describes. */
  get(path: string, st: Stats): Buffer | undefined {
    const e = this.#entries.get(path);
    if (e === undefined) return undefined;
    if (e.ino !== st.ino || e.mtimeMs !== st.mtimeMs || e.frame.length !== st.size) {
      this.#drop(path, e);
      return undefined;
    }
    // Most recently used last: Map keeps insertion order.
    this.#entries.delete(path);
    this.#entries.set(path, e);
    return e.frame;
  }

  /** Keeps `frame`, read from `path` whose stat (taken before the read) is `st`. */
  put(path: string, st: Stats, frame: Buffer): void {
    if (frame.length > this.maxBytes / 4 || frame.length !== st.size) return;
    const old = this.#entries.get(path);
    if (old !== undefined) this.#drop(path, old);
    this.#entries.set(path, { frame, ino: st.ino, mtimeMs: st.mtimeMs });
    this.#bytes += frame.length;
    for (const [key, e] of this.#entries) {
      if (this.#bytes <= this.maxBytes) break;
      this.#drop(key, e);
    }
  }

  #drop(path: string, e: Entry): void {
    this.#entries.delete(path);
    this.#bytes -= e.frame.length;
  }
}
