import { stat } from 'node:fs/promises';
import type { NalFile } from '../formats/instructions.js';
import { ChunkCodec, MAX_CHUNK, chunkPath, putChunkFrame } from '../content/store.js';
import type { Manifest } from '../content/types.js';
import { SitecastError } from '../errors.js';

export type Location = NalFile['locations'][number];

export interface DownloadOptions {
  /** The client's content library (chunks are stored there, verified). */
  cacheDir: string;
  manifest: Manifest;
  locations: readonly Location[];
  /** The client's site: its DPs are tried first. */
  site: string;
  /** Called once per DP that failed or served bad data; the agent reports it. */
  onBadDp: (location: Location, problem: string) => void;
  /** Requests in flight at once to one DP (default 2). */
  concurrency?: number;
  /** Chunks asked for in one batch request (default 256; 1 fetches each chunk on its own). */
  batchSize?: number;
}

export interface DownloadResult {
  fetched: number;
  fetchedBytes: number;
  /** Chunks that were already in the cache. */
  cached: number;
  /** DPs that served chunks, in order. */
  used: string[];
}

const TIMEOUT_MS = 60_000;
/** Per frame of a batch answer: 32-byte SHA-256 and uint32 big-endian length (see src/dp/http.ts). */
const FRAME_HEADER = 36;
/** The most a DP takes in one batch (MAX_BATCH_CHUNKS of src/dp/http.ts). */
const MAX_BATCH = 1024;

/** DPs of the client's own site first, then the others, each group in `.NAL` order. */
export function orderLocations(locations: readonly Location[], site: string): Location[] {
  return [...locations.filter((l) => l.site === site), ...locations.filter((l) => l.site !== site)];
}

/** A DP's chunk URL: beside its share, `…/dp/<dp>/chunks/<sha256>` for a share at `…/dp/<dp>/<PKGID>/`. */
export function chunkUrl(location: Location, hash: string): string {
  return new URL(`../chunks/${hash}`, location.url).href;
}

async function present(cacheDir: string, hash: string): Promise<boolean> {
  try {
    await stat(chunkPath(cacheDir, hash));
    return true;
  } catch {
    return false;
  }
}

