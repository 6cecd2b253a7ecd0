import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import type { DpTable } from './schema.js';
import { absolutePathSchema, packageIdSchema, parseInput, shortNameSchema, siteCodeSchema } from './values.js';

export interface Dp {
  site: string;
  name: string;
  path: string;
  url: string | null;
  createdAt: string;
}

export interface Target {
  site: string;
  dp: string;
}

const newDpSchema = z.object({
  site: siteCodeSchema,
  name: shortNameSchema,
  path: absolutePathSchema,
  url: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .nullable()
    .default(null),
});
export type NewDp = z.input<typeof newDpSchema>;

const targetsSchema = z
  .array(z.object({ site: siteCodeSchema, dp: shortNameSchema }))
  .max(10_000)
  .refine((l) => new Set(l.map((t) => `${t.site}/${t.dp}`)).size === l.length, 'a DP is named twice');

function toDp(row: DpTable): Dp {
  return { site: row.site_code, name: row.name, path: row.path, url: row.url, createdAt: row.created_at };
}

/** Adds a distribution point of a known site. */
export async function addDp(site: SiteDb, input: NewDp): Promise<Dp> {
  const v = parseInput(newDpSchema, input, 'distribution point');
  const row: DpTable = { site_code: v.site, name: v.name, path: v.path, url: v.url, created_at: new Date().toISOString() };
  await guard(site, `DP ${v.site}/${v.name}`, () => site.db.insertInto('dps').values(row).execute());
  return toDp(row);
}

/** What keeps a DP: the packages targeting it, and those whose status row there says they are not off it yet. */
export interface DpHolders {
  targeted: string[];
  clearing: { packageId: string; state: string }[];
}

type Reader = Pick<SiteDb['db'], 'selectFrom'>;

async function dpRow(q: Reader, code: string, name: string): Promise<DpTable> {
  const row = await q.selectFrom('dps').selectAll().where('site_code', '=', code).where('name', '=', name).executeTakeFirst();
  if (row === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `no distribution point ${code}/${name}`, { hint: 'GET /api/v1/dps lists them' });
  return row;
}

async function holdersOf(q: Reader, code: string, name: string): Promise<DpHolders> {
  const targeted = await q.selectFrom('package_targets').select('package_id').where('site_code', '=', code).where('dp_name', '=', name).orderBy('package_id').execute();
  const clearing = await q.selectFrom('package_dp_status').select(['package_id', 'state']).where('site_code', '=', code).where('dp_name', '=', name).orderBy('package_id').execute();
  return { targeted: targeted.map((t) => t.package_id), clearing: clearing.map((r) => ({ packageId: r.package_id, state: r.state })) };
}

/** Why the DP cannot be removed, or undefined; status rows count unless they are to be forgotten with it. */
function removalRefused(code: string, name: string, holders: DpHolders, statusRows: 'refuse' | 'forget'): SitecastError | undefined {
  const ids = holders.targeted;
  if (ids.length > 0) {
    return new SitecastError('SITECAST_E_CONFLICT', `DP ${code}/${name} still has ${ids.length} package(s) distributed to it: ${ids.slice(0, 20).join(', ')}${ids.length > 20 ? ', …' : ''}`, {
      hint: `take them off first: sitecast package undistribute <id> --dp ${code}/${name}`,
    });
  }
  if (statusRows === 'forget' || holders.clearing.length === 0) return undefined;
  return new SitecastError('SITECAST_E_CONFLICT', `DP ${code}/${name} is still being cleared: ${holders.clearing.map((r) => `${r.packageId} (${r.state})`).slice(0, 20).join(', ')} not taken off yet`, {
    hint: `sitecast package status <id> shows it; try again once the package is off the DP`,
  });
}

/** The packages that keep a DP (for a message naming one); a DP not known here holds none. */
export async function dpHolders(site: SiteDb, ref: { site: string; name: string }): Promise<DpHolders> {
  return guard(site, `DP ${ref.site}/${ref.name}`, () => holdersOf(site.db, ref.site, ref.name));
}

/**
 * Checks, without changing anything, that a DP of a site below could be
 * removed as far as this site can tell: it exists here and no package made
 * or received here targets it (the status rows here are copies of that
 * site's, which that site checks for itself).
 */
export async function checkRemoteDpRemovable(site: SiteDb, ref: { site: string; name: string }): Promise<Dp> {
  const code = parseInput(siteCodeSchema, ref.site, 'site code');
  const name = parseInput(shortNameSchema, ref.name, 'DP name');
  return guard(site, `DP ${code}/${name}`, async () => {
    const row = await dpRow(site.db, code, name);
    const refused = removalRefused(code, name, await holdersOf(site.db, code, name), 'forget');
    if (refused !== undefined) throw refused;
    return toDp(row);
  });
}

