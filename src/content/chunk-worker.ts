import { createHash } from 'node:crypto';
import { chmodSync, closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SitecastError, ioError, isSitecastError } from '../errors.js';
import { libraryFileSource } from './file-source.js';
import { createPatch } from './patch.js';
import { ChunkCodec, ChunkScratch, chunkPath, chunkStoredSize, copyChunkFiles, putChunkFrame, readChunk, readChunkFrameAndData, readChunkInto, sha256 } from './store.js';
import { chunkLengths, DEFAULT_CHUNKER } from './chunker.js';
import { runTreeOps } from './tree-ops.js';
import { walkSource } from './walk.js';
import type { CopyCount, CopyInto, ExtractJob, IngestedFile, StoredChunk, WorkerReply, WorkerRequest } from './pool.js';

/**
 * Runs the CPU-heavy part of chunk handling off the main thread: hashing and
 * compressing chunks to store, decompressing and verifying chunks to read.
 */
const { level } = workerData as { level: number };
/**
 * The library of the request being handled. One set of workers serves every
 * library of the process; synchronous handlers run one at a time, so this is
 * set at the start of each and read only inside it.
 */
let libraryDir = '';
const codec = new ChunkCodec(level);
const scratch = new ChunkScratch();
/** Whole small files being ingested (their chunks are views of it while `scratch` compresses them). */
const fileScratch = new ChunkScratch();
/** Chunks copied into another library by the request being handled (see {@link loadChunk}). */
let copyCount: CopyCount = { copied: 0, copiedBytes: 0 };

function storeChunk(data: Uint8Array, expect?: string): StoredChunk {
  const hash = sha256(data);
  if (expect !== undefined && hash !== expect) {
    throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `rebuilt chunk ${hash} should have been ${expect}`);
  }
  const existing = chunkStoredSize(libraryDir, hash);
  if (existing !== undefined) {
    try {
      readChunkInto(libraryDir, codec, hash, data.length, scratch);
      return { hash, size: data.length, stored: existing, added: false };
    } catch {
      // a corrupt copy on disk: putChunkFrame replaces it
    }
  }
  const frame = codec.compressInto(data, scratch);
  const added = putChunkFrame(libraryDir, hash, frame);
  return { hash, size: data.length, stored: frame.length, added };
}

/** Reads, cuts, hashes and stores one whole (small) file. */
function ingestFile(path: string): IngestedFile {
  // Read into a buffer this worker reuses file after file (no fresh memory, no page faults, per file).
  let data: Buffer;
  try {
    data = fileScratch.readFile(path);
  } catch (err) {
    throw ioError(`cannot read ${path}`, err);
  }
  const chunks: StoredChunk[] = [];
  let pos = 0;
  for (const length of chunkLengths(data, DEFAULT_CHUNKER)) {
    chunks.push(storeChunk(data.subarray(pos, pos + length)));
    pos += length;
  }
  // A file of one chunk is that chunk: its hash is already known.
  const fileHash = chunks.length === 1 ? (chunks[0] as StoredChunk).hash : sha256(data);
  return { fileHash, size: data.length, chunks };
}

/**
 * A chunk of the request's library, decompressed and verified into the
 * scratch. With `copyInto`, its verified frame is also stored there unless
 * that library already holds it (same size, or with `checkExisting` the same
 * bytes): only a chunk that passed its hash ever reaches the other library.
 */
function loadChunk(hash: string, size: number, copyInto: CopyInto | undefined): Uint8Array {
  if (copyInto === undefined) return readChunkInto(libraryDir, codec, hash, size, scratch);
  const { frame, data } = readChunkFrameAndData(libraryDir, codec, hash, size, scratch);
  const have = chunkStoredSize(copyInto.library, hash);
  if (have !== frame.length || (copyInto.checkExisting && !sameBytes(chunkPath(copyInto.library, hash), frame))) {
    putChunkFrame(copyInto.library, hash, frame);
    copyCount.copied += 1;
    copyCount.copiedBytes += frame.length;
  }
  return data;
}

function sameBytes(path: string, bytes: Uint8Array): boolean {
  try {
    return fileScratch.readFile(path).equals(bytes);
  } catch {
    return false;
  }
}

/** Writes one whole file (created new), verifying every chunk and the file's SHA-256. */
function extractFile(file: ExtractJob, copyInto: CopyInto | undefined): void {
  // A one-chunk file is that chunk: verifying the chunk verifies the file.
  const single = file.chunks.length === 1 && file.chunks[0]?.hash === file.fileHash;
  const hash = single ? undefined : createHash('sha256');
  const fd = openFile(file.path, file.name, 'wx');
  try {
    for (const chunk of file.chunks) {
      const data = inFile(file.name, () => loadChunk(chunk.hash, chunk.size, copyInto));
      hash?.update(data);
      writeAll(fd, file.name, data, null);
    }
  } finally {
    closeSync(fd);
  }
  if (hash && hash.digest('hex') !== file.fileHash) {
    throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `file "${file.name}" does not match its SHA-256 after extraction`);
  }
  try {
    chmodSync(file.path, file.mode);
  } catch (err) {
    throw ioError(`cannot set the mode of "${file.name}"`, err);
  }
}

