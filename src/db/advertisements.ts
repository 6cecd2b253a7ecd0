import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { type AdvertisementStatusTable, type AdvertisementTable, bumpPolicyVersion, clientDb } from './client-tables.js';
import { clientIdSchema } from './clients.js';
import { collectionNameSchema } from './collections.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { isoTimeSchema, packageIdSchema, parseInput, shortNameSchema } from './values.js';

export type ClientState = 'received' | 'running' | 'succeeded' | 'failed';
export const clientStateSchema = z.enum(['received', 'running', 'succeeded', 'failed']);
export const advertisementIdSchema = packageIdSchema;

export interface Advertisement {
  id: string;
  packageId: string;
  program: string;
  collection: string;
  availableAt: string;
  mandatoryAt: string | null;
  expiresAt: string | null;
  /** Raised by "run again": a client runs the program once per value. */
  rerun: number;
  createdAt: string;
}

export interface AdvertisementClientStatus {
  clientId: string;
  state: ClientState;
  exitCode: number | null;
  rerun: number;
  message: string | null;
  updatedAt: string;
}

const newAdvertisementSchema = z
  .object({
    packageId: packageIdSchema,
    program: shortNameSchema,
    collection: collectionNameSchema,
    availableAt: isoTimeSchema.optional(),
    mandatoryAt: isoTimeSchema.nullable().default(null),
    expiresAt: isoTimeSchema.nullable().default(null),
  })
  .refine((a) => a.expiresAt === null || a.expiresAt > (a.availableAt ?? new Date().toISOString()), 'expires must be after available')
  .refine((a) => a.mandatoryAt === null || a.expiresAt === null || a.mandatoryAt < a.expiresAt, 'mandatory must be before expires');
export type NewAdvertisement = z.input<typeof newAdvertisementSchema>;

const ID_MAX = 0xfffff;

function toAdvertisement(r: AdvertisementTable): Advertisement {
  return {
    id: r.id,
    packageId: r.package_id,
    program: r.program,
    collection: r.collection,
    availableAt: r.available_at,
    mandatoryAt: r.mandatory_at,
    expiresAt: r.expires_at,
    rerun: Number(r.rerun),
    createdAt: r.created_at,
  };
}

/** Times are stored as toISOString() gives them, so they sort and compare as strings. */
function canonicalTime(t: string): string {
  return new Date(t).toISOString();
}

/**
 * Advertises a program of a package to a collection. The id is the site code
 * and 5 hex digits from its own counter (as SMS advertisement ids were).
 */
export async function createAdvertisement(site: SiteDb, input: NewAdvertisement): Promise<Advertisement> {
  const v = parseInput(newAdvertisementSchema, input, 'advertisement');
  const db = clientDb(site);
  return guard(site, `advertisement of ${v.packageId}`, () =>
    db.transaction().execute(async (trx) => {
      const program = await trx
        .selectFrom('programs')
        .select('name')
        .where('package_id', '=', v.packageId)
        .where('name', '=', v.program)
        .executeTakeFirst();
      if (program === undefined) {
        const pkg = await trx.selectFrom('packages').select('id').where('id', '=', v.packageId).executeTakeFirst();
        throw new SitecastError(
          'SITECAST_E_NOT_FOUND',
          pkg === undefined ? `package ${v.packageId} does not exist` : `package ${v.packageId} has no program ${JSON.stringify(v.program)}`,
        );
      }
      const col = await trx.selectFrom('collections').select('name').where('name', '=', v.collection).executeTakeFirst();
      if (col === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `collection ${JSON.stringify(v.collection)} does not exist`);
      const local = await trx.selectFrom('site').select('code').where('is_local', '=', 1).executeTakeFirstOrThrow();
      const counter = await trx
        .updateTable('counters')
        .set((eb) => ({ value: eb('value', '+', 1) }))
        .where('name', '=', 'advertisement_id')
        .returning('value')
        .executeTakeFirstOrThrow();
      const n = Number(counter.value);
      if (n > ID_MAX) throw new SitecastError('SITECAST_E_ID_EXHAUSTED', `site ${local.code} has used all advertisement ids`);
      const now = new Date().toISOString();
      const row: AdvertisementTable = {
        id: `${local.code}${n.toString(16).toUpperCase().padStart(5, '0')}`,
        package_id: v.packageId,
        program: v.program,
        collection: v.collection,
        available_at: v.availableAt === undefined ? now : canonicalTime(v.availableAt),
        mandatory_at: v.mandatoryAt === null ? null : canonicalTime(v.mandatoryAt),
        expires_at: v.expiresAt === null ? null : canonicalTime(v.expiresAt),
        rerun: 0,
        created_at: now,
      };
      await trx.insertInto('advertisements').values(row).execute();
      await bumpPolicyVersion(trx);
      return toAdvertisement(row);
    }),
  );
}

