import { randomBytes } from 'node:crypto';
import { lstat, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError, isSitecastError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { addSite, createAdminToken, getLocalSite, openSiteDb } from '../db/index.js';
import { CONFIG_FORMAT, DEFAULT_HOST, DEFAULT_PORT, type SiteConfig, parseDatabaseUrl, parseListen, siteCodeSchema, siteDbLocation } from './config.js';
import { createSiteKeys } from './keys.js';
import { type SitePaths, siteFolders, sitePaths } from './layout.js';

export interface InitOptions {
  code: string;
  name?: string;
  /** `host:port`; default 127.0.0.1:8430. */
  listen?: string;
  /** A postgres:// URL; default: SQLite in `<root>/site.db`. */
  database?: string;
}

export interface InitResult {
  root: string;
  config: SiteConfig;
  paths: SitePaths;
  publicKeyPem: string;
  /** Shown once by the caller; only its hash is in the database. */
  adminToken: string;
}

// eslint-disable-next-line no-control-regex
const nameSchema = z.string().trim().min(1).max(200).refine((s) => !/[\u0000-\u001f\u007f]/.test(s), 'must be one line');

export async function assertEmptyOrAbsent(root: string): Promise<void> {
  let stats;
  try {
    stats = await lstat(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`cannot inspect ${root}`, err);
  }
  if (!stats.isDirectory()) throw new SitecastError('SITECAST_E_SITE_EXISTS', `${root} exists and is not a folder`);
  if ((await readdir(root)).length > 0) {
    throw new SitecastError('SITECAST_E_SITE_EXISTS', `${root} is not empty; refusing to create a site there`, {
      hint: 'choose a new or empty folder; nothing was changed',
    });
  }
}

/**
 * Creates a site root. Everything is built in a hidden sibling folder and
 * renamed into place at the end, so the root either appears complete or not
 * at all; a failed init leaves nothing behind to clean up.
 */
export async function initSite(rootArg: string, options: InitOptions): Promise<InitResult> {
  const code = siteCodeSchema.safeParse(options.code);
  if (!code.success) {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `site code ${JSON.stringify(options.code)} is not valid`, {
      hint: 'a site code is exactly 3 upper-case letters or digits, e.g. CEN',
    });
  }
  const name = nameSchema.safeParse(options.name ?? `Site ${code.data}`);
  if (!name.success) throw new SitecastError('SITECAST_E_INVALID_VALUE', 'the site name must be one line of up to 200 characters');
  const listen = options.listen === undefined ? { host: DEFAULT_HOST, port: DEFAULT_PORT } : parseListen(options.listen);
  const config: SiteConfig = {
    format: CONFIG_FORMAT,
    code: code.data,
    name: name.data,
    listen,
    database: options.database === undefined ? { kind: 'sqlite', file: 'site.db' } : parseDatabaseUrl(options.database),
  };

  const root = resolve(rootArg);
  await assertEmptyOrAbsent(root);
  const staging = join(dirname(root), `.${basename(root)}.init-${randomBytes(6).toString('hex')}`);
  const stagingPaths = sitePaths(staging);
  try {
    await mkdir(dirname(root), { recursive: true });
    await mkdir(staging, { mode: 0o755 });
    await mkdir(stagingPaths.keys, { mode: 0o700 });
    for (const folder of siteFolders(stagingPaths)) await mkdir(folder, { recursive: true });
    const keys = await createSiteKeys(stagingPaths);
    const site = await openSiteDb(siteDbLocation(config, stagingPaths));
    let token: string;
    try {
      const existing = await getLocalSite(site);
      if (existing !== undefined) {
        throw new SitecastError('SITECAST_E_SITE_EXISTS', `the database ${site.dialect.location} already holds site ${existing.code}`, {
          hint: 'give each site a database of its own; nothing was changed',
        });
      }
      await addSite(site, { code: config.code, name: config.name, publicKey: keys.publicKeyPem, isLocal: true });
      token = (await createAdminToken(site, { role: 'admin', label: 'created by site init' })).token;
    } finally {
      await site.close();
    }
    await writeFileAtomic(stagingPaths.adminToken, `${token}\n`, { mode: 0o600 });
    // A database URL may carry a password: then only the site's user may read site.json.
    const mode = config.database.kind === 'postgres' ? 0o600 : 0o644;
    await writeFileAtomic(stagingPaths.config, `${JSON.stringify(config, null, 2)}\n`, { mode });
    await moveIntoPlace(staging, root);
    return { root, config, paths: sitePaths(root), publicKeyPem: keys.publicKeyPem, adminToken: token };
  } catch (err) {
    await rm(staging, { recursive: true, force: true }).catch(() => undefined);
    if (isSitecastError(err)) throw err;
    throw ioError(`cannot create the site root ${root}`, err);
  }
}

export async function moveIntoPlace(staging: string, root: string): Promise<void> {
  try {
    // POSIX rename replaces an empty folder and fails if it gained files meanwhile.
    await rename(staging, root);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOTEMPTY' || code === 'EEXIST' || code === 'ENOTDIR') {
      throw new SitecastError('SITECAST_E_SITE_EXISTS', `${root} changed while the site was being created; nothing was changed`, {
        cause: err,
      });
    }
    throw err;
  }
}
