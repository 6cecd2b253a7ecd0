import type { Kysely } from 'kysely';
import type { SiteDb } from './open.js';
import type { Database, SiteTable } from './schema.js';

/** The tables and columns of migration 003 (hierarchy), as Kysely sees them. */
export interface JoinTokenTable {
  token_sha256: string;
  child_code: string;
  expires_at: string;
  used_at: string | null;
  created_at: string;
}

/** What a child site reported it holds: the base the next delta is built against. */
export interface SiteHoldingTable {
  site_code: string;
  package_id: string;
  source_version: number;
  manifest_sha256: string;
  updated_at: string;
}

/** The last package bundle handed to a sender for a child site. */
export interface ReplicationSentTable {
  site_code: string;
  package_id: string;
  source_version: number;
  definition_sha256: string;
  send_id: string;
  bytes: number;
  sent_at: string;
}

/** A version this site could not take for want of its base (migration 008): the parent is asked for the whole version. */
export interface WantedVersionTable {
  package_id: string;
  source_version: number;
  manifest_sha256: string;
  since: string;
}

/** The newest package bundle applied from the parent, per package (migration 11): an older one is skipped. */
export interface ReceivedDefinitionTable {
  package_id: string;
  source_version: number;
  created: string;
  bundle_id: string;
  applied_at: string;
}

export type HierarchyTables = {
  site: SiteTable & { url: string | null };
  join_tokens: JoinTokenTable;
  site_holdings: SiteHoldingTable;
  replication_sent: ReplicationSentTable;
  wanted_versions: WantedVersionTable;
  received_definitions: ReceivedDefinitionTable;
};

/** The site database with the hierarchy's tables in view. */
export function hierarchyDb(site: SiteDb): Kysely<Database & HierarchyTables> {
  return site.db.withTables<HierarchyTables>();
}
