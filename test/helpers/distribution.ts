import { join } from 'node:path';
import { addDp, createPackage, getPackageStatus, setTargets, type DpStatus, type Package } from '../../src/db/index.js';
import type { SiteContext } from '../../src/site/context.js';
import { eventually } from './site.js';

/** Creates a package targeted at the named DPs of site CEN (created under `dir` when new). */
export async function distribute(ctx: SiteContext, dir: string, source: string, dps: string[]): Promise<Package> {
  const pkg = await createPackage(ctx.db, { name: 'Test package', sourcePath: source, programs: [{ name: 'Install', commandLine: 'setup.sh --quiet' }] });
  for (const name of dps) {
    await addDp(ctx.db, { site: ctx.siteCode, name, path: join(dir, name.toLowerCase()) }).catch(() => undefined);
  }
  await setTargets(ctx.db, pkg.id, dps.map((dp) => ({ site: ctx.siteCode, dp })));
  ctx.wake('dbmon');
  return pkg;
}

/** Waits until every DP status row of the package of this site satisfies `ok`. */
export async function statusWhen(ctx: SiteContext, id: string, ok: (s: DpStatus) => boolean, ms = 20_000): Promise<DpStatus[]> {
  return eventually(
    `DP status of ${id}`,
    async () => {
      const rows = await getPackageStatus(ctx.db, id);
      return rows.length > 0 && rows.every(ok) ? rows : undefined;
    },
    ms,
  );
}

export function sharePathOf(dir: string, dp: string, id: string): string {
  return join(dir, dp.toLowerCase(), 'SMSPKG', id);
}
