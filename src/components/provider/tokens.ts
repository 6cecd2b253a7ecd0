import type { FastifyInstance } from 'fastify';
import { createAdminToken, listAdminTokens, revokeAdminToken } from '../../db/index.js';
import { SitecastError } from '../../errors.js';
import { ROUTES } from './contract.js';
import { type RouteDeps, addRoute } from './route.js';

/**
 * Bearer tokens of the admin API, managed by admins: issue one with a role
 * (the secret is in that answer only; the site keeps its SHA-256), list them,
 * revoke one at once. The last admin token cannot be revoked: a site nobody
 * can administer could only be repaired by hand in its database.
 */
export function tokenRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db } = deps.ctx;
  const who = (caller: { id: string } | undefined): string => `token ${caller?.id ?? '?'}`;

  addRoute(app, deps, ROUTES.createToken, async ({ body, caller }) => {
    const issued = await createAdminToken(db, { role: body.role, label: body.label ?? null });
    deps.log.info(`token ${issued.id} (${issued.role}${issued.label === null ? '' : `, ${issued.label}`}) issued by ${who(caller)}`);
    return issued;
  });

  addRoute(app, deps, ROUTES.listTokens, async () => ({ tokens: await listAdminTokens(db) }));

  addRoute(app, deps, ROUTES.revokeToken, async ({ params, caller }) => {
    const tokens = await listAdminTokens(db);
    const token = tokens.find((x) => x.id === params.id);
    if (token === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `no token ${params.id}`, { hint: 'GET /api/v1/tokens (sitecast token list) shows them' });
    if (token.role === 'admin' && tokens.filter((x) => x.role === 'admin').length === 1) {
      throw new SitecastError('SITECAST_E_CONFLICT', `token ${params.id} is the last admin token: revoking it would leave nobody who can administer the site`, {
        hint: 'issue another admin token first (sitecast token create --role admin)',
      });
    }
    await revokeAdminToken(db, params.id);
    deps.log.info(`token ${params.id} (${token.role}) revoked by ${who(caller)}`);
    return { id: params.id, revoked: true as const };
  });
}
