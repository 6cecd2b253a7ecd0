import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { shq } from '../../lib/exec.js';
import { chain, map } from '../../lib/outcome.js';
import { extract, ingest, pack, type IngestOutput } from '../../lib/sitecast.js';
import { assertSameTree, duBytes, fileSize, tarZstd, treeBytes, untarZstd } from '../../lib/tools.js';
import type { BenchContext, Median, Measured, Outcome } from '../../lib/types.js';

const MIB = 1024 * 1024;

interface Ingested {
  timing: Median<{ out: IngestOutput; run: Measured }>;
  /** The library of the last run and what its ingest printed. */
  library: string;
  out: IngestOutput;
}

function mbps(bytes: number, seconds: number): number {
  return bytes / seconds / 1e6;
}

/** Every run's throughput, both sides, for the JSON results. */
function samplesOf<O, R>(
  ours: Outcome<Median<O>>,
  reference: Outcome<Median<R>>,
  bytes: number,
): { samples?: number[]; referenceSamples?: number[] } {
  const rates = (m: Outcome<Median<unknown>>): number[] | undefined =>
    m.ok ? m.value.samples.map((s) => mbps(bytes, s)) : undefined;
  const samples = rates(ours);
  const referenceSamples = rates(reference);
  return {
    ...(samples === undefined ? {} : { samples }),
    ...(referenceSamples === undefined ? {} : { referenceSamples }),
  };
}

/** The value of an outcome a later step needs, or its error. */
function need<T>(outcome: Outcome<T>): T {
  if (!outcome.ok) throw new Error(outcome.error);
  return outcome.value;
}

/**
 * Ingest, stored size, extract, pack size and ingest memory of one tree,
 * each against tar + zstd -3 -T2 on the same tree in the same run.
 */
export async function benchTree(ctx: BenchContext, spec: string): Promise<void> {
  const source = await ctx.data(spec);
  const bytes = await treeBytes(source);
  const scratch = await ctx.tempDir('reference');
  const archive = join(scratch, 'tree.tar.zst');
  ctx.log(`${spec}: ${(bytes / 1e6).toFixed(1)} MB of files`);

  // Warm the page cache so neither side pays for the first read from disk.
  // (GNU tar skips reading when its archive is /dev/null, hence the pipe.)
  await ctx.attempt(() => ctx.sh(`tar -cf - -C ${shq(source)} . | cat > /dev/null`));
  ctx.log('ingest: tar | zstd -3 -T2 and content ingest, alternating');
  let library = '';
  let run = 0;
  const ingested = await ctx.paired(
    { prepare: () => rm(archive, { force: true }), body: () => tarZstd(ctx, source, archive) },
    {
      // A fresh library per run: the figure is a first ingest, not a re-ingest of stored chunks.
      prepare: async () => {
        library = await ctx.tempDir(`library-${String(run++)}`);
      },
      body: () => ingest(ctx, library, source),
    },
  );
  const refPack = ingested.reference;
  const refSize = await chain(refPack, () => fileSize(archive));
  const ours: Outcome<Ingested> = await chain(ingested.ours, (timing) => {
    const out = timing.values[timing.values.length - 1]?.out;
    if (out === undefined) return Promise.reject(new Error('no ingest ran'));
    return Promise.resolve({ timing, library, out });
  });

  ctx.record({
    id: 'ingest-throughput',
    label: `ingest ${spec}`,
    unit: 'MB/s',
    ours: map(ours, (o) => mbps(bytes, o.timing.seconds)),
    reference: { name: 'tar|zstd -3 -T2', value: map(refPack, (r) => mbps(bytes, r.seconds)) },
    goal: { on: 'ratio', op: '>=', target: 0.8 },
    ...samplesOf(map(ours, (o) => o.timing), refPack, bytes),
  });
  ctx.record({
    id: 'stored-bytes',
    label: 'stored size (storedBytes)',
    unit: 'bytes',
    ours: map(ours, (o) => o.out.storedBytes),
    reference: { name: '.tar.zst', value: refSize },
    goal: { on: 'ratio', op: '<=', target: 1.1 },
  });
  ctx.record({
    id: 'library-du',
    label: 'stored size (du -sb library)',
    unit: 'bytes',
    ours: await chain(ours, (o) => duBytes(ctx, o.library)),
    reference: { name: '.tar.zst', value: refSize },
    goal: { on: 'ratio', op: '<=', target: 1.1 },
  });
  ctx.record({
    id: 'ingest-peak-rss',
    label: 'ingest peak RSS',
    unit: 'MiB',
    ours: map(ours, (o) => Math.max(...o.timing.values.map((v) => v.run.peakRssBytes)) / MIB),
    reference: { name: 'zstd -3 -T2', value: map(refPack, (r) => Math.max(...r.values.map((v) => v.peakRssBytes)) / MIB) },
    goal: { on: 'value', op: '<=', target: 256 },
  });

  ctx.log('extract: zstd -d | tar -x and content extract, alternating');
  let refDest = '';
  let ourDest = '';
  const extracted = await ctx.paired(
    {
      prepare: async () => {
        refDest = await ctx.tempDir('reference-extract');
      },
      body: () => {
        need(refPack);
        return untarZstd(ctx, archive, refDest);
      },
    },
    {
      prepare: async () => {
        ourDest = await ctx.tempDir('extract');
      },
      body: () => {
        const { library: lib, out } = need(ours);
        return extract(ctx, lib, out.manifest, ourDest);
      },
    },
  );
  const refUnpack = extracted.reference;
  const ourUnpack = await chain(extracted.ours, async (timing) => {
    await assertSameTree(ctx, source, ourDest);
    return timing;
  });
  ctx.record({
    id: 'extract-throughput',
    label: `extract ${spec}`,
    unit: 'MB/s',
    ours: map(ourUnpack, (t) => mbps(bytes, t.seconds)),
    reference: { name: 'zstd -d|tar -x', value: map(refUnpack, (r) => mbps(bytes, r.seconds)) },
    goal: { on: 'ratio', op: '>=', target: 0.8 },
    ...samplesOf(ourUnpack, refUnpack, bytes),
  });

  const packFile = join(scratch, 'tree.pack');
  const packed: Outcome<number> = await chain(ours, async (o) => {
    await pack(ctx, o.library, o.out.manifest, packFile);
    return fileSize(packFile);
  });
  ctx.record({
    id: 'pack-bytes',
    label: 'pack size',
    unit: 'bytes',
    ours: packed,
    reference: { name: '.tar.zst', value: refSize },
  });
}
