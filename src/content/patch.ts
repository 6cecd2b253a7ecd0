import { open } from 'node:fs/promises';
import { Compressor } from 'zstd-napi';
import zstd from 'zstd-napi/binding.js';
import { SitecastError, ioError } from '../errors.js';

/**
 * Binary patches of one file against its previous version (format in
 * docs/formats/patch.md). The new file is cut into segments; each segment is
 * one zstd frame whose raw-content dictionary is a handful of old-file ranges
 * found by content-defined anchors, so long-distance matches stay in reach
 * without ever holding either whole file in memory.
 */

/** Random access to the bytes of a file version (the old one lives in a chunk store, so it is not a path). */
export interface ByteSource {
  readonly size: number;
  read(offset: number, length: number): Promise<Buffer>;
}

export interface CreatePatchOptions {
  /** Give up (return null) once the patch reaches this many bytes. */
  limit?: number;
  /** zstd level; the default 10 keeps the node binary pair near `zstd -19 --long` in a few seconds. */
  level?: number;
  signal?: AbortSignal;
}

interface Range {
  offset: number;
  length: number;
}

const MAGIC = Buffer.from('SCPT', 'latin1');
const VERSION = 1;
const HEADER_SIZE = 26;
const SEGMENT_HEADER_SIZE = 10;
const RANGE_SIZE = 12;
/** What the writer uses; the reader accepts up to the MAX_ values so the writer can be retuned. */
const SEGMENT_SIZE = 4 << 20;
const DICT_BUDGET = 8 << 20;
const MAX_SEGMENT = 16 << 20;
const MAX_DICT = 32 << 20;
const MAX_RANGES = 4096;
const DEFAULT_LEVEL = 10;
/** Old-file matches closer than this are one cluster; each cluster is widened by PAD on both sides. */
const CLUSTER_GAP = 256 << 10;
const CLUSTER_PAD = 64 << 10;
const INDEX_PIECE = 8 << 20;
const MAX_ANCHORS = 1 << 21;
const ZSTD_DICT_MAGIC = 0xec30a437;

export function bufferByteSource(buf: Buffer): ByteSource {
  return {
    size: buf.length,
    read: (offset, length) => {
      checkRead(offset, length, buf.length);
      return Promise.resolve(buf.subarray(offset, offset + length));
    },
  };
}

export async function fileByteSource(path: string): Promise<ByteSource & { close(): Promise<void> }> {
  const handle = await open(path, 'r').catch((cause: unknown) => {
    throw ioError(`cannot open ${path}`, cause);
  });
  const { size } = await handle.stat();
  return {
    size,
    read: async (offset, length) => {
      checkRead(offset, length, size);
      const buf = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await handle.read(buf, done, length - done, offset + done).catch((cause: unknown) => {
          throw ioError(`cannot read ${path}`, cause);
        });
        if (bytesRead === 0) throw new SitecastError('SITECAST_E_IO', `${path} shrank while it was being read`);
        done += bytesRead;
      }
      return buf;
    },
    close: () => handle.close(),
  };
}

function checkRead(offset: number, length: number, size: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > size) {
    throw new SitecastError('SITECAST_E_IO', `read of ${length} bytes at ${offset} is outside a ${size}-byte file`);
  }
}

// ---- anchors: content-defined positions shared by the old and the new file ----

const GEAR = new Int32Array(256);
{
  let s = 0x9e3779b9 | 0;
  for (let i = 0; i < 256; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    GEAR[i] = s;
  }
}

/**
 * Calls `emit` for every anchor: a position whose preceding 32 bytes make the
 * gear hash's top `bits` bits zero. The key is a second hash of those 32 bytes,
 * so it only depends on content, not on where the scan started.
 */
function scanAnchors(buf: Buffer, from: number, bits: number, emit: (key: number, start: number) => void): void {
  let h = 0;
  const shift = 32 - bits;
  for (let i = Math.max(0, from - 32); i < buf.length; i++) {
    h = ((h << 1) + (GEAR[buf[i] ?? 0] ?? 0)) | 0;
    if (h >>> shift !== 0 || i < from || i < 31) continue;
    let k = 0x811c9dc5 | 0;
    for (let j = i - 31; j <= i; j += 4) k = Math.imul(k ^ buf.readInt32LE(j), 0x01000193);
    emit((k ^ (k >>> 15)) >>> 0, i - 31);
  }
}