async function fetchChunk(codec: ChunkCodec, url: string, hash: string, size: number): Promise<Buffer> {
  const res = await fetch(url, { signal: AbortSignal.timeout(TIMEOUT_MS) });
  if (!res.ok) {
    await res.body?.cancel().catch(() => undefined);
    throw new SitecastError('SITECAST_E_DOWNLOAD', `chunk ${hash}: HTTP ${res.status}`);
  }
  const frame = Buffer.from(await res.arrayBuffer());
  if (frame.length > MAX_CHUNK + 1024) throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash}: ${frame.length} bytes is too large`);
  codec.decompressVerified(hash, frame, size);
  return frame;
}

/** A DP's batch URL: `…/dp/<dp>/chunks` for a share at `…/dp/<dp>/<PKGID>/`. */
export function batchUrl(location: Location): string {
  return new URL('../chunks', location.url).href;
}

/** Thrown when a DP has no batch route (an older DP): the caller fetches chunk by chunk. */
class NoBatchRoute extends Error {}

/**
 * Fetches `hashes` in one POST and hands each frame, verified, to `store` as it
 * arrives, so a batch cut off half-way keeps the chunks that came whole.
 */
async function fetchBatch(codec: ChunkCodec, url: string, hashes: readonly string[], sizes: ReadonlyMap<string, number>, store: (hash: string, frame: Buffer) => void): Promise<void> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ hashes }),
    signal: AbortSignal.timeout(TIMEOUT_MS + hashes.length * 1000),
  });
  if (res.status === 404 || res.status === 405) {
    const text = await res.text().catch(() => '');
    // A 404 naming missing chunks is a DP that lacks content; any other 404/405 is a DP without the route.
    if (!text.includes('"missing"')) throw new NoBatchRoute();
    throw new SitecastError('SITECAST_E_DOWNLOAD', `chunks missing on the DP: HTTP ${res.status}`);
  }
  if (!res.ok || res.body === null) {
    await res.body?.cancel().catch(() => undefined);
    throw new SitecastError('SITECAST_E_DOWNLOAD', `batch of ${hashes.length} chunks: HTTP ${res.status}`);
  }
  let pending: Buffer[] = [];
  let pendingBytes = 0;
  let next = 0;
  const take = (n: number): Buffer => {
    const all = pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending, pendingBytes);
    pending = all.length > n ? [all.subarray(n)] : [];
    pendingBytes = all.length - n;
    return all.subarray(0, n);
  };
  let want: { hash: string; length: number } | undefined;
  for await (const part of res.body) {
    pending.push(Buffer.from(part));
    pendingBytes += part.length;
    for (;;) {
      if (want === undefined) {
        if (pendingBytes < FRAME_HEADER) break;
        const header = take(FRAME_HEADER);
        const hash = header.subarray(0, 32).toString('hex');
        const length = header.readUInt32BE(32);
        if (hash !== hashes[next]) throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `batch answer: frame ${next} is ${hash}, expected ${hashes[next] ?? 'none'}`);
        if (length > MAX_CHUNK + 1024) throw new SitecastError('SITECAST_E_CORRUPT_CHUNK', `chunk ${hash}: ${length} bytes is too large`);
        want = { hash, length };
      }
      if (pendingBytes < want.length) break;
      const frame = Buffer.from(take(want.length));
      codec.decompressVerified(want.hash, frame, sizes.get(want.hash) ?? 0);
      store(want.hash, frame);
      want = undefined;
      next += 1;
    }
  }
  if (next < hashes.length) throw new SitecastError('SITECAST_E_DOWNLOAD', `batch answer ended after ${next} of ${hashes.length} chunks`);
}

/**
 * Brings every chunk of a manifest into the client's cache, fetching only
 * those it lacks, many per request (`POST …/chunks`; chunk by chunk from a DP
 * without that route). Each chunk is received whole into memory, checked (zstd
 * frame, size, SHA-256) and only then stored under its name, so an
 * interrupted download leaves nothing half-written and the next attempt
 * resumes with the chunks still missing. A DP that fails (down, an HTTP
 * error, a chunk that does not match its hash) is reported and the rest is
 * fetched from the next DP.
 */
export async function downloadChunks(options: DownloadOptions): Promise<DownloadResult> {
  const sizes = new Map<string, number>();
  for (const e of options.manifest.entries) if (e.type === 'file') for (const c of e.chunks) sizes.set(c.hash, c.size);
  const missing: string[] = [];
  for (const hash of sizes.keys()) if (!(await present(options.cacheDir, hash))) missing.push(hash);
  const result: DownloadResult = { fetched: 0, fetchedBytes: 0, cached: sizes.size - missing.length, used: [] };
  let todo = missing;
  const codec = new ChunkCodec();
  for (const location of orderLocations(options.locations, options.site)) {
    if (todo.length === 0) break;
    let failure: string | undefined;
    const batchSize = Math.min(MAX_BATCH, Math.max(1, options.batchSize ?? 256));
    let batched = batchSize > 1;
    let next = 0;
    const store = (hash: string, frame: Buffer): void => {
      putChunkFrame(options.cacheDir, hash, frame);
      result.fetched += 1;
      result.fetchedBytes += frame.length;
    };
    const describe = (err: unknown): string =>
      err instanceof SitecastError ? err.message : `unreachable (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)})`;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < todo.length) {
        if (batched) {
          const batch = todo.slice(next, next + batchSize);
          next += batch.length;
          try {
            await fetchBatch(codec, batchUrl(location), batch, sizes, store);
          } catch (err) {
            if (!(err instanceof NoBatchRoute)) {
              failure ??= describe(err);
              continue;
            }
            // This DP serves chunks one by one only: put the batch back and go on that way.
            batched = false;
            todo.push(...batch);
          }
          continue;
        }
        const hash = todo[next++] as string;
        try {
          store(hash, await fetchChunk(codec, chunkUrl(location, hash), hash, sizes.get(hash) ?? 0));
        } catch (err) {
          failure ??= describe(err);
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 2 }, worker));
    if (failure !== undefined) options.onBadDp(location, failure);
    else result.used.push(`${location.site}/${location.dp}`);
    const left: string[] = [];
    for (const hash of new Set(todo)) if (!(await present(options.cacheDir, hash))) left.push(hash);
    if (failure !== undefined && left.length < todo.length) result.used.push(`${location.site}/${location.dp}`);
    todo = left;
  }
  if (todo.length > 0) {
    throw new SitecastError('SITECAST_E_DOWNLOAD', `${todo.length} of ${sizes.size} chunks could not be fetched from any of ${options.locations.length} DPs`, {
      hint: 'the bad DPs were reported; the agent tries again at its next poll',
    });
  }
  return result;
}
