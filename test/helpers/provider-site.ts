import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import { createAdminToken, openSiteDb, type SiteDb } from '../../src/db/index.js';
import { providerPlugin, type ProviderContext } from '../../src/components/provider/index.js';
import { createLogger, initSite, loadSiteConfig, type ComponentLog } from '../../src/site/index.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

export interface ProviderSite {
  dir: string;
  root: string;
  db: SiteDb;
  app: FastifyInstance;
  adminToken: string;
  readToken: string;
  /** Every wake() the provider asked for, in order. */
  wakes: string[];
  logs: Map<string, ComponentLog>;
  /** A folder that exists, usable as a package source. */
  source: string;
  /** Every route the server registered (seen by an onRoute hook). */
  routes: { method: string; url: string }[];
  setBaseUrl(url: string | undefined): void;
}

/**
 * A real site made by initSite in a temporary folder, its SQLite database,
 * and a Fastify server with only the provider registered (not listening
 * unless `listen` is called).
 */
export async function providerSite(t: Ctx, code = 'ABC'): Promise<ProviderSite> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-provider-'));
  const root = join(dir, 'site');
  const init = await initSite(root, { code, name: `Site ${code}`, listen: '127.0.0.1:0' });
  const config = await loadSiteConfig(root);
  const db = await openSiteDb({ kind: 'sqlite', path: init.paths.database });
  const readToken = (await createAdminToken(db, { role: 'read-only', label: 'test reader' })).token;
  const wakes: string[] = [];
  const logs = new Map<string, ComponentLog>();
  let baseUrl: string | undefined;
  const ctx: ProviderContext = {
    db,
    config,
    root,
    wake: (component) => void wakes.push(component),
    logger: (component) => {
      const log = logs.get(component) ?? createLogger(root, component);
      logs.set(component, log);
      return log;
    },
    baseUrl: () => baseUrl,
  };
  const app = Fastify({ logger: false });
  const routes: { method: string; url: string }[] = [];
  app.addHook('onRoute', (r) => {
    for (const method of [r.method].flat()) if (method !== 'HEAD') routes.push({ method, url: r.url });
  });
  await app.register(providerPlugin, { ctx });
  const source = join(dir, 'src');
  await mkdir(source, { recursive: true });
  t.after(async () => {
    await app.close();
    await db.close();
    for (const log of logs.values()) await log.flush();
    await rm(dir, { recursive: true, force: true });
  });
  const site: ProviderSite = {
    dir,
    root,
    db,
    app,
    adminToken: init.adminToken,
    readToken,
    wakes,
    logs,
    source,
    routes,
    setBaseUrl: (url) => void (baseUrl = url),
  };
  return site;
}

/** Starts listening on 127.0.0.1 and a free port; returns the base URL. */
export async function listen(site: ProviderSite): Promise<string> {
  const address = await site.app.listen({ host: '127.0.0.1', port: 0 });
  site.setBaseUrl(address);
  return address;
}
