import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { authenticateSite } from '../../components/sender/receive.js';
import { sha256Hex, signRequest } from '../../components/sender/auth.js';
import { isAtOrBelow, listSiteNodes } from '../../db/hierarchy.js';
import { SitecastError } from '../../errors.js';
import type { SiteContext } from '../context.js';
import { readAddresses, readBacklogs } from './snapshot.js';

/**
 * The links of a site: its addresses (queue, what is sending, rate, last
 * error) and the backlog of its inboxes. A site answers for itself; for a
 * site below it, it asks that site directly with a request signed by its own
 * key (`GET /site/v1/links`), which the site below accepts from its
 * ancestors only. Nothing is stored: the answer is as fresh as the call.
 */
export const LINKS_PATH = '/site/v1/links';
const FETCH_TIMEOUT_MS = 5000;

export const linksSchema = z.object({
  site: z.string(),
  time: z.string(),
  addresses: z.array(
    z.object({
      to: z.string(),
      sender: z.string(),
      paused: z.boolean(),
      queued: z.number(),
      sending: z.number(),
      bytesSent: z.number(),
      rate: z.number(),
      lastError: z.string().nullable(),
    }),
  ),
  backlogs: z.array(z.object({ component: z.string(), inbox: z.string(), files: z.number(), bad: z.number() })),
});
export type Links = z.infer<typeof linksSchema>;

export async function readLocalLinks(ctx: SiteContext): Promise<Links> {
  const [addresses, backlogs] = await Promise.all([readAddresses(ctx.db, ctx.paths), readBacklogs(ctx.paths)]);
  return { site: ctx.siteCode, time: new Date().toISOString(), addresses, backlogs };
}

/** The answer to `GET /site/v1/links`: only for a request signed by a site above this one. */
export async function answerLinksRequest(ctx: SiteContext, request: FastifyRequest): Promise<Links> {
  const from = await authenticateSite(ctx, request, Buffer.alloc(0), '');
  const sites = await listSiteNodes(ctx.db);
  if (from === ctx.siteCode || !isAtOrBelow(sites, ctx.siteCode, from)) {
    throw new SitecastError('SITECAST_E_UNAUTHORIZED', `site ${from} is not above ${ctx.siteCode}: only its ancestors see its links`);
  }
  return readLocalLinks(ctx);
}

/** The links of `code`: this site's own, or asked of a site below it. */
export async function siteLinks(ctx: SiteContext, code: string): Promise<Links> {
  if (code === ctx.siteCode) return readLocalLinks(ctx);
  const sites = await listSiteNodes(ctx.db);
  const node = sites.find((s) => s.code === code);
  if (node === undefined || !isAtOrBelow(sites, code, ctx.siteCode)) {
    throw new SitecastError('SITECAST_E_NOT_FOUND', `site ${code} is not at or below ${ctx.siteCode}`, {
      hint: 'GET /api/v1/sites lists the sites known here; a site sees the links of the sites below it',
    });
  }
  if (node.url === null) {
    throw new SitecastError('SITECAST_E_SITE_DOWN', `site ${code} has not reported its address yet`, { hint: 'it does once its server has started and reported up' });
  }
  const url = new URL(LINKS_PATH, node.url);
  const headers = signRequest(ctx.keys.privateKey, { method: 'GET', path: LINKS_PATH, from: ctx.siteCode, to: code, range: '', fileSha256: '', bodySha256: sha256Hex(Buffer.alloc(0)) });
  let res: Response;
  try {
    res = await fetch(url, { headers, signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  } catch (err) {
    const why = err instanceof Error ? (err.cause instanceof Error ? err.cause.message : err.message) : String(err);
    throw new SitecastError('SITECAST_E_SITE_DOWN', `site ${code} at ${node.url} did not answer: ${why}`);
  }
  const text = await res.text();
  if (!res.ok) {
    throw new SitecastError('SITECAST_E_HTTP', `site ${code} at ${node.url} answered HTTP ${res.status}: ${text.slice(0, 300)}`);
  }
  let parsed: Links | undefined;
  try {
    parsed = linksSchema.parse(JSON.parse(text));
  } catch {
    parsed = undefined;
  }
  if (parsed === undefined || parsed.site !== code) throw new SitecastError('SITECAST_E_HTTP', `site ${code} at ${node.url} answered something that is not its links`);
  return parsed;
}
