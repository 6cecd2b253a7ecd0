import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { guard } from './guard.js';
import { hierarchyDb } from './hierarchy-tables.js';
import type { SiteDb } from './open.js';
import { isoTimeSchema, nameSchema, packageIdSchema, parseInput, sha256Schema, siteCodeSchema } from './values.js';

/**
 * The hierarchy as one site's database sees it: every known site with its
 * parent, public key and URL; join tokens; what each child holds and what
 * was last sent to it. Repository functions, like the rest of src/db.
 */

export interface SiteNode {
  code: string;
  name: string;
  parentCode: string | null;
  publicKey: string | null;
  url: string | null;
  isLocal: boolean;
}

export const siteUrlSchema = z.url({ protocol: /^https?$/ }).max(2048);
const publicKeySchema = z
  .string()
  .min(1)
  .max(4096)
  .regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/, 'a public key in SPKI PEM');

export const siteNodeSchema = z.strictObject({
  code: siteCodeSchema,
  name: nameSchema,
  parentCode: siteCodeSchema.nullable(),
  publicKey: publicKeySchema.nullable(),
  url: siteUrlSchema.nullable(),
});
export type SiteDefinition = z.infer<typeof siteNodeSchema>;

export async function listSiteNodes(site: SiteDb): Promise<SiteNode[]> {
  const rows = await guard(site, 'sites', () => hierarchyDb(site).selectFrom('site').selectAll().orderBy('code').execute());
  return rows.map((r) => ({
    code: r.code,
    name: r.name,
    parentCode: r.parent_code,
    publicKey: r.public_key,
    url: r.url,
    isLocal: r.is_local === 1,
  }));
}

export async function getSiteNode(site: SiteDb, code: string): Promise<SiteNode | undefined> {
  const c = parseInput(siteCodeSchema, code, 'site code');
  return (await listSiteNodes(site)).find((s) => s.code === c);
}

/**
 * Records another site, or refreshes what is known of it. The local site is
 * never changed this way; `overwrite: false` only fills in a site not yet
 * known (definitions relayed by a third site never replace first-hand ones).
 */
export async function upsertSite(site: SiteDb, input: SiteDefinition, options: { overwrite?: boolean } = {}): Promise<void> {
  const v = parseInput(siteNodeSchema, input, 'site definition');
  const db = hierarchyDb(site);
  const now = new Date().toISOString();
  await guard(site, `site ${v.code}`, () =>
    db.transaction().execute(async (trx) => {
      const old = await trx.selectFrom('site').selectAll().where('code', '=', v.code).executeTakeFirst();
      if (old === undefined) {
        await trx
          .insertInto('site')
          .values({ code: v.code, name: v.name, parent_code: v.parentCode, public_key: v.publicKey, url: v.url, is_local: 0, created_at: now, updated_at: now })
          .execute();
        return;
      }
      if (old.is_local === 1 || options.overwrite === false) return;
      await trx
        .updateTable('site')
        .set({ name: v.name, parent_code: v.parentCode, public_key: v.publicKey ?? old.public_key, url: v.url ?? old.url, updated_at: now })
        .where('code', '=', v.code)
        .execute();
    }),
  );
}

/** Sets the local site's parent and its own URL (a child after joining). */
export async function setLocalSite(site: SiteDb, values: { parentCode?: string | null; url?: string | null }): Promise<void> {
  const parent = values.parentCode === undefined ? undefined : parseInput(siteCodeSchema.nullable(), values.parentCode, 'parent site');
  const url = values.url === undefined ? undefined : parseInput(siteUrlSchema.nullable(), values.url, 'site URL');
  await guard(site, 'local site', () =>
    hierarchyDb(site)
      .updateTable('site')
      .set({
        ...(parent === undefined ? {} : { parent_code: parent }),
        ...(url === undefined ? {} : { url }),
        updated_at: new Date().toISOString(),
      })
      .where('is_local', '=', 1)
      .execute(),
  );
}

