import { createPublicKey } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { addDp, checkRemoteDpRemovable, type Dp } from '../../db/index.js';
import { acceptJoin, ancestry, childToward, createJoinToken, isAtOrBelow, listSiteNodes, type SiteNode } from '../../db/hierarchy.js';
import { SitecastError } from '../../errors.js';
import type { SitePayload } from '../../formats/bundle-header.js';
import { RPT_SUFFIX, REPLICATION_FORMAT, serialize, stampedName } from '../../formats/replication.js';
import { dropFile } from '../../inbox/index.js';
import { ROUTES } from './contract.js';
import { type RouteDeps, addRoute } from './route.js';
import { configuredUrl } from './site.js';

function definition(s: SiteNode): { code: string; name: string; parentCode: string | null; publicKey: string | null; url: string | null } {
  return { code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: s.url };
}

/** Routes inside /api/v1: the hierarchy as this site knows it, and join tokens for new children. */
export function hierarchyRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db, config } = deps.ctx;

  addRoute(app, deps, ROUTES.listSites, async () => ({
    sites: (await listSiteNodes(db)).map((s) => ({ ...definition(s), isLocal: s.isLocal })),
  }));

  addRoute(app, deps, ROUTES.invite, async ({ body, caller }) => {
    const known = (await listSiteNodes(db)).find((s) => s.code === body.child);
    if (known !== undefined) throw new SitecastError('SITECAST_E_CONFLICT', `site ${body.child} is already part of the hierarchy known here`);
    if (body.child === config.code) throw new SitecastError('SITECAST_E_CONFLICT', `${body.child} is this site's own code`);
    const expiresAt = body.expiresInSeconds === undefined ? undefined : new Date(Date.now() + body.expiresInSeconds * 1000);
    const issued = await createJoinToken(db, { child: body.child, ...(expiresAt === undefined ? {} : { expiresAt }) });
    deps.log.info(`join token for child site ${body.child} issued by token ${caller?.id ?? '?'}, valid until ${issued.expiresAt}`);
    return { token: issued.token, child: body.child, expiresAt: issued.expiresAt };
  });
}

function isEd25519(pem: string): boolean {
  try {
    return createPublicKey(pem).asymmetricKeyType === 'ed25519';
  } catch {
    return false;
  }
}

/**
 * `POST /site/v1/join`, outside the admin prefix and without a bearer
 * token: the join token is the credential. The child is recorded with its
 * key and URL; the answer is this site and its ancestors, keys included.
 */
export function joinRoute(app: FastifyInstance, deps: RouteDeps): void {
  const { db, config } = deps.ctx;
  addRoute(app, deps, ROUTES.join, async ({ body }) => {
    if (!isEd25519(body.publicKey)) throw new SitecastError('SITECAST_E_INVALID_VALUE', 'publicKey: not an Ed25519 public key in SPKI PEM');
    try {
      await acceptJoin(db, {
        token: body.token,
        parentCode: config.code,
        child: { code: body.code, name: body.name, parentCode: config.code, publicKey: body.publicKey, url: body.url },
      });
    } catch (err) {
      deps.log.warn(`join of site ${body.code} from ${body.url} refused: ${err instanceof Error ? err.message : String(err)}`);
      throw err;
    }
    deps.log.info(`site ${body.code} joined as a child (${body.url})`);
    const sites = await listSiteNodes(db);
    const chain = ancestry(sites, config.code).map((code) => sites.find((s) => s.code === code)).filter((s): s is SiteNode => s !== undefined);
    const [self, ...above] = chain.map(definition);
    if (self === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', 'this site is missing from its own database');
    return { parent: { ...self, url: deps.ctx.baseUrl() ?? self.url ?? configuredUrl(config.listen) }, ancestors: above };
  });
}

/** The way down to a site below this one: the child site it goes through, and where replication requests are written. */
async function wayDown(deps: RouteDeps, site: string): Promise<{ child: string; outbox: string }> {
  const { db, config } = deps.ctx;
  const outbound = deps.ctx.paths?.replmgrOutbound;
  if (outbound === undefined) throw new SitecastError('SITECAST_E_CLOSED', 'this server does not replicate to other sites');
  const sites = await listSiteNodes(db);
  if (!isAtOrBelow(sites, site, config.code) || site === config.code) {
    throw new SitecastError('SITECAST_E_NOT_FOUND', `site ${site} is not below ${config.code}`, { hint: 'GET /api/v1/sites lists the sites known here' });
  }
  const child = childToward(sites, config.code, site);
  if (child === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `no child site of ${config.code} leads to ${site}`);
  return { child, outbox: outbound.high };
}

/** Writes a site-definition request for `child` (high priority); returns its file name. */
async function sendSiteDown(way: { child: string; outbox: string }, site: SitePayload): Promise<string> {
  const name = `${stampedName(`SI-${way.child}`)}${RPT_SUFFIX}`;
  await dropFile(way.outbox, name, serialize({ format: REPLICATION_FORMAT, kind: 'site', to: way.child, site, created: new Date().toISOString() }));
  return name;
}

/**
 * A DP of a site below this one: recorded here (so packages can target it at
 * once) and sent down as a site definition; the site it belongs to creates it.
 */
export async function addRemoteDp(deps: RouteDeps, input: { site: string; name: string; path: string }): Promise<Dp> {
  const way = await wayDown(deps, input.site);
  const dp = await addDp(deps.ctx.db, { site: input.site, name: input.name, path: input.path });
  const name = await sendSiteDown(way, { sites: [], dps: [{ site: dp.site, name: dp.name, path: dp.path }] });
  deps.log.info(`DP ${dp.site}/${dp.name} recorded; its definition goes down through ${way.child} (${name})`);
  return dp;
}

/**
 * A DP of a site below is removed by that site: once this site finds no
 * package of its own targeting it, the request goes down as a site
 * definition naming it `removed`; that site removes it when nothing is left
 * on it (or says why not, in a status message) and its report up makes every
 * site above forget it.
 */
export async function requestRemoteDpRemoval(deps: RouteDeps, ref: { site: string; name: string }): Promise<Dp> {
  const way = await wayDown(deps, ref.site);
  const dp = await checkRemoteDpRemovable(deps.ctx.db, ref);
  const name = await sendSiteDown(way, { sites: [], dps: [], removed: [{ site: dp.site, name: dp.name }] });
  deps.log.info(`removal of DP ${dp.site}/${dp.name} requested; it goes down through ${way.child} (${name})`);
  return dp;
}
