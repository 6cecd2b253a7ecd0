import { createHash } from 'node:crypto';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { checkRelativePath, resolveLink, unsafe } from './tree-paths.js';
import type { Manifest, ManifestEntry, Sha256Hex } from './types.js';

export { checkRelativePath, resolveLink } from './tree-paths.js';

/**
 * Manifests come from other sites and courier media: everything in them is
 * checked before use. The canonical form (fixed key order, entries sorted by
 * path, no whitespace) is what is hashed, so a manifest's identity does not
 * depend on who serialized it.
 */
const hex64 = z.string().regex(/^[0-9a-f]{64}$/, 'a lowercase hex SHA-256');
/** Permission bits only: set-user-id, set-group-id and sticky bits never travel. */
const mode = z.number().int().min(0).max(0o777);
const size = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
const path = z.string().min(1).max(4096);

const entrySchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('dir'), path, mode }),
  z.strictObject({
    type: z.literal('file'),
    path,
    mode,
    size,
    hash: hex64,
    chunks: z.array(z.strictObject({ hash: hex64, size: z.number().int().min(1).max(1 << 26) })),
  }),
  z.strictObject({ type: z.literal('symlink'), path, target: z.string().min(1).max(4096) }),
]);

const manifestSchema = z.strictObject({ format: z.number().int(), entries: z.array(entrySchema) });

function compareBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}

export function sortEntries(entries: ManifestEntry[]): ManifestEntry[] {
  return [...entries].sort((a, b) => compareBytes(a.path, b.path));
}

/**
 * Structural checks beyond the schema: safe paths, no duplicates, no path
 * through a file or link, links that stay inside, chunk sizes adding up.
 */
/** SHA-256 of zero bytes. */
const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

export function checkManifest(manifest: Manifest): void {
  const kinds = new Map<string, ManifestEntry['type']>();
  let previous: string | undefined;
  for (const entry of manifest.entries) {
    checkRelativePath(entry.path);
    if (kinds.has(entry.path)) throw unsafe(`duplicate path "${entry.path}" in manifest`);
    if (previous !== undefined && compareBytes(previous, entry.path) > 0) {
      throw new SitecastError('SITECAST_E_BAD_MANIFEST', `manifest entries are not sorted at "${entry.path}"`);
    }
    previous = entry.path;
    kinds.set(entry.path, entry.type);
    if (entry.type === 'file') {
      const total = entry.chunks.reduce((sum, c) => sum + c.size, 0);
      if (total !== entry.size) {
        throw new SitecastError('SITECAST_E_BAD_MANIFEST', `file "${entry.path}": chunk sizes add up to ${total}, not ${entry.size}`);
      }
      // A file of one chunk is that chunk's bytes, an empty file no bytes: its hash is known without reading it.
      const known = entry.chunks.length === 1 ? entry.chunks[0]?.hash : entry.chunks.length === 0 ? EMPTY_SHA256 : undefined;
      if (known !== undefined && entry.hash !== known) {
        throw new SitecastError('SITECAST_E_BAD_MANIFEST', `file "${entry.path}": its hash ${entry.hash} is not the SHA-256 of its ${entry.chunks.length === 0 ? 'empty content' : 'one chunk'} (${known})`);
      }
    }
  }
  for (const entry of manifest.entries) {
    const parts = entry.path.split('/');
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join('/');
      const kind = kinds.get(parent);
      if (kind === 'file' || kind === 'symlink') {
        throw unsafe(`path "${entry.path}" goes through ${kind === 'file' ? 'the file' : 'the symlink'} "${parent}"`);
      }
      if (kind === undefined) {
        throw new SitecastError('SITECAST_E_BAD_MANIFEST', `path "${entry.path}" is inside "${parent}", which the manifest does not list as a folder`);
      }
    }
  }
  const links = new Map<string, string>();
  for (const entry of manifest.entries) if (entry.type === 'symlink') links.set(entry.path, entry.target);
  for (const path of links.keys()) {
    const where = resolveLink(path, links);
    if ('problem' in where) throw unsafe(`symlink "${path}" ${where.problem}`);
  }
}

/** Canonical bytes: fixed key order, no whitespace. */
export function serializeManifest(manifest: Manifest): Buffer {
  const entries = manifest.entries.map((e) => {
    switch (e.type) {
      case 'dir':
        return { type: e.type, path: e.path, mode: e.mode };
      case 'symlink':
        return { type: e.type, path: e.path, target: e.target };
      case 'file':
        return {
          type: e.type,
          path: e.path,
          mode: e.mode,
          size: e.size,
          hash: e.hash,
          chunks: e.chunks.map((c) => ({ hash: c.hash, size: c.size })),
        };
    }
  });
  return Buffer.from(JSON.stringify({ format: manifest.format, entries }));
}

export function manifestId(bytes: Uint8Array): Sha256Hex {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Parses untrusted manifest bytes; the result is schema-checked and structurally safe. */
export function parseManifest(bytes: Uint8Array, expectedId?: Sha256Hex): Manifest {
  let raw: unknown;
  try {
    raw = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (err) {
    throw new SitecastError('SITECAST_E_BAD_MANIFEST', 'manifest is not valid JSON', { cause: err });
  }
  if (typeof raw === 'object' && raw !== null && 'format' in raw && raw.format !== 1) {
    throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `manifest format ${String(raw.format)} is not supported (this build reads format 1)`, {
      hint: 'upgrade Sitecast on this machine',
    });
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue ? issue.path.join('.') : '';
    throw new SitecastError('SITECAST_E_BAD_MANIFEST', `manifest does not parse at "${where}": ${issue?.message ?? 'invalid'}`);
  }
  const manifest = parsed.data as Manifest;
  checkManifest(manifest);
  if (expectedId !== undefined && manifestId(serializeManifest(manifest)) !== expectedId) {
    throw new SitecastError('SITECAST_E_BAD_MANIFEST', `manifest content does not match its id ${expectedId}`);
  }
  return manifest;
}

export function fileEntries(manifest: Manifest): Extract<ManifestEntry, { type: 'file' }>[] {
  return manifest.entries.filter((e): e is Extract<ManifestEntry, { type: 'file' }> => e.type === 'file');
}
