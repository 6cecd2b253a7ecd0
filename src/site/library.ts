import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { withLibrary } from '../content/library-lock.js';
import { SitecastError, ioError } from '../errors.js';
import { isTempName, writeFileAtomic } from '../fs/atomic.js';
import type { SitePaths } from './layout.js';
import { type LockInfo, parseLockInfo, processMayRun, thisProcess } from './lock.js';
import { listFolder } from '../fs/list.js';

/**
 * Who may use the site's content library when. Inside the site server every
 * user (Distribution Manager's ingest, pack and DP installs, the Despooler's
 * import, the Scheduler's bundles) holds the library's lock shared and the
 * collection of old versions (Distribution Manager, see
 * components/distmgr/collect.ts) holds it alone: see content/library-lock.ts.
 *
 * `site backup` reads the library from another process while the server
 * runs, so an in-memory lock cannot keep it apart from a collection. The two
 * leave markers in `state/library/`, each naming its process: a collection
 * places its marker, then looks for a backup's; a backup places its marker,
 * then waits while a collection's is there. Each places before it looks, so
 * at least one of them sees the other: a collection that sees a backup steps
 * back (it is tried again later), a backup that sees a collection waits for
 * it to end. A marker whose process is gone (a crash) is removed by whoever
 * finds it.
 */

type MarkerKind = 'collect' | 'backup';

interface Marker {
  remove(): Promise<void>;
}

async function placeMarker(dir: string, kind: MarkerKind): Promise<Marker> {
  await mkdir(dir, { recursive: true }).catch((err: unknown) => Promise.reject(ioError(`cannot create ${dir}`, err)));
  const path = join(dir, `${kind}-${process.pid}-${randomBytes(4).toString('hex')}.json`);
  // Not flushed: the marker speaks to processes of this boot only.
  await writeFileAtomic(path, `${JSON.stringify(await thisProcess())}\n`, { durable: false });
  return { remove: () => rm(path, { force: true }) };
}

/** The markers of `kind` whose process may still run; those of a process that is gone are removed. */
async function liveMarkers(dir: string, kind: MarkerKind): Promise<LockInfo[]> {
  const live: LockInfo[] = [];
  for (const name of await listFolder(dir)) {
    if (isTempName(name) || !name.startsWith(`${kind}-`) || !name.endsWith('.json')) continue;
    let text: string;
    try {
      text = await readFile(join(dir, name), 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
      // One that cannot be read (another account's, say) may be live: it counts, named by its file name.
      live.push({ pid: Number(name.split('-')[1]) || 0, host: 'unknown', startedAt: '' });
      continue;
    }
    const held = parseLockInfo(text);
    if (held !== undefined && (await processMayRun(held))) live.push(held);
    else await rm(join(dir, name), { force: true });
  }
  return live;
}

/** Runs `fn` as a user of the site library (inside the site server). */
export function usingSiteLibrary<T>(paths: SitePaths, fn: () => Promise<T>): Promise<T> {
  return withLibrary(paths.library, 'shared', fn);
}

/**
 * Runs `fn` alone on the site library, for a collection: after every user
 * inside this process let go, and only when no backup reads it. Returns
 * 'backup-running' without calling `fn` when one does.
 */
export function collectingSiteLibrary<T>(paths: SitePaths, fn: () => Promise<T>): Promise<T | 'backup-running'> {
  return withLibrary(paths.library, 'exclusive', async () => {
    const mine = await placeMarker(paths.libraryMarkers, 'collect');
    try {
      if ((await liveMarkers(paths.libraryMarkers, 'backup')).length > 0) return 'backup-running';
      return await fn();
    } finally {
      await mine.remove();
    }
  });
}

/**
 * Runs `fn` (a backup's reading of the library) while no collection can
 * remove anything from it: waits up to `waitMs` for a collection that runs.
 */
export async function readingSiteLibraryForBackup<T>(paths: SitePaths, fn: () => Promise<T>, options: { waitMs?: number; pollMs?: number } = {}): Promise<T> {
  const mine = await placeMarker(paths.libraryMarkers, 'backup');
  try {
    const deadline = Date.now() + (options.waitMs ?? 10 * 60_000);
    for (;;) {
      const collecting = await liveMarkers(paths.libraryMarkers, 'collect');
      if (collecting.length === 0) break;
      if (Date.now() >= deadline) {
        const who = collecting.map((c) => `process ${c.pid}${c.host === collecting[0]?.host ? '' : ` on ${c.host}`}`).join(', ');
        throw new SitecastError('SITECAST_E_BUSY', `the site's content library is being collected (${who}) and did not finish in time; nothing was written`, {
          hint: `try the backup again; if no site server runs on this root, remove the collect-*.json markers in ${paths.libraryMarkers}`,
        });
      }
      await sleep(options.pollMs ?? 100);
    }
    return await fn();
  } finally {
    await mine.remove();
  }
}