/** The chain from `code` up to the root: [code, parent, grandparent, …]. Stops at a loop. */
export function ancestry(sites: readonly SiteNode[], code: string): string[] {
  const byCode = new Map(sites.map((s) => [s.code, s]));
  const chain: string[] = [];
  let at: string | null | undefined = code;
  while (at !== null && at !== undefined && !chain.includes(at)) {
    chain.push(at);
    at = byCode.get(at)?.parentCode;
  }
  return chain;
}

/** The child of `from` on the way down to `target`, or undefined when `target` is not below `from`. */
export function childToward(sites: readonly SiteNode[], from: string, target: string): string | undefined {
  const chain = ancestry(sites, target);
  const at = chain.indexOf(from);
  return at > 0 ? chain[at - 1] : undefined;
}

/** True when `code` is `top` or lies below it. */
export function isAtOrBelow(sites: readonly SiteNode[], code: string, top: string): boolean {
  return ancestry(sites, code).includes(top);
}

// Join tokens --------------------------------------------------------------

const JOIN_PREFIX = 'scj_';
const joinTokenShape = /^scj_[A-Za-z0-9_-]{43}$/;
export const DEFAULT_JOIN_TTL_MS = 24 * 3600 * 1000;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Issues a one-time token for a child site code; only its hash is stored. */
export async function createJoinToken(site: SiteDb, input: { child: string; expiresAt?: Date }): Promise<{ token: string; expiresAt: string }> {
  const child = parseInput(siteCodeSchema, input.child, 'child site code');
  const expiresAt = (input.expiresAt ?? new Date(Date.now() + DEFAULT_JOIN_TTL_MS)).toISOString();
  const token = JOIN_PREFIX + randomBytes(32).toString('base64url');
  const now = new Date().toISOString();
  await guard(site, 'join token', () =>
    hierarchyDb(site).insertInto('join_tokens').values({ token_sha256: hashToken(token), child_code: child, expires_at: expiresAt, used_at: null, created_at: now }).execute(),
  );
  return { token, expiresAt };
}

function refused(why: string): SitecastError {
  return new SitecastError('SITECAST_E_JOIN_REFUSED', `join refused: ${why}`, {
    hint: 'ask the parent site for a new token for this site code: `sitecast site invite --child <code>`',
  });
}

/**
 * Spends a join token and records the child, in one transaction: a token
 * works once, before it expires, for the code it was issued for. A refused
 * join changes nothing: the token stays as it was.
 */
export async function acceptJoin(site: SiteDb, input: { token: string; child: SiteDefinition; parentCode: string; now?: Date }): Promise<void> {
  const child = parseInput(siteNodeSchema, input.child, 'joining site');
  const parentCode = parseInput(siteCodeSchema, input.parentCode, 'parent site');
  if (typeof input.token !== 'string' || !joinTokenShape.test(input.token)) throw refused('that is not a join token');
  const now = (input.now ?? new Date()).toISOString();
  const db = hierarchyDb(site);
  await guard(site, `site ${child.code}`, () =>
    db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('join_tokens').selectAll().where('token_sha256', '=', hashToken(input.token)).executeTakeFirst();
      if (row === undefined) throw refused('the token is not known to this site');
      if (row.used_at !== null) throw refused(`the token was already used (${row.used_at})`);
      if (row.expires_at <= now) throw refused(`the token expired at ${row.expires_at}`);
      if (row.child_code !== child.code) throw refused(`the token was issued for site ${row.child_code}, not ${child.code}`);
      const existing = await trx.selectFrom('site').select('code').where('code', '=', child.code).executeTakeFirst();
      if (existing !== undefined) throw new SitecastError('SITECAST_E_CONFLICT', `site ${child.code} is already known here`, { hint: 'site codes are unique in a hierarchy' });
      await trx.updateTable('join_tokens').set({ used_at: now }).where('token_sha256', '=', row.token_sha256).execute();
      await trx
        .insertInto('site')
        .values({ code: child.code, name: child.name, parent_code: parentCode, public_key: child.publicKey, url: child.url, is_local: 0, created_at: now, updated_at: now })
        .execute();
    }),
  );
}

