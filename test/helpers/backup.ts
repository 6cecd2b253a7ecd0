import { createHash } from 'node:crypto';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { startSite, type SiteHandle } from '../../src/site/server.js';
import { makeTree } from './fixtures.js';
import { eventually, newSite, type TestSite } from './site.js';

type Ctx = Parameters<typeof newSite>[0];

export async function api(url: string, token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

export interface DpState {
  dp: string;
  state: string;
  sourceVersion: number;
}

export async function packageStatus(url: string, token: string, id: string): Promise<DpState[]> {
  const r = (await (await api(url, token, 'GET', `/packages/${id}/status`)).json()) as { dps: DpState[] };
  return r.dps.map((d) => ({ dp: d.dp, state: d.state, sourceVersion: d.sourceVersion })).sort((a, b) => a.dp.localeCompare(b.dp));
}

export async function waitState(url: string, token: string, id: string, dp: string, state: string, ms = 20_000): Promise<void> {
  await eventually(`${id} ${state} on ${dp}`, async () => ((await packageStatus(url, token, id)).find((d) => d.dp === dp)?.state === state ? true : undefined), ms);
}

export interface SiteWithPackage {
  site: TestSite;
  handle: SiteHandle;
  token: string;
  /** Installed on dp1. */
  installed: string;
  /** Targeted at dp2, whose folder cannot be made (a file is in the way): retrying, its wake-up file still in distmgr.box. */
  waiting: string;
  /** The file in dp2's way. */
  blocker: string;
}

/** A running site CEN with one package installed on dp1 and one waiting for dp2. */
export async function siteWithPackage(t: Ctx): Promise<SiteWithPackage> {
  const site = await newSite(t);
  const handle = await startSite(site.root, { distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 500 } } });
  site.defer(() => handle.close());
  const token = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const src = join(site.dir, 'src');
  await makeTree(src, 'backup');
  const blocker = join(site.dir, 'blocked');
  await writeFile(blocker, 'a file where dp2 should be a folder\n');
  for (const [name, path] of [['dp1', join(site.dir, 'dp1')], ['dp2', join(blocker, 'dp2')]] as const) {
    const r = await api(handle.url, token, 'POST', '/dps', { name, path });
    if (r.status !== 201) throw new Error(`adding ${name}: ${r.status} ${await r.text()}`);
  }
  const create = async (name: string): Promise<string> => ((await (await api(handle.url, token, 'POST', '/packages', { name, sourcePath: src })).json()) as { id: string }).id;
  const installed = await create('Installed');
  await api(handle.url, token, 'POST', `/packages/${installed}/distribute`, { dps: ['CEN/dp1'] });
  await waitState(handle.url, token, installed, 'dp1', 'installed');
  const waiting = await create('Waiting');
  await api(handle.url, token, 'POST', `/packages/${waiting}/distribute`, { dps: ['CEN/dp2'] });
  await waitState(handle.url, token, waiting, 'dp2', 'retrying');
  return { site, handle, token, installed, waiting, blocker };
}

const TRAILER = '\nSITECAST-BACKUP-END '.length + 65;

/** Writes a copy of a backup with its frames edited and a checksum that matches again (a well-formed file with bad content). */
export async function rewriteBackup(from: string, to: string, edit: (frames: Buffer) => Buffer): Promise<void> {
  const all = await readFile(from);
  const frames = edit(all.subarray(0, all.length - TRAILER));
  const sum = createHash('sha256').update(frames).digest('hex');
  await writeFile(to, Buffer.concat([frames, Buffer.from(`\nSITECAST-BACKUP-END ${sum}\n`)]));
}

/** Names in the folder that holds `root` (to check that no staging folder was left). */
export async function siblings(root: string): Promise<string[]> {
  return (await readdir(dirname(root))).sort();
}
