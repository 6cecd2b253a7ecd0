import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { SitecastError, ioError } from '../errors.js';
import { DEFAULT_CHUNKER, nextCut } from './chunker.js';
import { BackgroundFlusher, flushFileSystem, openLibraryToWrite, saveManifest } from './library.js';
import { checkManifest, sortEntries } from './manifest.js';
import { ChunkPool, type StoredChunk } from './pool.js';
import type { IngestResult, ManifestEntry, ProgressFn } from './types.js';
import type { SourceItem } from './walk.js';

export interface IngestOptions {
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** Bytes of file data in flight to the workers at most (bounds memory). */
  inFlightBytes?: number;
}

/** Files up to this size are read by a worker whole, many per round trip. */
const SMALL_FILE = 4 * 1024 * 1024;
const BATCH_FILES = 64;
const BATCH_BYTES = 8 * 1024 * 1024;
/** Start background write-back after this many bytes of input. */
const FLUSH_EVERY = 48 * 1024 * 1024;
/** Large files are read in blocks of this size. */
const READ_BLOCK = 4 * 1024 * 1024;

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
 * Ingests a folder into a library. Small files go to the chunk workers in
 * batches of paths: a worker reads, cuts, hashes, compresses and stores them.
 * A large file is cut and hashed on the main thread while the workers
 * compress its chunks and, between its blocks, take batches of small files;
 * nothing is awaited file by file, so both cores stay busy, and two byte
 * gates (small files, large-file blocks) bound the data in flight. The manifest is
 * written last, after one flush of the file system, so a crash leaves at
 * worst unreferenced chunks, never a manifest that names a chunk not on disk.
 */
