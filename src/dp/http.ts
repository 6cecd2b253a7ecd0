import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { type Stats, createReadStream } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { ChunkFrameCache } from './chunk-cache.js';
import { dpPaths, sharePath } from './layout.js';

export interface DpHttpOptions {
  /** The folder of a DP of this site by name, or undefined when there is none. */
  resolveDp: (name: string) => Promise<string | undefined>;
  /** Memory for the chunk frames served last (default {@link DEFAULT_CHUNK_CACHE_BYTES}; 0 turns the cache off). */
  chunkCacheBytes?: number;
}

/** Enough for the chunks of a few packages being fetched at once by many clients. */
export const DEFAULT_CHUNK_CACHE_BYTES = 256 * 1024 * 1024;

const DP_NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;
const PACKAGE_ID = /^[A-Z0-9]{3}[0-9A-F]{5}$/;
const SHA256 = /^[0-9a-f]{64}$/;
/** Chunks one batch request may ask for; a client asks for more in several requests. */
export const MAX_BATCH_CHUNKS = 1024;
/** Frames up to this size are read whole and sent as one buffer; larger ones are streamed. */
const WHOLE_READ = 1 << 20;

const batchBodySchema = z.strictObject({ hashes: z.array(z.string().regex(SHA256)).min(1).max(MAX_BATCH_CHUNKS) });

async function fileStat(path: string): Promise<Stats | undefined> {
  try {
    const st = await stat(path);
    return st.isFile() ? st : undefined;
  } catch {
    return undefined;
  }
}

/** The whole file, read through one descriptor (a chunk is immutable; its size was taken just before). */
async function readWhole(path: string, size: number): Promise<Buffer> {
  const fh = await open(path, 'r');
  try {
    const buf = Buffer.allocUnsafe(size);
    let off = 0;
    while (off < size) {
      const { bytesRead } = await fh.read(buf, off, size - off, off);
      if (bytesRead === 0) throw new Error(`${path} is shorter than ${size} bytes`);
      off += bytesRead;
    }
    return buf;
  } finally {
    await fh.close();
  }
}

/** A chunk file as found by its stat: a small one comes from the cache or is read whole (and cached); a large one is streamed. */
async function frameOf(cache: ChunkFrameCache, path: string, st: Stats): Promise<Buffer | undefined> {
  if (st.size > WHOLE_READ) return undefined;
  const hit = cache.get(path, st);
  if (hit !== undefined) return hit;
  const frame = await readWhole(path, st.size);
  cache.put(path, st, frame);
  return frame;
}

/** The frames of a batch: per chunk its 32-byte SHA-256, its length (uint32, big-endian) and the zstd frame. */
async function* batchFrames(cache: ChunkFrameCache, chunks: readonly { hash: string; path: string; st: Stats }[]): AsyncGenerator<Buffer> {
  for (const c of chunks) {
    const header = Buffer.allocUnsafe(36);
    header.write(c.hash, 0, 'hex');
    header.writeUInt32BE(c.st.size, 32);
    yield header;
    const frame = await frameOf(cache, c.path, c.st);
    if (frame !== undefined) yield frame;
    else for await (const part of createReadStream(c.path, { start: 0, end: c.st.size - 1, highWaterMark: WHOLE_READ })) yield part as Buffer;
  }
}

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return reply.code(404).send({ error: { code: 'SITECAST_E_NOT_FOUND', message: `${what} does not exist` } });
}

/**
 * Serves the distribution points of this site read-only over HTTP:
 *
 *   GET /dp/<dp name>/<PKGID>/<path>     a file of the share (Range requests honoured)
 *   GET /dp/<dp name>/chunks/<sha256>    a chunk of the DP's library (one zstd frame)
 *   POST /dp/<dp name>/chunks {"hashes":[…]}   many chunks in one answer, as frames:
 *        32-byte SHA-256, uint32 big-endian length, the zstd frame; in the order asked
 *
 * Chunks are immutable, content-addressed files, so their routes skip
 * @fastify/static (send's path, ETag and conditional handling cost more than
 * the bytes at ~100 KB per chunk): a stat for Content-Length, then the file.
 * A batch is checked whole (every chunk present) before its first byte, and
 * carries a Content-Length, so a client tells a cut-off answer from a short one.
 *
 * A file is opened through the share link, so a download that started before
 * a new version was switched in finishes with the old version's bytes (the
 * open file outlives the folder), and the next request gets the new one.
 * Register it without fastify-plugin: @fastify/static's reply decorator stays
 * inside this plugin.
 */
