import { isUtf8 } from 'node:buffer';
import { lstatSync, readdirSync, readlinkSync } from 'node:fs';
import { join } from 'node:path';
import { SitecastError, ioError } from '../errors.js';
import { resolveLink } from './tree-paths.js';

/** One item of a source tree, before its content is read. */
export type SourceItem =
  | { type: 'dir'; path: string; mode: number; special?: true }
  | { type: 'file'; path: string; mode: number; size: number; abs: string; special?: true }
  | { type: 'symlink'; path: string; target: string };

/**
 * Lists a source folder without ever following a link: files, folders and
 * links that stay inside the tree (followed through other links, see `resolveLink`). Anything else (fifo, socket, device, a link
 * out) is collected and refused together, so the administrator sees every
 * offending path at once. Paths are relative and `/`-separated; each folder's
 * names are sorted by bytes (the manifest sorts the whole list again).
 *
 * Synchronous: it runs in a chunk worker (`ChunkPool.walk`), where a tree of
 * thousands of entries is listed in tens of milliseconds (an awaited call per
 * entry costs a thread-pool round trip, about 100 µs on a virtual machine),
 * and a slow or hung network share holds that worker, never the site
 * server's event loop.
 */
/**
 * Set-user-ID, set-group-ID and sticky bits are not kept: a package installed
 * on a DP by the site server's account would otherwise plant set-user-ID
 * programs of that account on every DP. The walk marks the items that had
 * one, so ingest can say which.
 */
function special(mode: number): { special?: true } {
  return (mode & 0o7000) === 0 ? {} : { special: true };
}

export function walkSource(root: string): SourceItem[] {
  let top;
  try {
    top = lstatSync(root);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `source folder ${root} does not exist`);
    }
    throw ioError(`cannot read source folder ${root}`, err);
  }
  if (!top.isDirectory()) throw new SitecastError('SITECAST_E_USAGE', `source ${root} is not a folder`);

  const items: SourceItem[] = [];
  const refused: string[] = [];
  const links = new Map<string, string>();
  const visit = (rel: string): void => {
    const abs = rel === '' ? root : join(root, rel);
    let raw: Buffer[];
    try {
      raw = readdirSync(abs, { encoding: 'buffer' });
    } catch (err) {
      throw ioError(`cannot list ${abs}`, err);
    }
    raw.sort(Buffer.compare);
    for (const bytes of raw) {
      const name = bytes.toString('utf8');
      const path = rel === '' ? name : `${rel}/${name}`;
      // A manifest path is text: a name that is not UTF-8 could not be written back as it was.
      if (!isUtf8(bytes)) {
        refused.push(`${rel === '' ? '' : `${rel}/`}${escapeBytes(bytes)} (name is not valid UTF-8)`);
        continue;
      }
      const full = join(abs, name);
      if (name.includes('\\')) {
        refused.push(`${path} (backslash in name)`);
        continue;
      }
      let st;
      try {
        st = lstatSync(full);
      } catch (err) {
        throw ioError(`cannot read ${full}`, err);
      }
      if (st.isDirectory()) {
        items.push({ type: 'dir', path, mode: st.mode & 0o777, ...special(st.mode) });
        visit(path);
      } else if (st.isFile()) {
        items.push({ type: 'file', path, mode: st.mode & 0o777, size: st.size, abs: full, ...special(st.mode) });
      } else if (st.isSymbolicLink()) {
        let target: string;
        try {
          target = readlinkSync(full);
        } catch (err) {
          throw ioError(`cannot read ${full}`, err);
        }
        items.push({ type: 'symlink', path, target });
        links.set(path, target);
      } else {
        refused.push(`${path} (${st.isFIFO() ? 'fifo' : st.isSocket() ? 'socket' : 'device or special file'})`);
      }
    }
  };
  visit('');
  // Links are judged once the whole tree is known: one may land on another.
  for (const path of links.keys()) {
    const where = resolveLink(path, links);
    if ('problem' in where) refused.push(`${path} (symlink that ${where.problem})`);
  }
  if (refused.length > 0) {
    const shown = refused.slice(0, 10).join(', ');
    const more = refused.length > 10 ? ` and ${refused.length - 10} more` : '';
    throw new SitecastError('SITECAST_E_SPECIAL_FILE', `source folder ${root} holds what a package cannot: ${shown}${more}`, {
      hint: 'a package holds files, folders and links that stay inside it; remove the others and try again',
    });
  }
  return items;
}

/** A file name with each byte outside printable ASCII shown as \xNN. */
function escapeBytes(bytes: Buffer): string {
  return [...bytes].map((b) => (b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`)).join('');
}
