import type { ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import type { SiteTarget } from '../../../src/cli/client.js';
import { callSite } from '../../../src/cli/client.js';
import { ROUTES, dpSchema } from '../../../src/components/provider/contract.js';
import { runMeasured } from '../../lib/exec.js';
import { spawnListening } from '../../lib/listening.js';
import { sitecastBin } from '../../lib/paths.js';

export const SITE_CODE = 'BEN';

/** A real `sitecast site start` process on loopback, and the admin API target to reach it. */
export interface RunningSite {
  root: string;
  target: SiteTarget;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after 10 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

// Only the token is used: with port 0 the URL is known once the site starts (`url` is null here).
const initOutput = z.object({ site: z.string(), token: z.string() });

/** `sitecast site init` then `sitecast site start`, both as a user runs them. */
export async function startSiteProcess(dir: string, repoRoot: string): Promise<RunningSite> {
  const root = join(dir, 'site');
  const init = await runMeasured(process.execPath, [sitecastBin, 'site', 'init', root, '--code', SITE_CODE, '--listen', '127.0.0.1:0', '--json'], { cwd: repoRoot });
  const { token } = initOutput.parse(JSON.parse(init.stdout));
  const p = await spawnListening(process.execPath, [sitecastBin, 'site', 'start', root], { cwd: repoRoot, what: 'site start', listenTimeoutMs: 30_000, killAfterMs: 10_000 });
  return { root, target: { url: p.url, token, root }, child: p.child, stop: p.stop };
}

/** Adds DPs `dp1`…`dpN` under `dir` through the admin API; returns their `SITE/dp` names. */
export async function addDps(target: SiteTarget, dir: string, count: number): Promise<string[]> {
  const names: string[] = [];
  for (let i = 1; i <= count; i++) {
    const body = { name: `dp${i}`, path: join(dir, `dp${i}`) };
    await callSite(target, { method: 'POST', path: ROUTES.addDp.url, body }, dpSchema);
    names.push(`${SITE_CODE}/dp${i}`);
  }
  return names;
}