interface AnchorIndex {
  bits: number;
  keys: Uint32Array;
  offsets: Float64Array;
}

async function buildIndex(old: ByteSource, signal: AbortSignal | undefined): Promise<AnchorIndex> {
  const bits = Math.min(20, Math.max(6, Math.ceil(Math.log2(old.size / (1 << 20)))));
  // key * 2^21 + ordinal stays an exact integer, so a native Float64Array sort orders by key.
  let packed = new Float64Array(Math.min(MAX_ANCHORS, Math.ceil((old.size >>> bits) * 1.25) + 1024));
  let offsets = new Float64Array(packed.length);
  let n = 0;
  let tail = Buffer.alloc(0);
  for (let pos = 0; pos < old.size && n < MAX_ANCHORS; pos += INDEX_PIECE) {
    signal?.throwIfAborted();
    const piece = Buffer.concat([tail, await old.read(pos, Math.min(INDEX_PIECE, old.size - pos))]);
    const base = pos - tail.length;
    scanAnchors(piece, tail.length, bits, (key, start) => {
      if (n === MAX_ANCHORS) return;
      if (n === packed.length) {
        packed = grow(packed, n);
        offsets = grow(offsets, n);
      }
      packed[n] = key * MAX_ANCHORS + n;
      offsets[n++] = base + start;
    });
    tail = piece.subarray(Math.max(0, piece.length - 32));
  }
  const sorted = packed.subarray(0, n).sort();
  // Keys seen twice (padding, repeated tables) say nothing about where a segment came from.
  const keys = new Uint32Array(n);
  const unique = new Float64Array(n);
  let m = 0;
  for (let i = 0; i < n; i++) {
    const key = Math.floor((sorted[i] ?? 0) / MAX_ANCHORS);
    const prev = i > 0 ? Math.floor((sorted[i - 1] ?? 0) / MAX_ANCHORS) : -1;
    const next = i + 1 < n ? Math.floor((sorted[i + 1] ?? 0) / MAX_ANCHORS) : -1;
    if (key === prev || key === next) continue;
    keys[m] = key;
    unique[m++] = offsets[(sorted[i] ?? 0) % MAX_ANCHORS] ?? 0;
  }
  return { bits, keys: keys.slice(0, m), offsets: unique.slice(0, m) };
}

function grow(a: Float64Array, n: number): Float64Array<ArrayBuffer> {
  const b = new Float64Array(Math.min(MAX_ANCHORS, a.length * 2));
  b.set(a.subarray(0, n));
  return b;
}

function lookup(index: AnchorIndex, key: number): number | undefined {
  let lo = 0;
  let hi = index.keys.length - 1;
  while (lo <= hi) {
    const mid = (lo + hi) >>> 1;
    const k = index.keys[mid] ?? 0;
    if (k === key) return index.offsets[mid];
    if (k < key) lo = mid + 1;
    else hi = mid - 1;
  }
  return undefined;
}

/** The old ranges holding most of the segment's anchors, widened, within the dictionary budget, in file order. */
function chooseRanges(index: AnchorIndex, segment: Buffer, oldSize: number): Range[] {
  const hits: number[] = [];
  scanAnchors(segment, 0, index.bits, (key) => {
    const at = lookup(index, key);
    if (at !== undefined) hits.push(at);
  });
  if (hits.length === 0) return [];
  hits.sort((a, b) => a - b);
  const clusters: { start: number; end: number; weight: number }[] = [];
  for (const at of hits) {
    const last = clusters[clusters.length - 1];
    if (last !== undefined && at - last.end <= CLUSTER_GAP) {
      last.end = at;
      last.weight++;
    } else clusters.push({ start: at, end: at, weight: 1 });
  }
  clusters.sort((a, b) => b.weight - a.weight);
  const chosen: Range[] = [];
  let used = 0;
  for (const c of clusters) {
    const start = Math.max(0, c.start - CLUSTER_PAD);
    const length = Math.min(oldSize, c.end + CLUSTER_PAD) - start;
    if (used + length > DICT_BUDGET || chosen.length === MAX_RANGES) continue;
    chosen.push({ offset: start, length });
    used += length;
  }
  chosen.sort((a, b) => a.offset - b.offset);
  const merged: Range[] = [];
  for (const r of chosen) {
    const last = merged[merged.length - 1];
    if (last !== undefined && r.offset <= last.offset + last.length) {
      last.length = Math.max(last.length, r.offset + r.length - last.offset);
    } else merged.push({ ...r });
  }
  return merged;
}

