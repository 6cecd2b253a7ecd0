import { join } from 'node:path';
import { chain, map } from '../../lib/outcome.js';
import { apply, delta, extract, ingest } from '../../lib/sitecast.js';
import { assertSameTree, casyncDelta, copyTree, fileSize, rsyncDelta, zstdPatch } from '../../lib/tools.js';
import type { BenchContext } from '../../lib/types.js';

export interface VersionPair {
  /** Short name used in row ids, e.g. `node`. */
  name: string;
  oldSpec: string;
  newSpec: string;
}

interface Built {
  bytes: number;
  fileBytes: number;
  seconds: number;
  file: string;
  newManifest: string;
  /** A library holding only the old version, ready to receive the delta. */
  target: string;
}

/** Both versions into one library, then the delta; the target library is a copy taken before the new version went in. */
async function buildDelta(ctx: BenchContext, trees: { oldDir: string; newDir: string }, scratch: string): Promise<Built> {
  const library = await ctx.tempDir('delta-library');
  const target = await ctx.tempDir('delta-target');
  const oldManifest = (await ingest(ctx, library, trees.oldDir)).out.manifest;
  await copyTree(ctx, library, target);
  const newManifest = (await ingest(ctx, library, trees.newDir)).out.manifest;
  const file = join(scratch, 'our.delta');
  const built = await delta(ctx, library, { oldManifest, newManifest, out: file });
  return { bytes: built.bytes, fileBytes: await fileSize(file), seconds: built.run.seconds, file, newManifest, target };
}

/** Applies the delta and checks the result is the new tree, so a small delta cannot pass by being wrong. */
async function applyDelta(ctx: BenchContext, built: Built, newDir: string): Promise<{ seconds: number; bytes: number }> {
  const applied = await apply(ctx, built.target, built.file);
  if (applied.manifest !== built.newManifest) {
    throw new Error(`apply produced manifest ${applied.manifest}, expected ${built.newManifest}`);
  }
  const dest = await ctx.tempDir('delta-extract');
  await extract(ctx, built.target, built.newManifest, dest);
  await assertSameTree(ctx, newDir, dest);
  return { seconds: applied.run.seconds, bytes: built.bytes };
}

/** Delta size and time for one version step, against rsync (the goal), casync and zstd --patch-from (context). */
export async function benchDelta(ctx: BenchContext, pair: VersionPair): Promise<void> {
  const trees = { oldDir: await ctx.data(pair.oldSpec), newDir: await ctx.data(pair.newSpec) };
  const step = `${pair.oldSpec} → ${pair.newSpec.slice(pair.newSpec.lastIndexOf('@') + 1)}`;
  const scratch = await ctx.tempDir(`delta-${pair.name}`);

  ctx.log(`${step}: rsync, casync, zstd --patch-from`);
  const rsync = await ctx.attempt(() => rsyncDelta(ctx, trees, scratch));
  const casync = await ctx.attempt(() => casyncDelta(ctx, trees, scratch));
  const patch = await ctx.attempt(() => zstdPatch(ctx, trees, scratch));

  ctx.log(`${step}: content delta, content apply`);
  const built = await ctx.attempt(() => buildDelta(ctx, trees, scratch));
  const applied = await chain(built, (b) => applyDelta(ctx, b, trees.newDir));
  // The size only counts once the delta is shown to rebuild the new tree.
  const bytes = map(applied, (a) => a.bytes);
  const sizeNote =
    built.ok && built.value.bytes !== built.value.fileBytes
      ? { note: `--json says ${built.value.bytes} bytes, the file has ${built.value.fileBytes}` }
      : {};

  ctx.record({
    id: `delta-${pair.name}-rsync`,
    label: `delta ${step}`,
    unit: 'bytes',
    ours: bytes,
    reference: { name: 'rsync -z sent', value: map(rsync, (r) => r.bytesSent) },
    goal: { on: 'ratio', op: '<=', target: 0.6 },
    ...sizeNote,
  });
  ctx.record({
    id: `delta-${pair.name}-casync`,
    label: `delta ${pair.name} vs casync`,
    unit: 'bytes',
    ours: bytes,
    reference: { name: 'casync new chunks', value: map(casync, (c) => c.newChunkBytes) },
    ...(casync.ok ? { note: `casync index of the new tree: ${casync.value.indexBytes} bytes` } : {}),
  });
  ctx.record({
    id: `delta-${pair.name}-zstd-patch`,
    label: `delta ${pair.name} vs zstd patch`,
    unit: 'bytes',
    ours: bytes,
    reference: { name: 'zstd --patch-from -19', value: map(patch, (p) => p.bytes) },
  });
  ctx.record({
    id: `delta-${pair.name}-build-time`,
    label: `delta build time ${pair.name}`,
    unit: 's',
    ours: map(built, (b) => b.seconds),
    reference: { name: 'rsync (whole run)', value: map(rsync, (r) => r.seconds) },
  });
  ctx.record({
    id: `delta-${pair.name}-apply-time`,
    label: `delta apply time ${pair.name}`,
    unit: 's',
    ours: map(applied, (a) => a.seconds),
    reference: { name: 'rsync (whole run)', value: map(rsync, (r) => r.seconds) },
  });
}
