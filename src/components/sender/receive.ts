import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { getSite, type SiteDb } from '../../db/index.js';
import { type ErrorCode, SitecastError, isSitecastError } from '../../errors.js';
import { sendIdSchema } from '../../formats/srq.js';
import type { SitePaths } from '../../site/layout.js';
import type { ComponentLog } from '../../site/log.js';
import { HEADER_FILE_SHA256, HEADER_SIGNATURE, HEADER_SITE, HEADER_TIME, HEADER_TO, sha256Hex, verifyRequest } from './auth.js';
import { PartialStore, type UploadState } from './partial.js';

/**
 * The receive endpoint of a site: other sites' http senders upload bundles
 * here in parts, each request signed by the sending site's key.
 *
 *   GET|HEAD /site/v1/receive/<id>   how many bytes of <id> this site holds
 *   PUT      /site/v1/receive/<id>   one part, Content-Range: bytes s-e/total
 *
 * A complete file whose SHA-256 matches is renamed to
 * `despoolr.box/receive/<id>.bundle`, where the Despooler takes it.
 */
export const RECEIVE_PREFIX = '/site/v1/receive';
export const MAX_PART_BYTES = 8 * 1024 * 1024;

export interface ReceiveContext {
  readonly siteCode: string;
  readonly paths: SitePaths;
  readonly db: SiteDb;
  logger(component: string): ComponentLog;
}

export interface ReceiveOptions {
  ctx: ReceiveContext;
}

const STATUS: Partial<Record<ErrorCode, number>> = {
  SITECAST_E_INVALID_VALUE: 400,
  SITECAST_E_UNAUTHORIZED: 401,
  SITECAST_E_CORRUPT_CHUNK: 422,
  SITECAST_E_CLOSED: 503,
};

function badRequest(message: string): SitecastError {
  return new SitecastError('SITECAST_E_INVALID_VALUE', message);
}

function header(request: FastifyRequest, name: string): string {
  const v = request.headers[name];
  return typeof v === 'string' ? v : '';
}

function parseRange(text: string): { start: number; end: number; total: number } {
  const empty = /^bytes \*\/0$/.exec(text);
  if (empty !== null) return { start: 0, end: -1, total: 0 };
  const m = /^bytes (\d{1,15})-(\d{1,15})\/(\d{1,15})$/.exec(text);
  if (m === null) throw badRequest(`Content-Range ${JSON.stringify(text)} is not "bytes <start>-<end>/<total>"`);
  const [start, end, total] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (end < start || end >= total) throw badRequest(`Content-Range ${text} is not inside the file`);
  return { start, end, total };
}

function answer(reply: FastifyReply, id: string, s: UploadState, code = 200): FastifyReply {
  return reply.code(code).header('x-sitecast-received', String(s.received)).send({ id, received: s.received, total: s.total, complete: s.complete });
}

/**
 * The site that signed a site-to-site request, once its signature checks out
 * with the key this site holds for it (SITECAST_E_UNAUTHORIZED otherwise).
 * `body` is what the request carried (empty for GET), `range` its
 * Content-Range (empty when none).
 */
export async function authenticateSite(ctx: Pick<ReceiveContext, 'siteCode' | 'db'>, request: FastifyRequest, body: Buffer, range: string): Promise<string> {
  const from = header(request, HEADER_SITE);
  const to = header(request, HEADER_TO);
  const unauthorized = (why: string): SitecastError => new SitecastError('SITECAST_E_UNAUTHORIZED', why);
  if (!/^[A-Z0-9]{3}$/.test(from)) throw unauthorized(`no valid ${HEADER_SITE} header`);
  if (to !== ctx.siteCode) throw unauthorized(`the request is addressed to ${JSON.stringify(to)}, not to ${ctx.siteCode}`);
  const site = await getSite(ctx.db, from);
  if (site === undefined || site.isLocal || site.publicKey === null) throw unauthorized(`site ${from} is not known here`);
  verifyRequest(
    site.publicKey,
    {
      method: request.method,
      path: request.url.split('?')[0] ?? '',
      from,
      to,
      range,
      fileSha256: header(request, HEADER_FILE_SHA256),
      time: header(request, HEADER_TIME),
      bodySha256: sha256Hex(body),
    },
    header(request, HEADER_SIGNATURE),
  );
  return from;
}

export const receivePlugin: FastifyPluginAsync<ReceiveOptions> = async (app, { ctx }) => {
  const log = ctx.logger('receive');
  const store = new PartialStore(ctx.paths.despoolrReceive);
  await store.sweep().catch((err: unknown) => log.error('cannot sweep old upload markers', err));

  app.addContentTypeParser('application/octet-stream', { parseAs: 'buffer', bodyLimit: MAX_PART_BYTES }, (_req, body, done) => done(null, body));
  app.setErrorHandler(async (err, request, reply) => {
    const code = isSitecastError(err) ? err.code : undefined;
    const fw = (err as { statusCode?: number }).statusCode;
    const status = code !== undefined ? (STATUS[code] ?? 500) : typeof fw === 'number' && fw >= 400 && fw < 500 ? fw : 500;
    if (status === 401) log.warn(`refused ${request.method} ${request.url}: ${(err as Error).message}`);
    else if (status >= 500) log.error(`${request.method} ${request.url} failed`, err);
    return reply.code(status).send({ error: { code: code ?? (status < 500 ? 'SITECAST_E_INVALID_VALUE' : 'SITECAST_E_INTERNAL'), message: (err as Error).message } });
  });

  const authenticate = (request: FastifyRequest, body: Buffer, range: string): Promise<string> => authenticateSite(ctx, request, body, range);

  function idOf(request: FastifyRequest): string {
    const parsed = sendIdSchema.safeParse((request.params as { id?: unknown }).id);
    if (!parsed.success) throw badRequest('the id is not 1 to 100 of A-Z a-z 0-9 . _ -');
    return parsed.data;
  }

  app.get(`${RECEIVE_PREFIX}/:id`, async (request, reply) => {
    const from = await authenticate(request, Buffer.alloc(0), '');
    const id = idOf(request);
    const sha = header(request, HEADER_FILE_SHA256);
    return answer(reply, id, await store.state(from, id, /^[0-9a-f]{64}$/.test(sha) ? sha : undefined));
  });

  app.put(`${RECEIVE_PREFIX}/:id`, async (request, reply) => {
    const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
    const rangeText = header(request, 'content-range');
    const from = await authenticate(request, body, rangeText);
    const id = idOf(request);
    const range = parseRange(rangeText);
    const sha256 = header(request, HEADER_FILE_SHA256);
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw badRequest(`no valid ${HEADER_FILE_SHA256} header`);
    if (body.length !== range.end - range.start + 1) throw badRequest(`the part holds ${body.length} bytes, Content-Range says ${range.end - range.start + 1}`);
    const s = await store.append({ from, id, start: range.start, total: range.total, sha256, body });
    if (s.complete) log.info(`${id}.bundle received from ${from} (${range.total} bytes)`);
    // Not where the sender thought: it learns where the upload stands and goes on from there.
    return answer(reply, id, s, s.complete || s.received === range.end + 1 ? 200 : 409);
  });
};