/**
 * Removes a distribution point once nothing is left on it: no package
 * targets it, and no status row names it (Distribution Manager deletes a
 * package's row only after it took the package off the DP, so a row left
 * means a share or chunks still there, or a clean-up still to run). In one
 * transaction: a package targeted at the DP in the meantime fails on its
 * foreign key instead of naming a DP that is gone. Redistribution requests
 * for it go with it. The folder itself is not touched.
 *
 * `statusRows: 'forget'` is for a DP a site below removed and reported: the
 * rows here are copies of that site's, and go with the DP.
 */
export async function removeDp(site: SiteDb, ref: { site: string; name: string }, options: { statusRows?: 'refuse' | 'forget' } = {}): Promise<Dp> {
  const code = parseInput(siteCodeSchema, ref.site, 'site code');
  const name = parseInput(shortNameSchema, ref.name, 'DP name');
  return guard(site, `DP ${code}/${name}`, () =>
    site.db.transaction().execute(async (trx) => {
      const row = await dpRow(trx, code, name);
      const refused = removalRefused(code, name, await holdersOf(trx, code, name), options.statusRows ?? 'refuse');
      if (refused !== undefined) throw refused;
      await trx.deleteFrom('package_dp_status').where('site_code', '=', code).where('dp_name', '=', name).execute();
      await trx.deleteFrom('dp_refresh_requests').where('site_code', '=', code).where('dp_name', '=', name).execute();
      await trx.deleteFrom('dps').where('site_code', '=', code).where('name', '=', name).execute();
      return toDp(row);
    }),
  );
}

export async function listDps(site: SiteDb, filter: { site?: string } = {}): Promise<Dp[]> {
  const code = filter.site === undefined ? undefined : parseInput(siteCodeSchema, filter.site, 'site code');
  const rows = await guard(site, 'DPs', () => {
    let q = site.db.selectFrom('dps').selectAll();
    if (code !== undefined) q = q.where('site_code', '=', code);
    return q.orderBy('site_code').orderBy('name').execute();
  });
  return rows.map(toDp);
}

/**
 * Replaces the DPs a package goes to. New targets get a `pending` status row;
 * removed ones keep theirs until Distribution Manager has cleaned the DP.
 */
export async function setTargets(site: SiteDb, packageId: string, targets: readonly Target[]): Promise<Target[]> {
  const id = parseInput(packageIdSchema, packageId, 'package id');
  const list = parseInput(targetsSchema, targets, `targets of ${id}`);
  return guard(site, `targets of ${id}`, () =>
    site.db.transaction().execute(async (trx) => {
      const pkg = await trx.selectFrom('packages').select('id').where('id', '=', id).executeTakeFirst();
      if (pkg === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${id} does not exist`);
      const old = await trx.selectFrom('package_targets').select(['site_code', 'dp_name']).where('package_id', '=', id).execute();
      const wanted = new Set(list.map((t) => `${t.site}/${t.dp}`));
      const had = new Set(old.map((t) => `${t.site_code}/${t.dp_name}`));
      for (const t of old) {
        if (wanted.has(`${t.site_code}/${t.dp_name}`)) continue;
        await trx
          .deleteFrom('package_targets')
          .where('package_id', '=', id)
          .where('site_code', '=', t.site_code)
          .where('dp_name', '=', t.dp_name)
          .execute();
      }
      const added = list.filter((t) => !had.has(`${t.site}/${t.dp}`));
      const now = new Date().toISOString();
      for (const t of added) {
        await trx.insertInto('package_targets').values({ package_id: id, site_code: t.site, dp_name: t.dp }).execute();
        await trx
          .insertInto('package_dp_status')
          .values({ package_id: id, site_code: t.site, dp_name: t.dp, state: 'pending', source_version: 0, retry_count: 0, updated_at: now })
          .onConflict((oc) => oc.columns(['package_id', 'site_code', 'dp_name']).doNothing())
          .execute();
      }
      return list.map((t) => ({ site: t.site, dp: t.dp }));
    }),
  );
}

export async function getTargets(site: SiteDb, packageId: string): Promise<Target[]> {
  const id = parseInput(packageIdSchema, packageId, 'package id');
  const rows = await guard(site, `targets of ${id}`, () =>
    site.db
      .selectFrom('package_targets')
      .select(['site_code', 'dp_name'])
      .where('package_id', '=', id)
      .orderBy('site_code')
      .orderBy('dp_name')
      .execute(),
  );
  return rows.map((r) => ({ site: r.site_code, dp: r.dp_name }));
}
