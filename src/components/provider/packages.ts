import { lstat, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import {
  type DpStatus,
  type Package,
  createPackage,
  getPackage,
  getPackageStatus,
  getTargets,
  listDps,
  listPackages,
  requestRefresh,
  setTargets,
  updatePackage,
} from '../../db/index.js';
import { summarizePackageStates } from '../../db/dpsummary.js';
import { isAtOrBelow, listSiteNodes } from '../../db/hierarchy.js';
import { SitecastError, isSitecastError } from '../../errors.js';
import { MAX_ICON_BYTES, iconProblem } from '../../formats/icon.js';
import { type DpStatusView, type NewPackageBody, type PackageView, ROUTES } from './contract.js';
import { type RouteDeps, addRoute } from './route.js';
import { checkSourceFolder } from './overlap.js';

/** The source is read by the site server, so it must be a folder the server can see now. */
async function checkSource(path: string): Promise<void> {
  let isFolder = false;
  let why = 'not a folder';
  try {
    isFolder = (await stat(path)).isDirectory();
  } catch (err) {
    why = (err as NodeJS.ErrnoException).code ?? 'not readable';
  }
  if (!isFolder) {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `sourcePath: ${path} is not a folder on the site server (${why})`, {
      hint: 'the source path is read by the site server, not by the machine that sent the request',
    });
  }
}

/**
 * The icon must be an ICO file in the source folder now; each source version
 * is checked again when its instruction files are written (the default icon
 * stands in, with a warning, for a version whose icon is gone or broken).
 */
async function checkIcon(sourcePath: string, icon: string): Promise<void> {
  const path = join(sourcePath, icon);
  const refuse = (why: string): SitecastError =>
    new SitecastError('SITECAST_E_INVALID_VALUE', `icon: ${icon} in ${sourcePath} ${why}`, { hint: 'name a Windows .ICO file inside the source folder, e.g. setup.ico' });
  let data: Buffer;
  try {
    const info = await lstat(path);
    if (!info.isFile()) throw refuse('is not a regular file');
    if (info.size > MAX_ICON_BYTES) throw refuse(`is ${info.size} bytes, more than an icon may be (${MAX_ICON_BYTES})`);
    data = await readFile(path);
  } catch (err) {
    if (isSitecastError(err)) throw err;
    throw refuse(`cannot be read (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  const problem = iconProblem(data);
  if (problem !== undefined) throw refuse(`is not an icon: ${problem}`);
}

async function mustGetPackage(deps: RouteDeps, id: string): Promise<Package> {
  const pkg = await getPackage(deps.ctx.db, id);
  if (pkg === undefined) {
    throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${id} does not exist`, { hint: 'GET /api/v1/packages lists them' });
  }
  return pkg;
}

function toView(p: Package): PackageView {
  return {
    id: p.id,
    name: p.name,
    version: p.version,
    sourcePath: p.sourcePath,
    priority: p.priority,
    sourceVersion: p.sourceVersion,
    manifestSha256: p.manifestSha256,
    createdAt: p.createdAt,
    updatedAt: p.updatedAt,
    programs: p.programs,
    ...(p.icon === null ? {} : { icon: p.icon }),
  };
}

/** Optional fields appear only when they say something, so a healthy DP reads as four fields. */
function toStatusView(s: DpStatus): DpStatusView {
  return {
    site: s.site,
    dp: s.dp,
    state: s.state,
    sourceVersion: s.sourceVersion,
    ...(s.retryCount > 0 ? { retryCount: s.retryCount } : {}),
    ...(s.nextAttempt === null ? {} : { nextAttempt: s.nextAttempt }),
    ...(s.lastMessage === null ? {} : { lastMessage: s.lastMessage }),
  };
}

function newPackage(body: NewPackageBody): Parameters<typeof createPackage>[1] {
  return {
    name: body.name,
    sourcePath: body.sourcePath,
    ...(body.version === undefined ? {} : { version: body.version }),
    ...(body.priority === undefined ? {} : { priority: body.priority }),
    ...(body.icon === undefined ? {} : { icon: body.icon }),
    ...(body.programs === undefined
      ? {}
      : {
          programs: body.programs.map((p) => ({
            name: p.name,
            commandLine: p.commandLine,
            ...(p.maxRunTimeSeconds === undefined ? {} : { maxRunTimeSeconds: p.maxRunTimeSeconds }),
          })),
        }),
  };
}

/**
 * A package received from the parent is the creating site's to change: its
 * targets and source version come with every definition the parent sends, so
 * a change made here would be undone by the next one (and a new source version
 * here would name content only this site has).
 */
function mustBeOwn(code: string, packageId: string, action: 'distribute' | 'undistribute' | 'update'): void {
  if (packageId.startsWith(code)) return;
  const origin = packageId.slice(0, 3);
  const what = action === 'update' ? 'its source is updated' : 'its DPs are chosen';
  throw new SitecastError('SITECAST_E_CONFLICT', `package ${packageId} was received from the parent: ${what} at the site that created it (${origin})`, {
    hint: `run ${action} at site ${origin}`,
  });
}

