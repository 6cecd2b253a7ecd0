import { randomBytes } from 'node:crypto';
import { link, lstat, readdir, rename, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { isSafeInboxName } from './name.js';
import type { InboxEntry } from './scan.js';

const CLAIM_PREFIX = '.claim.';
const CLAIM_SUFFIX = '.tmp';

/**
 * Removes an inbox file once it is handled, but only the one handled: a writer
 * may drop a new file of the same name at any moment, and "look, then delete"
 * would delete that one unhandled if it arrived in between. So the name is
 * first moved aside (a rename takes whatever the name holds at that instant),
 * then looked at. The handled file is deleted; a newer one is put back under
 * its name (unless a newer one still has arrived meanwhile, which then wins:
 * a later drop of a name replaces an earlier one).
 *
 * The aside name starts with a dot and ends in `.tmp`, so scans skip it; a
 * crash while a file is aside leaves it there, and restoreClaims puts it back
 * at the next start (handlers are idempotent, so handling it again is safe).
 */
export async function removeIfUnchanged(entry: InboxEntry): Promise<'removed' | 'replaced' | 'gone'> {
  const aside = join(entry.path, '..', `${CLAIM_PREFIX}${randomBytes(6).toString('hex')}.${entry.name}${CLAIM_SUFFIX}`);
  try {
    await rename(entry.path, aside);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'gone';
    throw err;
  }
  const now = await lstat(aside);
  if (now.ino === entry.ino && now.mtimeMs === entry.mtimeMs && now.size === entry.size) {
    await unlink(aside);
    return 'removed';
  }
  await putBack(aside, entry.path);
  return 'replaced';
}

/** Puts a file moved aside back under its name, unless the name holds a newer drop; the aside name goes either way. */
async function putBack(aside: string, path: string): Promise<void> {
  try {
    await link(aside, path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code !== 'EEXIST') {
      // No hard links here: a rename back cannot tell a newer drop from nothing, so it may replace one; a newer drop is rare, a lost file worse.
      await rename(aside, path);
      return;
    }
  }
  await unlink(aside);
}

/** Puts back the files a crash left moved aside in an inbox folder. */
export async function restoreClaims(dir: string): Promise<void> {
  const names = await readdir(dir).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(CLAIM_PREFIX) || !name.endsWith(CLAIM_SUFFIX)) continue;
    // .claim.<12 hex>.<name>.tmp
    const original = name.slice(CLAIM_PREFIX.length + 13, -CLAIM_SUFFIX.length);
    if (!isSafeInboxName(original)) continue;
    await putBack(join(dir, name), join(dir, original)).catch(() => undefined);
  }
}
