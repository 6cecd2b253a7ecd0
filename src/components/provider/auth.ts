import type { FastifyRequest } from 'fastify';
import { type AdminToken, verifyAdminToken } from '../../db/index.js';
import { SitecastError } from '../../errors.js';
import type { ComponentLog } from '../../site/log.js';
import type { Access } from './contract.js';
import type { ProviderContext } from './context.js';

const BEARER = /^Bearer +(\S+) *$/i;
// Worded so that the redactor (which masks whatever follows "Bearer ") leaves it readable.
const TOKEN_HINT = 'send the header Authorization with `Bearer` and the token; site init printed an admin token and wrote it to <root>/admin.token';

function where(request: FastifyRequest): string {
  return `${request.method} ${request.url.split('?')[0] ?? ''}`;
}

/**
 * Checks the bearer token of a request against the site database (by hash)
 * and the route's access: any valid token may read, only `admin` may write.
 * Runs before the body is parsed, so nobody without a token gets to feed the
 * parser. Log lines name the token by its id, never by its secret.
 */
export async function authorize(
  ctx: ProviderContext,
  log: ComponentLog,
  request: FastifyRequest,
  access: Access,
): Promise<AdminToken | undefined> {
  if (access === 'public') return undefined;
  const header = request.headers.authorization;
  if (header === undefined || header === '') {
    throw new SitecastError('SITECAST_E_UNAUTHORIZED', `${where(request)} needs a token`, { hint: TOKEN_HINT });
  }
  const token = BEARER.exec(header)?.[1];
  const caller = token === undefined ? undefined : await verifyAdminToken(ctx.db, token);
  if (caller === undefined) {
    log.warn(`refused ${where(request)} from ${request.ip}: the token is not valid`);
    throw new SitecastError('SITECAST_E_UNAUTHORIZED', `the token sent with ${where(request)} is not valid`, { hint: TOKEN_HINT });
  }
  if (access === 'write' && caller.role !== 'admin') {
    log.warn(`refused ${where(request)} from ${request.ip}: token ${caller.id} is read-only`);
    const why = request.method === 'GET' || request.method === 'HEAD' ? 'is for admin tokens only' : 'changes the site';
    throw new SitecastError('SITECAST_E_FORBIDDEN', `token ${caller.id} is read-only; ${where(request)} ${why}`, {
      hint: 'use a token with the admin role',
    });
  }
  return caller;
}
