import { randomBytes } from 'node:crypto';
import { mkdir, open, rm, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { MIGRATIONS, openSiteDb, type DbLocation } from '../../db/index.js';
import { redactDsn } from '../../db/postgres.js';
import { flushFileSystem, hasManifest } from '../../content/library.js';
import { verifyLibrary } from '../../content/verify.js';
import { SitecastError, ioError, isSitecastError } from '../../errors.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import { type SiteConfig, parseDatabaseUrl, siteConfigSchema } from '../config.js';
import { assertEmptyOrAbsent, moveIntoPlace } from '../init.js';
import { siteFolders, sitePaths } from '../layout.js';
import type { BackupProgress } from './backup.js';
import { BACKUP_FORMAT, type EndFrame, type FileFrame, type Frame, type SiteFrame, FrameReader, badBackup, verifyBackupFile } from './format.js';
import { claimPostgres, dropPostgresSchema, loadRows } from './load.js';
import { writeFully } from '../../fs/write.js';

/** The backup being read, and where progress goes. */
interface Input {
  reader: FrameReader;
  file: string;
  onProgress: RestoreOptions['onProgress'];
}

export interface RestoreOptions {
  /** A postgres:// URL of an empty database; default SQLite in `<root>/site.db`. */
  database?: string;
  onProgress?: (p: BackupProgress) => void;
}

export interface RestoreResult {
  root: string;
  site: string;
  /** Where the database is (a file path; a URL without password). */
  database: string;
  schemaVersion: number;
  tables: Record<string, number>;
  files: number;
  chunks: number;
}

/** Where files of a backup may go: the trees backup.ts copies, nothing else. */
const ALLOWED_TOP = new Set(['keys', 'admin.token', 'library', 'smspkg', 'state', 'mp', 'inboxes']);

function checkPath(file: string, rel: string): void {
  const parts = rel.split('/');
  const ok =
    ALLOWED_TOP.has(parts[0] ?? '') &&
    parts.every((p) => p !== '' && p !== '.' && p !== '..' && !p.includes('\\') && !p.includes('\0')) &&
    (parts[0] === 'admin.token') === (parts.length === 1);
  if (!ok) throw badBackup(file, `it names a file outside the site root's backed-up folders: ${JSON.stringify(rel)}`);
}

async function openBackup(file: string): Promise<Awaited<ReturnType<typeof open>>> {
  let handle;
  try {
    handle = await open(file, 'r');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new SitecastError('SITECAST_E_NOT_FOUND', `no backup file ${file}`);
    throw ioError(`cannot read ${file}`, err);
  }
  if (!(await handle.stat()).isFile()) {
    await handle.close();
    throw badBackup(file, 'not a Sitecast backup (it is not a file)');
  }
  return handle;
}

function checkHead(file: string, head: SiteFrame, database: SiteConfig['database']): SiteConfig {
  if (head.format !== BACKUP_FORMAT) {
    throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `${file} has backup format ${head.format}; this build reads format ${BACKUP_FORMAT}`, {
      hint: 'restore it with the Sitecast version that made it, or a newer one',
    });
  }
  const known = MIGRATIONS.length;
  if (head.schemaVersion > known) {
    throw new SitecastError(
      'SITECAST_E_DB_TOO_NEW',
      `${file} holds a site database of schema version ${head.schemaVersion} (made by Sitecast ${head.sitecast}); this Sitecast knows versions up to ${known}`,
      { hint: 'restore it with the Sitecast version that made it, or a newer one; nothing was restored' },
    );
  }
  const parsed = siteConfigSchema.safeParse({ ...head.config, database });
  if (!parsed.success || parsed.data.code !== head.site) throw badBackup(file, 'its site.json does not parse');
  return parsed.data;
}

/**
 * Restores a backup into a new site root (and, with `database`, an empty
 * PostgreSQL database). The whole file is checked against its checksum before
 * anything is written; the root is built in a hidden sibling folder and
 * renamed into place only when the database is restored and the content
 * library verified, so a failure leaves nothing behind.
 */
