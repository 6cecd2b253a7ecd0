import { posix } from 'node:path';
import { SitecastError } from '../errors.js';

/*
 * The path rules of a package tree, apart from the manifest schema so that
 * the source walk (in a worker thread) can use them without loading zod.
 */

export function unsafe(message: string): SitecastError {
  return new SitecastError('SITECAST_E_UNSAFE_PATH', message, {
    hint: 'the manifest was refused whole and nothing was written',
  });
}

/** A relative path of `/`-separated names, none empty, `.` or `..`, no NUL or backslash. */
export function checkRelativePath(p: string): void {
  if (p.startsWith('/')) throw unsafe(`absolute path "${p}" in manifest`);
  if (p.includes('\0') || p.includes('\\')) throw unsafe(`path "${p}" holds a NUL or backslash`);
  for (const part of p.split('/')) {
    if (part === '..') throw unsafe(`path "${p}" climbs out of the package with ".."`);
    if (part === '' || part === '.') throw unsafe(`path "${p}" is not normalized (empty or "." segment)`);
  }
}

/** Where a link in `linkPath` pointing at `target` lands, relative to the tree root; throws if outside. */
export function resolveLinkInTree(linkPath: string, target: string): string {
  if (target.startsWith('/')) throw unsafe(`symlink "${linkPath}" points at absolute path "${target}"`);
  if (target.includes('\0') || target.includes('\\')) throw unsafe(`symlink "${linkPath}" target holds a NUL or backslash`);
  // Only "../" steps first, then names: a ".." after a name would be resolved on
  // disk through that name, which may itself be a link, so text normalization
  // could not tell where it lands.
  let climbing = true;
  for (const part of target.split('/')) {
    if (part === '..' && climbing) continue;
    climbing = false;
    if (part === '..' || part === '.' || part === '') {
      throw unsafe(`symlink "${linkPath}" has a target that is not normalized ("${target}")`);
    }
  }
  const resolved = posix.normalize(posix.join(posix.dirname(linkPath), target));
  if (resolved === '..' || resolved.startsWith('../') || resolved === '.') {
    throw unsafe(`symlink "${linkPath}" points out of the package ("${target}")`);
  }
  return resolved;
}
