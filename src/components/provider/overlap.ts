import { realpath } from 'node:fs/promises';
import { dirname, join, basename, resolve, sep } from 'node:path';
import { listDps, listPackages } from '../../db/index.js';
import { SitecastError } from '../../errors.js';
import type { RouteDeps } from './route.js';

/*
 * A DP folder, a package source folder and the site root must stay apart.
 * A DP inside a source is read back into the package on its next update (the
 * package would hold its own DP's library and shares, growing each time); a
 * source holding the site root would ingest the site's own library; a DP
 * inside another DP or the site root mixes their files.
 */

/** The folder as the kernel sees it: links resolved as far as the path exists, the rest as written. */
async function realFolder(path: string): Promise<string> {
  const absolute = resolve(path);
  try {
    return await realpath(absolute);
  } catch {
    const parent = dirname(absolute);
    return parent === absolute ? absolute : join(await realFolder(parent), basename(absolute));
  }
}

/** How `a` relates to `b`: the same folder, inside it, holding it, or apart. */
function relation(a: string, b: string): 'is' | 'inside' | 'holds' | undefined {
  if (a === b) return 'is';
  if (a.startsWith(b.endsWith(sep) ? b : b + sep)) return 'inside';
  if (b.startsWith(a.endsWith(sep) ? a : a + sep)) return 'holds';
  return undefined;
}

interface Other {
  what: string;
  path: string;
}

async function refuseOverlap(field: string, path: string, others: Other[]): Promise<void> {
  const mine = await realFolder(path);
  for (const other of others) {
    const how = relation(mine, await realFolder(other.path));
    if (how === undefined) continue;
    const words = { is: 'is', inside: 'lies inside', holds: 'holds' }[how];
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `${field}: ${path} ${words} ${other.what} (${other.path})`, {
      hint: 'DP folders, package source folders and the site root must not lie inside one another',
    });
  }
}

function siteRoot(deps: RouteDeps): Other[] {
  return deps.ctx.root === undefined ? [] : [{ what: 'the site root', path: deps.ctx.root }];
}

/**
 * A new DP of this site: not the site root, another DP of this site, or a
 * package's source, nor inside or around one. A DP of the same name is left
 * to the database, which refuses the duplicate name (409).
 */
export async function checkDpFolder(deps: RouteDeps, name: string, path: string): Promise<void> {
  const { ctx } = deps;
  const dps = (await listDps(ctx.db, { site: ctx.config.code })).filter((d) => d.name !== name).map((d) => ({ what: `DP ${d.site}/${d.name}`, path: d.path }));
  const sources = (await listPackages(ctx.db)).filter((p) => p.id.startsWith(ctx.config.code)).map((p) => ({ what: `the source folder of ${p.id}`, path: p.sourcePath }));
  await refuseOverlap('path', path, [...siteRoot(deps), ...dps, ...sources]);
}

/** A package source: not the site root or a DP of this site, nor inside or around one. */
export async function checkSourceFolder(deps: RouteDeps, path: string): Promise<void> {
  const { ctx } = deps;
  const dps = (await listDps(ctx.db, { site: ctx.config.code })).map((d) => ({ what: `DP ${d.site}/${d.name}`, path: d.path }));
  await refuseOverlap('sourcePath', path, [...siteRoot(deps), ...dps]);
}