export async function restoreSite(fileArg: string, rootArg: string, options: RestoreOptions = {}): Promise<RestoreResult> {
  const file = resolve(fileArg);
  const root = resolve(rootArg);
  const database: SiteConfig['database'] = options.database === undefined ? { kind: 'sqlite', file: 'site.db' } : parseDatabaseUrl(options.database);
  await assertEmptyOrAbsent(root);
  const handle = await openBackup(file);
  try {
    const end = await verifyBackupFile(handle, file, (done, total) => options.onProgress?.({ phase: 'checksum', done, total }));
    const reader = new FrameReader(handle, file, end);
    const input: Input = { reader, file, onProgress: options.onProgress };
    const head = await reader.next();
    if (head.kind !== 'site') throw badBackup(file, 'it does not begin with a site frame');
    const config = checkHead(file, head, database);
    const staging = join(dirname(root), `.${basename(root)}.restore-${randomBytes(6).toString('hex')}`);
    const paths = sitePaths(staging);
    let claimed: string | undefined;
    try {
      await mkdir(dirname(root), { recursive: true });
      await mkdir(staging, { mode: 0o755 });
      await mkdir(paths.keys, { mode: 0o700 });
      for (const folder of siteFolders(paths)) await mkdir(folder, { recursive: true });
      const location: DbLocation = database.kind === 'postgres' ? { kind: 'postgres', url: database.url } : { kind: 'sqlite', path: paths.database };
      if (database.kind === 'postgres') {
        await claimPostgres(database.url);
        claimed = database.url;
      }
      const site = await openSiteDb(location, { migrations: MIGRATIONS.slice(0, head.schemaVersion) });
      let loaded;
      try {
        loaded = await loadRows(site, { reader, file, onTable: () => options.onProgress?.({ phase: 'restore', done: reader.position, total: end }) });
      } finally {
        await site.close();
      }
      const counts = await restoreFiles(input, staging, loaded.next);
      const endFrame = counts.end;
      for (const [table, rows] of Object.entries(loaded.tables)) {
        if (endFrame.tables[table] !== rows) throw badBackup(file, `table ${table}: ${rows} rows restored, its end frame says ${endFrame.tables[table] ?? 'none'}`);
      }
      if (endFrame.files !== counts.files) throw badBackup(file, `${counts.files} files restored, its end frame says ${endFrame.files}`);
      if (!reader.done) throw badBackup(file, 'it holds data after its end frame');
      // A database URL may carry a password: then only the site's user may read site.json.
      await writeFileAtomic(paths.config, `${JSON.stringify(config, null, 2)}\n`, { mode: database.kind === 'postgres' ? 0o600 : 0o644 });
      await checkLibrary(input, paths.library, loaded.manifests);
      await flushFileSystem(staging);
      await moveIntoPlace(staging, root);
      return {
        root,
        site: config.code,
        database: database.kind === 'postgres' ? redactDsn(database.url) : sitePaths(root).database,
        schemaVersion: head.schemaVersion,
        tables: loaded.tables,
        files: counts.files,
        chunks: counts.chunks,
      };
    } catch (err) {
      await rm(staging, { recursive: true, force: true }).catch(() => undefined);
      if (claimed !== undefined) await dropPostgresSchema(claimed).catch(() => undefined);
      if (isSitecastError(err)) throw err;
      throw ioError(`cannot restore into ${root}`, err);
    }
  } finally {
    await handle.close();
  }
}

async function restoreFiles(
  input: Input,
  staging: string,
  first: Frame,
): Promise<{ files: number; chunks: number; end: EndFrame }> {
  const { reader, file, onProgress } = input;
  let files = 0;
  let chunks = 0;
  for (let frame = first; ; frame = await reader.next()) {
    if (frame.kind === 'end') return { files, chunks, end: frame };
    if (frame.kind !== 'file') throw badBackup(file, `a ${frame.kind} frame where files were expected`);
    await writeOne(input, staging, frame);
    files++;
    if (frame.path.startsWith('library/chunks/')) chunks++;
    onProgress?.({ phase: 'restore', done: reader.position, total: reader.end });
  }
}

async function writeOne(input: Input, staging: string, frame: FileFrame): Promise<void> {
  const { reader, file } = input;
  checkPath(file, frame.path);
  const target = join(staging, ...frame.path.split('/'));
  await mkdir(dirname(target), { recursive: true });
  let out;
  try {
    out = await open(target, 'wx', frame.mode);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') throw badBackup(file, `it holds ${frame.path} twice`);
    throw ioError(`cannot create ${target}`, err);
  }
  try {
    for await (const piece of reader.pieces(frame.bytes)) await writeFully(out, piece);
    await out.chmod(frame.mode);
  } finally {
    await out.close();
  }
}

/** Every chunk of every manifest present and sound, and every package's manifest present. */
async function checkLibrary(input: Input, library: string, manifests: Set<string>): Promise<void> {
  const { file, onProgress } = input;
  const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);
  // A site that never ingested anything has no library yet.
  if (manifests.size === 0 && !(await exists(join(library, 'library.json')))) return;
  const result = await verifyLibrary(library, { onProgress: (done, total) => onProgress?.({ phase: 'verify', done, total }) });
  const problems = [
    ...result.bad.map((b) => `chunk ${b.chunk} ${b.problem}`),
    ...result.badManifests.map((m) => `manifest ${m.manifest}: ${m.problem}`),
  ];
  for (const id of manifests) {
    if (!(await hasManifest({ dir: library }, id))) problems.push(`manifest ${id} of a package is missing`);
  }
  if (problems.length > 0) {
    throw badBackup(file, `the restored content library is incomplete: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? ` (and ${problems.length - 5} more)` : ''}`);
  }
}
