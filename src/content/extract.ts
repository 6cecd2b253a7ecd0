import { createHash } from 'node:crypto';
import { chmod, mkdir, open, readdir, rename, rmdir } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';
import { loadManifest, openLibrary, removeQuietly } from './library.js';
import { ChunkPool, type CopyCount, type CopyInto } from './pool.js';
import type { TreeOp } from './tree-ops.js';
import type { ChunkRef, FileEntry, Manifest, ProgressFn, Sha256Hex } from './types.js';

export interface ExtractOptions {
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface WriteTreeOptions extends ExtractOptions {
  /** Every chunk read is also stored in this library when it lacks it (see {@link CopyInto}). */
  copyInto?: CopyInto;
}

export interface ExtractResult {
  manifest: Sha256Hex;
  files: number;
  bytes: number;
}

/** How many batches of files are being written at once. */
const LOOKAHEAD = 4;
/** Small files go to a worker in batches of at most this many. */
const BATCH_FILES = 64;
/** Large files are written in segments of about this many bytes. */
const SEGMENT = 4 * 1024 * 1024;

/** Splits a file's chunk list into runs of about SEGMENT bytes. */
function segments(file: FileEntry): { offset: number; chunks: ChunkRef[] }[] {
  const out: { offset: number; chunks: ChunkRef[] }[] = [];
  let offset = 0;
  let current: { offset: number; chunks: ChunkRef[] } = { offset: 0, chunks: [] };
  let size = 0;
  for (const chunk of file.chunks) {
    current.chunks.push(chunk);
    size += chunk.size;
    offset += chunk.size;
    if (size >= SEGMENT) {
      out.push(current);
      current = { offset, chunks: [] };
      size = 0;
    }
  }
  if (current.chunks.length > 0) out.push(current);
  return out;
}

interface LargeFileJob {
  progress: (n: number) => void;
  copyInto: CopyInto | undefined;
  count: CopyCount;
  signal: AbortSignal | undefined;
}

async function writeLargeFile(pool: ChunkPool, file: FileEntry, path: string, job: LargeFileJob): Promise<void> {
  const { progress, copyInto, count } = job;
  const handle = await open(path, 'wx+', 0o600).catch((err: unknown) => {
    throw ioError(`cannot create ${file.path}`, err);
  });
  try {
    const hash = createHash('sha256');
    const parts = segments(file);
    const queue: { offset: number; written: Promise<number> }[] = [];
    // One buffer for reading written segments back: the file hash is taken from what is on disk, in order.
    let buffer = Buffer.allocUnsafe(SEGMENT + 1024 * 1024);
    let next = 0;
    try {
      while (next < parts.length || queue.length > 0) {
        job.signal?.throwIfAborted();
        while (queue.length < 4 && next < parts.length) {
          const part = parts[next++] as { offset: number; chunks: ChunkRef[] };
          const written = pool.writeSegment(path, file.path, part.offset, part.chunks, copyInto).then((r) => {
            count.copied += r.copied;
            count.copiedBytes += r.copiedBytes;
            return r.written;
          });
          written.catch(() => undefined); // observed when shifted
          queue.push({ offset: part.offset, written });
        }
        const head = queue.shift() as { offset: number; written: Promise<number> };
        const length = await head.written;
        if (buffer.length < length) buffer = Buffer.allocUnsafe(length);
        let got = 0;
        while (got < length) {
          const { bytesRead } = await handle.read(buffer, got, length - got, head.offset + got);
          if (bytesRead === 0) throw new SitecastError('SITECAST_E_IO', `${file.path} is shorter than written`);
          got += bytesRead;
        }
        hash.update(buffer.subarray(0, length));
        progress(length);
      }
    } catch (err) {
      await Promise.allSettled(queue.map((q) => q.written));
      throw err;
    }
    if (hash.digest('hex') !== file.hash) {
      throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `file "${file.path}" does not match its SHA-256 after extraction`);
    }
  } finally {
    await handle.close();
  }
  await chmod(path, file.mode);
}

/**
 * Writes a manifest's tree into `dest`, verifying every chunk and every
 * file's SHA-256. The tree is built in a sibling staging folder and renamed
 * into place at the end, so `dest` either does not change or is complete.
 */
