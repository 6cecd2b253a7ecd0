import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { SitecastError, type ErrorCode } from '../errors.js';
import { CHUNK_LEVEL } from './store.js';
import type { ChunkRef, FileEntry } from './types.js';
import type { TreeOp } from './tree-ops.js';
import type { SourceItem } from './walk.js';

export interface StoredChunk {
  hash: string;
  size: number;
  /** Compressed size in the store. */
  stored: number;
  /** True when this call wrote the chunk (it was not in the store). */
  added: boolean;
}

export interface IngestedFile {
  fileHash: string;
  size: number;
  chunks: StoredChunk[];
}

export interface ExtractJob {
  path: string;
  /** The file's path in the manifest, for messages (`path` is inside a staging folder). */
  name: string;
  mode: number;
  fileHash: string;
  chunks: ChunkRef[];
}

/**
 * While extracting, every chunk read (and verified) is also stored in this
 * other library if that one lacks it: a DP install copies its chunks and
 * builds its share from one read of each. With `checkExisting`, a copy
 * already there must be byte-identical to the verified frame or it is
 * replaced (a redistribution); otherwise its size is enough.
 */
export interface CopyInto {
  library: string;
  checkExisting: boolean;
}

/** Chunks a worker stored into a {@link CopyInto} library. */
export interface CopyCount {
  copied: number;
  copiedBytes: number;
}

export type WorkerRequest = { library: string } & (
  | { op: 'store'; id: number; data: Uint8Array; expect?: string }
  | { op: 'files'; id: number; paths: string[] }
  | { op: 'storeMany'; id: number; data: Uint8Array; lengths: number[] }
  | { op: 'patch'; id: number; base: FileEntry; target: FileEntry; limit: number }
  | { op: 'load'; id: number; hash: string; size: number }
  | { op: 'extractFiles'; id: number; files: ExtractJob[]; copyInto?: CopyInto }
  | { op: 'writeSegment'; id: number; path: string; name: string; offset: number; chunks: ChunkRef[]; copyInto?: CopyInto }
  | { op: 'check'; id: number; hash: string }
  | { op: 'walk'; id: number; root: string }
  | { op: 'treeOps'; id: number; ops: TreeOp[] }
  | { op: 'copyChunks'; id: number; to: string; hashes: string[] }
);

export type WorkerReply =
  | ({ id: number; ok: true } & StoredChunk)
  | { id: number; ok: true; files: IngestedFile[] }
  | { id: number; ok: true; chunks: StoredChunk[]; data: Uint8Array }
  | { id: number; ok: true; patch: Uint8Array | null }
  | { id: number; ok: true; data: Uint8Array }
  | ({ id: number; ok: true; written: number } & CopyCount)
  | { id: number; ok: true; good: boolean; problem?: 'missing' | 'corrupt' }
  | { id: number; ok: true; items: SourceItem[] }
  | { id: number; ok: true; linked: boolean[] }
  | ({ id: number; ok: true; copyChunks: true } & CopyCount)
  | { id: number; ok: false; code: string; message: string; hint?: string };

type WithoutId<T> = T extends unknown ? Omit<T, 'id' | 'library'> : never;

type Pending = { resolve: (r: WorkerReply) => void; reject: (e: Error) => void };

export type StoreReply = StoredChunk;

/**
 * A fixed set of chunk workers, one per core. Requests go to the worker with
 * the fewest outstanding; callers bound how many they keep in flight.
 */
interface Slot {
  worker: Worker;
  pending: Map<number, Pending>;
}

/**
 * The chunk workers of this process, one per core, started on first use and
 * shared by every library: a site server ingests, installs and builds deltas
 * without paying a worker start-up each time. An idle worker is unref'd so it
 * never keeps a finished process alive.
 */
class Workers {
  readonly slots: Slot[] = [];
  private nextId = 1;

  constructor(size: number, level: number) {
    for (let i = 0; i < size; i++) {
      const worker = new Worker(new URL('./chunk-worker.js', import.meta.url), { workerData: { level } });
      const slot: Slot = { worker, pending: new Map() };
      worker.on('message', (reply: WorkerReply) => {
        const p = slot.pending.get(reply.id);
        if (!p) return;
        slot.pending.delete(reply.id);
        if (slot.pending.size === 0) worker.unref();
        if (reply.ok) p.resolve(reply);
        else p.reject(new SitecastError(reply.code as ErrorCode, reply.message, reply.hint ? { hint: reply.hint } : {}));
      });
      worker.on('error', (err) => {
        for (const p of slot.pending.values()) p.reject(err);
        slot.pending.clear();
        const index = this.slots.indexOf(slot);
        if (index >= 0) this.slots.splice(index, 1, ...new Workers(1, level).slots);
      });
      worker.unref();
      this.slots.push(slot);
    }
  }

  send(req: Omit<WorkerRequest, 'id'>, transfer: ArrayBuffer[]): Promise<WorkerReply> {
    const id = this.nextId++;
    let target = this.slots[0];
    for (const s of this.slots) if (target && s.pending.size < target.pending.size) target = s;
    if (!target) return Promise.reject(new Error('chunk pool has no workers'));
    const slot = target;
    return new Promise((resolve, reject) => {
      if (slot.pending.size === 0) slot.worker.ref();
      slot.pending.set(id, { resolve, reject });
      slot.worker.postMessage({ ...req, id }, transfer);
    });
  }
}

let shared: Workers | undefined;

function sharedWorkers(): Workers {
  shared ??= new Workers(Math.max(1, availableParallelism()), CHUNK_LEVEL);
  return shared;
}

