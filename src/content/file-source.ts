import type { ByteSource } from './patch.js';
import { ChunkCodec, readChunk } from './store.js';
import type { FileEntry } from './types.js';

/**
 * Random access to a file version held in a library, without rebuilding it:
 * reads decompress (and verify) only the chunks a range touches, keeping the
 * last few in a small cache because patches read windows sequentially.
 */
export function libraryFileSource(libraryDir: string, entry: FileEntry, codec = new ChunkCodec()): ByteSource {
  const starts: number[] = [];
  let pos = 0;
  for (const c of entry.chunks) {
    starts.push(pos);
    pos += c.size;
  }
  const cache = new Map<number, Buffer>();
  const chunkAt = (index: number): Buffer => {
    const hit = cache.get(index);
    if (hit) return hit;
    const ref = entry.chunks[index];
    if (!ref) throw new RangeError(`chunk ${index} out of range`);
    const data = readChunk(libraryDir, codec, ref.hash, ref.size);
    cache.set(index, data);
    if (cache.size > 8) cache.delete(cache.keys().next().value as number);
    return data;
  };
  const findChunk = (offset: number): number => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if ((starts[mid] as number) <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo;
  };
  return {
    size: entry.size,
    read(offset: number, length: number): Promise<Buffer> {
      if (offset < 0 || length < 0 || offset + length > entry.size) {
        return Promise.reject(new RangeError(`read ${offset}+${length} outside a file of ${entry.size} bytes`));
      }
      const out = Buffer.allocUnsafe(length);
      let filled = 0;
      let index = length === 0 ? 0 : findChunk(offset);
      while (filled < length) {
        const data = chunkAt(index);
        const start = (starts[index] as number);
        const from = offset + filled - start;
        const n = Math.min(data.length - from, length - filled);
        data.copy(out, filled, from, from + n);
        filled += n;
        index++;
      }
      return Promise.resolve(out);
    },
  };
}
