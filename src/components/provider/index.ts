import { addressRoutes } from './addresses.js';
import type { FastifyPluginAsync } from 'fastify';
import { API_PREFIX } from './contract.js';
import type { ProviderContext } from './context.js';
import { errorResponse, notFoundRoute } from './http-errors.js';
import { openApiDocument } from './openapi.js';
import { clientRoutes } from './clients.js';
import { packageRoutes } from './packages.js';
import { siteRoutes } from './site.js';
import { tokenRoutes } from './tokens.js';
import { hierarchyRoutes, joinRoute } from './hierarchy.js';

export type { ProviderContext } from './context.js';
export { openApiDocument } from './openapi.js';
export { ROUTES, API_PREFIX } from './contract.js';

export interface ProviderOptions {
  ctx: ProviderContext;
}

/**
 * The provider (SMS Provider): the admin HTTP API of one site, the only way
 * the CLI and the console change or read the site. Register it on the site's
 * server without a prefix; its routes carry their own (`/api/v1/…`, and
 * `/openapi.json`):
 *
 *   await app.register(providerPlugin, { ctx });
 *
 * It is encapsulated: its error and not-found handlers answer only its own
 * routes, every error as `{"error":{"code","message","hint"}}`.
 */
export const providerPlugin: FastifyPluginAsync<ProviderOptions> = async (app, { ctx }) => {
  const log = ctx.logger('provider');
  const deps = { ctx, log };

  app.setErrorHandler(async (err, request, reply) => {
    const { status, body } = errorResponse(err);
    if (status >= 500) log.error(`${request.method} ${request.url.split('?')[0] ?? ''} failed`, err);
    return reply.code(status).send(body);
  });
  app.get('/openapi.json', async () => openApiDocument(ctx.baseUrl()));
  joinRoute(app, deps);
  // A prefix of its own, so the provider's not-found answer covers /api/v1/… and nothing else of the server.
  await app.register(
    async (api) => {
      api.setNotFoundHandler(async (request, reply) => {
        const { status, body } = errorResponse(notFoundRoute(request.method, request.url));
        return reply.code(status).send(body);
      });
      siteRoutes(api, deps);
      tokenRoutes(api, deps);
      packageRoutes(api, deps);
      clientRoutes(api, deps);
      hierarchyRoutes(api, deps);
      addressRoutes(api, deps);
    },
    { prefix: API_PREFIX },
  );
};
