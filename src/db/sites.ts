import { z } from 'zod';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import type { SiteTable } from './schema.js';
import { nameSchema, parseInput, siteCodeSchema } from './values.js';

export interface Site {
  code: string;
  name: string;
  parentCode: string | null;
  publicKey: string | null;
  isLocal: boolean;
  createdAt: string;
  updatedAt: string;
}

const newSiteSchema = z.object({
  code: siteCodeSchema,
  name: nameSchema,
  parentCode: siteCodeSchema.nullable().default(null),
  publicKey: z.string().min(1).max(4096).nullable().default(null),
  isLocal: z.boolean().default(false),
});
export type NewSite = z.input<typeof newSiteSchema>;

function toSite(row: SiteTable): Site {
  return {
    code: row.code,
    name: row.name,
    parentCode: row.parent_code,
    publicKey: row.public_key,
    isLocal: row.is_local === 1,
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** Records a site of the hierarchy (the local one once, at init). */
export async function addSite(site: SiteDb, input: NewSite): Promise<Site> {
  const v = parseInput(newSiteSchema, input, 'site');
  const now = new Date().toISOString();
  const row: SiteTable = {
    code: v.code,
    name: v.name,
    parent_code: v.parentCode,
    public_key: v.publicKey,
    is_local: v.isLocal ? 1 : 0,
    created_at: now,
    updated_at: now,
  };
  await guard(site, `site ${v.code}`, () => site.db.insertInto('site').values(row).execute());
  return toSite(row);
}

export async function getSite(site: SiteDb, code: string): Promise<Site | undefined> {
  const c = parseInput(siteCodeSchema, code, 'site code');
  const row = await guard(site, `site ${c}`, () => site.db.selectFrom('site').selectAll().where('code', '=', c).executeTakeFirst());
  return row === undefined ? undefined : toSite(row);
}

/** The site this database belongs to, or undefined before init has recorded it. */
export async function getLocalSite(site: SiteDb): Promise<Site | undefined> {
  const row = await guard(site, 'local site', () =>
    site.db.selectFrom('site').selectAll().where('is_local', '=', 1).executeTakeFirst(),
  );
  return row === undefined ? undefined : toSite(row);
}

export async function listSites(site: SiteDb): Promise<Site[]> {
  const rows = await guard(site, 'sites', () => site.db.selectFrom('site').selectAll().orderBy('code').execute());
  return rows.map(toSite);
}
