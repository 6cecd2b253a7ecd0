import type { FastifyInstance } from 'fastify';
import { type Address, getAddress, listAddresses, setAddress } from '../../db/index.js';
import { type AddressChange } from '../../db/addresses.js';
import { parsePulse, parseRate, parseWindow } from '../../formats/schedule.js';
import { addressQueues, type AddressQueue } from '../sender/scan.js';
import { defaultAddress } from '../sender/queue.js';
import type { AddressView, SetAddressBody } from './addresses-contract.js';
import { ROUTES } from './contract.js';
import { type RouteDeps, addRoute } from './route.js';

function view(a: Address, q: AddressQueue | undefined, configured: boolean): AddressView {
  return {
    to: a.to,
    sender: a.sender,
    path: a.path,
    schedule: [...a.schedule],
    rateLimit: [...a.rateLimit],
    pulse: a.pulse,
    maxConcurrent: a.maxConcurrent,
    retries: a.retries,
    retryDelay: a.retryDelaySeconds,
    paused: a.paused,
    configured,
    queued: q?.queued ?? 0,
    sending: q?.sending ?? 0,
    bytesSent: a.bytesSent,
    rate: a.currentRate,
    lastError: a.lastError,
  };
}

/** Text from the request parsed into values; the first that does not parse is a 400 naming it, and nothing is saved. */
export function addressChange(body: SetAddressBody): AddressChange {
  return {
    ...(body.sender === undefined ? {} : { sender: body.sender }),
    ...(body.path === undefined ? {} : { path: body.path }),
    ...(body.windows === undefined ? {} : { windows: body.windows.map(parseWindow) }),
    ...(body.rates === undefined ? {} : { rates: body.rates.map(parseRate) }),
    ...(body.pulse === undefined ? {} : { pulse: parsePulse(body.pulse) }),
    ...(body.maxConcurrent === undefined ? {} : { maxConcurrent: body.maxConcurrent }),
    ...(body.retries === undefined ? {} : { retries: body.retries }),
    ...(body.retryDelay === undefined ? {} : { retryDelaySeconds: body.retryDelay }),
    ...(body.paused === undefined ? {} : { paused: body.paused }),
  };
}

export function addressRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db } = deps.ctx;
  const queues = async (): Promise<Map<string, AddressQueue>> => {
    const dir = deps.ctx.paths?.scheduleOutboxes;
    return dir === undefined ? new Map() : addressQueues(dir);
  };

  addRoute(app, deps, ROUTES.listAddresses, async () => {
    const q = await queues();
    const rows = await listAddresses(db);
    const known = new Set(rows.map((a) => a.to));
    const views = rows.map((a) => view(a, q.get(a.to), true));
    // A site with requests waiting but no address yet is sent to with the defaults: show it too.
    for (const [to, queue] of q) if (!known.has(to)) views.push(view(defaultAddress(to, 'http'), queue, false));
    return { addresses: views.sort((a, b) => (a.to < b.to ? -1 : 1)) };
  });

  addRoute(app, deps, ROUTES.getAddress, async ({ params }) => {
    const a = await getAddress(db, params.to);
    return view(a ?? defaultAddress(params.to, 'http'), (await queues()).get(params.to), a !== undefined);
  });

  addRoute(app, deps, ROUTES.setAddress, async ({ params, body, caller }) => {
    const a = await setAddress(db, params.to, addressChange(body));
    deps.log.info(`address ${a.to} set (${a.sender}) by token ${caller?.id ?? '?'}`);
    return view(a, (await queues()).get(a.to), true);
  });
}