export async function ingestTree(libraryDir: string, source: string, options: IngestOptions = {}): Promise<IngestResult> {
  // The source is listed before the library is opened: a missing or refused source creates nothing.
  const items = await new ChunkPool(libraryDir).walk(source);
  const { lib, discard } = await openLibraryToWrite(libraryDir);
  const pool = new ChunkPool(lib.dir);
  const total = items.reduce((sum, i) => sum + (i.type === 'file' ? i.size : 0), 0);
  // Half the budget each for small files and for the blocks of the large file
  // being cut: neither waits behind the other's queue, so this thread cuts the
  // large file while the workers also take small files in between its blocks.
  const budget = options.inFlightBytes ?? 32 * 1024 * 1024;
  const smallGate = new ByteGate(Math.max(1, Math.floor(budget / 2)));
  const largeGate = new ByteGate(Math.max(1, Math.floor(budget / 2)));
  let done = 0;
  const flusher = new BackgroundFlusher(lib.dir);
  let sinceFlush = 0;
  const progress = (n: number): void => {
    done += n;
    sinceFlush += n;
    if (sinceFlush >= FLUSH_EVERY) {
      sinceFlush = 0;
      flusher.kick();
    }
    options.onProgress?.(done, total);
  };

  const smallFiles = async (batch: FileItem[]): Promise<FileResult[]> => {
    const bytes = batch.reduce((sum, f) => sum + f.size, 0);
    await smallGate.acquire(bytes);
    try {
      options.signal?.throwIfAborted();
      return await pool.storeFiles(batch.map((f) => f.abs));
    } finally {
      smallGate.release(bytes);
      progress(bytes);
    }
  };

  /**
   * Blocks for large files, each room for a read plus the tail of the block
   * before: a block goes to a worker and comes back, so a large file costs a
   * few blocks, not fresh memory (and page faults) for every 4 MiB.
   */
  const blocks: ArrayBuffer[] = [];
  const takeBlock = (): Buffer => Buffer.from(blocks.pop() ?? new ArrayBuffer(READ_BLOCK + DEFAULT_CHUNKER.maxSize));

  /**
   * A large file is read in blocks; this thread finds the cut points and
   * hashes the file, and each block's whole chunks travel to a worker as one
   * transferred buffer (no copy); only the tail after the last cut is copied
   * into the next block.
   */
  const largeFile = async (item: FileItem): Promise<FileResult> => {
    const fileHash = createHash('sha256');
    const replies: Promise<StoredChunk[]>[] = [];
    let size = 0;
    let handle: FileHandle | undefined;
    try {
      handle = await open(item.abs, 'r');
      let carry: Buffer = Buffer.alloc(0);
      for (;;) {
        // The walk does not wait for large files: a stop is noticed here, block by block.
        options.signal?.throwIfAborted();
        const block = takeBlock();
        carry.copy(block, 0);
        let filled = carry.length;
        const end = carry.length + READ_BLOCK;
        while (filled < end) {
          const { bytesRead } = await handle.read(block, filled, end - filled, null);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        const final = filled < end;
        const lengths: number[] = [];
        let pos = 0;
        while (filled - pos > 0 && (final || filled - pos >= DEFAULT_CHUNKER.maxSize)) {
          const len = nextCut(block, pos, filled, DEFAULT_CHUNKER);
          lengths.push(len);
          pos += len;
        }
        const whole = block.subarray(0, pos);
        fileHash.update(whole);
        size += pos;
        carry = Buffer.from(block.subarray(pos, filled));
        if (lengths.length > 0) {
          await largeGate.acquire(pos);
          const bytes = pos;
          const reply = pool
            .storeMany(new Uint8Array(block.buffer, 0, pos), lengths)
            .then((r) => {
              blocks.push(r.buffer);
              return r.chunks;
            })
            .finally(() => {
              largeGate.release(bytes);
              progress(bytes);
            });
          reply.catch(() => undefined); // observed by Promise.all below
          replies.push(reply);
        }
        if (final) break;
      }
    } catch (err) {
      await Promise.allSettled(replies);
      if (options.signal?.aborted === true || err instanceof SitecastError) throw err;
      throw ioError(`cannot read ${item.abs}`, err);
    } finally {
      await handle?.close();
    }
    // Every block settled before the file's outcome is known: a failed one does not leave others still writing.
    const stored = await Promise.allSettled(replies);
    const failed = stored.find((r) => r.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    return { fileHash: fileHash.digest('hex'), size, chunks: stored.flatMap((r) => (r.status === 'fulfilled' ? r.value : [])) };
  };

  const pending: Promise<ManifestEntry>[] = [];
  const results: Promise<FileResult>[] = [];
  try {
    const addFile = (item: FileItem, result: Promise<FileResult>): void => {
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
    };
    let batch: FileItem[] = [];
    let batchBytes = 0;
    let largeChain: Promise<void> = Promise.resolve();
    const flush = (): void => {
      if (batch.length === 0) return;
      const items = batch;
      // Not awaited: the byte gate, not the file order, decides when to read more.
      const done = smallFiles(items);
      done.catch(() => undefined); // observed through each file's entry
      items.forEach((item, i) => addFile(item, done.then((all) => all[i] as FileResult)));
      batch = [];
      batchBytes = 0;
    };
    for (const item of items) {
      options.signal?.throwIfAborted();
      if (item.type !== 'file') {
        pending.push(Promise.resolve(item));
        continue;
      }
      if (item.size <= SMALL_FILE) {
        batch.push(item);
        batchBytes += item.size;
        if (batch.length >= BATCH_FILES || batchBytes >= BATCH_BYTES) flush();
        continue;
      }
      // One large file at a time (its blocks are reused), but the walk goes
      // on handing small files to the workers meanwhile.
      const result = largeChain.then(() => largeFile(item));
      largeChain = result.then(
        () => undefined,
        () => undefined,
      );
      addFile(item, result);
    }
    flush();
    const entries = await Promise.all(pending);
    const manifest = { format: 1 as const, entries: sortEntries(entries) };
    checkManifest(manifest);
    options.signal?.throwIfAborted();
    await flusher.idle();
    await flushFileSystem(lib.dir);
    const id = await saveManifest(lib, manifest);
    const stored = new Map<string, number>();
    const added = new Set<string>();
    let newBytes = 0;
    for (const r of await Promise.all(results)) {
      for (const c of r.chunks) {
        if (!stored.has(c.hash)) stored.set(c.hash, c.stored);
        // Two workers may both write one new chunk at the same moment: count it once.
        if (c.added && !added.has(c.hash)) {
          added.add(c.hash);
          newBytes += c.stored;
        }
      }
    }
    const storedBytes = [...stored.values()].reduce((a, b) => a + b, 0);
    const modeBitsDropped = items.flatMap((i) => (i.type !== 'symlink' && i.special === true ? [i.path] : []));
    return { manifest: id, files: results.length, bytes: total, storedBytes, newBytes, modeBitsDropped };
  } catch (err) {
    // Nothing may still be writing into a library that is about to be removed.
    await Promise.allSettled([...pending, ...results]);
    await flusher.idle();
    await discard();
    throw err;
  } finally {
    await flusher.idle();
    await pool.close();
  }
}
