import type { Kysely } from 'kysely';
import type { DbDialect } from './dialect.js';

/**
 * One step of the schema. A migration sees the database as it was when the
 * migration was written, so it uses only the schema builder and raw SQL, never
 * the current table types.
 */
export interface Migration {
  readonly version: number;
  readonly name: string;
  up(db: Kysely<unknown>, dialect: DbDialect): Promise<void>;
}
