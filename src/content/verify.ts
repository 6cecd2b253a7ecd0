import { loadManifest, listChunks, listManifests, openLibrary } from './library.js';
import { forEachBounded } from './concurrency.js';
import { ChunkPool } from './pool.js';
import type { ProgressFn, Sha256Hex, VerifyProblem, VerifyResult } from './types.js';

/**
 * Re-hashes every chunk in the store and checks that every chunk a manifest
 * names is present, naming for each bad chunk the manifests and paths it
 * breaks, so an administrator knows which package versions to re-send.
 */
export async function verifyLibrary(libraryDir: string, options: { onProgress?: ProgressFn } = {}): Promise<VerifyResult> {
  const lib = await openLibrary(libraryDir);
  const manifests = await listManifests(lib);
  const users = new Map<Sha256Hex, { manifest: Sha256Hex; path: string }[]>();
  const badManifests: { manifest: Sha256Hex; problem: string }[] = [];
  for (const id of manifests) {
    let manifest;
    try {
      manifest = await loadManifest(lib, id);
    } catch (err) {
      // A damaged manifest is reported like a damaged chunk, not fatal to the check.
      badManifests.push({ manifest: id, problem: err instanceof Error ? err.message : String(err) });
      continue;
    }
    for (const entry of manifest.entries) {
      if (entry.type !== 'file') continue;
      for (const chunk of entry.chunks) {
        let list = users.get(chunk.hash);
        if (!list) users.set(chunk.hash, (list = []));
        if (!list.some((u) => u.manifest === id && u.path === entry.path)) list.push({ manifest: id, path: entry.path });
      }
    }
  }
  const stored = await listChunks(lib);
  const storedSet = new Set(stored);
  const bad: VerifyProblem[] = [];
  const pool = new ChunkPool(lib.dir);
  try {
    let done = 0;
    await forEachBounded(stored, 32, async (hash) => {
      const r = await pool.check(hash);
      if (!r.good) bad.push({ chunk: hash, problem: r.problem ?? 'corrupt', breaks: users.get(hash) ?? [] });
      options.onProgress?.(++done, stored.length);
    });
  } finally {
    await pool.close();
  }
  for (const [hash, list] of users) {
    if (!storedSet.has(hash)) bad.push({ chunk: hash, problem: 'missing', breaks: list });
  }
  bad.sort((a, b) => (a.chunk < b.chunk ? -1 : a.chunk > b.chunk ? 1 : 0));
  return { chunks: stored.length, manifests: manifests.length, bad, badManifests };
}
