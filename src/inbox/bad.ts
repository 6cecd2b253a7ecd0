import { randomBytes } from 'node:crypto';
import { link, lstat, mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { type ErrorCode, isSitecastError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { removeIfUnchanged } from './claim.js';
import { REASON_SUFFIX } from './name.js';
import type { InboxEntry } from './scan.js';

/** Codes every inbox treats as bad input, in addition to the caller's. */
export const DEFAULT_BAD_CODES: readonly ErrorCode[] = [
  'SITECAST_E_BAD_INBOX_FILE',
  'SITECAST_E_INVALID_VALUE',
  'SITECAST_E_UNSAFE_NAME',
];

/**
 * Bad input is a property of the file: retrying cannot help, so the file goes
 * to bad/. Everything else (disk full, database locked, peer down) is assumed
 * transient and retried.
 */
export function isBadInput(err: unknown, codes: ReadonlySet<ErrorCode>): boolean {
  if (isSitecastError(err)) return codes.has(err.code);
  if (err instanceof z.core.$ZodError) return true;
  return err instanceof SyntaxError;
}

/** One line a person can read, for the `.reason` file and the status message. */
export function describeBadInput(err: unknown): string {
  if (err instanceof z.core.$ZodError) return `does not parse: ${z.prettifyError(err).replace(/\s*\n\s*/g, '; ')}`;
  if (isSitecastError(err)) return `${err.code}: ${err.message}`;
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  return String(err);
}

/**
 * Takes a second link to a bad file under a temporary name in bad/ before
 * anyone is told it moved there: a file removed from the inbox before this is
 * found gone with nothing written, and one removed after is still moved.
 * 'unsupported' when the link is refused (no hard links on that file system,
 * fs.protected_hardlinks on another user's file); the file is then moved
 * directly, as before holds existed.
 */
export async function holdForBad(entry: InboxEntry, badDir: string): Promise<string | 'gone' | 'replaced' | 'unsupported'> {
  const held = join(badDir, `.held.${randomBytes(6).toString('hex')}.tmp`);
  await mkdir(badDir, { recursive: true });
  try {
    await link(entry.path, held);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'gone' : 'unsupported';
  }
  if ((await lstat(held)).ino === entry.ino) return held;
  await rm(held, { force: true });
  return 'replaced';
}

/**
 * Puts the file (its held link, or the inbox file itself) into bad/ with its
 * reason beside it. The reason is written first so a reader never sees a bad
 * file without one, and taken away again if the move fails, so none is left
 * without its file.
 */
export async function placeInBad(entry: InboxEntry, to: { badDir: string; held: string | undefined; reason: string }): Promise<void> {
  const target = join(to.badDir, entry.name);
  const reasonFile = target + REASON_SUFFIX;
  await writeFileAtomic(reasonFile, `${to.reason}\n`);
  try {
    await rename(to.held ?? entry.path, target);
  } catch (err) {
    await rm(reasonFile, { force: true }).catch(() => undefined);
    throw err;
  }
  if (to.held === undefined) return;
  // The inbox name may be gone already (the held link kept the file) or hold a new drop, which stays.
  await removeIfUnchanged(entry);
}
