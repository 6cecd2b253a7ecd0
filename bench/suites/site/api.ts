import { setTimeout as sleep } from 'node:timers/promises';
import { type SiteTarget, callSite } from '../../../src/cli/client.js';
import { outcome } from '../../../src/cli/package-wait.js';
import { ROUTES, createdSchema, distributeResultSchema, packageStatusSchema } from '../../../src/components/provider/contract.js';

/** Creates a package and targets the DPs, as `package create` and `package distribute` do. */
export async function createAndDistribute(target: SiteTarget, name: string, source: string, dps: string[]): Promise<string> {
  const { id } = await callSite(target, { method: 'POST', path: ROUTES.createPackage.url, body: { name, sourcePath: source } }, createdSchema);
  await callSite(target, { method: 'POST', path: ROUTES.distribute.url.replace(':id', id), body: { dps } }, distributeResultSchema);
  return id;
}

/**
 * Waits until every package is installed everywhere; a failed DP throws.
 * Packages are looked at in the order given (about the order they finish),
 * one request at a time, so the polling itself adds little load to the site.
 */
export async function waitAllInstalled(target: SiteTarget, ids: string[], options: { intervalMs: number; timeoutMs: number }): Promise<void> {
  const deadline = Date.now() + options.timeoutMs;
  for (const id of ids) {
    for (;;) {
      const s = await callSite(target, { method: 'GET', path: ROUTES.packageStatus.url.replace(':id', id) }, packageStatusSchema);
      const r = outcome(s);
      if (r.outcome === 'failed') throw new Error(`${id} failed: ${s.dps.map((d) => d.lastMessage ?? d.state).join('; ')}`);
      if (r.outcome === 'done') break;
      if (Date.now() >= deadline) throw new Error(`${id} and later packages not installed after ${options.timeoutMs / 1000} s`);
      await sleep(options.intervalMs);
    }
  }
}
