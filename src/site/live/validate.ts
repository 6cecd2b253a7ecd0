import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifest, openLibrary } from '../../content/library.js';
import type { Manifest } from '../../content/types.js';
import { addStatusMessage, getPackage, listDps } from '../../db/index.js';
import { dpPaths, sharePath } from '../../dp/layout.js';
import { readLiveShare } from '../../dp/share.js';
import { SitecastError } from '../../errors.js';
import type { SiteContext } from '../context.js';

export interface ValidationResult {
  id: string;
  site: string;
  dp: string;
  /** The version the share holds (0: none). */
  sourceVersion: number;
  checked: number;
  ok: boolean;
  /** What does not match, at most MAX_PROBLEMS lines. */
  problems: string[];
}

const MAX_PROBLEMS = 100;

async function sha256(file: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function listTree(dir: string, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for (const e of await readdir(dir, { withFileTypes: true })) {
    const rel = prefix === '' ? e.name : `${prefix}/${e.name}`;
    out.push(rel);
    if (e.isDirectory()) out.push(...(await listTree(join(dir, e.name), rel)));
  }
  return out;
}

/** Compares a share, file by file, with the manifest of the version it claims to hold. */
async function compare(root: string, manifest: Manifest, problems: string[]): Promise<number> {
  let checked = 0;
  const expected = new Set<string>();
  for (const entry of manifest.entries) {
    expected.add(entry.path);
    const path = join(root, entry.path);
    checked += 1;
    let st;
    try {
      st = await lstat(path);
    } catch {
      problems.push(`${entry.path}: missing`);
      continue;
    }
    if (entry.type === 'dir') {
      if (!st.isDirectory()) problems.push(`${entry.path}: not a folder`);
    } else if (entry.type === 'symlink') {
      if (!st.isSymbolicLink() || (await readlink(path)) !== entry.target) problems.push(`${entry.path}: link does not point to ${entry.target}`);
    } else if (!st.isFile()) {
      problems.push(`${entry.path}: not a file`);
    } else if (st.size !== entry.size) {
      problems.push(`${entry.path}: ${st.size} bytes, expected ${entry.size}`);
    } else if ((await sha256(path)) !== entry.hash) {
      problems.push(`${entry.path}: content differs (SHA-256)`);
    }
  }
  for (const rel of await listTree(root)) if (!expected.has(rel)) problems.push(`${rel}: not part of the package`);
  return checked;
}

/**
 * Content validation of one DP of this site: re-hashes the share of a
 * package against the manifest of the version it holds, and reports what
 * does not match, as the answer and as a status message. It changes nothing.
 */
export async function validateDp(ctx: SiteContext, packageId: string, dpName: string): Promise<ValidationResult> {
  const pkg = await getPackage(ctx.db, packageId);
  if (pkg === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `package ${packageId} does not exist`, { hint: 'GET /api/v1/packages lists them' });
  const dp = (await listDps(ctx.db, { site: ctx.siteCode })).find((d) => d.name === dpName);
  if (dp === undefined) {
    throw new SitecastError('SITECAST_E_NOT_FOUND', `no distribution point ${ctx.siteCode}/${dpName}`, {
      hint: 'content is validated by the site that holds the DP; GET /api/v1/dps lists them',
    });
  }
  const paths = dpPaths(dp.path);
  const problems: string[] = [];
  let checked = 0;
  let version = 0;
  const live = await readLiveShare(paths, packageId);
  if (live === undefined) {
    problems.push(`the DP holds no version of ${packageId}`);
  } else {
    version = live.marker.sourceVersion;
    let manifest: Manifest | undefined;
    for (const dir of [ctx.paths.library, paths.library]) {
      manifest = await openLibrary(dir)
        .then((lib) => loadManifest(lib, live.marker.manifest))
        .catch(() => undefined);
      if (manifest !== undefined) break;
    }
    if (manifest === undefined) problems.push(`the manifest ${live.marker.manifest} of source version ${version} is in no library`);
    else checked = await compare(sharePath(paths, packageId), manifest, problems);
  }
  const ok = problems.length === 0;
  const where = `${packageId} on DP ${dp.name}`;
  await addStatusMessage(ctx.db, {
    severity: ok ? 'info' : 'error',
    component: 'provider',
    site: ctx.siteCode,
    packageId,
    text: ok
      ? `content of ${where} validated: source version ${version}, ${checked} entries match`
      : `content of ${where} does not match source version ${version}: ${problems.slice(0, 5).join('; ')}${problems.length > 5 ? `; and ${problems.length - 5} more` : ''}`,
  });
  return { id: packageId, site: ctx.siteCode, dp: dp.name, sourceVersion: version, checked, ok, problems: problems.slice(0, MAX_PROBLEMS) };
}
