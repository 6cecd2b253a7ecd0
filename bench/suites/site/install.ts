import { join } from 'node:path';
import { installOnDp } from '../../../src/dp/install.js';
import { dpPaths } from '../../../src/dp/layout.js';
import { loadManifest, openLibrary } from '../../../src/content/library.js';
import { commitLibrary } from '../../../src/dp/library-sync.js';
import { installShare } from '../../../src/dp/share.js';
import { shq } from '../../lib/exec.js';
import { map } from '../../lib/outcome.js';
import { ingest } from '../../lib/sitecast.js';
import type { BenchContext } from '../../lib/types.js';

const seconds = (started: bigint): number => Number(process.hrtime.bigint() - started) / 1e9;

/**
 * A fresh DP getting a version already in the site library (the DP install
 * step alone: each chunk read, verified, copied into the DP library and
 * written into the share, one flush, switched) against `cp -r` of the same
 * tree, on the same disk.
 */
export async function benchDpInstall(ctx: BenchContext, spec: string): Promise<void> {
  const tree = await ctx.data(spec);
  const work = await ctx.tempDir('dp-install');
  const library = join(work, 'site-library');
  ctx.log(`ingesting ${spec} into a site library (untimed)`);
  const manifest = await ctx.attempt(async () => (await ingest(ctx, library, tree)).out.manifest);
  // Warm both sides' sources: page cache cannot be dropped here, so neither starts cold.
  await ctx.sh(`tar -cf - -C ${shq(tree)} . > /dev/null && tar -cf - -C ${shq(library)} . > /dev/null`);
  const copy = join(work, 'cp');
  const dp = join(work, 'dp');
  let run = 0;
  const install = async (): Promise<void> => {
    if (!manifest.ok) throw new Error(`no manifest: ${manifest.error}`);
    run += 1;
    await installOnDp({ siteLibrary: library, dpPath: `${dp}-${run}`, packageId: 'BEN00001', sourceVersion: 1, manifestId: manifest.value });
  };
  const { reference, ours } = await ctx.paired(
    { prepare: () => ctx.sh(`rm -rf ${shq(copy)}`).then(() => undefined), body: () => ctx.sh(`cp -r ${shq(tree)} ${shq(copy)}`) },
    { prepare: () => ctx.sh(`rm -rf ${shq(dp)}-*`).then(() => undefined), body: install },
  );
  const synced = await ctx.attempt(async () => {
    await ctx.sh(`rm -rf ${shq(copy)} && sync`);
    const started = process.hrtime.bigint();
    await ctx.sh(`cp -r ${shq(tree)} ${shq(copy)} && sync -f ${shq(copy)}`);
    return seconds(started);
  });

  // One more install, its steps timed apart, to say where the time goes.
  const split = await ctx.attempt(async () => {
    if (!manifest.ok) throw new Error(manifest.error);
    await ctx.sh(`rm -rf ${shq(dp)}-* && sync`);
    const paths = dpPaths(`${dp}-split`);
    await ctx.sh(`mkdir -p ${shq(paths.smspkg)}`);
    await openLibrary(paths.library, { create: true });
    const started = process.hrtime.bigint();
    let built = 0;
    let flushed = 0;
    const share = await installShare({
      dp: paths,
      packageId: 'BEN00001',
      sourceVersion: 1,
      manifestId: manifest.value,
      manifest: await loadManifest(await openLibrary(library), manifest.value),
      chunksFrom: library,
      copyInto: { library: paths.library, checkExisting: false },
      graceMs: 0,
      beforeFlush: () => {
        built = seconds(started);
        return Promise.resolve();
      },
      afterFlush: async () => {
        flushed = seconds(started);
        await commitLibrary(library, paths.library, manifest.value);
      },
    });
    return { built, flush: flushed - built, rest: seconds(started) - flushed, chunks: share.copied, copiedBytes: share.copiedBytes };
  });
  const where = split.ok
    ? `one more install split: chunks verified, copied into the DP library (${split.value.chunks}, ${(split.value.copiedBytes / 1e6).toFixed(1)} MB) and the share written ${split.value.built.toFixed(2)} s, sync -f ${split.value.flush.toFixed(2)} s, manifest and switch ${split.value.rest.toFixed(2)} s`
    : `split: ${split.error}`;
  // The machine's speed drifts between runs: each pair ran back to back, so its own ratio says more than either figure alone.
  const pairs =
    ours.ok && reference.ok
      ? ours.value.samples.map((o, i) => `${(o / (reference.value.samples[i] ?? Number.NaN)).toFixed(1)}×`).join(', ')
      : undefined;
  ctx.record({
    id: 'dp-install',
    label: `DP install of ${spec} (already in the site library) vs cp -r, warm, median of ${ctx.runs}`,
    unit: 's',
    ours: map(ours, (m) => m.seconds),
    reference: { name: 'cp -r', value: map(reference, (m) => m.seconds) },
    goal: { on: 'ratio', op: '<=', target: 1.5 },
    ...(ours.ok ? { samples: ours.value.samples } : {}),
    ...(reference.ok ? { referenceSamples: reference.value.samples } : {}),
    note: `installOnDp called in the bench process on a fresh DP; ${pairs === undefined ? '' : `each pair's own ratio: ${pairs}; `}${where}`,
  });
  ctx.record({
    id: 'dp-install-vs-durable-cp',
    label: `DP install of ${spec} vs cp -r && sync -f (both durable), one run of cp`,
    unit: 's',
    ours: map(ours, (m) => m.seconds),
    reference: { name: 'cp -r && sync -f', value: synced },
    note: 'context: the DP install flushes what it wrote before switching the share; plain cp -r leaves it in the page cache',
  });
}