// Holdings and sends -----------------------------------------------------

export interface Holding {
  site: string;
  packageId: string;
  sourceVersion: number;
  manifest: string;
}

const holdingSchema = z.object({ site: siteCodeSchema, packageId: packageIdSchema, sourceVersion: z.number().int().min(1), manifest: sha256Schema });

/** Records what a child site holds; a report of an older version than recorded is ignored. */
export async function setHolding(site: SiteDb, input: Holding): Promise<void> {
  const v = parseInput(holdingSchema, input, 'holding');
  const db = hierarchyDb(site);
  const now = new Date().toISOString();
  await guard(site, `holding of ${v.packageId} at ${v.site}`, () =>
    db
      .insertInto('site_holdings')
      .values({ site_code: v.site, package_id: v.packageId, source_version: v.sourceVersion, manifest_sha256: v.manifest, updated_at: now })
      .onConflict((oc) =>
        oc
          .columns(['site_code', 'package_id'])
          .doUpdateSet({ source_version: v.sourceVersion, manifest_sha256: v.manifest, updated_at: now })
          .where('site_holdings.source_version', '<=', v.sourceVersion),
      )
      .execute(),
  );
}

export async function getHolding(site: SiteDb, code: string, packageId: string): Promise<Holding | undefined> {
  const row = await guard(site, `holding of ${packageId} at ${code}`, () =>
    hierarchyDb(site).selectFrom('site_holdings').selectAll().where('site_code', '=', code).where('package_id', '=', packageId).executeTakeFirst(),
  );
  return row === undefined ? undefined : { site: row.site_code, packageId: row.package_id, sourceVersion: Number(row.source_version), manifest: row.manifest_sha256 };
}

/** The versions child sites hold, manifests only: the bases of the deltas they are sent next. */
export async function listHeldManifests(site: SiteDb): Promise<string[]> {
  const rows = await guard(site, 'holdings', () => hierarchyDb(site).selectFrom('site_holdings').select('manifest_sha256').distinct().execute());
  return rows.map((r) => r.manifest_sha256);
}

export interface SentRecord {
  site: string;
  packageId: string;
  sourceVersion: number;
  definition: string;
  sendId: string;
  bytes: number;
  sentAt: string;
}

export async function getSent(site: SiteDb, code: string, packageId: string): Promise<SentRecord | undefined> {
  const row = await guard(site, `sends of ${packageId} to ${code}`, () =>
    hierarchyDb(site).selectFrom('replication_sent').selectAll().where('site_code', '=', code).where('package_id', '=', packageId).executeTakeFirst(),
  );
  if (row === undefined) return undefined;
  return {
    site: row.site_code,
    packageId: row.package_id,
    sourceVersion: Number(row.source_version),
    definition: row.definition_sha256,
    sendId: row.send_id,
    bytes: Number(row.bytes),
    sentAt: row.sent_at,
  };
}

const sentSchema = z.object({
  site: siteCodeSchema,
  packageId: packageIdSchema,
  sourceVersion: z.number().int().min(1),
  definition: sha256Schema,
  sendId: z.string().min(1).max(100),
  bytes: z.number().int().min(0),
  sentAt: isoTimeSchema,
});

export async function recordSent(site: SiteDb, input: SentRecord): Promise<void> {
  const v = parseInput(sentSchema, input, 'send record');
  const row = {
    site_code: v.site,
    package_id: v.packageId,
    source_version: v.sourceVersion,
    definition_sha256: v.definition,
    send_id: v.sendId,
    bytes: v.bytes,
    sent_at: v.sentAt,
  };
  await guard(site, `sends of ${v.packageId} to ${v.site}`, () =>
    hierarchyDb(site)
      .insertInto('replication_sent')
      .values(row)
      .onConflict((oc) => oc.columns(['site_code', 'package_id']).doUpdateSet(row))
      .execute(),
  );
}

