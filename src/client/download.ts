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
  /** Chunks fetched at once from one DP (default 4). */
  concurrency?: number;
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

/**
 * Brings every chunk of a manifest into the client's cache, fetching only
 * those it lacks. Each chunk is fetched whole into memory, checked (zstd
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
    let next = 0;
    const worker = async (): Promise<void> => {
      while (failure === undefined && next < todo.length) {
        const hash = todo[next++] as string;
        try {
          const frame = await fetchChunk(codec, chunkUrl(location, hash), hash, sizes.get(hash) ?? 0);
          putChunkFrame(options.cacheDir, hash, frame);
          result.fetched += 1;
          result.fetchedBytes += frame.length;
        } catch (err) {
          failure ??= err instanceof SitecastError ? err.message : `unreachable (${err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err)})`;
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
    if (failure !== undefined) options.onBadDp(location, failure);
    else result.used.push(`${location.site}/${location.dp}`);
    const left: string[] = [];
    for (const hash of todo) if (!(await present(options.cacheDir, hash))) left.push(hash);
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
