import { SitecastError } from '../errors.js';

/**
 * Inbox file names come from other components and, through replication, from
 * other sites, so they are never trusted. The set is deliberately small: it
 * cannot name a path, cannot collide with the writer's temporary names (those
 * start with a dot), and leaves room under the 255-byte limit for the temporary
 * prefix/suffix and the `.reason` companion in bad/.
 */
const SAFE_NAME = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;

export const BAD_FOLDER = 'bad';
export const REASON_SUFFIX = '.reason';

/** Why a name is refused, or undefined when it is safe. */
export function unsafeNameReason(name: string): string | undefined {
  if (name.length === 0) return 'the name is empty';
  if (name.length > 200) return 'the name is longer than 200 characters';
  if (name.includes('/') || name.includes('\\')) return 'the name holds a path separator';
  if (name.includes('..')) return 'the name holds ".."';
  if (name.startsWith('.')) return 'the name starts with a dot';
  if (!SAFE_NAME.test(name)) return 'the name holds a character outside A-Z a-z 0-9 . _ -';
  return undefined;
}

export function isSafeInboxName(name: string): boolean {
  return unsafeNameReason(name) === undefined;
}

export function assertSafeInboxName(name: string): void {
  const reason = unsafeNameReason(name);
  if (reason === undefined) return;
  throw new SitecastError('SITECAST_E_UNSAFE_NAME', `refused inbox file name ${JSON.stringify(name)}: ${reason}`, {
    hint: 'use a plain file name such as CEN00003.PKN',
  });
}

/**
 * The refused files among the names listed in a bad/ folder: not the reason
 * beside each, not a write in flight (dot names, which the scan never hands
 * out, so no bad file has one). A name ending in `.reason` is itself a bad
 * file when it has a reason of its own.
 */
export function badFileNames(names: readonly string[]): string[] {
  const listed = new Set(names);
  return names.filter((n) => !n.startsWith('.') && (!n.endsWith(REASON_SUFFIX) || listed.has(n + REASON_SUFFIX)));
}
