import type { FastifyRequest } from 'fastify';
import { SitecastError } from '../errors.js';
import { HEADER_CLIENT, HEADER_SIGNATURE, HEADER_TIME, MAX_SKEW_MS, requestSigningText, verifyText } from '../formats/client-protocol.js';
import type { CachedClient, PolicyCache } from './policy-cache.js';

function header(request: FastifyRequest, name: string): string | undefined {
  const v = request.headers[name];
  return typeof v === 'string' && v.length > 0 && v.length <= 200 ? v : undefined;
}

/**
 * Checks a signed client request: a registered client id, a time within five
 * minutes of ours, and an Ed25519 signature by that client's key over the
 * method, path, client, time and the SHA-256 of the body. Anything else is
 * refused (401) before the body is looked at.
 */
export async function authenticateClient(cache: PolicyCache, request: FastifyRequest, body: Uint8Array | string): Promise<CachedClient> {
  const id = header(request, HEADER_CLIENT);
  const time = header(request, HEADER_TIME);
  const signature = header(request, HEADER_SIGNATURE);
  if (id === undefined || time === undefined || signature === undefined) {
    throw new SitecastError('SITECAST_E_UNAUTHORIZED', 'a client request needs x-sitecast-client, x-sitecast-time and x-sitecast-signature', {
      hint: 'register the client first: sitecast client register --mp <url> --state <dir>',
    });
  }
  const cached = await cache.client(id);
  if (cached === undefined) {
    throw new SitecastError('SITECAST_E_UNAUTHORIZED', 'this management point does not know that client', {
      hint: 'register the client (again): sitecast client register --mp <url> --state <dir>',
    });
  }
  const at = Date.parse(time);
  if (!Number.isFinite(at) || Math.abs(Date.now() - at) > MAX_SKEW_MS) {
    throw new SitecastError('SITECAST_E_BAD_SIGNATURE', 'the request time is more than 5 minutes from the management point\'s clock', {
      hint: 'set the client\'s clock right (NTP)',
    });
  }
  const path = request.url;
  if (!verifyText(cached.key, requestSigningText(request.method, path, id, time, body), signature)) {
    throw new SitecastError('SITECAST_E_BAD_SIGNATURE', 'the request signature does not match the client\'s registered key', {
      hint: 'a client whose key changed must register again',
    });
  }
  return cached;
}
