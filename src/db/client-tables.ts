import type { Kysely } from 'kysely';
import type { SiteDb } from './open.js';
import type { Database } from './schema.js';

/** The tables of migration 004 (clients), as Kysely sees them. */
export interface ClientTable {
  id: string;
  name: string;
  /** SPKI PEM of the client's Ed25519 key. */
  public_key: string;
  site_code: string;
  boundary: string | null;
  ip: string | null;
  approved: number;
  registered_at: string;
  last_seen_at: string | null;
}

export interface ClientSettingTable {
  name: string;
  value: string;
}

export interface BoundaryTable {
  name: string;
  /** A CIDR (`10.1.0.0/16`) or an inclusive range (`10.1.0.1-10.1.0.99`). */
  range_text: string;
  site_code: string;
  mp_url: string | null;
  created_at: string;
}

export interface CollectionTable {
  name: string;
  created_at: string;
}

export interface CollectionMemberTable {
  collection: string;
  /** A client id or a client name. */
  member: string;
}

export interface CollectionRuleTable {
  collection: string;
  position: number;
  rule: string;
}

export interface AdvertisementTable {
  id: string;
  package_id: string;
  program: string;
  collection: string;
  available_at: string;
  mandatory_at: string | null;
  expires_at: string | null;
  rerun: number;
  created_at: string;
}

export interface AdvertisementStatusTable {
  advertisement_id: string;
  client_id: string;
  state: string;
  exit_code: number | null;
  rerun: number;
  message: string | null;
  updated_at: string;
}

export type ClientTables = {
  clients: ClientTable;
  client_settings: ClientSettingTable;
  boundaries: BoundaryTable;
  collections: CollectionTable;
  collection_members: CollectionMemberTable;
  collection_rules: CollectionRuleTable;
  advertisements: AdvertisementTable;
  advertisement_status: AdvertisementStatusTable;
};

export type ClientDb = Kysely<Database & ClientTables>;

export function clientDb(site: SiteDb): ClientDb {
  return site.db.withTables<ClientTables>();
}

/** Every change to what a client's policy says moves this counter; the management point watches it. */
export async function bumpPolicyVersion(db: ClientDb): Promise<void> {
  await db
    .updateTable('counters')
    .set((eb) => ({ value: eb('value', '+', 1) }))
    .where('name', '=', 'client_policy')
    .execute();
}

export async function policyVersion(site: SiteDb): Promise<number> {
  const row = await site.db.selectFrom('counters').select('value').where('name', '=', 'client_policy').executeTakeFirst();
  return Number(row?.value ?? 0);
}