export async function dpPlugin(app: FastifyInstance, options: DpHttpOptions): Promise<void> {
  await app.register(fastifyStatic, { serve: false, decorateReply: true, index: false, dotfiles: 'allow', acceptRanges: true });
  const cache = new ChunkFrameCache(options.chunkCacheBytes ?? DEFAULT_CHUNK_CACHE_BYTES);

  const dpFolder = async (name: string): Promise<string | undefined> => {
    if (!DP_NAME.test(name) || name.includes('..')) return undefined;
    return options.resolveDp(name);
  };

  app.get<{ Params: { dp: string; hash: string } }>('/dp/:dp/chunks/:hash', async (request, reply) => {
    const { dp, hash } = request.params;
    const folder = await dpFolder(dp);
    if (folder === undefined) return notFound(reply, `DP ${JSON.stringify(dp)}`);
    if (!SHA256.test(hash)) return notFound(reply, 'that chunk');
    const path = join(dpPaths(folder).library, 'chunks', hash.slice(0, 2), hash);
    const st = await fileStat(path);
    if (st === undefined) return notFound(reply, 'that chunk');
    reply.header('content-type', 'application/zstd');
    reply.header('cache-control', 'public, max-age=31536000, immutable');
    reply.header('content-length', st.size);
    // A HEAD answer keeps this Content-Length only when its payload is a stream (Fastify's HEAD handling).
    if (request.method === 'HEAD') return reply.send(Readable.from([]));
    return reply.send((await frameOf(cache, path, st)) ?? createReadStream(path, { start: 0, end: Math.max(0, st.size - 1) }));
  });

  app.post<{ Params: { dp: string } }>('/dp/:dp/chunks', async (request, reply) => {
    const folder = await dpFolder(request.params.dp);
    if (folder === undefined) return notFound(reply, `DP ${JSON.stringify(request.params.dp)}`);
    const body = batchBodySchema.safeParse(request.body);
    if (!body.success) {
      return reply.code(400).send({ error: { code: 'SITECAST_E_INVALID_VALUE', message: `a batch is {"hashes":[…]} with 1 to ${MAX_BATCH_CHUNKS} SHA-256 hex names` } });
    }
    const dir = join(dpPaths(folder).library, 'chunks');
    const chunks = await Promise.all(
      body.data.hashes.map(async (hash) => {
        const path = join(dir, hash.slice(0, 2), hash);
        return { hash, path, st: await fileStat(path) };
      }),
    );
    const missing = chunks.filter((c) => c.st === undefined).map((c) => c.hash);
    if (missing.length > 0) {
      return reply.code(404).send({ error: { code: 'SITECAST_E_NOT_FOUND', message: `${missing.length} of ${chunks.length} chunks do not exist on this DP`, missing } });
    }
    const present = chunks as { hash: string; path: string; st: Stats }[];
    reply.header('content-type', 'application/octet-stream');
    reply.header('content-length', present.reduce((n, c) => n + 36 + c.st.size, 0));
    return reply.send(Readable.from(batchFrames(cache, present), { objectMode: false, highWaterMark: WHOLE_READ }));
  });

  app.get<{ Params: { dp: string; pkg: string; '*': string } }>('/dp/:dp/:pkg/*', async (request, reply) => {
    const { dp, pkg } = request.params;
    const path = request.params['*'];
    const folder = await dpFolder(dp);
    if (folder === undefined) return notFound(reply, `DP ${JSON.stringify(dp)}`);
    if (!PACKAGE_ID.test(pkg)) return notFound(reply, `package ${JSON.stringify(pkg)}`);
    if (path === '' || path.endsWith('/')) return notFound(reply, 'a file at that path');
    // Shares change with every version: clients revalidate rather than cache.
    reply.header('cache-control', 'no-cache');
    return reply.sendFile(path, sharePath(dpPaths(folder), pkg));
  });
}
