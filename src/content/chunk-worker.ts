import { createHash } from 'node:crypto';
import { chmodSync, closeSync, openSync, writeSync } from 'node:fs';
import { parentPort, workerData } from 'node:worker_threads';
import { SitecastError, ioError, isSitecastError } from '../errors.js';
import { ChunkCodec, chunkStoredSize, putChunkFrame, readChunk, sha256 } from './store.js';
import { chunkLengths, DEFAULT_CHUNKER } from './chunker.js';
import type { StoredChunk, WorkerReply, WorkerRequest } from './pool.js';

/**
 * Runs the CPU-heavy part of chunk handling off the main thread: hashing and
 * compressing chunks to store, decompressing and verifying chunks to read.
 */
const { libraryDir, level } = workerData as { libraryDir: string; level: number };
const codec = new ChunkCodec(level);

function storeChunk(data: Uint8Array, expect?: string): StoredChunk {
  const hash = sha256(data);
  if (expect !== undefined && hash !== expect) {
    throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `rebuilt chunk ${hash} should have been ${expect}`);
  }
  const existing = chunkStoredSize(libraryDir, hash);
  if (existing !== undefined) {
    try {
      readChunk(libraryDir, codec, hash, data.length);
      return { hash, size: data.length, stored: existing, added: false };
    } catch {
      // a corrupt copy on disk: putChunkFrame replaces it
    }
  }
  const frame = codec.compress(data);
  const added = putChunkFrame(libraryDir, hash, frame);
  return { hash, size: data.length, stored: frame.length, added };
}

function handle(req: WorkerRequest): { reply: WorkerReply; transfer: ArrayBuffer[] } {
  switch (req.op) {
    case 'store':
      return { reply: { id: req.id, ok: true, ...storeChunk(req.data, req.expect) }, transfer: [] };
    case 'file': {
      const chunks: StoredChunk[] = [];
      let pos = 0;
      for (const length of chunkLengths(req.data, DEFAULT_CHUNKER)) {
        chunks.push(storeChunk(req.data.subarray(pos, pos + length)));
        pos += length;
      }
      // A file of one chunk is that chunk: its hash is already known.
      const fileHash = chunks.length === 1 ? (chunks[0] as StoredChunk).hash : sha256(req.data);
      return { reply: { id: req.id, ok: true, fileHash, chunks }, transfer: [] };
    }
    case 'load': {
      const data = readChunk(libraryDir, codec, req.hash, req.size);
      const copy = new Uint8Array(data);
      return { reply: { id: req.id, ok: true, data: copy }, transfer: [copy.buffer] };
    }
    case 'extractFile': {
      const hash = createHash('sha256');
      const fd = openFile(req.path, 'wx');
      try {
        for (const chunk of req.chunks) {
          const data = readChunk(libraryDir, codec, chunk.hash, chunk.size);
          hash.update(data);
          writeAll(fd, data, null);
        }
      } finally {
        closeSync(fd);
      }
      if (hash.digest('hex') !== req.fileHash) {
        throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `file ${req.path} does not match its SHA-256 after extraction`);
      }
      chmodSync(req.path, req.mode);
      return { reply: { id: req.id, ok: true, written: 1 }, transfer: [] };
    }
    case 'writeSegment': {
      const total = req.chunks.reduce((sum, c) => sum + c.size, 0);
      const out = new Uint8Array(total);
      const fd = openFile(req.path, 'r+');
      let pos = 0;
      try {
        for (const chunk of req.chunks) {
          const data = readChunk(libraryDir, codec, chunk.hash, chunk.size);
          out.set(data, pos);
          pos += data.length;
        }
        writeAll(fd, out, req.offset);
      } finally {
        closeSync(fd);
      }
      return { reply: { id: req.id, ok: true, data: out }, transfer: [out.buffer] };
    }
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

function openFile(path: string, flags: string): number {
  try {
    return openSync(path, flags, 0o600);
  } catch (err) {
    throw ioError(`cannot open ${path}`, err);
  }
}

function writeAll(fd: number, data: Uint8Array, position: number | null): void {
  let off = 0;
  try {
    while (off < data.length) {
      off += writeSync(fd, data, off, data.length - off, position === null ? null : position + off);
    }
  } catch (err) {
    throw ioError('cannot write extracted file', err);
  }
}

parentPort?.on('message', (req: WorkerRequest) => {
  try {
    const { reply, transfer } = handle(req);
    parentPort?.postMessage(reply, transfer);
  } catch (err) {
    const e = err as { code?: string; message?: string; hint?: string };
    const code = e.code?.startsWith('SITECAST_E_') ? e.code : 'SITECAST_E_IO';
    parentPort?.postMessage({ id: req.id, ok: false, code, message: e.message ?? String(err), hint: e.hint });
  }
});
