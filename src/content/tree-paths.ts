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

/** The most links one resolution follows before it is taken for a loop (Linux's limit for one path lookup). */
const MAX_LINK_HOPS = 40;

/**
 * Why a link is refused, or where it lands: a path from the tree root, `''`
 * for the root itself.
 */
export type LinkLanding = { landing: string } | { problem: string };

/**
 * Where the link at `linkPath` lands, resolved the way the kernel resolves
 * it: name by name from the link's folder, `.` and empty names skipped, `..`
 * one folder up, and every name that is itself a link (in `links`, the tree's
 * links by path) replaced by where that link lands. Chains such as
 * `libfoo.so → libfoo.so.1 → libfoo.so.1.2.3` and targets such as `./f` or
 * `sub/` are fine; a target that is absolute, holds a NUL or backslash, or
 * leaves the tree at any step (even to come back) is refused, as is a loop.
 * Names that are not in the tree resolve as plain names: on disk they do
 * not exist, so nothing beyond them can be reached.
 */
export function resolveLink(linkPath: string, links: ReadonlyMap<string, string>): LinkLanding {
  let hops = 0;
  const follow = (from: string[], target: string, via: string): string[] | string => {
    if (target.startsWith('/')) return via === linkPath ? `points at absolute path "${target}"` : `resolves through "${via}", which points at absolute path "${target}"`;
    if (target.includes('\0') || target.includes('\\')) return `has a target that holds a NUL or backslash ("${target}")`;
    let at = from;
    for (const name of target.split('/')) {
      if (name === '' || name === '.') continue;
      if (name === '..') {
        if (at.length === 0) return via === linkPath ? `points out of the package ("${target}")` : `points out of the package through "${via}" ("${target}")`;
        at = at.slice(0, -1);
        continue;
      }
      const here = [...at, name];
      const next = links.get(here.join('/'));
      if (next === undefined) {
        at = here;
        continue;
      }
      if (++hops > MAX_LINK_HOPS) return `is part of a loop of links (more than ${MAX_LINK_HOPS} followed)`;
      const landed = follow(at, next, here.join('/'));
      if (typeof landed === 'string') return landed;
      at = landed;
    }
    return at;
  };
  const target = links.get(linkPath);
  if (target === undefined) return { problem: 'is not a link of this tree' };
  const landed = follow(linkPath.split('/').slice(0, -1), target, linkPath);
  return typeof landed === 'string' ? { problem: landed } : { landing: landed.join('/') };
}