/** A version of a package this site needs whole (its delta's base is gone), and since when. */
export interface WantedVersion {
  packageId: string;
  sourceVersion: number;
  manifest: string;
  since: string;
}

const wantedSchema = z.object({ packageId: packageIdSchema, sourceVersion: z.number().int().min(1), manifest: sha256Schema, since: isoTimeSchema });

/** Records that this site needs a version whole; a newer version wanted replaces an older one. */
export async function recordWanted(site: SiteDb, input: WantedVersion): Promise<void> {
  const v = parseInput(wantedSchema, input, 'wanted version');
  await guard(site, `wanted version of ${v.packageId}`, () =>
    hierarchyDb(site)
      .insertInto('wanted_versions')
      .values({ package_id: v.packageId, source_version: v.sourceVersion, manifest_sha256: v.manifest, since: v.since })
      .onConflict((oc) =>
        oc
          .column('package_id')
          .doUpdateSet({ source_version: v.sourceVersion, manifest_sha256: v.manifest, since: v.since })
          .where('wanted_versions.source_version', '<', v.sourceVersion),
      )
      .execute(),
  );
}

export async function listWanted(site: SiteDb): Promise<WantedVersion[]> {
  const rows = await guard(site, 'wanted versions', () => hierarchyDb(site).selectFrom('wanted_versions').selectAll().orderBy('package_id').execute());
  return rows.map((r) => ({ packageId: r.package_id, sourceVersion: Number(r.source_version), manifest: r.manifest_sha256, since: r.since }));
}

/** Forgets a wanted version once this version (or a newer one) of the package was applied. */
export async function clearWanted(site: SiteDb, packageId: string, appliedVersion: number): Promise<void> {
  await guard(site, `wanted version of ${packageId}`, () =>
    hierarchyDb(site).deleteFrom('wanted_versions').where('package_id', '=', packageId).where('source_version', '<=', appliedVersion).execute(),
  );
}

/** The child sites this site has sent a package to (and not withdrawn it from since). */
export async function listSentSites(site: SiteDb, packageId: string): Promise<string[]> {
  const rows = await guard(site, `sends of ${packageId}`, () =>
    hierarchyDb(site).selectFrom('replication_sent').select('site_code').where('package_id', '=', packageId).orderBy('site_code').execute(),
  );
  return rows.map((r) => r.site_code);
}

/**
 * A package was withdrawn from a child (no target at or below it any more):
 * the record of what was sent goes, so the child is no longer asked about the
 * package, and a later distribution there is planned afresh (against the
 * version it still holds).
 */
export async function forgetSent(site: SiteDb, code: string, packageId: string): Promise<void> {
  await guard(site, `sends of ${packageId} to ${code}`, () =>
    hierarchyDb(site).deleteFrom('replication_sent').where('site_code', '=', code).where('package_id', '=', packageId).execute(),
  );
}

/**
 * Stands in a send record for "the last send no longer counts": no
 * definition hashes to it, so the next plan for that site is never skipped
 * as already sent.
 */
export const SEND_TO_REPEAT = '0'.repeat(64);

/**
 * A child lacks the base of a version sent to it: what was recorded of its
 * holding goes, and the last send is marked to be repeated, so the next send
 * of the package to it is planned afresh, as the whole version. The send
 * record itself stays: the child still has the package on its DPs, so should
 * the package be undistributed there before the whole version goes, the
 * Scheduler still sends it the withdrawal.
 */
export async function forgetHoldingAndRepeatSend(site: SiteDb, code: string, packageId: string): Promise<void> {
  const db = hierarchyDb(site);
  await guard(site, `holding of ${packageId} at ${code}`, () =>
    db.transaction().execute(async (trx) => {
      await trx.deleteFrom('site_holdings').where('site_code', '=', code).where('package_id', '=', packageId).execute();
      await trx.updateTable('replication_sent').set({ definition_sha256: SEND_TO_REPEAT }).where('site_code', '=', code).where('package_id', '=', packageId).execute();
    }),
  );
}
