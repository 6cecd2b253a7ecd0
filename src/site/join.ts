import { rm } from 'node:fs/promises';
import { z } from 'zod';
import { joinBodySchema, joinResultSchema } from '../components/provider/contract.js';
import { openSiteDb } from '../db/index.js';
import { setLocalSite, siteUrlSchema, upsertSite } from '../db/hierarchy.js';
import { SitecastError, isSitecastError } from '../errors.js';
import { redact } from '../redact.js';
import { type InitOptions, type InitResult, initSite } from './init.js';
import { siteDbLocation } from './config.js';

export interface JoinOptions extends InitOptions {
  /** Base URL of the parent site server. */
  parent: string;
  /** The one-time token `site invite` printed at the parent. */
  joinToken: string;
}

export interface JoinResult extends InitResult {
  parent: { code: string; name: string; url: string };
  /** Sites above the parent, nearest first. */
  ancestors: string[];
}

const JOIN_TIMEOUT_MS = 30_000;

function configuredUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

async function post(url: string, body: unknown): Promise<{ status: number; payload: unknown }> {
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(JOIN_TIMEOUT_MS),
    });
  } catch (err) {
    throw new SitecastError('SITECAST_E_SITE_DOWN', `no parent site answers at ${url}`, { hint: 'check --parent and that the parent site server runs', cause: err });
  }
  const text = await res.text();
  try {
    return { status: res.status, payload: JSON.parse(text) as unknown };
  } catch {
    throw new SitecastError('SITECAST_E_HTTP', `${url} answered HTTP ${res.status} with something that is not JSON`);
  }
}

const errorSchema = z.object({ error: z.object({ code: z.string(), message: z.string(), hint: z.string().optional() }) });

/**
 * Creates a child site and registers it with its parent: `site init` with
 * `--parent`. The new root is made first (keys included); the parent is then
 * given its code, URL and public key with the join token, and answers with
 * its own and its ancestors'. Both sides record each other. If the parent
 * refuses, the new root is removed again, so the same command can be run
 * with a new token.
 */
export async function initChildSite(root: string, options: JoinOptions): Promise<JoinResult> {
  const parentUrl = siteUrlSchema.safeParse(options.parent.trim().replace(/\/+$/, ''));
  if (!parentUrl.success) throw new SitecastError('SITECAST_E_USAGE', `--parent ${JSON.stringify(options.parent)} is not an http(s) URL`);
  const init = await initSite(root, options);
  try {
    const url = configuredUrl(init.config.listen.host, init.config.listen.port);
    const body = joinBodySchema.parse({ code: init.config.code, name: init.config.name, url, publicKey: init.publicKeyPem, token: options.joinToken });
    const { status, payload } = await post(`${parentUrl.data}/site/v1/join`, body);
    if (status !== 200) {
      const e = errorSchema.safeParse(payload);
      if (!e.success) throw new SitecastError('SITECAST_E_HTTP', `${parentUrl.data} answered HTTP ${status} to the join`);
      const code = e.data.error.code === 'SITECAST_E_JOIN_REFUSED' || e.data.error.code === 'SITECAST_E_CONFLICT' ? e.data.error.code : 'SITECAST_E_HTTP';
      throw new SitecastError(code, redact(e.data.error.message), e.data.error.hint === undefined ? {} : { hint: e.data.error.hint });
    }
    const answer = joinResultSchema.safeParse(payload);
    if (!answer.success) throw new SitecastError('SITECAST_E_HTTP', `${parentUrl.data} answered the join in a shape this Sitecast does not know`);
    const { parent, ancestors } = answer.data;
    const db = await openSiteDb(siteDbLocation(init.config, init.paths));
    try {
      for (const a of [...ancestors].reverse()) await upsertSite(db, a);
      await upsertSite(db, parent);
      await setLocalSite(db, { parentCode: parent.code, url });
    } finally {
      await db.close();
    }
    return {
      ...init,
      parent: { code: parent.code, name: parent.name, url: parent.url ?? parentUrl.data },
      ancestors: ancestors.map((a) => a.code),
    };
  } catch (err) {
    await rm(init.root, { recursive: true, force: true }).catch(() => undefined);
    if (isSitecastError(err)) throw err;
    throw new SitecastError('SITECAST_E_HTTP', `joining ${parentUrl.data} failed: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}
