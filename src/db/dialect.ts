import type { ColumnDefinitionBuilder, Kysely, RawBuilder } from 'kysely';
import type { Database } from './schema.js';

/** A table whose changes the database monitor must see. */
export interface ChangeTriggerSpec {
  table: string;
  /** Column whose value becomes change_log.object_key (always a package id today). */
  keyColumn: string;
  /** Only updates of these columns are recorded (bookkeeping columns are left out). */
  updateColumns: readonly string[];
}

/** A live feed of change-log writes; see DbDialect.subscribeChanges. */
export interface ChangeSubscription {
  /** Called once when the feed breaks (connection lost); the subscriber falls back to polling or resubscribes. */
  onLost(listener: (err: Error) => void): void;
  /** Idempotent. */
  close(): Promise<void>;
}

export type DbFailure = 'unique' | 'foreign_key' | 'check' | 'busy';

/**
 * Everything that differs between SQLite and PostgreSQL, and nothing else.
 * Schema, migrations and queries are written once against Kysely; an
 * implementation of this interface supplies the connection, the few DDL
 * fragments SQL does not standardise, and the meaning of driver errors.
 */
export interface DbDialect {
  readonly name: 'sqlite' | 'postgres';
  /** Where the data lives, for messages (a file path; a URL without password). */
  readonly location: string;
  createKysely(): Kysely<Database>;
  /** Makes a column an auto-incremented integer primary key. */
  autoIncrementPrimaryKey(column: ColumnDefinitionBuilder): ColumnDefinitionBuilder;
  /** Column type for counters that may pass 2^31 (bytes sent). */
  readonly bigIntegerType: 'integer' | 'bigint';
  /** Statements that install change_log triggers for one table. */
  changeTriggers(spec: ChangeTriggerSpec): RawBuilder<unknown>[];
  /**
   * Runs the migrations holding a lock no other process can hold at the same
   * time. Absent: the per-step transaction and its version re-check suffice.
   */
  withMigrationLock?<T>(db: Kysely<Database>, run: (db: Kysely<Database>) => Promise<T>): Promise<T>;
  /**
   * Calls onChange soon after a transaction that wrote change_log commits.
   * Absent: the database monitor polls the change log.
   */
  subscribeChanges?(onChange: () => void): Promise<ChangeSubscription>;
  /** Names a driver error, or undefined when it has no portable meaning. */
  classifyError(err: unknown): DbFailure | undefined;
}
