import { lstat, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { shq } from './exec.js';
import type { BenchContext, Measured } from './types.js';

/** Bytes of regular-file content in a tree: the figure throughput is counted in. */
export async function treeBytes(dir: string): Promise<number> {
  let total = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) total += (await lstat(join(entry.parentPath, entry.name))).size;
  }
  return total;
}

export async function fileSize(path: string): Promise<number> {
  return (await stat(path)).size;
}

/** `du -sb`: apparent size of everything in the folder, metadata files included. */
export async function duBytes(ctx: BenchContext, dir: string): Promise<number> {
  const out = (await ctx.run('du', ['-sb', dir])).stdout;
  const n = Number.parseInt(out.split('\t')[0] ?? '', 10);
  if (!Number.isFinite(n)) throw new Error(`cannot read du output: ${out}`);
  return n;
}

export async function copyTree(ctx: BenchContext, from: string, to: string): Promise<void> {
  await ctx.run('cp', ['-a', `${from}/.`, to]);
}

/**
 * Fails unless both trees hold the same paths, contents (by checksum), modes
 * and links. Times are ignored: a manifest does not carry them.
 */
export async function assertSameTree(ctx: BenchContext, expected: string, actual: string): Promise<void> {
  const out = await ctx.run('rsync', ['-rlpc', '--dry-run', '--itemize-changes', '--delete', `${expected}/`, `${actual}/`]);
  const diffs = out.stdout.split('\n').filter((l) => l.trim() !== '');
  if (diffs.length > 0) {
    throw new Error(`output differs from source in ${diffs.length} entries, e.g. ${diffs.slice(0, 3).join(' | ')}`);
  }
}

/** The reference compressor: `tar | zstd -3 -T2`, the way an administrator would pack a folder. */
export function tarZstd(ctx: BenchContext, dir: string, out: string): Promise<Measured> {
  return ctx.sh(`tar -cf - -C ${shq(dir)} . | zstd -q -3 -T2 > ${shq(out)}`);
}

export function untarZstd(ctx: BenchContext, archive: string, dest: string): Promise<Measured> {
  return ctx.sh(`zstd -q -d -c ${shq(archive)} | tar -xf - -C ${shq(dest)}`);
}

export interface RsyncDelta {
  bytesSent: number;
  matchedBytes: number;
  seconds: number;
}

function statsNumber(stats: string, label: string): number {
  const m = new RegExp(`^${label}: ([\\d,]+)`, 'm').exec(stats);
  if (m?.[1] === undefined) throw new Error(`rsync --stats has no "${label}"`);
  return Number.parseInt(m[1].replaceAll(',', ''), 10);
}

/**
 * rsync's delta transfer from `newDir` to a fresh copy of `oldDir`. A local
 * copy defaults to --whole-file; --no-whole-file turns the delta algorithm
 * back on (it then sends the same bytes as over a remote shell). --checksum is
 * needed because npm tarballs stamp every file with the same mtime, so the
 * size+mtime quick check would skip files that changed but kept their size.
 */
export async function rsyncDelta(
  ctx: BenchContext,
  trees: { oldDir: string; newDir: string },
  scratch: string,
): Promise<RsyncDelta> {
  const dest = join(scratch, 'rsync-dest');
  await ctx.run('mkdir', ['-p', dest]);
  await copyTree(ctx, trees.oldDir, dest);
  const m = await ctx.run('rsync', ['-a', '-z', '--checksum', '--no-whole-file', '--stats', `${trees.newDir}/`, `${dest}/`]);
  const matchedBytes = statsNumber(m.stdout, 'Matched data');
  if (matchedBytes === 0) throw new Error('rsync matched nothing: the delta algorithm did not run');
  return { bytesSent: statsNumber(m.stdout, 'Total bytes sent'), matchedBytes, seconds: m.seconds };
}

async function storeChunks(dir: string): Promise<Map<string, number>> {
  const chunks = new Map<string, number>();
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile() && entry.name.endsWith('.cacnk')) {
      chunks.set(entry.name, (await lstat(join(entry.parentPath, entry.name))).size);
    }
  }
  return chunks;
}

/** casync: both trees into one store; the chunks the second adds are what a casync client would fetch. */
export async function casyncDelta(
  ctx: BenchContext,
  trees: { oldDir: string; newDir: string },
  scratch: string,
): Promise<{ newChunkBytes: number; indexBytes: number }> {
  const store = join(scratch, 'casync-store');
  await ctx.run('casync', ['make', `--store=${store}`, join(scratch, 'old.caidx'), trees.oldDir]);
  const before = await storeChunks(store);
  await ctx.run('casync', ['make', `--store=${store}`, join(scratch, 'new.caidx'), trees.newDir]);
  let newChunkBytes = 0;
  for (const [name, size] of await storeChunks(store)) if (!before.has(name)) newChunkBytes += size;
  return { newChunkBytes, indexBytes: await fileSize(join(scratch, 'new.caidx')) };
}

/** `zstd --patch-from` of the new tar against the old one (tars sorted by name so both line up). */
export async function zstdPatch(
  ctx: BenchContext,
  trees: { oldDir: string; newDir: string },
  scratch: string,
): Promise<{ bytes: number; seconds: number }> {
  const oldTar = join(scratch, 'old.tar');
  const newTar = join(scratch, 'new.tar');
  const patch = join(scratch, 'new.tar.patch.zst');
  await ctx.run('tar', ['--sort=name', '-cf', oldTar, '-C', trees.oldDir, '.']);
  await ctx.run('tar', ['--sort=name', '-cf', newTar, '-C', trees.newDir, '.']);
  const m = await ctx.run('zstd', ['-q', '-f', '--long=31', '-19', `--patch-from=${oldTar}`, newTar, '-o', patch]);
  return { bytes: await fileSize(patch), seconds: m.seconds };
}
