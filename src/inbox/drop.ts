import { join } from 'node:path';
import { writeFileAtomic } from '../fs/atomic.js';
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
