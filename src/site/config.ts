import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { z } from 'zod';
import type { DbLocation } from '../db/index.js';
import { SitecastError } from '../errors.js';
import { type SitePaths, sitePaths } from './layout.js';

/**
 * The admin API and the site-to-site receiver listen on 127.0.0.1:8430 unless
 * told otherwise: loopback, so a new site is not reachable from the network
 * until an administrator decides it should be. Port 0 asks the system for a
 * free port at start (tests).
 */
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_PORT = 8430;
export const CONFIG_FORMAT = 1;

export const siteCodeSchema = z
  .string()
  .regex(/^[A-Z0-9]{3}$/, 'a site code is exactly 3 upper-case letters or digits, e.g. CEN');

const hostSchema = z
  .string()
  .min(1)
  .max(253)
  .refine(
    (h) => isIP(h) !== 0 || /^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/.test(h),
    'must be an IP address or a host name',
  );

export const listenSchema = z.object({ host: hostSchema, port: z.number().int().min(0).max(65535) }).strict();
export type Listen = z.infer<typeof listenSchema>;

export const siteConfigSchema = z
  .object({
    format: z.literal(CONFIG_FORMAT),
    code: siteCodeSchema,
    name: z.string().trim().min(1).max(200),
    listen: listenSchema,
    database: z.discriminatedUnion('kind', [
      z.object({ kind: z.literal('sqlite'), file: z.literal('site.db') }).strict(),
      // A password in the URL is allowed (site.json is then mode 0600); without one, node-postgres reads PGPASSWORD or ~/.pgpass.
      z.object({ kind: z.literal('postgres'), url: z.string().regex(/^postgres(ql)?:\/\/[^\s]+$/, 'must be a postgres:// URL') }).strict(),
    ]),
    /** Memory for the chunk frames the DPs served last, in MiB (default 256; 0: none kept). */
    dpChunkCacheMiB: z.number().int('a whole number of MiB').min(0).max(65_536).optional(),
    /** Days a status message is kept (default 30; 0: kept for ever). The database monitor deletes older ones. */
    statusMessageDays: z.number().int('a whole number of days').min(0).max(36_500).optional(),
  })
  .strict();

/** Where a site's database lives, from its configuration. */
export function siteDbLocation(config: Pick<SiteConfig, 'database'>, paths: SitePaths): DbLocation {
  return config.database.kind === 'postgres' ? { kind: 'postgres', url: config.database.url } : { kind: 'sqlite', path: paths.database };
}

/** Checks a `--database` value: a postgres:// URL. The message never repeats the value (it may hold a password). */
export function parseDatabaseUrl(text: string): SiteConfig['database'] {
  let url: URL | undefined;
  try {
    url = new URL(text);
  } catch {
    url = undefined;
  }
  if (url === undefined || (url.protocol !== 'postgres:' && url.protocol !== 'postgresql:') || url.hostname === '') {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', 'the database must be a PostgreSQL URL', {
      hint: 'for example postgres://sitecast@db.example.net:5432/sitecast (put the password in PGPASSWORD or ~/.pgpass)',
    });
  }
  return { kind: 'postgres', url: text };
}
export type SiteConfig = z.infer<typeof siteConfigSchema>;

/** Parses `host:port`, `[v6]:port` or a bare `:port` / `port` (host stays the default). */
export function parseListen(text: string): Listen {
  const match = /^(?:\[([^\]]+)\]|([^:[\]]*))?:?(\d{1,5})$/.exec(text.trim());
  const bad = (): SitecastError =>
    new SitecastError('SITECAST_E_INVALID_VALUE', `listen address ${JSON.stringify(text)} is not host:port`, {
      hint: `for example ${DEFAULT_HOST}:${DEFAULT_PORT}, [::1]:${DEFAULT_PORT} or 0.0.0.0:${DEFAULT_PORT}`,
    });
  if (match === null) throw bad();
  const host = match[1] ?? (match[2] === undefined || match[2] === '' ? DEFAULT_HOST : match[2]);
  const result = listenSchema.safeParse({ host, port: Number(match[3]) });
  if (!result.success) throw bad();
  return result.data;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Reads and checks `<root>/site.json`; the result is frozen. */
export async function loadSiteConfig(root: string): Promise<Readonly<SiteConfig>> {
  const path = sitePaths(root).config;
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new SitecastError('SITECAST_E_SITE_CONFIG', `${root} is not a site root: cannot read site.json (${code ?? String(err)})`, {
      hint: 'create a site with `sitecast site init <root> --code XXX`',
      cause: err,
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new SitecastError('SITECAST_E_SITE_CONFIG', `${path} is not valid JSON: ${(err as Error).message}`, { cause: err });
  }
  const result = siteConfigSchema.safeParse(raw);
  if (!result.success) {
    const issues = result.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ');
    throw new SitecastError('SITECAST_E_SITE_CONFIG', `${path} is invalid: ${issues}`, { cause: result.error });
  }
  return deepFreeze(result.data);
}
