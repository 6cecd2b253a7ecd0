import { createHash } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { Compressor, Decompressor } from 'zstd-napi';
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
  private readonly compressor = new Compressor();
  private readonly decompressor = new Decompressor();

  constructor(level = CHUNK_LEVEL) {
    this.compressor.setParameters({ compressionLevel: level, checksumFlag: false, contentSizeFlag: true });
  }

  compress(data: Uint8Array): Buffer {
    return this.compressor.compress(data);
  }

  /** Decompresses and checks the SHA-256; a mismatch or a broken frame is a corrupt chunk. */
  decompressVerified(hash: Sha256Hex, frame: Uint8Array, expectedSize?: number): Buffer {
    singleFrameContentSize(frame, expectedSize ?? MAX_CHUNK, `chunk ${hash}`);
    let data: Buffer;
    try {
      data = this.decompressor.decompress(frame);
    } catch (err) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash} does not decompress`, { cause: err });
    }
    if ((expectedSize !== undefined && data.length !== expectedSize) || sha256(data) !== hash) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash} does not match its SHA-256`);
    }
    return data;
  }
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
  const tmp = `${target}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    let fd: number;
    try {
      fd = openSync(tmp, 'wx', 0o444);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      mkdirSync(join(libraryDir, 'chunks', hash.slice(0, 2)), { recursive: true });
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