// ---- create ----

async function readRanges(old: ByteSource, ranges: Range[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const r of ranges) parts.push(await old.read(r.offset, r.length));
  return Buffer.concat(parts);
}

/** Returns the patch bytes, or null when a patch would not be smaller than `limit` bytes (caller then sends chunks instead). */
export async function createPatch(oldFile: ByteSource, newFile: ByteSource, options: CreatePatchOptions = {}): Promise<Buffer | null> {
  const { limit = Infinity, level = DEFAULT_LEVEL, signal } = options;
  const header = Buffer.alloc(HEADER_SIZE);
  MAGIC.copy(header, 0);
  header.writeUInt8(VERSION, 4);
  header.writeBigUInt64LE(BigInt(oldFile.size), 6);
  header.writeBigUInt64LE(BigInt(newFile.size), 14);
  const parts: Buffer[] = [header];
  let total = HEADER_SIZE;
  let segments = 0;
  const index = oldFile.size > DICT_BUDGET ? await buildIndex(oldFile, signal) : undefined;
  const compressor = new Compressor();
  for (let pos = 0; pos < newFile.size; pos += SEGMENT_SIZE) {
    signal?.throwIfAborted();
    const segment = await newFile.read(pos, Math.min(SEGMENT_SIZE, newFile.size - pos));
    const ranges = index ? chooseRanges(index, segment, oldFile.size) : oldFile.size >= 64 ? [{ offset: 0, length: oldFile.size }] : [];
    let dict = await readRanges(oldFile, ranges);
    const first = ranges[0];
    // A dictionary starting with zstd's dictionary magic would be parsed, not used as raw bytes.
    if (first !== undefined && dict.readUInt32LE(0) === ZSTD_DICT_MAGIC) {
      first.offset++;
      first.length--;
      dict = dict.subarray(1);
    }
    const windowLog = Math.min(27, Math.max(10, Math.ceil(Math.log2(segment.length + dict.length))));
    compressor.setParameters({ compressionLevel: level, windowLog, contentSizeFlag: true, checksumFlag: false, dictIDFlag: false });
    if (dict.length > 0) compressor.loadDictionary(dict);
    const frame = compressor.compress(segment);
    const seg = Buffer.alloc(SEGMENT_HEADER_SIZE + RANGE_SIZE * ranges.length);
    seg.writeUInt32LE(segment.length, 0);
    seg.writeUInt32LE(frame.length, 4);
    seg.writeUInt16LE(ranges.length, 8);
    ranges.forEach((r, i) => {
      seg.writeBigUInt64LE(BigInt(r.offset), SEGMENT_HEADER_SIZE + i * RANGE_SIZE);
      seg.writeUInt32LE(r.length, SEGMENT_HEADER_SIZE + i * RANGE_SIZE + 8);
    });
    parts.push(seg, frame);
    total += seg.length + frame.length;
    segments++;
    if (total >= limit) return null;
  }
  header.writeUInt32LE(segments, 22);
  return Buffer.concat(parts, total);
}

// ---- apply ----

interface Segment {
  length: number;
  ranges: Range[];
  frame: Buffer;
}

function bad(message: string, cause?: unknown): SitecastError {
  return new SitecastError('SITECAST_E_BAD_ARCHIVE', `patch is corrupt: ${message}`, cause === undefined ? {} : { cause });
}

function readSize(patch: Buffer, at: number, what: string): number {
  const v = patch.readBigUInt64LE(at);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw bad(`${what} ${v} is out of range`);
  return Number(v);
}

