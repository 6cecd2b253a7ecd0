import type { FastifyInstance } from 'fastify';
import {
  createAdvertisement,
  getAdvertisement,
  listAdvertisementStatus,
  rerunAdvertisement,
} from '../../db/advertisements.js';
import { addBoundary, approveClient, listClients, setRequireApproval, type Client } from '../../db/clients.js';
import { createCollection, loadCompiledCollections } from '../../db/collections.js';
import { SitecastError } from '../../errors.js';
import { isMember } from '../../formats/collection-rule.js';
import { type AdvertisementStatusView, CLIENT_ROUTES } from './clients-contract.js';
import { type RouteDeps, addRoute } from './route.js';

function clientView(c: Client): Omit<Client, 'publicKey'> {
  return {
    id: c.id,
    name: c.name,
    site: c.site,
    boundary: c.boundary,
    ip: c.ip,
    approved: c.approved,
    registeredAt: c.registeredAt,
    lastSeenAt: c.lastSeenAt,
  };
}

/** Collections, advertisements, clients and boundaries (the routes of clients-contract.ts). */
export function clientRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db } = deps.ctx;
  const who = (caller: { id: string } | undefined): string => `token ${caller?.id ?? '?'}`;

  addRoute(app, deps, CLIENT_ROUTES.createCollection, async ({ body, caller }) => {
    const col = await createCollection(db, { name: body.name, members: body.members ?? [], rules: body.rules ?? [] });
    deps.log.info(`collection ${col.name} created (${col.members.length} members, ${col.rules.length} rules) by ${who(caller)}`);
    return col;
  });

  addRoute(app, deps, CLIENT_ROUTES.advertise, async ({ body, caller }) => {
    const ad = await createAdvertisement(db, {
      packageId: body.packageId,
      program: body.program,
      collection: body.collection,
      ...(body.available === undefined ? {} : { availableAt: body.available }),
      mandatoryAt: body.mandatory ?? null,
      expiresAt: body.expires ?? null,
    });
    deps.log.info(`advertisement ${ad.id}: ${ad.packageId} program ${ad.program} to collection ${ad.collection} by ${who(caller)}`);
    return { id: ad.id };
  });

  addRoute(app, deps, CLIENT_ROUTES.advertisementStatus, async ({ params }) => {
    const ad = await getAdvertisement(db, params.id);
    if (ad === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `advertisement ${params.id} does not exist`);
    const [clients, collections, rows] = await Promise.all([listClients(db), loadCompiledCollections(db), listAdvertisementStatus(db, ad.id)]);
    const col = collections.get(ad.collection);
    const byId = new Map(clients.map((c) => [c.id, c]));
    const reported = new Map(rows.map((r) => [r.clientId, r]));
    const view: AdvertisementStatusView = { targeted: 0, received: 0, running: 0, succeeded: 0, failed: 0, clients: [] };
    const ids = new Set<string>(rows.map((r) => r.clientId));
    if (col !== undefined) for (const c of clients) if (isMember(col, c)) ids.add(c.id);
    for (const id of [...ids].sort()) {
      const r = reported.get(id);
      // A report from before the latest "run again" says nothing about this run.
      const current = r !== undefined && r.rerun >= ad.rerun ? r : undefined;
      const state = current?.state ?? 'targeted';
      view[state] += 1;
      view.clients.push({ client: id, name: byId.get(id)?.name ?? '', state, exitCode: current?.exitCode ?? null, updated: r?.updatedAt ?? null });
    }
    return view;
  });

  addRoute(app, deps, CLIENT_ROUTES.rerunAdvertisement, async ({ params, caller }) => {
    const ad = await rerunAdvertisement(db, params.id);
    deps.log.info(`advertisement ${ad.id}: run again (${ad.rerun}) by ${who(caller)}`);
    return { id: ad.id, rerun: ad.rerun };
  });

  addRoute(app, deps, CLIENT_ROUTES.listClients, async () => ({ clients: (await listClients(db)).map(clientView) }));

  addRoute(app, deps, CLIENT_ROUTES.approveClient, async ({ params, caller }) => {
    const c = await approveClient(db, params.id);
    deps.log.info(`client ${c.id} ${JSON.stringify(c.name)} approved by ${who(caller)}`);
    return clientView(c);
  });

  addRoute(app, deps, CLIENT_ROUTES.clientSettings, async ({ body, caller }) => {
    await setRequireApproval(db, body.requireApproval);
    deps.log.info(`new clients ${body.requireApproval ? 'need' : 'do not need'} approval (${who(caller)})`);
    return { requireApproval: body.requireApproval };
  });

  addRoute(app, deps, CLIENT_ROUTES.addBoundary, async ({ body, caller }) => {
    const b = await addBoundary(db, { name: body.name, range: body.range, site: body.site, mpUrl: body.mpUrl ?? null });
    deps.log.info(`boundary ${b.name} ${b.range} → site ${b.site} added by ${who(caller)}`);
    return b;
  });
}
