import type { Kysely, Transaction } from 'kysely';
import { SitecastError } from '../errors.js';
import type { PackageDefinition } from '../formats/bundle-header.js';
import { guard } from './guard.js';
import { type HierarchyTables, hierarchyDb } from './hierarchy-tables.js';
import type { SiteDb } from './open.js';
import type { Database } from './schema.js';

type Trx = Transaction<Database & HierarchyTables>;

/** Which bundle of the parent's a definition came in, and when the parent made it. */
export interface BundleStamp {
  bundleId: string;
  /** The bundle header's `created` (ISO time, the parent's clock). */
  created: string;
}

/** A package bundle in the order bundles about its package are applied; `superseded` names the newest one applied. */
export interface OrderedBundle extends BundleStamp {
  sourceVersion: number;
}

export interface StoredPackage {
  created: boolean;
  previousVersion: number;
  superseded: OrderedBundle | null;
}

export interface WithdrawnPackage {
  /** The targets removed (`SITE/dp`). */
  removed: string[];
  superseded: OrderedBundle | null;
}

/**
 * Bundles about one package are ordered by source version, then by when the
 * parent made them (a version only grows; within one version a withdrawal
 * or a change of targets follows the definition it changes). The same bundle
 * delivered again is not older than itself, so it applies again (idempotent).
 */
function isOlder(incoming: OrderedBundle, newest: OrderedBundle): boolean {
  if (incoming.sourceVersion !== newest.sourceVersion) return incoming.sourceVersion < newest.sourceVersion;
  return Date.parse(incoming.created) < Date.parse(newest.created);
}

/** The newest bundle applied for the package, when `stamp` is older than it. */
async function newerThan(db: Kysely<Database & HierarchyTables>, packageId: string, stamp: OrderedBundle): Promise<OrderedBundle | undefined> {
  const row = await db.selectFrom('received_definitions').selectAll().where('package_id', '=', packageId).executeTakeFirst();
  if (row === undefined) return undefined;
  const newest = { bundleId: row.bundle_id, created: row.created, sourceVersion: Number(row.source_version) };
  return isOlder(stamp, newest) ? newest : undefined;
}

/**
 * Takes this bundle's turn for the package: the newest bundle applied before it
 * when this one is older (the caller then writes nothing), otherwise undefined,
 * with this bundle recorded as the newest.
 */
async function takeTurn(trx: Trx, packageId: string, stamp: OrderedBundle, now: string): Promise<OrderedBundle | undefined> {
  const newer = await newerThan(trx, packageId, stamp);
  if (newer !== undefined) return newer;
  const row = { source_version: stamp.sourceVersion, created: stamp.created, bundle_id: stamp.bundleId, applied_at: now };
  await trx
    .insertInto('received_definitions')
    .values({ package_id: packageId, ...row })
    .onConflict((oc) => oc.column('package_id').doUpdateSet(row))
    .execute();
  return undefined;
}

/** The newest bundle applied for a package, if `stamp` is older than it: a quick look before work the transaction would throw away. */
export async function newerBundle(site: SiteDb, packageId: string, stamp: OrderedBundle): Promise<OrderedBundle | undefined> {
  return guard(site, `received package ${packageId}`, () => newerThan(hierarchyDb(site), packageId, stamp));
}

async function ensureSitesAndDps(trx: Trx, def: Pick<PackageDefinition, 'sites' | 'dps'>, now: string): Promise<void> {
  for (const s of def.sites) {
    const known = await trx.selectFrom('site').select('code').where('code', '=', s.code).executeTakeFirst();
    if (known !== undefined) continue;
    await trx
      .insertInto('site')
      .values({ code: s.code, name: s.name, parent_code: s.parentCode, public_key: s.publicKey, url: s.url, is_local: 0, created_at: now, updated_at: now })
      .execute();
  }
  for (const d of def.dps) {
    const known = await trx.selectFrom('dps').select('name').where('site_code', '=', d.site).where('name', '=', d.name).executeTakeFirst();
    if (known === undefined) await trx.insertInto('dps').values({ site_code: d.site, name: d.name, path: d.path, url: null, created_at: now }).execute();
  }
}

/**
 * Stores a package received from the parent under its original id, in one
 * transaction: the sites and DPs its targets name (when not known yet), the
 * package with its source version and manifest, its programs, and its
 * targets at and below this site. The change-log triggers see the writes,
 * so Distribution Manager wakes as for a local change. A version older than
 * the one stored is refused (SITECAST_E_ROLLBACK) and nothing is written; a
 * bundle older than the newest applied for the package is skipped
 * (`superseded`), nothing written either.
 */