/**
 * Chunk work on one library, done by the process's shared workers. Cheap to
 * create; `close()` only stops further requests through this handle.
 */
export class ChunkPool {
  private closed = false;

  constructor(private readonly libraryDir: string) {}

  /** How many workers (one per core). */
  get size(): number {
    return sharedWorkers().slots.length;
  }

  private send(req: WithoutId<WorkerRequest>, transfer: ArrayBuffer[] = []): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new Error('chunk pool is closed'));
    return sharedWorkers().send({ ...req, library: this.libraryDir } as Omit<WorkerRequest, 'id'>, transfer);
  }

  /**
   * Hashes, compresses and stores one chunk; `data` is transferred (unusable
   * afterwards). With `expect`, a chunk whose hash differs is refused unwritten.
   */
  async store(data: Buffer, expect?: string): Promise<StoreReply> {
    const own = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength ? data : Buffer.from(data);
    const req = expect === undefined ? { op: 'store' as const, data: own } : { op: 'store' as const, data: own, expect };
    const reply = await this.send(req, [own.buffer as ArrayBuffer]);
    return reply as StoreReply;
  }

  /**
   * Stores consecutive chunks of `data` (their lengths given), transferring
   * the whole buffer: one round trip and no copy for a run of chunks. The
   * buffer comes back (transferred again) for the caller to reuse.
   */
  async storeMany(data: Uint8Array, lengths: number[]): Promise<{ chunks: StoredChunk[]; buffer: ArrayBuffer }> {
    const reply = (await this.send({ op: 'storeMany', data, lengths }, [data.buffer as ArrayBuffer])) as Extract<WorkerReply, { chunks: StoredChunk[]; data: Uint8Array }>;
    return { chunks: reply.chunks, buffer: reply.data.buffer as ArrayBuffer };
  }

  /** A worker reads, cuts, hashes and stores each of these (small) files: one round trip for many. */
  async storeFiles(paths: string[]): Promise<IngestedFile[]> {
    const reply = await this.send({ op: 'files', paths });
    return (reply as Extract<WorkerReply, { files: IngestedFile[] }>).files;
  }

  async load(hash: string, size: number): Promise<Buffer> {
    const reply = (await this.send({ op: 'load', hash, size })) as Extract<WorkerReply, { data: Uint8Array }>;
    return Buffer.from(reply.data.buffer, reply.data.byteOffset, reply.data.byteLength);
  }

  /** A worker writes each of these whole files (created new), verifying every chunk and file SHA-256. */
  async extractFiles(files: FileEntry[], root: string, copyInto?: CopyInto): Promise<CopyCount> {
    const jobs = files.map((f) => ({ path: join(root, f.path), name: f.path, mode: f.mode, fileHash: f.hash, chunks: f.chunks }));
    const reply = (await this.send({ op: 'extractFiles', files: jobs, ...(copyInto ? { copyInto } : {}) })) as Extract<WorkerReply, { written: number }>;
    return { copied: reply.copied, copiedBytes: reply.copiedBytes };
  }

  /**
   * A worker writes chunks (each verified) at `offset` of an existing file;
   * returns how many bytes. The bytes stay in the worker: handing every
   * segment to the caller cost a fresh buffer, page faults and all, per
   * 4 MiB; the caller reads them back from the page cache instead.
   */
  async writeSegment(path: string, name: string, offset: number, chunks: ChunkRef[], copyInto?: CopyInto): Promise<{ written: number } & CopyCount> {
    const reply = (await this.send({ op: 'writeSegment', path, name, offset, chunks, ...(copyInto ? { copyInto } : {}) })) as Extract<WorkerReply, { written: number }>;
    return { written: reply.written, copied: reply.copied, copiedBytes: reply.copiedBytes };
  }

  /**
   * A patch of `target` against `base` (both files in the library), or null
   * when it would not be smaller than `limit`. Runs in a worker: compressing
   * a segment holds its thread for a fraction of a second.
   */
  async patch(base: FileEntry, target: FileEntry, limit: number): Promise<Buffer | null> {
    const reply = (await this.send({ op: 'patch', base, target, limit })) as Extract<WorkerReply, { patch: Uint8Array | null }>;
    return reply.patch ? Buffer.from(reply.patch.buffer, reply.patch.byteOffset, reply.patch.byteLength) : null;
  }

  /** Lists a source folder (see walkSource) in a worker: the calls are synchronous there, and a slow share holds only that worker. */
  async walk(root: string): Promise<SourceItem[]> {
    const reply = (await this.send({ op: 'walk', root })) as Extract<WorkerReply, { items: SourceItem[] }>;
    return reply.items;
  }

  /** Runs folder, link and mode operations in a worker, in order (see runTreeOps); one flag per `linkIfSame`. */
  async treeOps(ops: TreeOp[]): Promise<boolean[]> {
    if (ops.length === 0) return [];
    const reply = (await this.send({ op: 'treeOps', ops })) as Extract<WorkerReply, { linked: boolean[] }>;
    return reply.linked;
  }

  /** Copies these chunks of this library into another one where missing (see copyChunkFiles). */
  async copyChunks(to: string, hashes: string[]): Promise<CopyCount> {
    const reply = (await this.send({ op: 'copyChunks', to, hashes })) as Extract<WorkerReply, { copyChunks: true }>;
    return { copied: reply.copied, copiedBytes: reply.copiedBytes };
  }

  async check(hash: string): Promise<{ good: boolean; problem?: 'missing' | 'corrupt' }> {
    return (await this.send({ op: 'check', hash })) as Extract<WorkerReply, { good: boolean }>;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.resolve();
  }
}
