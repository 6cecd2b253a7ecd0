import pg from 'pg';
import { type ColumnDefinitionBuilder, Kysely, PostgresDialect, type RawBuilder, sql } from 'kysely';
import type { ChangeSubscription, ChangeTriggerSpec, DbDialect, DbFailure } from './dialect.js';
import type { Database } from './schema.js';

export interface PostgresOptions {
  /** A libpq-style URL: postgres://user:password@host:port/database. */
  url: string;
  /** How long opening a connection may take before SITECAST_E_DB (default 10000 ms). */
  connectTimeoutMs?: number;
  /** Connections kept by the pool (default 10). */
  maxConnections?: number;
}

/** The channel the change-log triggers notify and the database monitor listens on. */
export const CHANGE_CHANNEL = 'sitecast_changes';

/** Any fixed number: every Sitecast process migrating the same database takes this advisory lock. */
const MIGRATION_LOCK_KEY = 7_301_715_227;

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  return name;
}

/** The URL as it may appear in messages and logs: no password, in the authority or the query. */
export function redactDsn(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return '<a PostgreSQL URL that does not parse>';
  }
  if (parsed.password !== '') parsed.password = '***';
  for (const key of [...parsed.searchParams.keys()]) {
    if (/pass|secret|key/i.test(key)) parsed.searchParams.set(key, '***');
  }
  return parsed.toString();
}

// pg returns int8 and numeric as strings; every count and bigint here fits a double.
const INT8 = 20;
const NUMERIC = 1700;
const TYPES = {
  getTypeParser: ((oid: number, format?: string) => {
    if ((oid === INT8 || oid === NUMERIC) && format !== 'binary') return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format as 'text');
  }) as typeof pg.types.getTypeParser,
};

/** now() in the same format as Date.prototype.toISOString(); clock_timestamp so each row gets its own time. */
const NOW = `to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"')`;

/** One function serves every table: the key column is the trigger's argument. */
const CHANGE_FUNCTION = `CREATE OR REPLACE FUNCTION sitecast_change_log() RETURNS trigger LANGUAGE plpgsql AS $fn$
DECLARE
  changed_key text;
BEGIN
  IF TG_OP = 'DELETE' THEN
    changed_key := to_jsonb(OLD) ->> TG_ARGV[0];
  ELSE
    changed_key := to_jsonb(NEW) ->> TG_ARGV[0];
  END IF;
  INSERT INTO change_log (table_name, object_key, op, time) VALUES (TG_TABLE_NAME, changed_key, lower(TG_OP), ${NOW});
  -- Delivered at commit, and not at all on rollback, like the row above.
  PERFORM pg_notify('${CHANGE_CHANNEL}', TG_TABLE_NAME);
  RETURN NULL;
END
$fn$`;

export function postgresDialect(options: PostgresOptions): DbDialect {
  const location = redactDsn(options.url);
  const connectionTimeoutMillis = options.connectTimeoutMs ?? 10_000;
  return {
    name: 'postgres',
    location,
    createKysely(): Kysely<Database> {
      const pool = new pg.Pool({
        connectionString: options.url,
        connectionTimeoutMillis,
        max: options.maxConnections ?? 10,
        types: TYPES,
      });
      // An idle connection dropped by the server must not crash the process; the next query reports it.
      pool.on('error', () => undefined);
      // Nor one dropped while checked out between two queries (inside a transaction, say): the
      // pool takes its own error listener off a client it hands out, and a client that emits
      // 'error' with no listener throws out of the event loop. The query in progress, or the
      // next one, still fails with the cause, and the pool discards the broken client.
      pool.on('connect', (client) => {
        client.on('error', () => undefined);
      });
      return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
    },
    autoIncrementPrimaryKey(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder {
      return column.primaryKey().generatedByDefaultAsIdentity();
    },
    bigIntegerType: 'bigint',
    changeTriggers(spec: ChangeTriggerSpec): RawBuilder<unknown>[] {
      const table = ident(spec.table);
      const key = ident(spec.keyColumn);
      const columns = spec.updateColumns.map(ident).join(', ');
      const trigger = (op: string, event: string): RawBuilder<unknown> =>
        sql.raw(
          `CREATE TRIGGER change_log_${table}_${op} AFTER ${event} ON ${table} FOR EACH ROW EXECUTE FUNCTION sitecast_change_log('${key}')`,
        );
      return [
        sql.raw(CHANGE_FUNCTION),
        trigger('insert', 'INSERT'),
        trigger('update', `UPDATE OF ${columns}`),
        trigger('delete', 'DELETE'),
      ];
    },
    async withMigrationLock<T>(db: Kysely<Database>, run: (db: Kysely<Database>) => Promise<T>): Promise<T> {
      // Session-level advisory locks belong to one connection: hold one for the whole run.
      return db.connection().execute(async (conn) => {
        await sql`SELECT pg_advisory_lock(${MIGRATION_LOCK_KEY})`.execute(conn);
        try {
          return await run(conn);
        } finally {
          await sql`SELECT pg_advisory_unlock(${MIGRATION_LOCK_KEY})`.execute(conn);
        }
      });
    },
    async subscribeChanges(onChange: () => void): Promise<ChangeSubscription> {
      const client = new pg.Client({ connectionString: options.url, connectionTimeoutMillis });
      let lost: ((err: Error) => void) | undefined;
      let closing: Promise<void> | undefined;
      let reported = false;
      const report = (err: Error): void => {
        if (reported || closing !== undefined) return;
        reported = true;
        lost?.(err);
      };
      client.on('notification', (message) => {
        if (message.channel === CHANGE_CHANNEL) onChange();
      });
      client.on('error', report);
      client.on('end', () => report(new Error('the notification connection ended')));
      try {
        await client.connect();
        await client.query(`LISTEN ${CHANGE_CHANNEL}`);
      } catch (err) {
        closing = client.end().catch(() => undefined);
        throw err;
      }
      return {
        onLost(listener: (err: Error) => void): void {
          lost = listener;
        },
        close(): Promise<void> {
          closing ??= client.end().catch(() => undefined);
          return closing;
        },
      };
    },
    classifyError(err: unknown): DbFailure | undefined {
      const code = (err as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string') return undefined;
      if (code === '23505') return 'unique';
      if (code === '23503') return 'foreign_key';
      if (code === '23514' || code === '23502') return 'check';
      // serialization failure, deadlock, lock not available
      if (code === '40001' || code === '40P01' || code === '55P03') return 'busy';
      return undefined;
    },
  };
}
