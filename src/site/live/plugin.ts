import type { FastifyInstance, FastifyPluginAsync, FastifyReply, FastifyRequest } from 'fastify';
import { authorize } from '../../components/provider/auth.js';
import { listAdvertisements } from '../../db/advertisements.js';
import { errorResponse } from '../../components/provider/http-errors.js';
import { SitecastError } from '../../errors.js';
import { consolePlugin } from '../../console/server.js';
import type { SiteContext } from '../context.js';
import { readHealth } from './health.js';
import { type LiveEvent, LiveHub, type HubOptions } from './hub.js';
import { LatencyHistogram, renderMetrics } from './metrics.js';
import { countStates, readAddresses, readBacklogs, readDpStates, readPackages } from './snapshot.js';
import { type TicketHolder, ticketSigner } from './ticket.js';
import { validateDp } from './validate.js';
import { LINKS_PATH, answerLinksRequest, siteLinks } from './links.js';
import { RateHistory } from './rates.js';
import { packageIdSchema, parseInput, shortNameSchema, siteCodeSchema } from '../../db/values.js';
import { z } from 'zod';

export interface LiveOptions {
  ctx: SiteContext;
  hub?: HubOptions;
  /** How often each address's rate is sampled for the rate history (default 5000 ms). */
  rateSampleMs?: number;
}

const PREFIX = '/api/v1';
const HEARTBEAT_MS = 15_000;
/** How often the rate of every address is sampled for the rate history. */
const RATE_SAMPLE_MS = 5000;
/** A listener that does not read what it is sent is dropped; its browser reconnects and reloads. */
const MAX_BUFFERED = 1 << 20;

function frame(e: LiveEvent): string {
  return `event: ${e.type}\ndata: ${JSON.stringify(e.data)}\n\n`;
}

/**
 * Live status of the site, beside the admin API: the event stream the
 * console listens to (`GET /api/v1/events`, with a bearer token or a ticket
 * from `POST /api/v1/events/ticket`), one snapshot to start from, component
 * health, Prometheus metrics at `/metrics`, and the console itself at
 * `/console/`. The latency hook sits on the server's root so it times every
 * route, the provider's included; the routes live in a scope of their own.
 */