export async function storeReceivedPackage(site: SiteDb, def: PackageDefinition, stamp: BundleStamp): Promise<StoredPackage> {
  const db = hierarchyDb(site);
  return guard(site, `received package ${def.id}`, () =>
    db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      const old = await trx.selectFrom('packages').selectAll().where('id', '=', def.id).executeTakeFirst();
      const held = Number(old?.source_version ?? 0);
      if (def.sourceVersion < held) {
        throw new SitecastError('SITECAST_E_ROLLBACK', `package ${def.id}: this site holds source version ${held}; refusing the older version ${def.sourceVersion}`);
      }
      if (old !== undefined && def.sourceVersion === held && old.manifest_sha256 !== null && old.manifest_sha256 !== def.manifest) {
        throw new SitecastError('SITECAST_E_ROLLBACK', `package ${def.id}: source version ${held} is held here with other content; a version is never changed`);
      }
      const superseded = await takeTurn(trx, def.id, { ...stamp, sourceVersion: def.sourceVersion }, now);
      if (superseded !== undefined) return { created: false, previousVersion: held, superseded };
      await ensureSitesAndDps(trx, def, now);
      const row = {
        name: def.name,
        version: def.version,
        source_path: def.sourcePath,
        priority: def.priority,
        source_version: def.sourceVersion,
        manifest_sha256: def.manifest,
        icon: def.icon ?? null,
      };
      if (old === undefined) await trx.insertInto('packages').values({ id: def.id, ...row, created_at: now, updated_at: now }).execute();
      else {
        const same = old.name === row.name && old.version === row.version && old.source_path === row.source_path && old.priority === row.priority && Number(old.source_version) === row.source_version && old.manifest_sha256 === row.manifest_sha256 && (old.icon ?? null) === row.icon;
        if (!same) await trx.updateTable('packages').set({ ...row, updated_at: now }).where('id', '=', def.id).execute();
      }
      const programs = await trx.selectFrom('programs').selectAll().where('package_id', '=', def.id).orderBy('name').execute();
      const wantedPrograms = [...def.programs].sort((a, b) => (a.name < b.name ? -1 : 1));
      const samePrograms =
        programs.length === wantedPrograms.length &&
        programs.every((p, i) => p.name === wantedPrograms[i]?.name && p.command_line === wantedPrograms[i]?.commandLine && Number(p.max_run_time_seconds) === wantedPrograms[i]?.maxRunTimeSeconds);
      if (!samePrograms) {
        await trx.deleteFrom('programs').where('package_id', '=', def.id).execute();
        for (const p of wantedPrograms) {
          await trx.insertInto('programs').values({ package_id: def.id, name: p.name, command_line: p.commandLine, max_run_time_seconds: p.maxRunTimeSeconds }).execute();
        }
      }
      const oldTargets = await trx.selectFrom('package_targets').select(['site_code', 'dp_name']).where('package_id', '=', def.id).execute();
      const wanted = new Set(def.targets.map((t) => `${t.site}/${t.dp}`));
      const had = new Set(oldTargets.map((t) => `${t.site_code}/${t.dp_name}`));
      for (const t of oldTargets) {
        if (wanted.has(`${t.site_code}/${t.dp_name}`)) continue;
        await trx.deleteFrom('package_targets').where('package_id', '=', def.id).where('site_code', '=', t.site_code).where('dp_name', '=', t.dp_name).execute();
      }
      for (const t of def.targets) {
        if (had.has(`${t.site}/${t.dp}`)) continue;
        await trx.insertInto('package_targets').values({ package_id: def.id, site_code: t.site, dp_name: t.dp }).execute();
        // A row already there: the DP was targeted again before the package was taken off it (a withdrawal and a
        // new definition applied back to back). The parent forgot its copy of the row; a new message sends it up again.
        await trx
          .insertInto('package_dp_status')
          .values({ package_id: def.id, site_code: t.site, dp_name: t.dp, state: 'pending', source_version: 0, retry_count: 0, updated_at: now })
          .onConflict((oc) => oc.columns(['package_id', 'site_code', 'dp_name']).doUpdateSet({ last_message: 'targeted again by the parent site', updated_at: now }))
          .execute();
      }
      return { created: old === undefined, previousVersion: held, superseded: null };
    }),
  );
}

/**
 * The parent withdrew a received package from this site and everything
 * below it: every target goes (the change-log triggers wake Distribution
 * Manager, which takes it off this site's DPs and passes the withdrawal on);
 * the package, its version and its content stay. A withdrawal of a package
 * this site never received is recorded all the same, so the definition it
 * followed, should that arrive late, is skipped as older.
 */
export async function withdrawReceivedPackage(site: SiteDb, def: Pick<PackageDefinition, 'id' | 'sourceVersion'>, stamp: BundleStamp): Promise<WithdrawnPackage> {
  const db = hierarchyDb(site);
  return guard(site, `received package ${def.id}`, () =>
    db.transaction().execute(async (trx) => {
      const superseded = await takeTurn(trx, def.id, { ...stamp, sourceVersion: def.sourceVersion }, new Date().toISOString());
      if (superseded !== undefined) return { removed: [], superseded };
      const targets = await trx.selectFrom('package_targets').select(['site_code', 'dp_name']).where('package_id', '=', def.id).orderBy('site_code').orderBy('dp_name').execute();
      if (targets.length > 0) await trx.deleteFrom('package_targets').where('package_id', '=', def.id).execute();
      return { removed: targets.map((t) => `${t.site_code}/${t.dp_name}`), superseded: null };
    }),
  );
}

/** Records sites and DPs not known yet (definitions relayed by a neighbour); known ones are left as they are. */
export async function storeDefinitions(site: SiteDb, defs: Pick<PackageDefinition, 'sites' | 'dps'>): Promise<void> {
  const db = hierarchyDb(site);
  await guard(site, 'site definitions', () => db.transaction().execute((trx) => ensureSitesAndDps(trx, defs, new Date().toISOString())));
}
