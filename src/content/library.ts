import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { compress, decompress } from 'zstd-napi';
import { z } from 'zod';
import { SitecastError, ioError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { syncThroughHelper } from '../fs/sync-helper.js';
import { manifestId, parseManifest, serializeManifest } from './manifest.js';
import type { Manifest, Sha256Hex } from './types.js';
import { singleFrameContentSize } from './zstd-frame.js';

/**
 * A content library on disk:
 *   library.json              format marker
 *   chunks/<xx>/<sha256>      zstd frames (store.ts)
 *   manifests/<sha256>.zst    canonical manifests, one zstd frame each (format 2)
 *   manifests/<sha256>.json   the same, uncompressed (written by format 1; still read)
 *   tmp/                      staging; anything here is garbage after a crash
 *
 * A manifest's id is the SHA-256 of its canonical JSON, however it is stored.
 * Format 2 stores manifests compressed (node's 2,818-file manifest: 959 kB of
 * JSON, 74 kB stored). A format-1 library is upgraded when it is opened: its
 * marker is rewritten, and its `.json` manifests are read as they are.
 */
export const LIBRARY_FORMAT = 2;
const READABLE_FORMATS = [1, 2];
/** zstd level for stored manifests: a manifest is written once and read often. */
const MANIFEST_LEVEL = 9;
/**
 * Opens a library to write into, creating it when absent. `discard()` undoes
 * the creation (and only that): a first `ingest` or `unpack` that fails
 * leaves no library behind, and an existing library is never touched by it.
 */
export async function openLibraryToWrite(dir: string): Promise<{ lib: Library; discard: () => Promise<void> }> {
  const exists = async (p: string): Promise<boolean> => stat(p).then(() => true, () => false);
  const folderWas = await exists(dir);
  const libraryWas = await exists(join(dir, 'library.json'));
  const lib = await openLibrary(dir, { create: true });
  if (libraryWas) return { lib, discard: () => Promise.resolve() };
  return {
    lib,
    discard: async () => {
      if (!folderWas) {
        await rm(dir, { recursive: true, force: true }).catch(() => undefined);
        return;
      }
      // The folder was there and empty before: only what the library added goes.
      for (const name of ['chunks', 'manifests', 'tmp', 'library.json']) await rm(join(dir, name), { recursive: true, force: true }).catch(() => undefined);
    },
  };
}

/** A manifest frame may not claim more than this (the archive reader's bound). */
const MAX_MANIFEST_BYTES = 512 * 1024 * 1024;

const libraryFileSchema = z.object({ format: z.number().int() });

export interface Library {
  readonly dir: string;
}

export async function openLibrary(dir: string, options: { create?: boolean } = {}): Promise<Library> {
  const marker = join(dir, 'library.json');
  let text: string | undefined;
  try {
    text = await readFile(marker, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot read ${marker}`, err);
  }
  if (text === undefined) {
    if (!options.create) {
      throw new SitecastError('SITECAST_E_LIBRARY', `${dir} is not a content library (no library.json)`, {
        hint: 'check --library; `sitecast content ingest` creates a library',
      });
    }
    if (await isNonEmptyDir(dir)) {
      throw new SitecastError('SITECAST_E_LIBRARY', `${dir} exists, is not empty and is not a content library`, {
        hint: 'name a new or empty folder for the library',
      });
    }
    // The marker first: a crash right after it leaves a library that opens
    // (its folders are created on every open), never a folder that is refused.
    await writeFileAtomic(marker, `${JSON.stringify({ format: LIBRARY_FORMAT })}\n`);
    for (const sub of ['chunks', 'manifests', 'tmp']) await mkdirOrFail(join(dir, sub));
    return { dir };
  }
  let parsed: z.infer<typeof libraryFileSchema>;
  try {
    parsed = libraryFileSchema.parse(JSON.parse(text));
  } catch (err) {
    throw new SitecastError('SITECAST_E_LIBRARY', `${marker} does not parse`, { cause: err });
  }
  if (!READABLE_FORMATS.includes(parsed.format)) {
    throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `library ${dir} has format ${parsed.format}; this build reads formats ${READABLE_FORMATS.join(' and ')}`, {
      hint: 'upgrade Sitecast on this machine',
    });
  }
  if (parsed.format !== LIBRARY_FORMAT) {
    // Format 1 → 2: nothing to convert (old manifests stay readable); an older build now refuses the library by name.
    await writeFileAtomic(marker, `${JSON.stringify({ format: LIBRARY_FORMAT })}\n`);
  }
  for (const sub of ['chunks', 'manifests', 'tmp']) await mkdirOrFail(join(dir, sub));
  return { dir };
}

async function mkdirOrFail(path: string): Promise<void> {
  try {
    await mkdir(path, { recursive: true });
  } catch (err) {
    throw ioError(`cannot create ${path}`, err);
  }
}

async function isNonEmptyDir(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot read ${dir}`, err);
  }
}

/** Where a manifest is written (compressed). */
export function manifestPath(lib: Library, id: Sha256Hex): string {
  return join(lib.dir, 'manifests', `${id}.zst`);
}

/** Where a format-1 library kept a manifest (uncompressed); still read, removed by gc. */
export function legacyManifestPath(lib: Library, id: Sha256Hex): string {
  return join(lib.dir, 'manifests', `${id}.json`);
}

/** Stores the canonical bytes of a manifest under its id, compressed, durably (after its chunks are durable). */
export async function writeManifestBytes(lib: Library, id: Sha256Hex, bytes: Uint8Array): Promise<void> {
  await writeFileAtomic(manifestPath(lib, id), compress(bytes, { compressionLevel: MANIFEST_LEVEL }));
}

/** Writes a manifest durably (after its chunks are durable) and returns its id. */
export async function saveManifest(lib: Library, manifest: Manifest): Promise<Sha256Hex> {
  const bytes = serializeManifest(manifest);
  const id = manifestId(bytes);
  await writeManifestBytes(lib, id, bytes);
  return id;
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Puts manifest `id` of library `from` into library `to`: the compressed file
 * as it is (no second compression), or a format-1 `.json` compressed on the way.
 */
export async function copyManifest(from: Library, to: Library, id: Sha256Hex): Promise<void> {
  let frame: Buffer | undefined;
  try {
    frame = await readFile(manifestPath(from, id));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot read manifest ${id}`, err);
  }
  if (frame === undefined) await writeManifestBytes(to, id, await readManifestBytes(from, id));
  else await writeFileAtomic(manifestPath(to, id), frame);
}

export async function hasManifest(lib: Library, id: Sha256Hex): Promise<boolean> {
  return (await exists(manifestPath(lib, id))) || (await exists(legacyManifestPath(lib, id)));
}

/**
 * The canonical JSON bytes of a manifest, as stored (uncompressed when it was
 * kept compressed); not yet checked against the id: parseManifest does that.
 */
export async function readManifestBytes(lib: Library, id: Sha256Hex): Promise<Buffer> {
  checkManifestId(id);
  const read = async (path: string): Promise<Buffer | undefined> => {
    try {
      return await readFile(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw ioError(`cannot read manifest ${id}`, err);
    }
  };
  const frame = await read(manifestPath(lib, id));
  if (frame !== undefined) {
    try {
      singleFrameContentSize(frame, MAX_MANIFEST_BYTES, `manifest ${id}`);
      return decompress(frame);
    } catch (err) {
      throw new SitecastError('SITECAST_E_BAD_MANIFEST', `manifest ${id} in ${lib.dir} does not decompress`, { cause: err });
    }
  }
  const plain = await read(legacyManifestPath(lib, id));
  if (plain !== undefined) return plain;
  throw new SitecastError('SITECAST_E_NOT_FOUND', `manifest ${id} is not in library ${lib.dir}`);
}

const ID_PATTERN = /^[0-9a-f]{64}$/;

export function checkManifestId(id: string): Sha256Hex {
  if (!ID_PATTERN.test(id)) {
    throw new SitecastError('SITECAST_E_USAGE', `"${id}" is not a manifest id (64 lowercase hex digits)`);
  }
  return id;
}

export async function loadManifest(lib: Library, id: Sha256Hex): Promise<Manifest> {
  return parseManifest(await readManifestBytes(lib, id), id);
}

export async function listManifests(lib: Library): Promise<Sha256Hex[]> {
  const names = await readdir(join(lib.dir, 'manifests'));
  const ids = new Set<Sha256Hex>();
  for (const n of names) {
    const m = /^([0-9a-f]{64})\.(zst|json)$/.exec(n);
    if (m?.[1] !== undefined) ids.add(m[1]);
  }
  return [...ids].sort();
}

/** Every chunk file in the store, by hash. */
export async function listChunks(lib: Library): Promise<Sha256Hex[]> {
  const out: Sha256Hex[] = [];
  const root = join(lib.dir, 'chunks');
  for (const prefix of (await readdir(root)).sort()) {
    if (!/^[0-9a-f]{2}$/.test(prefix)) continue;
    for (const name of (await readdir(join(root, prefix))).sort()) {
      if (ID_PATTERN.test(name) && name.startsWith(prefix)) out.push(name);
    }
  }
  return out;
}

/**
 * Makes everything written so far durable with one syncfs(2) (`sync -f`)
 * instead of one fsync per chunk file, which costs ~0.5 ms each. Runs the
 * command asynchronously, through a long-lived helper (see syncThroughHelper):
 * a site server's event loop keeps serving while the disk catches up. Falls
 * back to running `sync -f` itself, then a full `sync`.
 */
export async function flushFileSystem(dir: string): Promise<void> {
  if ((await syncThroughHelper(dir)) === 0) return;
  if ((await runSync(['-f', dir])) === 0) return;
  const status = await runSync([]);
  if (status !== 0) {
    throw new SitecastError('SITECAST_E_IO', `cannot flush ${dir} to disk: \`sync\` failed or is missing`, {
      hint: 'nothing was recorded; check the disk and that coreutils is installed',
    });
  }
}

function runSync(args: string[]): Promise<number | null> {
  return new Promise((resolve) => {
    const child = spawn('sync', args, { stdio: 'ignore' });
    child.on('error', () => resolve(null));
    child.on('exit', (code) => resolve(code));
  });
}

/**
 * Starts write-back early while a long write is still going on: `kick()`
 * runs `sync -f` in the background (one at a time, through the helper), so
 * the final flush before a manifest is written finds little left to do.
 */
export class BackgroundFlusher {
  private running: Promise<void> | undefined;
  constructor(private readonly dir: string) {}

  kick(): void {
    if (this.running) return;
    this.running = syncThroughHelper(this.dir)
      .then(() => undefined)
      .finally(() => {
        this.running = undefined;
      });
  }

  /** Waits for a background flush, if any; the caller still flushes once itself. */
  async idle(): Promise<void> {
    await this.running;
  }
}

/** A private staging folder under tmp/, removed by the caller. */
export async function makeStaging(lib: Library, label: string): Promise<string> {
  const dir = join(lib.dir, 'tmp', `${label}-${process.pid}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`);
  await mkdirOrFail(dir);
  return dir;
}

export async function removeQuietly(path: string): Promise<void> {
  await rm(path, { recursive: true, force: true }).catch(() => undefined);
}
