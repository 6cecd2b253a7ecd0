import { randomBytes } from 'node:crypto';
import { lstat, open, readdir, rename, rm } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import type { Kysely } from 'kysely';
import { openSiteDb, type SiteDb } from '../../db/index.js';
import { redactDsn } from '../../db/postgres.js';
import { SitecastError, ioError, isSitecastError } from '../../errors.js';
import { isTempName } from '../../fs/atomic.js';
import { loadSiteConfig, siteDbLocation } from '../config.js';
import { readingSiteLibraryForBackup } from '../library.js';
import { sitePaths } from '../layout.js';
import { BACKUP_FORMAT, BACKUP_MAGIC, BackupWriter, type CellValue } from './format.js';
import { TABLES, readPage, tableColumns } from './tables.js';

const gzipAsync = promisify(gzip);

/** Rows per `rows` frame (and per query): small enough to hold, large enough to be few. */
const PAGE = 5000;

export interface BackupProgress {
  /** What is being done now ("database", "files"). */
  phase: string;
  done: number;
  total: number;
}

export interface BackupOptions {
  /** Version string recorded in the backup. */
  sitecast: string;
  onProgress?: (p: BackupProgress) => void;
}

export interface BackupResult {
  file: string;
  bytes: number;
  schemaVersion: number;
  tables: Record<string, number>;
  files: number;
  chunks: number;
}

/**
 * The folders of a site root a backup carries, in this order. Within the
 * library, manifests before chunks: a manifest is saved only after its chunks
 * are, so every manifest copied finds its chunks in the later listing. Left
 * out: site.db (carried as rows), logs/, site.url, library/tmp/.
 */
const TREES = ['library/library.json', 'library/manifests', 'library/chunks', 'keys', 'admin.token', 'smspkg', 'state', 'mp/pkginfo', 'inboxes'];

/**
 * Writes a backup of the site at `root` to `out`: first a snapshot of every
 * table read in one transaction, then the files. Safe while the site runs: on
 * SQLite a WAL reader blocks no writer; on PostgreSQL a repeatable-read
 * transaction sees one moment. The file appears under its name only when
 * complete.
 */
export async function backupSite(rootArg: string, outArg: string, options: BackupOptions): Promise<BackupResult> {
  const root = resolve(rootArg);
  const out = resolve(outArg);
  const config = await loadSiteConfig(root);
  const paths = sitePaths(root);
  const site = await openSiteDb(siteDbLocation(config, paths), { migrate: false });
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  let handle;
  try {
    handle = await open(tmp, 'wx', 0o600);
  } catch (err) {
    await site.close();
    throw ioError(`cannot create ${tmp}`, err);
  }
  try {
    const w = new BackupWriter(handle);
    await w.write(Buffer.from(BACKUP_MAGIC));
    const stored = config.database.kind === 'postgres' ? { ...config, database: { kind: 'postgres', url: redactDsn(config.database.url) } } : config;
    await w.frame({
      kind: 'site',
      format: BACKUP_FORMAT,
      createdAt: new Date().toISOString(),
      sitecast: options.sitecast,
      site: config.code,
      schemaVersion: site.schemaVersion,
      database: site.dialect.name,
      config: stored,
      bytes: 0,
    });
    // The running server collects old versions from the library: not from the database snapshot until the last chunk is copied.
    const { tables, counts } = await readingSiteLibraryForBackup(paths, async () => {
      let tables: Record<string, number>;
      try {
        tables = await dumpDatabase(site, w, options.onProgress);
      } finally {
        await site.close();
      }
      const counts = { files: 0, chunks: 0 };
      const files: string[] = [];
      for (const tree of TREES) await listTree(root, tree, files);
      for (const rel of files) {
        if (await copyFile(w, root, rel)) {
          counts.files++;
          if (rel.startsWith('library/chunks/')) counts.chunks++;
        }
        options.onProgress?.({ phase: 'files', done: counts.files, total: files.length });
      }
      return { tables, counts };
    });
    await w.frame({ kind: 'end', tables, files: counts.files, chunks: counts.chunks, bytes: 0 });
    await w.finish();
    await handle.sync();
    await handle.close();
    handle = undefined;
    await rename(tmp, out);
    return { file: out, bytes: w.bytes, schemaVersion: site.schemaVersion, tables, ...counts };
  } catch (err) {
    await handle?.close().catch(() => undefined);
    await rm(tmp, { force: true }).catch(() => undefined);
    await site.close();
    if (isSitecastError(err)) throw err;
    throw ioError(`cannot write the backup ${out}`, err);
  }
}

