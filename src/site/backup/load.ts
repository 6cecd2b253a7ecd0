import { promisify } from 'node:util';
import { gunzip } from 'node:zlib';
import { type Kysely, sql } from 'kysely';
import { openSiteDb, type SiteDb } from '../../db/index.js';
import { postgresDialect, redactDsn } from '../../db/postgres.js';
import { SitecastError, isSitecastError } from '../../errors.js';
import { type CellValue, type Frame, type FrameReader, type RowsFrame, badBackup, rowSchema } from './format.js';
import { TABLES, deleteAll, fixIdentity, insertRows, tableColumns } from './tables.js';

const gunzipAsync = promisify(gunzip);

/**
 * Restores the rows frames that follow the site frame into a database freshly
 * migrated to the backup's schema version, in one transaction: rows the
 * migrations seeded (counters, settings) are replaced, ids are kept, and
 * PostgreSQL identity sequences are moved past them. Returns the row counts
 * and the first frame after the rows.
 */
export async function loadRows(
  site: SiteDb,
  input: { reader: FrameReader; file: string; onTable?: (table: string, rows: number) => void },
): Promise<{ tables: Record<string, number>; next: Frame; manifests: Set<string> }> {
  const { reader, file, onTable } = input;
  const trx = await site.db.startTransaction().execute();
  try {
    const db = trx as unknown as Kysely<unknown>;
    const present = await tableColumns(db, site.dialect);
    const specs = TABLES.filter((t) => present.has(t.name));
    for (const spec of [...specs].reverse()) await deleteAll(db, spec.name);
    const tables: Record<string, number> = {};
    const manifests = new Set<string>();
    let position = 0;
    let frame = await reader.next();
    for (; frame.kind === 'rows'; frame = await reader.next()) {
      const table = frame.table;
      const at = specs.findIndex((s) => s.name === table);
      if (at < 0) throw badBackup(file, `it holds rows of table ${frame.table}, which its schema version does not have`);
      if (at < position) throw badBackup(file, `the rows of table ${frame.table} are out of order`);
      position = at;
      const known = present.get(frame.table) ?? [];
      const unknown = frame.columns.find((c) => !known.includes(c));
      if (unknown !== undefined) throw badBackup(file, `table ${frame.table} has no column ${unknown} at this schema version`);
      // The change triggers fired while the other tables were restored; the backup's own change log replaces what they wrote.
      if (frame.table === 'change_log' && tables.change_log === undefined) await deleteAll(db, 'change_log');
      const rows = await parseRows(reader, frame, file);
      await insertRows(db, frame, rows);
      if (frame.table === 'packages') {
        const i = frame.columns.indexOf('manifest_sha256');
        for (const row of rows) if (typeof row[i] === 'string') manifests.add(row[i]);
      }
      tables[frame.table] = (tables[frame.table] ?? 0) + rows.length;
      onTable?.(frame.table, tables[frame.table] ?? 0);
    }
    const missing = specs.find((s) => tables[s.name] === undefined);
    if (missing !== undefined) throw badBackup(file, `table ${missing.name} is missing from it`);
    for (const spec of specs) await fixIdentity(db, site.dialect, spec);
    await trx.commit().execute();
    return { tables, next: frame, manifests };
  } catch (err) {
    await trx.rollback().execute().catch(() => undefined);
    if (isSitecastError(err)) throw err;
    throw new SitecastError('SITECAST_E_DB', `cannot restore the rows into ${site.dialect.location}: ${String(err)}`, { cause: err });
  }
}

async function parseRows(reader: FrameReader, frame: RowsFrame, file: string): Promise<CellValue[][]> {
  let text: string;
  try {
    text = (await gunzipAsync(await reader.body(frame.bytes))).toString('utf8');
  } catch (err) {
    if (isSitecastError(err)) throw err;
    throw badBackup(file, `the rows of table ${frame.table} do not decompress`);
  }
  const lines = text === '' ? [] : text.split('\n');
  if (lines.length !== frame.rows) throw badBackup(file, `table ${frame.table}: ${lines.length} rows where its frame says ${frame.rows}`);
  return lines.map((line) => {
    let parsed;
    try {
      parsed = rowSchema.safeParse(JSON.parse(line));
    } catch {
      throw badBackup(file, `a row of table ${frame.table} is not JSON`);
    }
    if (!parsed.success || parsed.data.length !== frame.columns.length) throw badBackup(file, `a row of table ${frame.table} does not match its columns`);
    return parsed.data;
  });
}

/**
 * Restoring onto PostgreSQL: the database must not hold a Sitecast site
 * already. Opening it with no migrations connects (an unreachable server is
 * SITECAST_E_DB naming the URL without its password) and refuses any schema
 * version above 0.
 */
export async function claimPostgres(url: string): Promise<void> {
  const where = redactDsn(url);
  const taken = (): SitecastError =>
    new SitecastError('SITECAST_E_SITE_EXISTS', `the database ${where} already holds a Sitecast site database`, {
      hint: 'restore into an empty database of its own; nothing was changed',
    });
  let probe: SiteDb;
  try {
    probe = await openSiteDb({ kind: 'postgres', url }, { migrations: [] });
  } catch (err) {
    if (isSitecastError(err, 'SITECAST_E_DB_TOO_NEW')) throw taken();
    throw err;
  }
  try {
    const present = await tableColumns(probe.db as unknown as Kysely<unknown>, probe.dialect);
    if (TABLES.some((t) => present.has(t.name))) throw taken();
  } finally {
    await probe.close();
  }
}

/** Undoes a failed restore onto PostgreSQL: drops what the migrations created (the database was empty of them before). */
export async function dropPostgresSchema(url: string): Promise<void> {
  const db = postgresDialect({ url }).createKysely() as unknown as Kysely<unknown>;
  try {
    const names = ['schema_migrations', ...TABLES.map((t) => t.name)].join(', ');
    await sql.raw(`DROP TABLE IF EXISTS ${names} CASCADE`).execute(db);
    await sql.raw('DROP FUNCTION IF EXISTS sitecast_change_log() CASCADE').execute(db);
  } finally {
    await db.destroy();
  }
}
