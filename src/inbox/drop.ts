import { join } from 'node:path';
import { forEachBounded } from '../content/concurrency.js';
import { syncDirectory, writeFileAtomic } from '../fs/atomic.js';
import { assertSafeInboxName } from './name.js';

export interface DropOptions {
  /** fsync data and folder before returning (default true). */
  durable?: boolean;
}

/**
 * Puts a file into an inbox. The reader sees all of it or nothing: the data is
 * written under a temporary name that inboxes ignore, flushed, and renamed into
 * place; the folder is flushed too, so once this resolves the caller may delete
 * whatever the file was made from. Dropping a name that is already there
 * replaces it (wake-up files are idempotent).
 */
export async function dropFile(
  inboxDir: string,
  name: string,
  data: Uint8Array | string,
  options: DropOptions = {},
): Promise<string> {
  assertSafeInboxName(name);
  const target = join(inboxDir, name);
  const durable = options.durable !== false;
  await writeFileAtomic(target, data, { durable, syncDir: durable });
  return target;
}

/** Files written at once by dropFiles: enough for the disk to merge their flushes. */
const DROP_CONCURRENCY = 16;

/**
 * Puts many files into one inbox, as dropFile does for each, but up to 16 at
 * once and with one flush of the folder at the end instead of one per file:
 * 1,000 wake-up files cost about 1,000 file flushes in parallel rather than
 * 2,000 in a row. Once this resolves, every file is durable; if it throws,
 * some may be there and some not (dropping them again is harmless).
 */
export async function dropFiles(inboxDir: string, files: readonly { name: string; data: Uint8Array | string }[]): Promise<void> {
  for (const f of files) assertSafeInboxName(f.name);
  await forEachBounded(files, DROP_CONCURRENCY, (f) => writeFileAtomic(join(inboxDir, f.name), f.data, { durable: true, syncDir: false }));
  if (files.length > 0) await syncDirectory(inboxDir);
}
