import { type ErrorCode, SitecastError, isSitecastError } from '../../errors.js';
import { redact } from '../../site/log.js';
import type { ErrorBody } from './contract.js';

/**
 * The one place where a domain error becomes an HTTP status. Handlers throw
 * SitecastErrors; the provider's error handler answers with this status and
 * the error's code, message and hint. A code not listed is a server fault.
 */
const STATUS: Partial<Record<ErrorCode, number>> = {
  SITECAST_E_USAGE: 400,
  SITECAST_E_INVALID_VALUE: 400,
  SITECAST_E_UNSAFE_PATH: 400,
  SITECAST_E_UNSAFE_NAME: 400,
  SITECAST_E_UNAUTHORIZED: 401,
  SITECAST_E_FORBIDDEN: 403,
  SITECAST_E_JOIN_REFUSED: 403,
  SITECAST_E_NOT_FOUND: 404,
  SITECAST_E_CONFLICT: 409,
  SITECAST_E_ROLLBACK: 409,
  SITECAST_E_ID_EXHAUSTED: 409,
  SITECAST_E_SITE_DOWN: 502,
  SITECAST_E_HTTP: 502,
  SITECAST_E_DB: 503,
  SITECAST_E_CLOSED: 503,
};

export function statusOf(code: ErrorCode): number {
  return STATUS[code] ?? 500;
}

/** Fastify's own errors (bad JSON, wrong content type, body too large) keep their 4xx status. */
interface FrameworkError {
  statusCode?: number;
  code?: string;
  message?: string;
}

/** The status and body for anything a handler threw. Messages are redacted: a token never travels back. */
export function errorResponse(err: unknown): { status: number; body: ErrorBody } {
  if (isSitecastError(err)) {
    return {
      status: statusOf(err.code),
      body: { error: { code: err.code, message: redact(err.message), ...(err.hint === undefined ? {} : { hint: err.hint }) } },
    };
  }
  const fw = (typeof err === 'object' && err !== null ? err : {}) as FrameworkError;
  if (typeof fw.statusCode === 'number' && fw.statusCode >= 400 && fw.statusCode < 500) {
    const tooLarge = fw.statusCode === 413;
    return {
      status: fw.statusCode,
      body: {
        error: {
          code: 'SITECAST_E_INVALID_VALUE',
          message: `request body: ${redact(fw.message ?? 'not valid')}`,
          hint: tooLarge ? 'the request body is too large' : 'send a JSON object as described in GET /openapi.json',
        },
      },
    };
  }
  return {
    status: 500,
    body: { error: { code: 'SITECAST_E_INTERNAL', message: 'the site server failed to answer; see logs/provider.log' } },
  };
}

export function notFoundRoute(method: string, url: string): SitecastError {
  return new SitecastError('SITECAST_E_NOT_FOUND', `no route ${method} ${url.split('?')[0] ?? ''}`, {
    hint: 'GET /openapi.json lists every route',
  });
}
