import { type Lab, startLab } from '../../src/site/lab.js';
import type { Suite } from '../lib/types.js';
import { benchCreateToSec } from './hierarchy/create.js';
import { DELTAS, benchDelta } from './hierarchy/delta.js';
import { benchPriority } from './hierarchy/priority.js';
import { benchRate } from './hierarchy/rate.js';

/**
 * The site hierarchy on loopback: `sitecast lab`'s CEN → PRI → SEC, three
 * `sitecast site start` processes with http addresses, driven through the
 * admin API from this process.
 */
export const suite: Suite = {
  name: 'hierarchy',
  description: 'CEN → PRI → SEC site processes on loopback: create → installed at SEC, update deltas on the link vs rsync, rate limit on the link, priorities behind a closed window',
  async run(ctx) {
    const dir = await ctx.tempDir('lab');
    let lab: Lab | undefined;
    try {
      lab = await startLab({ dir, log: (line) => ctx.log(line) });
      await benchCreateToSec(ctx, lab);
      await benchPriority(ctx, lab);
      for (const d of DELTAS) await benchDelta(ctx, lab, d);
      await benchRate(ctx, lab);
    } finally {
      const exits = await lab?.close();
      if (exits !== undefined) ctx.log(`site servers stopped: ${exits.map((e) => `${e.code} ${e.exit.signal ?? `exit ${String(e.exit.code)}`}`).join(', ')}`);
    }
  },
};