async function handleAsync(req: Extract<WorkerRequest, { op: 'patch' }>): Promise<{ reply: WorkerReply; transfer: ArrayBuffer[] }> {
  const patch = await createPatch(libraryFileSource(req.library, req.base, codec), libraryFileSource(req.library, req.target, codec), {
    limit: req.limit,
  });
  if (!patch) return { reply: { id: req.id, ok: true, patch: null }, transfer: [] };
  const copy = new Uint8Array(patch);
  return { reply: { id: req.id, ok: true, patch: copy }, transfer: [copy.buffer] };
}

function handle(req: Exclude<WorkerRequest, { op: 'patch' }>): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  switch (req.op) {
    case 'store':
      return { reply: { id: req.id, ok: true, ...storeChunk(req.data, req.expect) }, transfer: [] };
    case 'storeMany': {
      const chunks: StoredChunk[] = [];
      let pos = 0;
      for (const length of req.lengths) {
        chunks.push(storeChunk(req.data.subarray(pos, pos + length)));
        pos += length;
      }
      // The buffer goes back to the caller, who reads the next block into it.
      return { reply: { id: req.id, ok: true, chunks, data: req.data }, transfer: [req.data.buffer as ArrayBuffer] };
    }
    case 'files': {
      const files = req.paths.map((path) => ingestFile(path));
      return { reply: { id: req.id, ok: true, files }, transfer: [] };
    }
    case 'load': {
      const data = readChunk(libraryDir, codec, req.hash, req.size);
      const copy = new Uint8Array(data);
      return { reply: { id: req.id, ok: true, data: copy }, transfer: [copy.buffer] };
    }
    case 'extractFiles': {
      for (const file of req.files) extractFile(file, req.copyInto);
      return { reply: { id: req.id, ok: true, written: req.files.length, ...copyCount }, transfer: [] };
    }
    case 'writeSegment': {
      const fd = openFile(req.path, req.name, 'r+');
      let pos = req.offset;
      try {
        for (const chunk of req.chunks) {
          writeAll(fd, req.name, inFile(req.name, () => loadChunk(chunk.hash, chunk.size, req.copyInto)), pos);
          pos += chunk.size;
        }
      } finally {
        closeSync(fd);
      }
      return { reply: { id: req.id, ok: true, written: pos - req.offset, ...copyCount }, transfer: [] };
    }
    case 'copyChunks':
      return { reply: { id: req.id, ok: true, copyChunks: true, ...copyChunkFiles(libraryDir, req.to, req.hashes) }, transfer: [] };
    case 'treeOps':
      return { reply: { id: req.id, ok: true, linked: runTreeOps(req.ops) }, transfer: [] };
    case 'walk':
      return { reply: { id: req.id, ok: true, items: walkSource(req.root) }, transfer: [] };
    case 'check': {
      try {
        readChunk(libraryDir, codec, req.hash);
        return { reply: { id: req.id, ok: true, good: true }, transfer: [] };
      } catch (err) {
        const problem = isSitecastError(err, 'SITECAST_E_NOT_FOUND') ? 'missing' : 'corrupt';
        return { reply: { id: req.id, ok: true, good: false, problem }, transfer: [] };
      }
    }
  }
}

function openFile(path: string, name: string, flags: string): number {
  try {
    return openSync(path, flags, 0o600);
  } catch (err) {
    throw ioError(`cannot create "${name}"`, err);
  }
}

/** A bad or missing chunk's error, saying which file it belongs to. */
function inFile<T>(name: string, load: () => T): T {
  try {
    return load();
  } catch (err) {
    if (!isSitecastError(err)) throw err;
    throw new SitecastError(err.code, `${err.message} (a chunk of "${name}")`, err.hint === undefined ? {} : { hint: err.hint });
  }
}

function writeAll(fd: number, name: string, data: Uint8Array, position: number | null): void {
  let off = 0;
  try {
    while (off < data.length) {
      off += writeSync(fd, data, off, data.length - off, position === null ? null : position + off);
    }
  } catch (err) {
    throw ioError(`cannot write "${name}"`, err);
  }
}

parentPort?.on('message', (req: WorkerRequest) => {
  const reply = (result: { reply: WorkerReply; transfer: ArrayBuffer[] }): void => parentPort?.postMessage(result.reply, result.transfer);
  const fail = (err: unknown): void => {
    const e = err as { code?: string; message?: string; hint?: string };
    const code = e.code?.startsWith('SITECAST_E_') ? e.code : 'SITECAST_E_IO';
    parentPort?.postMessage({ id: req.id, ok: false, code, message: e.message ?? String(err), hint: e.hint });
  };
  if (req.op === 'patch') {
    handleAsync(req).then(reply, fail);
    return;
  }
  try {
    libraryDir = req.library;
    copyCount = { copied: 0, copiedBytes: 0 };
    reply(handle(req));
  } catch (err) {
    fail(err);
  }
});
