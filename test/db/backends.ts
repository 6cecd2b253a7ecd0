import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { addSite, openSiteDb, type OpenOptions, type SiteDb } from '../../src/db/index.js';
import { postgresAvailable, testDatabase } from '../helpers/postgres.js';

/**
 * Every data-layer test runs once per database implementation. PostgreSQL
 * joins when SITECAST_TEST_PG names a server or its binaries are installed
 * (then a throw-away server is started; see test/helpers/postgres.ts).
 */
export interface Backend {
  name: string;
  /** Opens the database that lives in `dir` (the same one on every call). */
  open(dir: string, options?: OpenOptions): Promise<SiteDb>;
}

const SQLITE: Backend = {
  name: 'sqlite',
  open: (dir, options) => openSiteDb({ kind: 'sqlite', path: join(dir, 'site.db') }, options),
};

/** One database per test folder on the test server. */
const POSTGRES: Backend = {
  name: 'postgres',
  open: async (dir, options) => openSiteDb({ kind: 'postgres', url: await testDatabase(dir) }, options),
};

export const BACKENDS: readonly Backend[] = postgresAvailable() ? [SQLITE, POSTGRES] : [SQLITE];

export interface Fixture {
  dir: string;
  site: SiteDb;
  backend: Backend;
}

type Ctx = { after: (fn: () => Promise<void>) => void };

export async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-db-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A fresh database holding the local site CEN and its child PRI. */
export async function fixture(t: Ctx, backend: Backend): Promise<Fixture> {
  const dir = await tempDir(t);
  const site = await backend.open(dir);
  t.after(() => site.close());
  await addSite(site, { code: 'CEN', name: 'Central', isLocal: true, publicKey: 'PUBKEY' });
  await addSite(site, { code: 'PRI', name: 'Primary', parentCode: 'CEN' });
  return { dir, site, backend };
}

/** Declares a test once per backend. */
export function eachBackend(name: string, fn: (t: Ctx, backend: Backend) => Promise<void>): void {
  for (const backend of BACKENDS) test(`[${backend.name}] ${name}`, (t) => fn(t, backend));
}

export async function countRows(site: SiteDb, table: 'packages' | 'programs' | 'dps' | 'package_targets' | 'package_dp_status' | 'status_messages' | 'change_log' | 'admin_tokens' | 'site'): Promise<number> {
  const row = await site.db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll().as('n'))
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
