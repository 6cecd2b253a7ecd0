import BetterSqlite3 from 'better-sqlite3';
import { type ColumnDefinitionBuilder, Kysely, type RawBuilder, SqliteDialect, sql } from 'kysely';
import { SitecastError } from '../errors.js';
import type { ChangeTriggerSpec, DbDialect, DbFailure } from './dialect.js';
import type { Database } from './schema.js';

export interface SqliteOptions {
  path: string;
  /** How long a writer waits for another one before SITECAST_E_DB (default 5000 ms). */
  busyTimeoutMs?: number;
}

const IDENTIFIER = /^[a-z_][a-z0-9_]*$/;

function ident(name: string): string {
  if (!IDENTIFIER.test(name)) throw new Error(`not a plain SQL identifier: ${name}`);
  return name;
}

/** SQLite's now() in the same format as Date.prototype.toISOString(). */
const NOW = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')";

export function sqliteDialect(options: SqliteOptions): DbDialect {
  return {
    name: 'sqlite',
    location: options.path,
    createKysely(): Kysely<Database> {
      let database: BetterSqlite3.Database;
      try {
        database = new BetterSqlite3(options.path, { fileMustExist: false });
        // WAL lets readers run beside the one writer; FULL makes each commit
        // durable before it returns, which the inbox crash argument relies on.
        database.pragma('journal_mode = WAL');
        database.pragma('synchronous = FULL');
        database.pragma('foreign_keys = ON');
        database.pragma(`busy_timeout = ${Math.max(0, Math.floor(options.busyTimeoutMs ?? 5000))}`);
      } catch (err) {
        throw new SitecastError('SITECAST_E_DB', `cannot open the site database ${options.path}: ${String(err)}`, {
          cause: err,
        });
      }
      return new Kysely<Database>({ dialect: new SqliteDialect({ database }) });
    },
    autoIncrementPrimaryKey(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder {
      return column.primaryKey().autoIncrement();
    },
    // SQLite's INTEGER is already 64-bit.
    bigIntegerType: 'integer',
    changeTriggers(spec: ChangeTriggerSpec): RawBuilder<unknown>[] {
      const table = ident(spec.table);
      const key = ident(spec.keyColumn);
      const columns = spec.updateColumns.map(ident).join(', ');
      const insertRow = (op: string, row: 'NEW' | 'OLD'): string =>
        `INSERT INTO change_log (table_name, object_key, op, time) VALUES ('${table}', ${row}.${key}, '${op}', ${NOW});`;
      return [
        sql.raw(`CREATE TRIGGER change_log_${table}_insert AFTER INSERT ON ${table} BEGIN ${insertRow('insert', 'NEW')} END`),
        sql.raw(
          `CREATE TRIGGER change_log_${table}_update AFTER UPDATE OF ${columns} ON ${table} BEGIN ${insertRow('update', 'NEW')} END`,
        ),
        sql.raw(`CREATE TRIGGER change_log_${table}_delete AFTER DELETE ON ${table} BEGIN ${insertRow('delete', 'OLD')} END`),
      ];
    },
    classifyError(err: unknown): DbFailure | undefined {
      const code = (err as { code?: unknown } | undefined)?.code;
      if (typeof code !== 'string') return undefined;
      if (code === 'SQLITE_CONSTRAINT_PRIMARYKEY' || code === 'SQLITE_CONSTRAINT_UNIQUE') return 'unique';
      if (code === 'SQLITE_CONSTRAINT_FOREIGNKEY') return 'foreign_key';
      if (code === 'SQLITE_CONSTRAINT_CHECK' || code === 'SQLITE_CONSTRAINT_NOTNULL') return 'check';
      if (code.startsWith('SQLITE_BUSY') || code.startsWith('SQLITE_LOCKED')) return 'busy';
      return undefined;
    },
  };
}
