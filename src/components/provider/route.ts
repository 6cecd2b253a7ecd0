import type { FastifyInstance } from 'fastify';
import type { z } from 'zod';
import type { AdminToken } from '../../db/index.js';
import { parseInput } from '../../db/values.js';
import type { ComponentLog } from '../../site/log.js';
import { authorize } from './auth.js';
import { API_PREFIX, type RouteSpec } from './contract.js';
import type { ProviderContext } from './context.js';

type Part<R, K extends 'params' | 'query' | 'body'> = R extends Record<K, infer S extends z.ZodType> ? z.output<S> : undefined;

/** What a handler receives: parsed and checked parts of the request, and who sent it. */
export interface RouteInput<R extends RouteSpec> {
  params: Part<R, 'params'>;
  query: Part<R, 'query'>;
  body: Part<R, 'body'>;
  caller: AdminToken | undefined;
}

export type RouteHandler<R extends RouteSpec> = (input: RouteInput<R>) => Promise<z.input<R['response']>>;

export interface RouteDeps {
  ctx: ProviderContext;
  log: ComponentLog;
}

/**
 * Registers one route of the contract: token and role first, then path,
 * query and body parsed with the contract's schemas (a bad value is a 400
 * naming the field), then the handler. Every write wakes the database
 * monitor, so Distribution Manager hears of the change at once.
 */
export function addRoute<R extends RouteSpec>(app: FastifyInstance, deps: RouteDeps, spec: R, handler: RouteHandler<R>): void {
  const callers = new WeakMap<object, AdminToken>();
  app.route({
    method: spec.method,
    // Routes are registered inside the provider's /api/v1 prefix; the contract names them in full.
    url: spec.url.startsWith(API_PREFIX) ? spec.url.slice(API_PREFIX.length) : spec.url,
    // Before the body is read: a caller without a valid token never reaches the parser.
    onRequest: async (request) => {
      const caller = await authorize(deps.ctx, deps.log, request, spec.access);
      if (caller !== undefined) callers.set(request, caller);
    },
    handler: async (request, reply) => {
      const caller = callers.get(request);
      const input = {
        params: spec.params === undefined ? undefined : parseInput(spec.params, request.params, 'path'),
        query: spec.query === undefined ? undefined : parseInput(spec.query, request.query, 'query'),
        body: spec.body === undefined ? undefined : parseInput(spec.body, request.body ?? {}, 'request body'),
        caller,
      } as RouteInput<R>;
      const result = await handler(input);
      if (spec.access === 'write') deps.ctx.wake('dbmon');
      reply.code(spec.status);
      return result;
    },
  });
}
