import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { dpStateSchema } from './values.js';

/** How many DPs hold a package in each state. */
export interface PackageStateCounts {
  packageId: string;
  pending: number;
  installed: number;
  retrying: number;
  failed: number;
}

/**
 * State counts for every package that has a DP status, by package id: the
 * hierarchy summary. One grouped query, so the database counts rather than
 * sending every row (a large site holds millions).
 */
export async function summarizePackageStates(site: SiteDb): Promise<PackageStateCounts[]> {
  const rows = await guard(site, 'package status summary', () =>
    site.db
      .selectFrom('package_dp_status')
      .select((eb) => ['package_id', 'state', eb.fn.countAll<number>().as('n')])
      .groupBy(['package_id', 'state'])
      .orderBy('package_id')
      .execute(),
  );
  const out: PackageStateCounts[] = [];
  let current: PackageStateCounts | undefined;
  for (const r of rows) {
    if (current?.packageId !== r.package_id) {
      current = { packageId: r.package_id, pending: 0, installed: 0, retrying: 0, failed: 0 };
      out.push(current);
    }
    current[dpStateSchema.parse(r.state)] += Number(r.n);
  }
  return out;
}