export async function getAdvertisement(site: SiteDb, id: string): Promise<Advertisement | undefined> {
  const adId = parseInput(advertisementIdSchema, id, 'advertisement id');
  const row = await guard(site, `advertisement ${adId}`, () => clientDb(site).selectFrom('advertisements').selectAll().where('id', '=', adId).executeTakeFirst());
  return row === undefined ? undefined : toAdvertisement(row);
}

export async function listAdvertisements(site: SiteDb): Promise<Advertisement[]> {
  const rows = await guard(site, 'advertisements', () => clientDb(site).selectFrom('advertisements').selectAll().orderBy('id').execute());
  return rows.map(toAdvertisement);
}

/** Asks every client to run the program again, even those that already did. */
export async function rerunAdvertisement(site: SiteDb, id: string): Promise<Advertisement> {
  const adId = parseInput(advertisementIdSchema, id, 'advertisement id');
  const db = clientDb(site);
  return guard(site, `advertisement ${adId}`, () =>
    db.transaction().execute(async (trx) => {
      const row = await trx.selectFrom('advertisements').selectAll().where('id', '=', adId).executeTakeFirst();
      if (row === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `advertisement ${adId} does not exist`);
      const rerun = Number(row.rerun) + 1;
      await trx.updateTable('advertisements').set({ rerun }).where('id', '=', adId).execute();
      await bumpPolicyVersion(trx);
      return toAdvertisement({ ...row, rerun });
    }),
  );
}

const statusInputSchema = z.object({
  advertisementId: advertisementIdSchema,
  clientId: clientIdSchema,
  state: clientStateSchema,
  exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32).nullable().default(null),
  rerun: z.number().int().min(0),
  message: z.string().max(2000).nullable().default(null),
});
export type AdvertisementStatusInput = z.input<typeof statusInputSchema>;

/**
 * Records a client's state for an advertisement. A report about an older run
 * than the one recorded (a late message from before "run again") is ignored;
 * returns whether it was recorded.
 */
export async function setAdvertisementStatus(site: SiteDb, input: AdvertisementStatusInput): Promise<boolean> {
  const v = parseInput(statusInputSchema, input, 'advertisement status');
  const db = clientDb(site);
  return guard(site, `status of ${v.advertisementId}`, () =>
    db.transaction().execute(async (trx) => {
      const old = await trx
        .selectFrom('advertisement_status')
        .select('rerun')
        .where('advertisement_id', '=', v.advertisementId)
        .where('client_id', '=', v.clientId)
        .executeTakeFirst();
      if (old !== undefined && Number(old.rerun) > v.rerun) return false;
      const row: AdvertisementStatusTable = {
        advertisement_id: v.advertisementId,
        client_id: v.clientId,
        state: v.state,
        exit_code: v.exitCode,
        rerun: v.rerun,
        message: v.message,
        updated_at: new Date().toISOString(),
      };
      await trx
        .insertInto('advertisement_status')
        .values(row)
        .onConflict((oc) =>
          oc.columns(['advertisement_id', 'client_id']).doUpdateSet({
            state: row.state,
            exit_code: row.exit_code,
            rerun: row.rerun,
            message: row.message,
            updated_at: row.updated_at,
          }),
        )
        .execute();
      return true;
    }),
  );
}

export async function listAdvertisementStatus(site: SiteDb, id: string): Promise<AdvertisementClientStatus[]> {
  const adId = parseInput(advertisementIdSchema, id, 'advertisement id');
  const rows = await guard(site, `status of ${adId}`, () =>
    clientDb(site).selectFrom('advertisement_status').selectAll().where('advertisement_id', '=', adId).orderBy('client_id').execute(),
  );
  return rows.map((r) => ({
    clientId: r.client_id,
    state: clientStateSchema.parse(r.state),
    exitCode: r.exit_code === null ? null : Number(r.exit_code),
    rerun: Number(r.rerun),
    message: r.message,
    updatedAt: r.updated_at,
  }));
}