export function packageRoutes(app: FastifyInstance, deps: RouteDeps): void {
  const { db } = deps.ctx;
  const who = (caller: { id: string } | undefined): string => `token ${caller?.id ?? '?'}`;

  addRoute(app, deps, ROUTES.createPackage, async ({ body, caller }) => {
    await checkSource(body.sourcePath);
    await checkSourceFolder(deps, body.sourcePath);
    if (body.icon !== undefined) await checkIcon(body.sourcePath, body.icon);
    const pkg = await createPackage(db, newPackage(body));
    deps.log.info(`package ${pkg.id} ${JSON.stringify(pkg.name)} created from ${pkg.sourcePath} by ${who(caller)}`);
    return { id: pkg.id };
  });

  addRoute(app, deps, ROUTES.listPackages, async () => ({ packages: (await listPackages(db)).map(toView) }));

  addRoute(app, deps, ROUTES.getPackage, async ({ params }) => toView(await mustGetPackage(deps, params.id)));

  addRoute(app, deps, ROUTES.distribute, async ({ params, body, caller }) => {
    await mustGetPackage(deps, params.id);
    mustBeOwn(deps.ctx.config.code, params.id, 'distribute');
    const known = new Set((await listDps(db)).map((d) => `${d.site}/${d.name}`));
    const unknown = body.dps.filter((ref) => !known.has(ref));
    if (unknown.length > 0) {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `no distribution point ${unknown.join(', ')}`, {
        hint: 'GET /api/v1/dps lists them; add one with `sitecast dp add`',
      });
    }
    // Distributing adds DPs; it never takes a package off DPs it already targets.
    const wanted = new Map((await getTargets(db, params.id)).map((t) => [`${t.site}/${t.dp}`, t]));
    for (const ref of body.dps) {
      const [site = '', dp = ''] = ref.split('/');
      wanted.set(ref, { site, dp });
    }
    await setTargets(db, params.id, [...wanted.values()]);
    deps.log.info(`package ${params.id} distributed to ${body.dps.join(', ')} by ${who(caller)}`);
    return { id: params.id, targets: await getTargets(db, params.id) };
  });

  addRoute(app, deps, ROUTES.undistribute, async ({ params, body, caller }) => {
    await mustGetPackage(deps, params.id);
    const targets = await getTargets(db, params.id);
    const held = new Set(targets.map((t) => `${t.site}/${t.dp}`));
    const notTargeted = body.dps.filter((ref) => !held.has(ref));
    if (notTargeted.length > 0) {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${params.id} does not target ${notTargeted.join(', ')}`, {
        hint: `GET /api/v1/packages/${params.id}/status lists its DPs`,
      });
    }
    // A DP of a site below is taken off by that site, when the withdrawal reaches it; one elsewhere is not this site's to serve.
    const code = deps.ctx.config.code;
    mustBeOwn(code, params.id, 'undistribute');
    const sites = await listSiteNodes(db);
    const elsewhere = body.dps.filter((ref) => {
      const site = ref.slice(0, ref.indexOf('/'));
      return site !== code && !isAtOrBelow(sites, site, code);
    });
    if (elsewhere.length > 0) {
      throw new SitecastError('SITECAST_E_INVALID_VALUE', `dps: ${elsewhere.join(', ')} belong to sites not below ${code}; a package is taken off DPs of this site and the sites below it`, {
        hint: 'run undistribute at the site the package was distributed from',
      });
    }
    const gone = new Set(body.dps);
    await setTargets(db, params.id, targets.filter((t) => !gone.has(`${t.site}/${t.dp}`)));
    deps.log.info(`package ${params.id} taken off ${body.dps.join(', ')} by ${who(caller)}`);
    return { id: params.id, targets: await getTargets(db, params.id) };
  });

  addRoute(app, deps, ROUTES.updatePackage, async ({ params, caller }) => {
    const old = await mustGetPackage(deps, params.id);
    mustBeOwn(deps.ctx.config.code, params.id, 'update');
    await checkSource(old.sourcePath);
    const pkg = await updatePackage(db, params.id, { refreshSource: true });
    deps.log.info(`package ${pkg.id}: source version ${pkg.sourceVersion} requested by ${who(caller)}`);
    return { id: pkg.id, sourceVersion: pkg.sourceVersion };
  });

  addRoute(app, deps, ROUTES.redistribute, async ({ params, caller }) => {
    const pkg = await mustGetPackage(deps, params.id);
    const site = deps.ctx.config.code;
    if (!(await listDps(db, { site })).some((d) => d.name === params.dp)) {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `no distribution point ${site}/${params.dp}`, {
        hint: 'a package is redistributed by the site that holds the DP; GET /api/v1/dps lists them',
      });
    }
    if (!(await getTargets(db, pkg.id)).some((t) => t.site === site && t.dp === params.dp)) {
      throw new SitecastError('SITECAST_E_CONFLICT', `${pkg.id} is not distributed to ${site}/${params.dp}: there is nothing to copy again`, {
        hint: `distribute it first: POST /api/v1/packages/${pkg.id}/distribute`,
      });
    }
    const requestedAt = await requestRefresh(db, { packageId: pkg.id, site, dp: params.dp });
    deps.log.info(`package ${pkg.id}: redistribution to ${site}/${params.dp} requested by ${who(caller)}`);
    return { id: pkg.id, site, dp: params.dp, requestedAt };
  });

  addRoute(app, deps, ROUTES.packageStatus, async ({ params }) => {
    const pkg = await mustGetPackage(deps, params.id);
    const dps = await getPackageStatus(db, params.id);
    return { id: pkg.id, sourceVersion: pkg.sourceVersion, ...(pkg.sourceProblem === null ? {} : { sourceProblem: pkg.sourceProblem }), dps: dps.map(toStatusView) };
  });

  addRoute(app, deps, ROUTES.packageSummary, async () => ({
    packages: (await summarizePackageStates(db)).map(({ packageId, ...counts }) => ({ id: packageId, ...counts })),
  }));
}
