import Fastify, { type FastifyInstance, type FastifyPluginAsync } from 'fastify';
import { existsSync } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { hostname } from 'node:os';
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DatabaseMonitor, type DbMonitorOptions } from '../components/dbmon/index.js';
import { DistributionManager, type DistributionManagerOptions } from '../components/distmgr/index.js';
import { InboxManager, type InboxManagerOptions } from '../components/inboxmgr/index.js';
import { getLocalSite, listDps, openSiteDb, type SiteDb } from '../db/index.js';
import { dpPlugin } from '../dp/http.js';
import { SitecastError, ioError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { mpPlugin } from '../mp/http.js';
import { SenderComponent, type SenderOptions, receivePlugin } from '../components/sender/index.js';
import { policyPlugin } from '../mp/policy.js';
import { type Listen, loadSiteConfig, siteDbLocation } from './config.js';
import type { Component, ComponentName, SiteContext } from './context.js';
import { loadSiteKeys } from './keys.js';
import { type HierarchyOptions, hierarchyComponents } from './hierarchy-components.js';
import { sitePaths } from './layout.js';
import { lockSiteRoot } from './lock.js';
import { type ComponentLog, createLogger } from './log.js';

export interface StartOptions {
  /** Overrides the listen address of site.json (port 0: any free port). */
  listen?: Listen;
  /** Register the admin API when its module is present (default true). */
  provider?: boolean;
  dbmon?: DbMonitorOptions;
  distmgr?: DistributionManagerOptions;
  inboxmgr?: InboxManagerOptions;
  sender?: SenderOptions;
  /** Replication Manager, Scheduler, Despooler and the status reporter. */
  hierarchy?: HierarchyOptions;
  /**
   * Components not to run. A benchmark that counts the wake-up files the
   * database monitor writes leaves out Distribution Manager, which would
   * consume them.
   */
  without?: readonly ComponentName[];
  /** Live status: how often each address's rate is sampled for the rate history (default 5000 ms). */
  live?: { rateSampleMs?: number };
}

export interface SiteHandle {
  /** Base URL the server listens on, e.g. http://127.0.0.1:8430 (no trailing slash). */
  readonly url: string;
  readonly ctx: SiteContext;
  /** Stops every component, then the server, then the database. Idempotent; rejects (after doing all) if a step failed. */
  close(): Promise<void>;
}

const PROVIDER_MODULE = new URL('../components/provider/index.js', import.meta.url);

function urlFor(host: string, port: number): string {
  // A wildcard address is not somewhere a client can go: name the machine instead.
  const reachable = host === '0.0.0.0' || host === '::' ? hostname() : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

/**
 * Runs a site: opens its configuration, keys and database (migrating it),
 * starts one HTTP server (distribution points, management point, and the
 * admin API) and every component. Components start after the server
 * listens, because the instruction files they write carry its URL. The
 * actual base URL is written to `<root>/site.url` for local tools.
 *
 * Everything unfinished by an earlier run resumes by itself: the database
 * monitor reads change-log rows not yet acknowledged, the inboxes hand out
 * files still present, and Distribution Manager re-queues DPs left pending
 * or retrying.
 */
export async function startSite(rootArg: string, options: StartOptions = {}): Promise<SiteHandle> {
  const root = resolve(rootArg);
  const config = await loadSiteConfig(root);
  const paths = sitePaths(root);
  const keys = await loadSiteKeys(paths);
  // One server per root: two would take the same inbox files and write the same DPs.
  const lock = await lockSiteRoot(root, config.code);
  const loggers = new Map<string, ComponentLog>();
  const logger = (component: string): ComponentLog => {
    let log = loggers.get(component);
    if (log === undefined) {
      log = createLogger(root, component);
      loggers.set(component, log);
    }
    return log;
  };
  const log = logger('site');
  const components = new Map<ComponentName, Component>();
  let baseUrl: string | undefined;
  let db: SiteDb | undefined;
  let app: FastifyInstance | undefined;
  const started: Component[] = [];
  let context: SiteContext | undefined;
  let wroteUrl = false;

  const shutdown = async (): Promise<void> => {
    const failures: unknown[] = [];
    const step = async (what: string, fn: () => Promise<unknown>): Promise<void> => {
      try {
        await fn();
      } catch (err) {
        failures.push(err);
        log.error(`cannot stop ${what}`, err);
      }
    };
    // Reverse order of start: nothing writes into an inbox whose reader is already gone.
    for (const c of [...started].reverse()) await step(c.name, () => c.close());
    if (app !== undefined) {
      const server = app;
      await step('the HTTP server', () => server.close());
    }
    // Only our own: a start that failed (say, the port is taken by a running server) leaves that server's file alone.
    if (wroteUrl) await step('site.url', () => rm(paths.siteUrl, { force: true }));
    if (db !== undefined) {
      const open = db;
      await step('the site database', () => open.close());
    }
    await step('site.lock', () => lock.release());
    log.info('site server stopped');
    await Promise.allSettled([...loggers.values()].map((l) => l.flush()));
    if (failures.length > 0) throw new AggregateError(failures, `the site server ${config.code} did not stop cleanly`);
  };

  try {
    db = await openSiteDb(siteDbLocation(config, paths));
    const local = await getLocalSite(db);
    if (local?.code !== config.code) {
      throw new SitecastError('SITECAST_E_SITE_CONFIG', `site.json names site ${config.code} but the database belongs to ${local?.code ?? 'no site'}`);
    }
    for (const dir of [paths.mpPkginfo, paths.distmgrState, paths.logs]) {
      await mkdir(dir, { recursive: true }).catch((err: unknown) => {
        throw ioError(`cannot create ${dir}`, err);
      });
    }
    const siteDb = db;
    const ctx: SiteContext = {
      root,
      config,
      siteCode: config.code,
      paths,
      db: siteDb,
      keys,
      logger,
      wake: (name) => components.get(name)?.wake(),
      baseUrl: () => baseUrl,
    };
    context = ctx;

    app = Fastify({ logger: false, forceCloseConnections: true });
    await app.register((await import('./live/plugin.js')).livePlugin, { ctx, ...(options.live?.rateSampleMs === undefined ? {} : { rateSampleMs: options.live.rateSampleMs }) });
    await app.register(dpPlugin, {
      resolveDp: async (name) => (await listDps(siteDb, { site: config.code })).find((d) => d.name === name)?.path,
      ...(config.dpChunkCacheMiB === undefined ? {} : { chunkCacheBytes: config.dpChunkCacheMiB * 1024 * 1024 }),
    });
    await app.register(mpPlugin, { pkginfoDir: paths.mpPkginfo });
    await app.register(receivePlugin, { ctx });
    await app.register(policyPlugin, { ctx });
    await registerProvider(app, ctx, options.provider !== false, log);
    const listen = options.listen ?? config.listen;
    await app.listen({ host: listen.host, port: listen.port });
    const address = app.server.address();
    const port = typeof address === 'object' && address !== null ? address.port : listen.port;
    baseUrl = urlFor(listen.host, port);

    const list: Component[] = [
      new InboxManager(ctx, options.inboxmgr),
      new DistributionManager(ctx, options.distmgr),
      new DatabaseMonitor(ctx, options.dbmon),
      ...hierarchyComponents(ctx, options.hierarchy),
      new SenderComponent(ctx, options.sender),
    ].filter((c) => options.without?.includes(c.name) !== true);
    for (const c of list) components.set(c.name, c);
    for (const c of list) {
      await c.start();
      started.push(c);
    }
    wroteUrl = true;
    await writeFileAtomic(paths.siteUrl, `${baseUrl}\n`);
    log.info(`site server ${config.code} started at ${baseUrl} (pid ${process.pid})`);
  } catch (err) {
    log.error('cannot start the site server', err);
    await shutdown().catch(() => undefined);
    throw err;
  }

  if (baseUrl === undefined || context === undefined) throw new SitecastError('SITECAST_E_CLOSED', 'the site server did not start');
  const url = baseUrl;
  const ctx = context;
  let closing: Promise<void> | undefined;
  return {
    url,
    ctx,
    close: () => {
      closing ??= shutdown();
      return closing;
    },
  };
}

/**
 * The admin API lives in its own module; when that module is present it is
 * registered here with the site context, so it can wake the database monitor
 * after each write.
 */
async function registerProvider(app: FastifyInstance, ctx: SiteContext, wanted: boolean, log: ComponentLog): Promise<void> {
  if (!wanted) return;
  if (!existsSync(fileURLToPath(PROVIDER_MODULE))) {
    log.warn('the admin API module is not present; serving DPs and the management point only');
    return;
  }
  const mod = (await import(PROVIDER_MODULE.href)) as { providerPlugin?: unknown };
  if (typeof mod.providerPlugin !== 'function') {
    throw new SitecastError('SITECAST_E_SITE_CONFIG', 'the admin API module does not export providerPlugin');
  }
  await app.register(mod.providerPlugin as FastifyPluginAsync<{ ctx: SiteContext }>, { ctx });
}
