import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { ioError } from '../errors.js';
import { chunkStream, DEFAULT_CHUNKER } from './chunker.js';
import { flushFileSystem, openLibrary, saveManifest } from './library.js';
import { checkManifest, sortEntries } from './manifest.js';
import { ChunkPool, type StoredChunk } from './pool.js';
import type { IngestResult, ManifestEntry, ProgressFn } from './types.js';
import { walkSource, type SourceItem } from './walk.js';

export interface IngestOptions {
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** Bytes of file data in flight to the workers at most (bounds memory). */
  inFlightBytes?: number;
}

/** Files up to this size go to a worker whole: one read, one round trip. */
const SMALL_FILE = 4 * 1024 * 1024;

/** Bounds the bytes handed to workers and not yet stored; waiters are served in order. */
class ByteGate {
  private used = 0;
  private readonly waiters: { n: number; resolve: () => void }[] = [];
  constructor(private readonly limit: number) {}
  acquire(n: number): Promise<void> {
    if (this.waiters.length === 0 && (this.used === 0 || this.used + n <= this.limit)) {
      this.used += n;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiters.push({ n, resolve }));
  }
  release(n: number): void {
    this.used -= n;
    while (this.waiters.length > 0) {
      const next = this.waiters[0] as { n: number; resolve: () => void };
      if (this.used > 0 && this.used + next.n > this.limit) break;
      this.waiters.shift();
      this.used += next.n;
      next.resolve();
    }
  }
}

type FileItem = Extract<SourceItem, { type: 'file' }>;
interface FileResult {
  fileHash: string;
  size: number;
  chunks: StoredChunk[];
}

/**
 * Ingests a folder into a library. Small files travel whole to a chunk
 * worker, which cuts, hashes, compresses and stores them; large files are cut
 * and hashed on the main thread while the workers compress their chunks. No
 * file waits for the previous one, so both cores stay busy; a byte gate
 * bounds memory. The manifest is written last, after one flush of the file
 * system, so a crash leaves at worst unreferenced chunks, never a manifest
 * that names a chunk not on disk.
 */
export async function ingestTree(libraryDir: string, source: string, options: IngestOptions = {}): Promise<IngestResult> {
  const lib = await openLibrary(libraryDir, { create: true });
  const items = await walkSource(source);
  const total = items.reduce((sum, i) => sum + (i.type === 'file' ? i.size : 0), 0);
  const pool = new ChunkPool(lib.dir);
  const gate = new ByteGate(options.inFlightBytes ?? 16 * 1024 * 1024);
  let done = 0;
  const progress = (n: number): void => {
    done += n;
    options.onProgress?.(done, total);
  };

  const smallFile = async (item: FileItem): Promise<FileResult> => {
    await gate.acquire(item.size);
    let data: Buffer;
    try {
      data = await readFile(item.abs);
    } catch (err) {
      gate.release(item.size);
      throw ioError(`cannot read ${item.abs}`, err);
    }
    const size = data.length;
    try {
      return { ...(await pool.storeFile(data)), size };
    } finally {
      gate.release(item.size);
      progress(size);
    }
  };

  const largeFile = async (item: FileItem): Promise<FileResult> => {
    const fileHash = createHash('sha256');
    const replies: Promise<StoredChunk>[] = [];
    let size = 0;
    try {
      for await (const chunk of chunkStream(createReadStream(item.abs, { highWaterMark: SMALL_FILE }), DEFAULT_CHUNKER)) {
        fileHash.update(chunk);
        size += chunk.length;
        const length = chunk.length;
        await gate.acquire(length);
        const reply = pool.store(chunk).finally(() => {
          gate.release(length);
          progress(length);
        });
        reply.catch(() => undefined); // observed by Promise.all below
        replies.push(reply);
      }
    } catch (err) {
      await Promise.allSettled(replies);
      throw ioError(`cannot read ${item.abs}`, err);
    }
    return { fileHash: fileHash.digest('hex'), size, chunks: await Promise.all(replies) };
  };

  try {
    const pending: Promise<ManifestEntry>[] = [];
    const results: Promise<FileResult>[] = [];
    for (const item of items) {
      options.signal?.throwIfAborted();
      if (item.type !== 'file') {
        pending.push(Promise.resolve(item));
        continue;
      }
      let result: Promise<FileResult>;
      if (item.size <= SMALL_FILE) {
        // Not awaited: the byte gate, not the file order, decides when to read more.
        result = smallFile(item);
      } else {
        result = largeFile(item);
        await result.catch(() => undefined);
      }
      results.push(result);
      const entry = result.then(
        (r): ManifestEntry => ({
          type: 'file',
          path: item.path,
          mode: item.mode,
          size: r.size,
          hash: r.fileHash,
          chunks: r.chunks.map((c) => ({ hash: c.hash, size: c.size })),
        }),
      );
      entry.catch(() => undefined); // observed by Promise.all below
      pending.push(entry);
    }
    const entries = await Promise.all(pending);
    const manifest = { format: 1 as const, entries: sortEntries(entries) };
    checkManifest(manifest);
    flushFileSystem(lib.dir);
    const id = await saveManifest(lib, manifest);
    const stored = new Map<string, number>();
    let newBytes = 0;
    for (const r of await Promise.all(results)) {
      for (const c of r.chunks) {
        if (!stored.has(c.hash)) stored.set(c.hash, c.stored);
        if (c.added) newBytes += c.stored;
      }
    }
    const storedBytes = [...stored.values()].reduce((a, b) => a + b, 0);
    return { manifest: id, files: results.length, bytes: total, storedBytes, newBytes };
  } finally {
    await pool.close();
  }
}