/** Checks the whole layout before a byte is produced, so a damaged table fails fast and allocates nothing big. */
function parsePatch(patch: Buffer, oldSize: number): Segment[] {
  if (patch.length < HEADER_SIZE) throw bad(`${patch.length} bytes is shorter than the header`);
  if (!patch.subarray(0, 4).equals(MAGIC)) throw bad('it does not start with the patch magic');
  const version = patch.readUInt8(4);
  if (version !== VERSION) {
    throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `patch format version ${version} is not supported (this build reads ${VERSION})`, {
      hint: 'upgrade Sitecast on this site',
    });
  }
  if (patch.readUInt8(5) !== 0) throw bad('reserved header byte is not zero');
  const expectedOld = readSize(patch, 6, 'old size');
  const newSize = readSize(patch, 14, 'new size');
  const count = patch.readUInt32LE(22);
  if (expectedOld !== oldSize) {
    throw new SitecastError('SITECAST_E_MISSING_BASE', `patch was made against a ${expectedOld}-byte file, the base here has ${oldSize} bytes`);
  }
  const segments: Segment[] = [];
  let at = HEADER_SIZE;
  let produced = 0;
  for (let s = 0; s < count; s++) {
    if (at + SEGMENT_HEADER_SIZE > patch.length) throw bad(`segment ${s} header is truncated`);
    const length = patch.readUInt32LE(at);
    const frameLength = patch.readUInt32LE(at + 4);
    const rangeCount = patch.readUInt16LE(at + 8);
    at += SEGMENT_HEADER_SIZE;
    if (length === 0 || length > MAX_SEGMENT) throw bad(`segment ${s} length ${length} is out of range`);
    if (rangeCount > MAX_RANGES) throw bad(`segment ${s} has ${rangeCount} dictionary ranges`);
    if (at + rangeCount * RANGE_SIZE + frameLength > patch.length) throw bad(`segment ${s} is truncated`);
    const ranges: Range[] = [];
    let dictSize = 0;
    for (let r = 0; r < rangeCount; r++, at += RANGE_SIZE) {
      const offset = readSize(patch, at, 'window offset');
      const rangeLength = patch.readUInt32LE(at + 8);
      dictSize += rangeLength;
      if (offset + rangeLength > oldSize) throw bad(`segment ${s} window ${offset}+${rangeLength} is outside the ${oldSize}-byte base`);
      if (dictSize > MAX_DICT) throw bad(`segment ${s} dictionary exceeds ${MAX_DICT} bytes`);
      ranges.push({ offset, length: rangeLength });
    }
    segments.push({ length, ranges, frame: patch.subarray(at, at + frameLength) });
    at += frameLength;
    produced += length;
    if (produced > newSize) throw bad(`segments hold more than the declared ${newSize} bytes`);
  }
  if (produced !== newSize) throw bad(`segments hold ${produced} bytes, the header declares ${newSize}`);
  if (at !== patch.length) throw bad(`${patch.length - at} bytes trail the last segment`);
  return segments;
}

function decodeSegment(dctx: InstanceType<typeof zstd.DCtx>, segment: Segment, dict: Buffer, index: number): Buffer {
  try {
    if (zstd.findFrameCompressedSize(segment.frame) !== segment.frame.length) throw bad(`segment ${index} is not exactly one zstd frame`);
    if (zstd.getFrameContentSize(segment.frame) !== segment.length) throw bad(`segment ${index} frame does not declare ${segment.length} bytes`);
    const out = Buffer.allocUnsafe(segment.length);
    const n = dict.length > 0 ? dctx.decompressUsingDict(out, segment.frame, dict) : dctx.decompress(out, segment.frame);
    if (n !== segment.length) throw bad(`segment ${index} decodes to ${n} bytes, not ${segment.length}`);
    return out;
  } catch (err) {
    if (err instanceof SitecastError) throw err;
    throw bad(`segment ${index} does not decode`, err);
  }
}

/** Rebuilds the new file, yielding it in order, piece by piece (bounded memory). The caller verifies the SHA-256 of the result. */
export async function* applyPatch(oldFile: ByteSource, patch: Buffer): AsyncIterable<Buffer> {
  const segments = parsePatch(patch, oldFile.size);
  const dctx = new zstd.DCtx();
  for (const [i, segment] of segments.entries()) {
    yield decodeSegment(dctx, segment, await readRanges(oldFile, segment.ranges), i);
  }
}
