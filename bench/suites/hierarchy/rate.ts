import Database from 'better-sqlite3';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { rateWindows } from '../../../src/components/sender/meter.js';
import { meteringProxy } from '../../../test/helpers/metering-proxy.js';
import { type Lab, expectAdmin, waitInstalled } from '../../../src/site/lab.js';
import { sitePaths } from '../../../src/site/layout.js';
import { map } from '../../lib/outcome.js';
import type { BenchContext } from '../../lib/types.js';
import { writeSourceTree } from '../site/trees.js';

const RATE_KB = 1024;
const SECONDS = 30;

/**
 * Points CEN's record of PRI at another URL. The site table is where the
 * sender looks a target up; PRI only rewrites it when its own set of sites
 * changes, which it does not during the row.
 */
function setSiteUrl(lab: Lab, code: string, url: string): void {
  const db = new Database(sitePaths(lab.site('CEN').root).database);
  try {
    db.pragma('busy_timeout = 5000');
    db.prepare('UPDATE site SET url = ? WHERE code = ?').run(url, code);
  } finally {
    db.close();
  }
}

/**
 * CEN → PRI limited to 1,024 KB/s, a package of incompressible data that
 * takes about 30 s at that rate; bytes per second measured on a loopback
 * proxy between the two site processes.
 */
export async function benchRate(ctx: BenchContext, lab: Lab): Promise<void> {
  const pri = lab.site('PRI');
  const cen = lab.site('CEN');
  const meter = await meteringProxy(new URL(pri.process.url));
  const result = await ctx.attempt(async () => {
    const source = join(await ctx.tempDir('rate'), 'source');
    await mkdir(source, { recursive: true });
    await writeSourceTree(source, `hier-rate-${Date.now()}`, { files: 30, bytes: RATE_KB * 1024 * SECONDS });
    await writeFile(join(source, 'README.txt'), 'rate limit row\n');
    await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { rates: [`${RATE_KB}KB/s`] });
    setSiteUrl(lab, 'PRI', meter.url);
    const t0 = performance.now();
    const { id } = (await expectAdmin(cen, 'POST', '/api/v1/packages', 201, { name: 'Rate', sourcePath: source, version: '1.0' })) as { id: string };
    await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: ['PRI/dp1'] });
    await waitInstalled(lab, id, 1, ['PRI'], t0, 120_000);
    return rateWindows(meter.samples);
  });
  setSiteUrl(lab, 'PRI', pri.process.url);
  await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { rates: ['unlimited'] }).catch(() => undefined);
  await meter.close();
  const limit = RATE_KB * 1024;
  const reference = { name: `the limit, ${RATE_KB} KB/s`, value: { ok: true, value: limit / 1e6 } as const };
  const note = result.ok ? `${(result.value.bytes / 1e6).toFixed(1)} MB in ${result.value.seconds.toFixed(1)} s at the proxy; mean ${(result.value.mean / 1024).toFixed(1)} KB/s, busiest second ${(result.value.maxWindow / 1024).toFixed(1)} KB/s` : undefined;
  const mean = map(result, (r) => r.mean / 1e6);
  ctx.record({
    id: 'rate-mean',
    label: `rate limit ${RATE_KB} KB/s, ~${SECONDS} s transfer CEN → PRI: mean rate on the link (upper bound)`,
    unit: 'MB/s',
    ours: mean,
    reference,
    goal: { on: 'ratio', op: '<=', target: 1.03 },
    ...(note === undefined ? {} : { note }),
  });
  ctx.record({
    id: 'rate-mean-low',
    label: `rate limit ${RATE_KB} KB/s: mean rate on the link (lower bound)`,
    unit: 'MB/s',
    ours: mean,
    reference,
    goal: { on: 'ratio', op: '>=', target: 0.97 },
  });
  ctx.record({
    id: 'rate-max-second',
    label: `rate limit ${RATE_KB} KB/s: busiest one-second window on the link`,
    unit: 'MB/s',
    ours: map(result, (r) => r.maxWindow / 1e6),
    reference,
    goal: { on: 'ratio', op: '<=', target: 1.1 },
  });
}
