import { createHash } from 'node:crypto';
import { chmodSync, closeSync, copyFileSync, fstatSync, fsyncSync, mkdirSync, openSync, readFileSync, readSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { threadId } from 'node:worker_threads';
import zstd from 'zstd-napi/binding.js';
import { SitecastError, ioError } from '../errors.js';
import type { Sha256Hex } from './types.js';
import { singleFrameContentSize } from './zstd-frame.js';

/**
 * The chunk store: `chunks/<first two hex>/<sha256>`, each file one zstd
 * frame of the chunk's bytes, named by the SHA-256 of the uncompressed bytes.
 * Synchronous on purpose: it runs inside worker threads, where blocking is
 * the point, and in short verification loops.
 */
export const CHUNK_LEVEL = 3;
/** No chunk is larger (the manifest schema enforces the same bound). */
export const MAX_CHUNK = 1 << 26;

export function chunkPath(libraryDir: string, hash: Sha256Hex): string {
  return join(libraryDir, 'chunks', hash.slice(0, 2), hash);
}

export function sha256(data: Uint8Array): Sha256Hex {
  return createHash('sha256').update(data).digest('hex');
}

export class ChunkCodec {
  private readonly dctx = new zstd.DCtx();
  private readonly cctx = new zstd.CCtx();
  /** For {@link compress}: frames are made in it, then copied out at their size. */
  private readonly scratch = new ChunkScratch();

  constructor(level = CHUNK_LEVEL) {
    this.cctx.setParameter(zstd.CParameter.compressionLevel, level);
    this.cctx.setParameter(zstd.CParameter.checksumFlag, 0);
    this.cctx.setParameter(zstd.CParameter.contentSizeFlag, 1);
  }

  compress(data: Uint8Array): Buffer {
    return Buffer.from(this.compressInto(data, this.scratch));
  }

  /** The same frame as {@link compress}, written into `scratch.frame` (grown if needed); valid until the scratch is used again. */
  compressInto(data: Uint8Array, scratch: ChunkScratch): Uint8Array {
    const frame = scratch.frameFor(zstd.compressBound(data.length));
    return frame.subarray(0, this.cctx.compress2(frame, data));
  }

  /** Decompresses and checks the SHA-256; a mismatch or a broken frame is a corrupt chunk. */
  decompressVerified(hash: Sha256Hex, frame: Uint8Array, expectedSize?: number): Buffer {
    const size = singleFrameContentSize(frame, expectedSize ?? MAX_CHUNK, `chunk ${hash}`);
    if (expectedSize !== undefined && size !== expectedSize) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash} does not match its SHA-256`);
    }
    const data = Buffer.allocUnsafe(size);
    this.decompressInto(hash, frame, data, size);
    return data;
  }

  /**
   * Like {@link decompressVerified}, into `out` (at least `size` bytes) instead
   * of a new buffer: the chunk's bytes are `out.subarray(0, size)`, returned.
   * Hot loops reuse one `out`, so no chunk costs an allocation.
   */
  decompressInto(hash: Sha256Hex, frame: Uint8Array, out: Uint8Array, size: number): Uint8Array {
    singleFrameContentSize(frame, size, `chunk ${hash}`);
    const view = out.subarray(0, size);
    let written: number;
    try {
      written = this.dctx.decompress(view, frame);
    } catch (err) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash} does not decompress`, { cause: err });
    }
    if (written !== size || sha256(view) !== hash) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash} does not match its SHA-256`);
    }
    return view;
  }
}

/** A whole file read into the buffer `room(size)` gives; returns the view of its bytes. */
function readWholeInto(path: string, room: (size: number) => Buffer): Buffer {
  const fd = openSync(path, 'r');
  try {
    const size = fstatSync(fd).size;
    const buf = room(size);
    let off = 0;
    while (off < size) {
      const n = readSync(fd, buf, off, size - off, off);
      if (n === 0) break;
      off += n;
    }
    return buf.subarray(0, off);
  } finally {
    closeSync(fd);
  }
}

/**
 * Buffers a thread reuses from chunk to chunk (compressed frame in, bytes
 * out), grown when a larger chunk comes; see {@link readChunkInto}.
 */
export class ChunkScratch {
  private frame = Buffer.alloc(0);
  private data = Buffer.alloc(0);

  /** The frame buffer, at least `size` bytes long. */
  frameFor(size: number): Buffer {
    if (this.frame.length < size) this.frame = Buffer.allocUnsafe(Math.max(size, 1 << 20));
    return this.frame;
  }

  /** The data buffer, at least `size` bytes long. */
  dataFor(size: number): Buffer {
    if (this.data.length < size) this.data = Buffer.allocUnsafe(Math.max(size, 1 << 20));
    return this.data;
  }

  /** A whole file read into the data buffer; returns the view of its bytes. */
  readFile(path: string): Buffer {
    return readWholeInto(path, (size) => this.dataFor(size));
  }
}

/** A chunk's compressed frame read into the scratch's frame buffer; returns the view of its bytes. */
function readChunkFrameInto(libraryDir: string, hash: Sha256Hex, scratch: ChunkScratch): Buffer {
  try {
    return readWholeInto(chunkPath(libraryDir, hash), (size) => scratch.frameFor(size));
  } catch (err) {
    if (isMissing(err)) throw new SitecastError('SITECAST_E_NOT_FOUND', `chunk ${hash} is missing from the library`);
    throw ioError(`cannot read chunk ${hash}`, err);
  }
}

/**
 * Reads, decompresses and verifies a chunk into `out` (at least `size` bytes;
 * by default the scratch's own data buffer) with no allocation; returns the
 * view of its bytes, valid until the scratch is used again.
 */
export function readChunkInto(libraryDir: string, codec: ChunkCodec, hash: Sha256Hex, size: number, scratch: ChunkScratch, out?: Uint8Array): Uint8Array {
  return codec.decompressInto(hash, readChunkFrameInto(libraryDir, hash, scratch), out ?? scratch.dataFor(size), size);
}

/** {@link readChunkInto} that also gives the compressed frame it read (verified with the bytes); both views valid until the scratch is used again. */
export function readChunkFrameAndData(libraryDir: string, codec: ChunkCodec, hash: Sha256Hex, size: number, scratch: ChunkScratch): { frame: Uint8Array; data: Uint8Array } {
  const frame = readChunkFrameInto(libraryDir, hash, scratch);
  return { frame, data: codec.decompressInto(hash, frame, scratch.dataFor(size), size) };
}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException).code === 'ENOENT';
}

/** Reads a chunk's compressed frame; ENOENT becomes a named missing-chunk error. */
export function readChunkFrame(libraryDir: string, hash: Sha256Hex): Buffer {
  try {
    return readFileSync(chunkPath(libraryDir, hash));
  } catch (err) {
    if (isMissing(err)) throw new SitecastError('SITECAST_E_NOT_FOUND', `chunk ${hash} is missing from the library`);
    throw ioError(`cannot read chunk ${hash}`, err);
  }
}

export function readChunk(libraryDir: string, codec: ChunkCodec, hash: Sha256Hex, size?: number): Buffer {
  return codec.decompressVerified(hash, readChunkFrame(libraryDir, hash), size);
}

export function chunkStoredSize(libraryDir: string, hash: Sha256Hex): number | undefined {
  try {
    return statSync(chunkPath(libraryDir, hash)).size;
  } catch (err) {
    if (isMissing(err)) return undefined;
    throw ioError(`cannot stat chunk ${hash}`, err);
  }
}

let tmpCounter = 0;

/**
 * The temporary name of a chunk being written: unique among every thread of
 * every live process writing the library (a random name cost a getrandom
 * call per chunk). A name left by a dead process whose pid is now another's
 * is replaced (see putChunkFrame).
 */
export function chunkTmpName(target: string): string {
  tmpCounter += 1;
  return `${target}.${process.pid}-${threadId}-${tmpCounter}.tmp`;
}

/**
 * Stores a compressed frame under its hash. The frame is written to a
 * temporary name in the chunk's own folder and renamed into place, so a
 * reader never sees a partial chunk. Callers look for an existing copy first
 * and verify it (pnpm's rule for content-addressed writes): a good one wins
 * and this is not called; a corrupt one is replaced by this rename.
 * Data is not fsynced here: callers flush the file system once per batch.
 */
export function putChunkFrame(libraryDir: string, hash: Sha256Hex, frame: Uint8Array): boolean {
  const target = chunkPath(libraryDir, hash);
  const tmp = chunkTmpName(target);
  try {
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', 0o444);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') mkdirSync(join(libraryDir, 'chunks', hash.slice(0, 2)), { recursive: true });
      // Left by a process that died with this pid: no live one can hold the name.
      else if (code === 'EEXIST') unlinkSync(tmp);
      else throw err;
      fd = openSync(tmp, 'wx', 0o444);
    }
    try {
      // write(2) may write part of the data before the disk fills: loop, so the error surfaces.
      let off = 0;
      while (off < frame.length) off += writeSync(fd, frame, off, frame.length - off);
    } finally {
      closeSync(fd);
    }
    renameSync(tmp, target);
    return true;
  } catch (err) {
    try {
      unlinkSync(tmp);
    } catch {
      // never created
    }
    throw ioError(`cannot store chunk ${hash}`, err);
  }
}

/** Flushes one file to disk (used where a single file must be durable). */
export function fsyncPath(path: string): void {
  const fd = openSync(path, 'r');
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Copies chunk files from one library to another (a DP's): each one the
 * target lacks, or holds at another size than the source's (a truncated copy
 * after a power cut), is copied as the compressed frame (the kernel copies,
 * copy_file_range) to a temporary name and renamed into place. Never a link:
 * a damaged file in one library must not damage the other. Nothing is flushed.
 */
export function copyChunkFiles(fromDir: string, toDir: string, hashes: readonly Sha256Hex[]): { copied: number; copiedBytes: number } {
  let copied = 0;
  let copiedBytes = 0;
  for (const hash of hashes) {
    const target = chunkPath(toDir, hash);
    const source = chunkPath(fromDir, hash);
    const have = chunkStoredSize(toDir, hash);
    const want = chunkStoredSize(fromDir, hash);
    if (have !== undefined && have === want) continue;
    const tmp = chunkTmpName(target);
    try {
      try {
        copyFileSync(source, tmp);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT' || want === undefined) throw err;
        mkdirSync(join(toDir, 'chunks', hash.slice(0, 2)), { recursive: true });
        copyFileSync(source, tmp);
      }
      chmodSync(tmp, 0o444);
      renameSync(tmp, target);
    } catch (err) {
      try {
        unlinkSync(tmp);
      } catch {
        // never created
      }
      if (isMissing(err) && want === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `chunk ${hash} is missing from the library`);
      throw ioError(`cannot copy chunk ${hash} into ${toDir}`, err);
    }
    copied += 1;
    copiedBytes += want ?? 0;
  }
  return { copied, copiedBytes };
}
