import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildChain, callAdmin } from '../../src/site/lab-chain.js';
import { type SiteHandle, type StartOptions, startSite } from '../../src/site/server.js';

export { freePort } from '../../src/site/lab-chain.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

/** Fast timers for tests: a hierarchy converges in seconds. */
export const FAST: StartOptions = {
  distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 1000 }, rescanMs: 500 },
  dbmon: { pollMs: 50 },
  inboxmgr: { rescanMs: 500 },
  sender: { pollMs: 100, maxRetryDelayMs: 1000 },
  hierarchy: {
    replmgr: { rescanMs: 500 },
    scheduler: { rescanMs: 500, retry: { initialMs: 200, maxMs: 1000 } },
    despooler: { rescanMs: 500, retry: { initialMs: 200, maxMs: 1000 } },
    statmgr: { pollMs: 200, batchMs: 50 },
  },
};

export interface LabSite {
  code: string;
  root: string;
  token: string;
  handle: SiteHandle;
}

export interface Lab {
  dir: string;
  sites: Map<string, LabSite>;
  site(code: string): LabSite;
  stop(code: string): Promise<void>;
  start(code: string): Promise<LabSite>;
}

/** Calls a site's admin API with its admin token; returns status and JSON. */
export async function api(site: { handle: SiteHandle; token: string }, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  return callAdmin({ url: site.handle.url, token: site.token }, method, path, body);
}

/**
 * A chain of sites on loopback, each below the one before (CEN → PRI → SEC
 * by default), joined with real tokens over real HTTP, all started in this
 * process with real databases and folders.
 */
export async function startLab(t: Ctx, codes: string[] = ['CEN', 'PRI', 'SEC'], options: StartOptions = FAST): Promise<Lab> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-lab-'));
  const sites = new Map<string, LabSite>();
  t.after(async () => {
    for (const s of [...sites.values()].reverse()) await s.handle.close().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const lab: Lab = {
    dir,
    sites,
    site: (code) => {
      const s = sites.get(code);
      if (s === undefined) throw new Error(`no site ${code} in the lab`);
      return s;
    },
    stop: async (code) => lab.site(code).handle.close(),
    start: async (code) => {
      const s = lab.site(code);
      const handle = await startSite(s.root, options);
      const next = { ...s, handle };
      sites.set(code, next);
      return next;
    },
  };
  await buildChain<SiteHandle>({
    dir,
    codes,
    start: (site) => startSite(site.root, options),
    started: (site, handle) => sites.set(site.code, { code: site.code, root: site.root, token: site.token, handle }),
  });
  return lab;
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
