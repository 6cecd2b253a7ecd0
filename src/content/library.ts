import { spawn } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { manifestId, parseManifest, serializeManifest } from './manifest.js';
import type { Manifest, Sha256Hex } from './types.js';

/**
 * A content library on disk:
 *   library.json              format marker
 *   chunks/<xx>/<sha256>      zstd frames (store.ts)
 *   manifests/<sha256>.json   canonical manifests
 *   tmp/                      staging; anything here is garbage after a crash
 */
export const LIBRARY_FORMAT = 1;

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
  if (parsed.format !== LIBRARY_FORMAT) {
    throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `library ${dir} has format ${parsed.format}; this build reads format ${LIBRARY_FORMAT}`, {
      hint: 'upgrade Sitecast on this machine',
    });
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

export function manifestPath(lib: Library, id: Sha256Hex): string {
  return join(lib.dir, 'manifests', `${id}.json`);
}

/** Writes a manifest durably (after its chunks are durable) and returns its id. */
export async function saveManifest(lib: Library, manifest: Manifest): Promise<Sha256Hex> {
  const bytes = serializeManifest(manifest);
  const id = manifestId(bytes);
  await writeFileAtomic(manifestPath(lib, id), bytes);
  return id;
}

export async function hasManifest(lib: Library, id: Sha256Hex): Promise<boolean> {
  try {
    await stat(manifestPath(lib, id));
    return true;
  } catch {
    return false;
  }
}

const ID_PATTERN = /^[0-9a-f]{64}$/;

export function checkManifestId(id: string): Sha256Hex {
  if (!ID_PATTERN.test(id)) {
    throw new SitecastError('SITECAST_E_USAGE', `"${id}" is not a manifest id (64 lowercase hex digits)`);
  }
  return id;
}

export async function loadManifest(lib: Library, id: Sha256Hex): Promise<Manifest> {
  checkManifestId(id);
  let bytes: Buffer;
  try {
    bytes = await readFile(manifestPath(lib, id));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `manifest ${id} is not in library ${lib.dir}`);
    }
    throw ioError(`cannot read manifest ${id}`, err);
  }
  return parseManifest(bytes, id);
}

export async function listManifests(lib: Library): Promise<Sha256Hex[]> {
  const names = await readdir(join(lib.dir, 'manifests'));
  return names
    .filter((n) => n.endsWith('.json') && ID_PATTERN.test(n.slice(0, -5)))
    .map((n) => n.slice(0, -5))
    .sort();
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
 * command asynchronously: a site server's event loop keeps serving while the
 * disk catches up. Falls back to a full `sync` where `-f` is not supported.
 */
export async function flushFileSystem(dir: string): Promise<void> {
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
 * runs `sync -f` in the background (one at a time), so the final, blocking
 * flush before a manifest is written finds little left to do.
 */
export class BackgroundFlusher {
  private running: Promise<void> | undefined;
  constructor(private readonly dir: string) {}

  kick(): void {
    if (this.running) return;
    this.running = new Promise<void>((resolve) => {
      const child = spawn('sync', ['-f', this.dir], { stdio: 'ignore' });
      child.on('error', () => resolve());
      child.on('exit', () => resolve());
    }).finally(() => {
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
