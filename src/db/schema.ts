import type { Generated } from 'kysely';

/**
 * The tables as Kysely sees them. Column types are the lowest common
 * denominator of SQLite and PostgreSQL: text, integer, and ISO-8601 UTC
 * timestamps stored as text (they sort correctly as strings).
 */
export interface Database {
  schema_migrations: SchemaMigrationTable;
  counters: CounterTable;
  site: SiteTable;
  packages: PackageTable;
  programs: ProgramTable;
  dps: DpTable;
  package_targets: PackageTargetTable;
  package_dp_status: PackageDpStatusTable;
  status_messages: StatusMessageTable;
  admin_tokens: AdminTokenTable;
  change_log: ChangeLogTable;
  dp_refresh_requests: DpRefreshRequestTable;
}

export interface SchemaMigrationTable {
  version: number;
  name: string;
  applied_at: string;
}

export interface CounterTable {
  name: string;
  value: number;
}

export interface SiteTable {
  code: string;
  name: string;
  parent_code: string | null;
  public_key: string | null;
  /** 1 for the site this database belongs to, 0 for parents and children. */
  is_local: number;
  created_at: string;
  updated_at: string;
}

export interface PackageTable {
  id: string;
  name: string;
  version: string;
  source_path: string;
  priority: string;
  source_version: number;
  manifest_sha256: string | null;
  /** Why the source folder of `source_problem_version` could not be used (null once a version was ingested). */
  source_problem: string | null;
  source_problem_version: number | null;
  /** (migration 12) an `.ICO` file inside the source folder, or null for the default icon. */
  icon: string | null;
  created_at: string;
  updated_at: string;
}

export interface ProgramTable {
  package_id: string;
  name: string;
  command_line: string;
  max_run_time_seconds: number;
}

export interface DpTable {
  site_code: string;
  name: string;
  path: string;
  url: string | null;
  created_at: string;
}

export interface PackageTargetTable {
  package_id: string;
  site_code: string;
  dp_name: string;
}

export interface PackageDpStatusTable {
  package_id: string;
  site_code: string;
  dp_name: string;
  state: string;
  /** Source version the DP holds; 0 while it holds none. */
  source_version: number;
  retry_count: number;
  next_attempt: string | null;
  last_message: string | null;
  updated_at: string;
}

export interface StatusMessageTable {
  id: Generated<number>;
  time: string;
  severity: string;
  component: string;
  site_code: string;
  package_id: string | null;
  text: string;
}

export interface AdminTokenTable {
  id: string;
  token_sha256: string;
  role: string;
  label: string | null;
  created_at: string;
}

export interface ChangeLogTable {
  id: Generated<number>;
  table_name: string;
  object_key: string;
  op: string;
  time: string;
}

/** Migration 005: a DP of this site whose copy of a package is to be made again. */
export interface DpRefreshRequestTable {
  package_id: string;
  site_code: string;
  dp_name: string;
  requested_at: string;
}
