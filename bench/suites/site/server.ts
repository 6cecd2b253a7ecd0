import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { z } from 'zod';
import type { SiteTarget } from '../../../src/cli/client.js';
import { callSite } from '../../../src/cli/client.js';
import { ROUTES, dpSchema } from '../../../src/components/provider/contract.js';
import { runMeasured } from '../../lib/exec.js';
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

const initOutput = z.object({ site: z.string(), url: z.string(), token: z.string() });

/** `sitecast site init` then `sitecast site start`, both as a user runs them. */
export async function startSiteProcess(dir: string, repoRoot: string): Promise<RunningSite> {
  const root = join(dir, 'site');
  const init = await runMeasured(process.execPath, [sitecastBin, 'site', 'init', root, '--code', SITE_CODE, '--listen', '127.0.0.1:0', '--json'], { cwd: repoRoot });
  const { token } = initOutput.parse(JSON.parse(init.stdout));
  const child = spawn(process.execPath, [sitecastBin, 'site', 'start', root], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await gone;
      clearTimeout(timer);
    })();
    return stopping;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /listening at (http:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`site start exited ${String(code)}: ${(out + err).trim().slice(-300)}`)));
      setTimeout(() => reject(new Error('site start did not listen within 30 s')), 30_000).unref();
    });
    // Keep draining output so the child never blocks on a full pipe.
    child.stdout?.resume();
    child.stderr?.resume();
    return { root, target: { url, token, root }, child, stop };
  } catch (err) {
    await stop();
    throw err;
  }
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
