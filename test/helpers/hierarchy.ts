import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { initSite } from '../../src/site/init.js';
import { initChildSite } from '../../src/site/join.js';
import { type SiteHandle, type StartOptions, startSite } from '../../src/site/server.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

/** A free loopback port: sites that join others need a real URL before they start. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

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
export async function api(site: { handle: SiteHandle; token: string }, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const res = await fetch(`${site.handle.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${site.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  return { status: res.status, json: (await res.json()) as unknown };
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
  let parent: LabSite | undefined;
  for (const code of codes) {
    const root = join(dir, code.toLowerCase());
    const listen = `127.0.0.1:${await freePort()}`;
    let token: string;
    if (parent === undefined) token = (await initSite(root, { code, listen })).adminToken;
    else {
      const invite = await api(parent, 'POST', '/api/v1/site/invitations', { child: code });
      if (invite.status !== 201) throw new Error(`invite ${code}: ${JSON.stringify(invite.json)}`);
      const joinToken = (invite.json as { token: string }).token;
      token = (await initChildSite(root, { code, listen, parent: parent.handle.url, joinToken })).adminToken;
    }
    const handle = await startSite(root, options);
    parent = { code, root, token, handle };
    sites.set(code, parent);
  }
  return lab;
}

export async function readText(path: string): Promise<string> {
  return readFile(path, 'utf8');
}
