import { type FSWatcher, watch } from 'node:fs';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { type Lab, expectAdmin, until } from '../../../src/site/lab.js';
import { sitePaths } from '../../../src/site/layout.js';
import type { BenchContext } from '../../lib/types.js';
import { addressAt } from './common.js';

const LOW = 50;
const HIGH = 5;

/**
 * 50 low- and 5 high-priority packages for PRI/dp1, queued at CEN behind a
 * closed window (the high ones created among the low ones, so age alone would
 * not order them); then the window opens. Arrival: when each bundle appears
 * in PRI's despoolr.box/receive/ (watched, and listed every 10 ms).
 */
export async function benchPriority(ctx: BenchContext, lab: Lab): Promise<void> {
  const cen = lab.site('CEN');
  const receive = sitePaths(lab.site('PRI').root).despoolrReceive;
  const work = await ctx.tempDir('priority');
  const priorityOf = new Map<string, 'low' | 'high'>();
  const arrived = new Map<string, number>();
  let watcher: FSWatcher | undefined;
  let poller: NodeJS.Timeout | undefined;
  const result = await ctx.attempt(async () => {
    await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { windows: ['all 00-24 closed'] });
    const total = LOW + HIGH;
    for (let i = 0; i < total; i++) {
      const high = i % (total / HIGH) === (total / HIGH) - 1;
      const source = join(work, `p${i}`);
      await mkdir(source, { recursive: true });
      await writeFile(join(source, 'data.txt'), `package ${i} of the priority row, ${high ? 'high' : 'low'}\n`.repeat(50));
      const priority = high ? 'high' : 'low';
      const { id } = (await expectAdmin(cen, 'POST', '/api/v1/packages', 201, { name: `Priority ${i}`, sourcePath: source, version: '1.0', priority })) as { id: string };
      await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: ['PRI/dp1'] });
      priorityOf.set(id, priority);
    }
    const queuedAt = performance.now();
    await until('every request queued at CEN behind the closed window', async () => ((await addressAt(lab, 'CEN', 'PRI'))?.queued === total ? true : undefined), 120_000, 100);
    ctx.log(`${total} requests queued at CEN (${((performance.now() - queuedAt) / 1000).toFixed(1)} s after the last create); opening the window`);
    const seen = (name: string | null): void => {
      const m = name === null ? null : /^P-([A-Z0-9]{3}[0-9A-F]{5})-PRI-.*\.bundle$/.exec(name);
      if (m?.[1] !== undefined && priorityOf.has(m[1]) && !arrived.has(m[1])) arrived.set(m[1], performance.now());
    };
    watcher = watch(receive, (_event, name) => seen(name));
    poller = setInterval(() => void readdir(receive).then((names) => names.forEach(seen), () => undefined), 10);
    const opened = performance.now();
    await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { windows: ['all 00-24 all'] });
    await until('every bundle arrived at PRI', async () => (arrived.size === total ? true : undefined), 120_000, 20);
    const times = [...arrived].map(([id, at]) => ({ id, priority: priorityOf.get(id) ?? 'low', seconds: (at - opened) / 1000 }));
    const highs = times.filter((t) => t.priority === 'high').map((t) => t.seconds);
    const lows = times.filter((t) => t.priority === 'low').map((t) => t.seconds);
    const order = times.sort((a, b) => a.seconds - b.seconds).map((t) => (t.priority === 'high' ? 'H' : 'l')).join('');
    return { lastHigh: Math.max(...highs), firstLow: Math.min(...lows), lastLow: Math.max(...lows), order };
  });
  watcher?.close();
  if (poller !== undefined) clearInterval(poller);
  await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { windows: ['all 00-24 all'] }).catch(() => undefined);
  const pass = result.ok && result.value.lastHigh < result.value.firstLow;
  ctx.record({
    id: 'priority-order',
    label: `${HIGH} high and ${LOW} low queued behind a closed window: last high arrival − first low arrival (< 0: every high first)`,
    unit: 's',
    ours: result.ok ? { ok: true, value: result.value.lastHigh - result.value.firstLow } : result,
    goal: { on: 'value', op: '<=', target: 0 },
    ...(result.ok ? { note: `order check ${pass ? 'pass' : 'fail'}; arrival order ${result.value.order}` } : {}),
  });
  ctx.record({
    id: 'priority-times',
    label: 'same: window open → last high arrived',
    unit: 's',
    ours: result.ok ? { ok: true, value: result.value.lastHigh } : result,
    ...(result.ok ? { note: `first low ${result.value.firstLow.toFixed(2)} s, all ${LOW + HIGH} arrived ${result.value.lastLow.toFixed(2)} s after the window opened` } : {}),
  });
}
