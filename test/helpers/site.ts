import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openSiteDb } from '../../src/db/index.js';
import { initSite, loadSiteConfig, loadSiteKeys, sitePaths, createLogger } from '../../src/site/index.js';
import type { ComponentName, SiteContext } from '../../src/site/context.js';
import type { ComponentLog } from '../../src/site/log.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

export interface TestSite {
  dir: string;
  root: string;
  /** Runs at the end of the test, last registered first, before the folder is removed. */
  defer(fn: () => Promise<unknown>): void;
}

/** A new site root (code CEN, listening on a free loopback port) in the test's own temporary folder. */
export async function newSite(t: Ctx, code = 'CEN'): Promise<TestSite> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-site-'));
  const stack: (() => Promise<unknown>)[] = [];
  t.after(async () => {
    for (const fn of stack.reverse()) await fn().catch(() => undefined);
    await rm(dir, { recursive: true, force: true });
  });
  const root = join(dir, code.toLowerCase());
  await initSite(root, { code, listen: '127.0.0.1:0' });
  return { dir, root, defer: (fn) => void stack.push(fn) };
}

/** A SiteContext over an opened site root, without a server: for testing one component alone. */
export async function openContext(site: TestSite): Promise<SiteContext & { woken: ComponentName[] }> {
  const root = site.root;
  const config = await loadSiteConfig(root);
  const paths = sitePaths(root);
  const db = await openSiteDb({ kind: 'sqlite', path: paths.database });
  site.defer(() => db.close());
  const keys = await loadSiteKeys(paths);
  const loggers = new Map<string, ComponentLog>();
  const woken: ComponentName[] = [];
  return {
    root,
    config,
    siteCode: config.code,
    paths,
    db,
    keys,
    logger: (name) => {
      let l = loggers.get(name);
      if (l === undefined) {
        l = createLogger(root, name);
        loggers.set(name, l);
      }
      return l;
    },
    wake: (name) => void woken.push(name),
    baseUrl: () => 'http://127.0.0.1:9',
    woken,
  };
}

/** Polls until `check` returns a value other than undefined, or fails after `ms`. */
export async function eventually<T>(what: string, check: () => Promise<T | undefined>, ms = 10_000): Promise<T> {
  const until = Date.now() + ms;
  let last: unknown;
  for (;;) {
    try {
      const v = await check();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