const livePluginImpl: FastifyPluginAsync<LiveOptions> = async (app, { ctx, hub: hubOptions, rateSampleMs }) => {
  const log = ctx.logger('provider');
  const hub = new LiveHub({ db: ctx.db, paths: ctx.paths, log }, hubOptions);
  const signer = ticketSigner();
  const latency = new LatencyHistogram();

  app.addHook('onResponse', async (request, reply) => {
    const route = request.routeOptions.url ?? 'unmatched';
    latency.observe({ method: request.method, route, status: reply.statusCode }, reply.elapsedTime / 1000);
    // A write through the API shows in the stream at once, not at the next tick.
    if (request.method !== 'GET' && route.startsWith(PREFIX) && reply.statusCode < 400) hub.poke();
  });
  // The rate of every address, sampled every 5 s for the last hour, so a chart opened now shows the hour behind it.
  const rates = new RateHistory();
  const sampleRates = async (): Promise<void> => rates.sample(await readAddresses(ctx.db, ctx.paths));
  const rateTimer = setInterval(() => void sampleRates().catch(() => undefined), rateSampleMs ?? RATE_SAMPLE_MS);
  rateTimer.unref();
  void sampleRates().catch(() => undefined);
  app.addHook('onClose', async () => {
    clearInterval(rateTimer);
    await hub.close();
  });

  app.get('/metrics', async (_request, reply) => {
    const [dps, packages, addresses, backlogs] = await Promise.all([
      readDpStates(ctx.db),
      readPackages(ctx.db),
      readAddresses(ctx.db, ctx.paths),
      readBacklogs(ctx.paths),
    ]);
    const text = renderMetrics({ site: ctx.siteCode, states: countStates(dps), packages: packages.length, addresses, backlogs, subscribers: hub.size, latency });
    return reply.type('text/plain; version=0.0.4; charset=utf-8').send(text);
  });

  await app.register(async (api) => {
    api.setErrorHandler(async (err, request, reply) => {
      const { status, body } = errorResponse(err);
      if (status >= 500) log.error(`${request.method} ${request.url.split('?')[0] ?? ''} failed`, err);
      return reply.code(status).send(body);
    });

    const reader = async (request: FastifyRequest): Promise<TicketHolder> => {
      const ticket = (request.query as Record<string, unknown> | undefined)?.['ticket'];
      if (typeof ticket === 'string' && request.headers.authorization === undefined) {
        const holder = signer.verify(ticket);
        if (holder !== undefined) return holder;
        log.warn(`refused ${request.method} ${request.url.split('?')[0] ?? ''} from ${request.ip}: the ticket is not valid or has expired`);
        throw new SitecastError('SITECAST_E_UNAUTHORIZED', 'the event ticket is not valid or has expired', {
          hint: 'get a new one with POST /api/v1/events/ticket; a ticket is good for one minute',
        });
      }
      const caller = await authorize(ctx, log, request, 'read');
      if (caller === undefined) throw new SitecastError('SITECAST_E_UNAUTHORIZED', 'a token is needed');
      return caller;
    };

    api.post(`${PREFIX}/events/ticket`, async (request, reply) => {
      const caller = await authorize(ctx, log, request, 'read');
      if (caller === undefined) throw new SitecastError('SITECAST_E_UNAUTHORIZED', 'a token is needed');
      return reply.code(201).send(signer.issue(caller));
    });

    api.get(`${PREFIX}/live/snapshot`, async (request) => {
      const caller = await authorize(ctx, log, request, 'read');
      const [packages, dps, addresses, backlogs] = await Promise.all([
        readPackages(ctx.db),
        readDpStates(ctx.db),
        readAddresses(ctx.db, ctx.paths),
        readBacklogs(ctx.paths),
      ]);
      return { site: ctx.siteCode, role: caller?.role ?? 'read-only', packages, dps, addresses, backlogs, rates: rates.history() };
    });

    // The provider answers one advertisement's client results; the console also needs to list them.
    api.get(`${PREFIX}/live/advertisements`, async (request) => {
      await authorize(ctx, log, request, 'read');
      return { advertisements: await listAdvertisements(ctx.db) };
    });

    const validateParams = z.object({ id: packageIdSchema, dp: shortNameSchema });
    api.post(`${PREFIX}/packages/:id/dps/:dp/validate`, async (request) => {
      const caller = await authorize(ctx, log, request, 'write');
      const params = parseInput(validateParams, request.params, 'path');
      const result = await validateDp(ctx, params.id, params.dp);
      log.info(`content of ${params.id} on DP ${params.dp} validated by token ${caller?.id ?? '?'}: ${result.ok ? 'matches' : `${result.problems.length} problems`}`);
      return result;
    });

    // Addresses and inbox backlogs of this site or of a site below it (asked of that site, signed).
    api.get(`${PREFIX}/sites/:code/links`, async (request) => {
      await authorize(ctx, log, request, 'read');
      const { code } = parseInput(z.object({ code: siteCodeSchema }), request.params, 'path');
      return siteLinks(ctx, code);
    });
    // The same, asked by a site above this one.
    api.get(LINKS_PATH, async (request) => answerLinksRequest(ctx, request));

    api.get(`${PREFIX}/health`, async (request) => {
      await authorize(ctx, log, request, 'read');
      return { components: await readHealth(ctx.db, ctx.paths) };
    });

    api.get(`${PREFIX}/events`, async (request, reply) => {
      const holder = await reader(request);
      if (hub.full) {
        throw new SitecastError('SITECAST_E_CLOSED', `the live event stream has ${hub.size} listeners, its limit`, {
          hint: 'close a console tab, or read GET /api/v1/live/snapshot instead',
        });
      }
      stream(request, reply, { hub, hello: { site: ctx.siteCode, role: holder.role } });
    });

    await api.register(consolePlugin);
  });
};

function stream(request: FastifyRequest, reply: FastifyReply, o: { hub: LiveHub; hello: unknown }): void {
  reply.hijack();
  const res = reply.raw;
  res.writeHead(200, {
    'content-type': 'text/event-stream; charset=utf-8',
    'cache-control': 'no-cache, no-transform',
    connection: 'keep-alive',
    'x-accel-buffering': 'no',
  });
  res.write(`retry: 2000\n\n${frame({ type: 'hello' as LiveEvent['type'], data: o.hello })}`);
  let unsubscribe: (() => void) | undefined;
  const end = (): void => {
    clearInterval(beat);
    unsubscribe?.();
    unsubscribe = undefined;
    if (!res.writableEnded) res.end();
  };
  const beat = setInterval(() => res.write(': keepalive\n\n'), HEARTBEAT_MS);
  beat.unref();
  unsubscribe = o.hub.subscribe({
    send(events) {
      if (res.writableLength > MAX_BUFFERED) return end();
      res.write(events.map(frame).join(''));
    },
  });
  request.raw.on('close', end);
  res.on('error', end);
}

/** Not encapsulated: the latency hook must see every route of the server. */
export const livePlugin = Object.assign(livePluginImpl, { [Symbol.for('skip-override')]: true });

export type { FastifyInstance };
