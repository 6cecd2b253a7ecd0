import { z } from 'zod';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { parseInput } from './values.js';

/** One row the change-log triggers wrote. objectKey is the package id. */
export interface Change {
  id: number;
  table: string;
  objectKey: string;
  op: 'insert' | 'update' | 'delete';
  time: string;
}

const cursorSchema = z.number().int().min(0);
const opSchema = z.enum(['insert', 'update', 'delete']);

/**
 * Changes after a cursor, oldest first. The database monitor reads a batch,
 * writes its wake-up files, then acknowledges: a crash in between repeats
 * wake-ups (harmless) and never loses one.
 */
export async function readChanges(site: SiteDb, afterId = 0, limit = 500): Promise<Change[]> {
  const after = parseInput(cursorSchema, afterId, 'change cursor');
  const max = parseInput(z.number().int().min(1).max(10_000), limit, 'change batch size');
  const rows = await guard(site, 'change log', () =>
    site.db.selectFrom('change_log').selectAll().where('id', '>', after).orderBy('id').limit(max).execute(),
  );
  return rows.map((r) => ({
    id: Number(r.id),
    table: r.table_name,
    objectKey: r.object_key,
    op: opSchema.parse(r.op),
    time: r.time,
  }));
}

/** Deletes every change up to and including uptoId; returns how many. */
export async function ackChanges(site: SiteDb, uptoId: number): Promise<number> {
  const upto = parseInput(cursorSchema, uptoId, 'change cursor');
  const result = await guard(site, 'change log', () =>
    site.db.deleteFrom('change_log').where('id', '<=', upto).executeTakeFirst(),
  );
  return Number(result.numDeletedRows);
}

/**
 * Deletes exactly these changes; returns how many. Unlike ackChanges it never
 * removes a row the caller has not seen: on PostgreSQL ids are handed out when
 * a row is inserted, not when its transaction commits, so a change with a
 * lower id than one already read may still become visible.
 */
export async function ackChangeIds(site: SiteDb, ids: readonly number[]): Promise<number> {
  const list = parseInput(z.array(cursorSchema).max(10_000), [...ids], 'change ids');
  if (list.length === 0) return 0;
  const result = await guard(site, 'change log', () => site.db.deleteFrom('change_log').where('id', 'in', list).executeTakeFirst());
  return Number(result.numDeletedRows);
}