async function dumpDatabase(site: SiteDb, w: BackupWriter, onProgress: BackupOptions['onProgress']): Promise<Record<string, number>> {
  const tables: Record<string, number> = {};
  let builder = site.db.transaction();
  // One snapshot for every table. SQLite's deferred BEGIN takes it at the first read and WAL keeps it.
  if (site.dialect.name === 'postgres') builder = builder.setIsolationLevel('repeatable read').setAccessMode('read only');
  await builder.execute(async (trx) => {
    const db = trx as unknown as Kysely<unknown>;
    const present = await tableColumns(db, site.dialect);
    const specs = TABLES.filter((t) => present.has(t.name));
    for (const [i, spec] of specs.entries()) {
      const columns = present.get(spec.name) ?? [];
      const keyAt = spec.key.map((k) => columns.indexOf(k));
      if (keyAt.some((k) => k < 0)) throw new SitecastError('SITECAST_E_DB', `table ${spec.name} lacks its key column(s) ${spec.key.join(', ')}`);
      let count = 0;
      let after: CellValue[] | undefined;
      for (;;) {
        const rows = await readPage(db, spec, columns, { after, limit: PAGE });
        // Every table gets at least one frame, so a restore knows it was in the backup even when empty.
        if (rows.length > 0 || count === 0) {
          const body = await gzipAsync(Buffer.from(rows.map((r) => JSON.stringify(r)).join('\n')));
          await w.frame({ kind: 'rows', table: spec.name, columns, rows: rows.length, bytes: body.length }, body);
        }
        count += rows.length;
        const last = rows[rows.length - 1];
        if (rows.length < PAGE || last === undefined) break;
        after = keyAt.map((k) => last[k] ?? null);
      }
      tables[spec.name] = count;
      onProgress?.({ phase: 'database', done: i + 1, total: specs.length });
    }
  });
  return tables;
}

/** Regular files under root/rel (rel itself when it is a file), as posix paths relative to root, sorted. */
async function listTree(root: string, rel: string, out: string[]): Promise<void> {
  let stats;
  try {
    stats = await lstat(join(root, rel));
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`cannot read ${join(root, rel)}`, err);
  }
  if (stats.isFile()) {
    out.push(rel);
    return;
  }
  if (!stats.isDirectory()) return;
  let names: string[];
  try {
    names = (await readdir(join(root, rel))).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw ioError(`cannot read ${join(root, rel)}`, err);
  }
  for (const name of names) {
    // Writes in flight, a library's staging area, the markers of running collections and backups: garbage once their process is gone.
    if (isTempName(name) || (rel === 'library' && name === 'tmp') || (rel === 'state' && name === 'library')) continue;
    await listTree(root, `${rel}/${name}`, out);
  }
}

/**
 * Appends one file. Inbox files come and go while the site runs: one already
 * gone is skipped (false). An open file keeps its content even when renamed
 * over, and files here are only ever replaced whole, so the size read at open
 * holds.
 */
async function copyFile(w: BackupWriter, root: string, rel: string): Promise<boolean> {
  const path = join(root, rel);
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw ioError(`cannot read ${path}`, err);
  }
  try {
    const stats = await handle.stat();
    await w.frame({ kind: 'file', path: rel, mode: stats.mode & 0o777, bytes: stats.size });
    const buf = Buffer.alloc(Math.min(Math.max(stats.size, 1), 1 << 20));
    for (let at = 0; at < stats.size; ) {
      const { bytesRead } = await handle.read(buf, 0, Math.min(buf.length, stats.size - at), at);
      if (bytesRead === 0) throw new SitecastError('SITECAST_E_IO', `${path} shrank while it was backed up`);
      await w.write(buf.subarray(0, bytesRead));
      at += bytesRead;
    }
    return true;
  } finally {
    await handle.close();
  }
}
