import type { FastifyInstance } from 'fastify';
import { type StatusMessageFilter, addDp, addStatusMessage, getLocalSite, listDps, listStatusMessages, removeDp } from '../../db/index.js';
import { keyFingerprint } from '../../formats/client-protocol.js';
import type { Listen } from '../../site/config.js';
import { type MessagesQuery, ROUTES } from './contract.js';
import { addRemoteDp, requestRemoteDpRemoval } from './hierarchy.js';
import { checkDpFolder } from './overlap.js';
import { type RouteDeps, addRoute } from './route.js';

/** The URL the configuration promises, for a server asked before it reports its own. */
export function configuredUrl(listen: Listen): string {
  const host = listen.host.includes(':') ? `[${listen.host}]` : listen.host;
  return `http://${host}:${listen.port}`;
}

function messageFilter(q: MessagesQuery): StatusMessageFilter {
  return {
    // The database monitor logs to smsdbmon.log (the SMS name) and signs its messages dbmon: either finds them.
    ...(q.component === undefined ? {} : { component: q.component === 'smsdbmon' ? 'dbmon' : q.component }),
    ...(q.package === undefined ? {} : { packageId: q.package }),
    ...(q.site === undefined ? {} : { site: q.site }),
    ...(q.severity === undefined ? {} : { minSeverity: q.severity }),
    ...(q.since === undefined ? {} : { since: q.since }),
    ...(q.limit === undefined ? {} : { limit: q.limit }),
  };
}

export function siteRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db, config } = deps.ctx;

  addRoute(app, deps, ROUTES.getSite, async () => {
    const key = (await getLocalSite(db))?.publicKey ?? null;
    return {
      code: config.code,
      name: config.name,
      url: deps.ctx.baseUrl() ?? configuredUrl(config.listen),
      ...(key === null ? {} : { keyFingerprint: keyFingerprint(key) }),
    };
  });

  addRoute(app, deps, ROUTES.addDp, async ({ body, caller }) => {
    const remote = body.site !== undefined && body.site !== config.code;
    if (!remote) await checkDpFolder(deps, body.name, body.path);
    const dp = remote ? await addRemoteDp(deps, { site: body.site ?? config.code, name: body.name, path: body.path }) : await addDp(db, { site: config.code, name: body.name, path: body.path });
    deps.log.info(`DP ${dp.site}/${dp.name} added at ${dp.path} by token ${caller?.id ?? '?'}`);
    return { site: dp.site, name: dp.name, path: dp.path };
  });

  addRoute(app, deps, ROUTES.listDps, async () => ({
    dps: (await listDps(db)).map((d) => ({ site: d.site, name: d.name, path: d.path, ...(d.url === null ? {} : { url: d.url }) })),
  }));

  addRoute(app, deps, ROUTES.removeDp, async ({ params, body, caller }) => {
    const site = body.site ?? config.code;
    const by = `token ${caller?.id ?? '?'}`;
    if (site !== config.code) {
      const dp = await requestRemoteDpRemoval(deps, { site, name: params.name });
      await addStatusMessage(db, { severity: 'info', component: 'provider', site: config.code, text: `removal of DP ${dp.site}/${dp.name} requested by ${by}; site ${dp.site} removes it and reports back` });
      return { site: dp.site, name: dp.name, path: dp.path, state: 'requested' as const };
    }
    const dp = await removeDp(db, { site, name: params.name });
    const text = `DP ${dp.site}/${dp.name} removed by ${by}; its folder ${dp.path} is left as it is`;
    deps.log.info(text);
    await addStatusMessage(db, { severity: 'info', component: 'provider', site: config.code, text });
    return { site: dp.site, name: dp.name, path: dp.path, state: 'removed' as const };
  });

  addRoute(app, deps, ROUTES.statusMessages, async ({ query }) => ({
    messages: await listStatusMessages(db, messageFilter(query)),
  }));
}
