import { join } from 'node:path';
import { shq } from '../../lib/exec.js';
import type { BenchContext } from '../../lib/types.js';
import { type Lab, LAB_DP, expectAdmin, waitInstalled } from '../../../src/site/lab.js';
import { writeSourceTree } from '../site/trees.js';
import { median } from './common.js';

export const CREATE_RUNS = 10;
const SMALL = { files: 10, bytes: 100 * 1024 };

/**
 * A small package created at CEN and distributed to every DP; the clock runs
 * from the create request until SEC's own API lists SEC/dp1 installed. Each
 * run is a new package. Reference: the same tree copied over two hops with
 * rsync (two processes), in the same run.
 */
export async function benchCreateToSec(ctx: BenchContext, lab: Lab): Promise<void> {
  const work = await ctx.tempDir('create');
  const ours: number[] = [];
  const perSite: Record<string, number[]> = {};
  const refs: number[] = [];
  const run = await ctx.attempt(async () => {
    for (let i = 0; i < CREATE_RUNS; i++) {
      const source = join(work, `src-${i}`);
      await writeSourceTree(source, `hier-create-${Date.now()}-${i}`, SMALL);
      const codes = lab.sites.map((s) => s.code);
      const top = lab.site('CEN');
      const t0 = performance.now();
      const { id } = (await expectAdmin(top, 'POST', '/api/v1/packages', 201, { name: `Bench ${i}`, sourcePath: source, version: '1.0' })) as { id: string };
      await expectAdmin(top, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: codes.map((c) => `${c}/${LAB_DP}`) });
      const times = await waitInstalled(lab, id, 1, codes, t0, 60_000);
      ours.push(times.get('SEC') ?? Number.NaN);
      for (const [c, s] of times) (perSite[c] ??= []).push(s);
      const hop1 = join(work, `hop1-${i}`);
      const hop2 = join(work, `hop2-${i}`);
      refs.push((await ctx.sh(`rsync -a ${shq(source)}/ ${shq(hop1)}/ && rsync -a ${shq(hop1)}/ ${shq(hop2)}/`)).seconds);
    }
    return median(ours);
  });
  const note = Object.entries(perSite)
    .map(([c, s]) => `${c}/dp1 median ${median(s).toFixed(2)} s`)
    .join(', ');
  ctx.record({
    id: 'create-to-sec',
    label: `package create (10 files, 100 KiB) → installed at SEC/dp1, CEN → PRI → SEC, median of ${CREATE_RUNS}`,
    unit: 's',
    ours: run,
    reference: { name: 'rsync -a over two hops', value: refs.length > 0 ? { ok: true, value: median(refs) } : { ok: false, error: 'not run' } },
    goal: { on: 'value', op: '<=', target: 2 },
    samples: ours,
    referenceSamples: refs,
    note,
  });
}
