import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { join } from 'node:path';
import { dpPaths, sharePath } from './layout.js';

export interface DpHttpOptions {
  /** The folder of a DP of this site by name, or undefined when there is none. */
  resolveDp: (name: string) => Promise<string | undefined>;
}

const DP_NAME = /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/;
const PACKAGE_ID = /^[A-Z0-9]{3}[0-9A-F]{5}$/;
const SHA256 = /^[0-9a-f]{64}$/;

function notFound(reply: FastifyReply, what: string): FastifyReply {
  return reply.code(404).send({ error: { code: 'SITECAST_E_NOT_FOUND', message: `${what} does not exist` } });
}

/**
 * Serves the distribution points of this site read-only over HTTP:
 *
 *   GET /dp/<dp name>/<PKGID>/<path>     a file of the share (Range requests honoured)
 *   GET /dp/<dp name>/chunks/<sha256>    a chunk of the DP's library (one zstd frame)
 *
 * A file is opened through the share link, so a download that started before
 * a new version was switched in finishes with the old version's bytes (the
 * open file outlives the folder), and the next request gets the new one.
 * Register it without fastify-plugin: @fastify/static's reply decorator stays
 * inside this plugin.
 */
export async function dpPlugin(app: FastifyInstance, options: DpHttpOptions): Promise<void> {
  await app.register(fastifyStatic, { serve: false, decorateReply: true, index: false, dotfiles: 'allow', acceptRanges: true });

  const dpFolder = async (name: string): Promise<string | undefined> => {
    if (!DP_NAME.test(name) || name.includes('..')) return undefined;
    return options.resolveDp(name);
  };

  app.get<{ Params: { dp: string; hash: string } }>('/dp/:dp/chunks/:hash', async (request, reply) => {
    const { dp, hash } = request.params;
    const folder = await dpFolder(dp);
    if (folder === undefined) return notFound(reply, `DP ${JSON.stringify(dp)}`);
    if (!SHA256.test(hash)) return notFound(reply, 'that chunk');
    reply.header('content-type', 'application/zstd');
    reply.header('cache-control', 'public, max-age=31536000, immutable');
    return reply.sendFile(join(hash.slice(0, 2), hash), join(dpPaths(folder).library, 'chunks'));
  });

  app.get<{ Params: { dp: string; pkg: string; '*': string } }>('/dp/:dp/:pkg/*', async (request, reply) => {
    const { dp, pkg } = request.params;
    const path = request.params['*'];
    const folder = await dpFolder(dp);
    if (folder === undefined) return notFound(reply, `DP ${JSON.stringify(dp)}`);
    if (!PACKAGE_ID.test(pkg)) return notFound(reply, `package ${JSON.stringify(pkg)}`);
    if (path === '' || path.endsWith('/')) return notFound(reply, 'a file at that path');
    // Shares change with every version: clients revalidate rather than cache.
    reply.header('cache-control', 'no-cache');
    return reply.sendFile(path, sharePath(dpPaths(folder), pkg));
  });
}
