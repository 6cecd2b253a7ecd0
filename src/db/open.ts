import type { Kysely } from 'kysely';
import { SitecastError, isSitecastError } from '../errors.js';
import type { DbDialect } from './dialect.js';
import { checkVersion, migrate } from './migrate.js';
import type { Migration } from './migration.js';
import { MIGRATIONS } from './migrations/index.js';
import type { Database } from './schema.js';
import { postgresDialect } from './postgres.js';
import { sqliteDialect } from './sqlite.js';

/**
 * The data layer every component uses: a Kysely handle on a migrated schema
 * and the dialect it runs on. Repository functions (packages.ts, dps.ts, …)
 * take a SiteDb and are written once for every dialect.
 */
export interface SiteDb {
  readonly db: Kysely<Database>;
  readonly dialect: DbDialect;
  readonly schemaVersion: number;
  /** Idempotent. */
  close(): Promise<void>;
}

export type DbLocation =
  | { kind: 'sqlite'; path: string; busyTimeoutMs?: number }
  /** url: postgres://user:password@host:port/database; the password never appears in messages. */
  | { kind: 'postgres'; url: string; connectTimeoutMs?: number };

export interface OpenOptions {
  /** Replaces the built-in migration list (tests; restore, which migrates to a backup's version). */
  migrations?: readonly Migration[];
  /**
   * false: open as it is, without migrating (a backup reading a site that an
   * older server may be running); a schema newer than this build is still refused.
   */
  migrate?: boolean;
}

function dialectFor(location: DbLocation): DbDialect {
  if (location.kind === 'postgres') {
    return postgresDialect(
      location.connectTimeoutMs === undefined ? { url: location.url } : { url: location.url, connectTimeoutMs: location.connectTimeoutMs },
    );
  }
  return sqliteDialect(
    location.busyTimeoutMs === undefined ? { path: location.path } : { path: location.path, busyTimeoutMs: location.busyTimeoutMs },
  );
}

function describe(err: unknown): string {
  // node-postgres puts the reason of a failed connect into an AggregateError's parts.
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map((e: unknown) => String(e)).join('; ');
  const text = String(err);
  return text === 'Error' || text === 'AggregateError' ? 'connection failed' : text;
}

/** Opens (creating if needed) the site database and migrates it to the newest schema. */
export async function openSiteDb(location: DbLocation, options: OpenOptions = {}): Promise<SiteDb> {
  const dialect = dialectFor(location);
  const db = dialect.createKysely();
  let result;
  try {
    const migrations = options.migrations ?? MIGRATIONS;
    result = options.migrate === false ? await checkVersion(db, dialect, migrations.length) : await migrate(db, dialect, migrations);
  } catch (err) {
    await db.destroy().catch(() => undefined);
    if (isSitecastError(err)) throw err;
    throw new SitecastError('SITECAST_E_DB', `cannot open the site database ${dialect.location}: ${describe(err)}`, {
      ...(dialect.name === 'postgres' ? { hint: 'check that the PostgreSQL server runs, is reachable, and accepts this user' } : {}),
      cause: err,
    });
  }
  let closing: Promise<void> | undefined;
  return {
    db,
    dialect,
    schemaVersion: result.to,
    close(): Promise<void> {
      closing ??= db.destroy();
      return closing;
    },
  };
}
