import { ArchiveWriter } from './archive-writer.js';
import { loadManifest, openLibrary } from './library.js';
import { serializeManifest } from './manifest.js';
import { readChunkFrame } from './store.js';
import type { ProgressFn, Sha256Hex } from './types.js';

export interface PackResult {
  manifest: Sha256Hex;
  bytes: number;
  chunks: number;
}

/**
 * Writes a full archive of one version: the manifest and every chunk it
 * uses, once, as the compressed frames already in the store (no
 * recompression). The receiver verifies everything before applying it.
 */
export async function packManifest(
  libraryDir: string,
  id: Sha256Hex,
  out: string,
  options: { onProgress?: ProgressFn } = {},
): Promise<PackResult> {
  const lib = await openLibrary(libraryDir);
  const manifest = await loadManifest(lib, id);
  const unique = new Map<string, number>();
  for (const e of manifest.entries) if (e.type === 'file') for (const c of e.chunks) unique.set(c.hash, c.size);
  const writer = await ArchiveWriter.create(out, {
    kind: 'full',
    manifest: id,
    created: new Date().toISOString(),
    chunks: unique.size,
    patches: 0,
  });
  try {
    await writer.manifest(serializeManifest(manifest));
    let done = 0;
    for (const hash of unique.keys()) {
      await writer.chunk(hash, readChunkFrame(lib.dir, hash));
      options.onProgress?.(++done, unique.size);
    }
    const bytes = await writer.finish();
    return { manifest: id, bytes, chunks: unique.size };
  } catch (err) {
    await writer.abort();
    throw err;
  }
}