export async function extractManifest(
  libraryDir: string,
  id: Sha256Hex,
  dest: string,
  options: ExtractOptions = {},
): Promise<ExtractResult> {
  const lib = await openLibrary(libraryDir);
  const manifest = await loadManifest(lib, id);
  await checkDestination(dest);
  const staging = join(dirname(dest), `.${basename(dest)}.partial-${process.pid}-${Date.now().toString(36)}`);
  const pool = new ChunkPool(lib.dir);
  try {
    await mkdir(staging, { recursive: false }).catch((err: unknown) => {
      throw ioError(`cannot create ${staging}`, err);
    });
    const result = await writeTree(pool, manifest, staging, options);
    await rmdir(dest).catch((err: unknown) => {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot replace ${dest}`, err);
    });
    await rename(staging, dest).catch((err: unknown) => {
      throw ioError(`cannot move the extracted tree to ${dest}`, err);
    });
    return { manifest: id, files: result.files, bytes: result.bytes };
  } catch (err) {
    await removeQuietly(staging);
    throw err;
  } finally {
    await pool.close();
  }
}

async function checkDestination(dest: string): Promise<void> {
  try {
    const names = await readdir(dest);
    if (names.length > 0) {
      throw new SitecastError('SITECAST_E_USAGE', `destination ${dest} exists and is not empty`, {
        hint: 'extract into a new or empty folder',
      });
    }
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return;
    if (code === 'ENOTDIR') throw new SitecastError('SITECAST_E_USAGE', `destination ${dest} is a file`);
    if (err instanceof SitecastError) throw err;
    throw ioError(`cannot read ${dest}`, err);
  }
}

/** The links of a tree, then its folders' modes, deepest first: a read-only folder must not stop its own contents being written. */
export function finishingOps(manifest: Manifest, root: string): TreeOp[] {
  const ops: TreeOp[] = [];
  for (const e of manifest.entries) if (e.type === 'symlink') ops.push({ op: 'symlink', path: join(root, e.path), name: e.path, target: e.target });
  for (const e of [...manifest.entries].reverse()) if (e.type === 'dir') ops.push({ op: 'chmod', path: join(root, e.path), name: e.path, mode: e.mode });
  return ops;
}

/**
 * Writes the tree under `root` (which exists and is empty). Exported for the
 * distribution point, which stages shares the same way.
 */
export async function writeTree(
  pool: ChunkPool,
  manifest: Manifest,
  root: string,
  options: WriteTreeOptions = {},
): Promise<{ files: number; bytes: number } & CopyCount> {
  const files = manifest.entries.filter((e): e is FileEntry => e.type === 'file');
  const total = files.reduce((sum, f) => sum + f.size, 0);
  let done = 0;
  const count: CopyCount = { copied: 0, copiedBytes: 0 };

  // Entries are sorted, so a folder always comes before what it holds.
  // Folders, links and modes are made by a worker (see runTreeOps).
  await pool.treeOps(manifest.entries.flatMap((e): TreeOp[] => (e.type === 'dir' ? [{ op: 'mkdir', path: join(root, e.path), name: e.path }] : [])));

  // Small files: a worker writes each whole. Large files: workers write
  // segments in place while this thread hashes them in order; small files
  // keep going to the workers meanwhile.
  const running = new Set<Promise<void>>();
  let failure: { err: unknown } | undefined;
  const track = async (work: Promise<void>): Promise<void> => {
    running.add(work);
    work
      .catch((err: unknown) => {
        failure ??= { err };
      })
      .finally(() => running.delete(work));
    while (running.size >= LOOKAHEAD) await Promise.race(running).catch(() => undefined);
  };
  let batch: FileEntry[] = [];
  let batchBytes = 0;
  let large: Promise<void> = Promise.resolve();
  const flush = async (): Promise<void> => {
    if (batch.length === 0) return;
    const items = batch;
    const bytes = batchBytes;
    batch = [];
    batchBytes = 0;
    await track(
      pool.extractFiles(items, root, options.copyInto).then((r) => {
        count.copied += r.copied;
        count.copiedBytes += r.copiedBytes;
        done += bytes;
        options.onProgress?.(done, total);
      }),
    );
  };
  for (const file of files) {
    if (failure) break;
    if (options.signal?.aborted === true) {
      // Stop, but only once what is in flight has settled (the caller removes the tree).
      failure = { err: options.signal.reason };
      break;
    }
    if (file.size <= SEGMENT) {
      batch.push(file);
      batchBytes += file.size;
      if (batch.length >= BATCH_FILES || batchBytes >= SEGMENT) await flush();
      continue;
    }
    // One large file at a time, but the loop goes on handing small files to
    // the workers, which take them between the large file's segments.
    const path = join(root, file.path);
    large = large.then(async () => {
      if (failure) return;
      await writeLargeFile(pool, file, path, {
        progress: (n) => {
          done += n;
          options.onProgress?.(done, total);
        },
        copyInto: options.copyInto,
        count,
        signal: options.signal,
      }).catch((err: unknown) => {
        failure ??= { err };
      });
    });
  }
  if (!failure) await flush();
  await large;
  await Promise.allSettled(running);
  if (failure) throw failure.err;

  await pool.treeOps(finishingOps(manifest, root));
  return { files: files.length, bytes: total, ...count };
}
