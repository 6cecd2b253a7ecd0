import { randomBytes } from 'node:crypto';
import { mkdir, open, rename, rm, link, unlink } from 'node:fs/promises';
import { dirname, join, basename } from 'node:path';
import { ioError } from '../errors.js';

/**
 * The one place that writes files other processes may read. Data goes to a
 * temporary name beside the target (same file system, so rename is atomic),
 * is flushed, and is renamed into place: a reader sees the whole file or none.
 */
function tempNameFor(target: string): string {
  return join(dirname(target), `.${basename(target)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * True for a name this module uses while a write is in flight. Folder
 * watchers (inboxes) skip these: the file becomes real only when renamed.
 */
export function isTempName(name: string): boolean {
  return name.startsWith('.') && name.endsWith('.tmp');
}

export interface WriteOptions {
  /** fsync the data before the rename (default true). */
  durable?: boolean;
  mode?: number;
  /**
   * Also fsync the folder after the rename, so the new name itself survives a
   * power loss (default false). Inbox writers use it: the sender of a file may
   * delete its own input as soon as this resolves.
   */
  syncDir?: boolean;
}

/** fsync a folder so renames and deletions inside it are on disk. */
export async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

export async function writeFileAtomic(
  target: string,
  data: Uint8Array | string,
  options: WriteOptions = {},
): Promise<void> {
  const tmp = tempNameFor(target);
  try {
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(tmp, 'wx', options.mode ?? 0o644);
    try {
      await handle.writeFile(data);
      if (options.durable !== false) await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, target);
    if (options.syncDir === true) await syncDirectory(dirname(target));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(`cannot write ${target}`, err);
  }
}

/**
 * Writes a content-addressed file. If the name already exists the content is
 * the same by construction (the name is its hash), so an existing file wins and
 * the new copy is dropped: `link` fails with EEXIST instead of replacing it.
 * Returns false when the file was already there.
 */
export async function writeContentAddressed(
  target: string,
  data: Uint8Array,
  options: WriteOptions = {},
): Promise<boolean> {
  const tmp = tempNameFor(target);
  try {
    await mkdir(dirname(target), { recursive: true });
    const handle = await open(tmp, 'wx', options.mode ?? 0o444);
    try {
      await handle.writeFile(data);
      if (options.durable !== false) await handle.sync();
    } finally {
      await handle.close();
    }
    try {
      await link(tmp, target);
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EEXIST') return false;
      throw err;
    } finally {
      await unlink(tmp).catch(() => undefined);
    }
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    throw ioError(`cannot write ${target}`, err);
  }
}
