import { createServer } from 'node:net';
import { join } from 'node:path';
import { SitecastError } from '../errors.js';
import { initSite } from './init.js';
import { initChildSite } from './join.js';
import { sitePaths } from './layout.js';

/** A site of a lab chain as created: where it lives, where it listens, its admin token. */
export interface ChainSite {
  code: string;
  root: string;
  /** The fixed loopback URL written into its site.json (the same after a restart). */
  url: string;
  token: string;
  tokenFile: string;
}

/** Something that reaches a site's admin API. */
export interface AdminTarget {
  url: string;
  token: string;
}

export interface AdminAnswer {
  status: number;
  json: unknown;
}

/**
 * A free loopback port, chosen before the site starts: a child joins with
 * its URL, so the port must be known (and stay the same across restarts).
 */
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

/** Calls a site's admin API with its admin token; returns the status and the parsed JSON (null when the body is not JSON). */
export async function callAdmin(site: AdminTarget, method: 'GET' | 'POST' | 'PUT', path: string, body?: unknown): Promise<AdminAnswer> {
  const res = await fetch(`${site.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${site.token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(30_000),
  });
  const text = await res.text();
  try {
    return { status: res.status, json: JSON.parse(text) as unknown };
  } catch {
    return { status: res.status, json: null };
  }
}

/** Like callAdmin, but anything other than the expected status is an error naming the call. */
export async function expectAdmin(site: AdminTarget, method: 'GET' | 'POST' | 'PUT', path: string, status: number, body?: unknown): Promise<unknown> {
  const r = await callAdmin(site, method, path, body);
  if (r.status !== status) {
    throw new SitecastError('SITECAST_E_HTTP', `${method} ${path} at ${site.url} answered HTTP ${r.status}, expected ${status}: ${JSON.stringify(r.json).slice(0, 500)}`);
  }
  return r.json;
}

export interface ChainOptions<H> {
  /** Folder the site roots go in: `<dir>/<code in lower case>`. */
  dir: string;
  /** Site codes, top first: each joins the one before it. */
  codes: readonly string[];
  /** Starts a created site (in this process or as a child process); resolves once it serves. */
  start: (site: ChainSite) => Promise<H>;
  /** Called as soon as a site runs, so the caller can stop it even if a later site fails. */
  started?: (site: ChainSite, handle: H) => void;
  log?: (line: string) => void;
}

/**
 * Creates a chain of sites on loopback, each the child of the one before
 * (CEN → PRI → SEC): the first with `site init`, every other invited by its
 * parent (a real join token over the admin API) and joined with
 * `site init --parent`. Each site starts before the next one joins it.
 */
export async function buildChain<H>(options: ChainOptions<H>): Promise<{ site: ChainSite; handle: H }[]> {
  const log = options.log ?? ((): void => undefined);
  const out: { site: ChainSite; handle: H }[] = [];
  let parent: ChainSite | undefined;
  for (const code of options.codes) {
    const root = join(options.dir, code.toLowerCase());
    const port = await freePort();
    const listen = `127.0.0.1:${port}`;
    let token: string;
    if (parent === undefined) {
      log(`creating site ${code} in ${root}`);
      token = (await initSite(root, { code, listen })).adminToken;
    } else {
      const invite = (await expectAdmin(parent, 'POST', '/api/v1/site/invitations', 201, { child: code })) as { token: string };
      log(`creating site ${code} in ${root}, joined below ${parent.code} with a one-time token`);
      token = (await initChildSite(root, { code, listen, parent: parent.url, joinToken: invite.token })).adminToken;
    }
    const site: ChainSite = { code, root, url: `http://${listen}`, token, tokenFile: sitePaths(root).adminToken };
    const handle = await options.start(site);
    options.started?.(site, handle);
    out.push({ site, handle });
    parent = site;
  }
  return out;
}

/** Parses `CEN,PRI,SEC`: at least one code, each three upper-case letters or digits, none twice. */
export function parseSiteList(text: string): string[] {
  const codes = text.split(',').map((c) => c.trim().toUpperCase());
  const bad = codes.find((c) => !/^[A-Z0-9]{3}$/.test(c));
  if (codes.length === 0 || bad !== undefined) {
    throw new SitecastError('SITECAST_E_USAGE', `--sites ${JSON.stringify(text)}: expected site codes separated by commas, e.g. CEN,PRI,SEC`, {
      ...(bad === undefined ? {} : { hint: `"${bad}" is not 3 upper-case letters or digits` }),
    });
  }
  if (new Set(codes).size !== codes.length) throw new SitecastError('SITECAST_E_USAGE', `--sites ${JSON.stringify(text)} names a site twice`);
  return codes;
}
