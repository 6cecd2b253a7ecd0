import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import type { PackageDpStatusTable } from './schema.js';
import {
  dpStateSchema,
  isoTimeSchema,
  messageTextSchema,
  packageIdSchema,
  parseInput,
  shortNameSchema,
  siteCodeSchema,
  type DpState,
} from './values.js';

export interface DpStatus {
  packageId: string;
  site: string;
  dp: string;
  state: DpState;
  /** Source version the DP holds; 0 while it holds none. */
  sourceVersion: number;
  retryCount: number;
  nextAttempt: string | null;
  lastMessage: string | null;
  updatedAt: string;
}

const statusSchema = z.object({
  packageId: packageIdSchema,
  site: siteCodeSchema,
  dp: shortNameSchema,
  state: dpStateSchema,
  sourceVersion: z.number().int().min(0).optional(),
  retryCount: z.number().int().min(0).optional(),
  nextAttempt: isoTimeSchema.nullable().optional(),
  lastMessage: messageTextSchema.nullable().optional(),
});
export type DpStatusUpdate = z.input<typeof statusSchema>;

function toStatus(row: PackageDpStatusTable): DpStatus {
  return {
    packageId: row.package_id,
    site: row.site_code,
    dp: row.dp_name,
    state: dpStateSchema.parse(row.state),
    sourceVersion: Number(row.source_version),
    retryCount: Number(row.retry_count),
    nextAttempt: row.next_attempt,
    lastMessage: row.last_message,
    updatedAt: row.updated_at,
  };
}

/**
 * Records where a package stands on one DP. Fields left out keep their value.
 * The version held never goes down (a site never goes back to an older
 * version): an older one is refused with SITECAST_E_ROLLBACK.
 */
export async function setDpStatus(site: SiteDb, update: DpStatusUpdate): Promise<DpStatus> {
  const v = parseInput(statusSchema, update, 'DP status');
  const where = `${v.packageId} on ${v.site}/${v.dp}`;
  return guard(site, `status of ${where}`, () =>
    site.db.transaction().execute(async (trx) => {
      const old = await trx
        .selectFrom('package_dp_status')
        .selectAll()
        .where('package_id', '=', v.packageId)
        .where('site_code', '=', v.site)
        .where('dp_name', '=', v.dp)
        .executeTakeFirst();
      const held = Number(old?.source_version ?? 0);
      if (v.sourceVersion !== undefined && v.sourceVersion < held) {
        throw new SitecastError(
          'SITECAST_E_ROLLBACK',
          `${where} holds source version ${held}; refusing to record the older version ${v.sourceVersion}`,
        );
      }
      const row: PackageDpStatusTable = {
        package_id: v.packageId,
        site_code: v.site,
        dp_name: v.dp,
        state: v.state,
        source_version: v.sourceVersion ?? held,
        retry_count: v.retryCount ?? Number(old?.retry_count ?? 0),
        next_attempt: v.nextAttempt === undefined ? (old?.next_attempt ?? null) : v.nextAttempt,
        last_message: v.lastMessage === undefined ? (old?.last_message ?? null) : v.lastMessage,
        updated_at: new Date().toISOString(),
      };
      if (old === undefined) await trx.insertInto('package_dp_status').values(row).execute();
      else
        await trx
          .updateTable('package_dp_status')
          .set(row)
          .where('package_id', '=', v.packageId)
          .where('site_code', '=', v.site)
          .where('dp_name', '=', v.dp)
          .execute();
      return toStatus(row);
    }),
  );
}

/** Forgets a package's status on a DP (Distribution Manager took the package off it). */
export async function deleteDpStatus(site: SiteDb, key: { packageId: string; site: string; dp: string }): Promise<void> {
  const id = parseInput(packageIdSchema, key.packageId, 'package id');
  await guard(site, `status of ${id} on ${key.site}/${key.dp}`, () =>
    site.db.deleteFrom('package_dp_status').where('package_id', '=', id).where('site_code', '=', key.site).where('dp_name', '=', key.dp).execute(),
  );
}

/** Every DP status row of a package, by site and DP. */
export async function getPackageStatus(site: SiteDb, packageId: string): Promise<DpStatus[]> {
  const id = parseInput(packageIdSchema, packageId, 'package id');
  const rows = await guard(site, `status of ${id}`, () =>
    site.db
      .selectFrom('package_dp_status')
      .selectAll()
      .where('package_id', '=', id)
      .orderBy('site_code')
      .orderBy('dp_name')
      .execute(),
  );
  return rows.map(toStatus);
}

/**
 * Asks Distribution Manager to copy a package onto one DP again (its library
 * chunks re-checked, its share rebuilt). A second request before the first is
 * done only moves its time. The row's trigger wakes the database monitor.
 */
export async function requestRefresh(site: SiteDb, key: { packageId: string; site: string; dp: string }): Promise<string> {
  const v = parseInput(z.object({ packageId: packageIdSchema, site: siteCodeSchema, dp: shortNameSchema }), key, 'refresh request');
  const requestedAt = new Date().toISOString();
  await guard(site, `refresh of ${v.packageId} on ${v.site}/${v.dp}`, () =>
    site.db
      .insertInto('dp_refresh_requests')
      .values({ package_id: v.packageId, site_code: v.site, dp_name: v.dp, requested_at: requestedAt })
      .onConflict((oc) => oc.columns(['package_id', 'site_code', 'dp_name']).doUpdateSet({ requested_at: requestedAt }))
      .execute(),
  );
  return requestedAt;
}

/** The DPs of `site` with a refresh of `packageId` outstanding, and when each was asked for. */
export async function listRefreshRequests(site: SiteDb, packageId: string, siteCode: string): Promise<Map<string, string>> {
  const rows = await guard(site, `refresh requests of ${packageId}`, () =>
    site.db.selectFrom('dp_refresh_requests').selectAll().where('package_id', '=', packageId).where('site_code', '=', siteCode).execute(),
  );
  return new Map(rows.map((r) => [r.dp_name, r.requested_at]));
}

/** Removes a refresh request once done, unless it was asked for again since `requestedAt`. */
export async function clearRefreshRequest(site: SiteDb, key: { packageId: string; site: string; dp: string }, requestedAt: string): Promise<void> {
  await guard(site, `refresh of ${key.packageId} on ${key.site}/${key.dp}`, () =>
    site.db
      .deleteFrom('dp_refresh_requests')
      .where('package_id', '=', key.packageId)
      .where('site_code', '=', key.site)
      .where('dp_name', '=', key.dp)
      .where('requested_at', '=', requestedAt)
      .execute(),
  );
}
