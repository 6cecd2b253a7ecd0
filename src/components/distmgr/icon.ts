import { loadManifest, openLibrary } from '../../content/library.js';
import { libraryFileSource } from '../../content/file-source.js';
import { sha256 } from '../../content/store.js';
import { type Sha256Hex } from '../../content/types.js';
import type { Package } from '../../db/index.js';
import { isSitecastError } from '../../errors.js';
import { MAX_ICON_BYTES, defaultIcon, iconProblem } from '../../formats/icon.js';

export interface PackageIcon {
  data: Buffer;
  /** Why the package's own icon could not be used in this version (the default stands in), or undefined. */
  problem?: string;
}

/**
 * The `.ICO` a package's instruction files carry: the file its definition
 * names (`icon`), as this source version holds it in the site library, every
 * chunk verified; the default icon when it names none, or when this version
 * lacks that file or holds something that is not an icon.
 */
export async function packageIcon(libraryDir: string, pkg: Package, manifestId: Sha256Hex): Promise<PackageIcon> {
  if (pkg.icon === null) return { data: defaultIcon(pkg.id) };
  const fallback = (why: string): PackageIcon => ({ data: defaultIcon(pkg.id), problem: `icon ${pkg.icon} ${why} in source version ${pkg.sourceVersion}; the default icon is used` });
  const manifest = await loadManifest(await openLibrary(libraryDir), manifestId);
  const entry = manifest.entries.find((e) => e.path === pkg.icon);
  if (entry === undefined) return fallback('is missing');
  if (entry.type !== 'file') return fallback(`is a ${entry.type}, not a file`);
  if (entry.size > MAX_ICON_BYTES) return fallback(`is ${entry.size} bytes, more than an icon may be (${MAX_ICON_BYTES})`);
  let data: Buffer;
  try {
    data = await libraryFileSource(libraryDir, entry).read(0, entry.size);
  } catch (err) {
    // A chunk missing or damaged: the library check and the DP installs report that; the icon is not worth a failed package.
    if (isSitecastError(err)) return fallback(`cannot be read from the library (${err.code})`);
    throw err;
  }
  if (sha256(data) !== entry.hash) return fallback('does not match its hash');
  const problem = iconProblem(data);
  return problem === undefined ? { data } : fallback(`is not an icon (${problem})`);
}
