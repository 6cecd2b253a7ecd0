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
  /** Statements that install change_log triggers for one table. */
  changeTriggers(spec: ChangeTriggerSpec): RawBuilder<unknown>[];
  /** Names a driver error, or undefined when it has no portable meaning. */
  classifyError(err: unknown): DbFailure | undefined;
}
