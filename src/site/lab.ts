import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { z } from 'zod';
import { packageListSchema, packageStatusSchema } from '../components/provider/contract.js';
import { SitecastError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { shellWord } from './demo.js';
import { type ChainSite, buildChain, callAdmin, expectAdmin } from './lab-chain.js';
import { type SiteExit, type SiteProcess, spawnSite } from './lab-process.js';
import { sitePaths } from './layout.js';

export { buildChain, callAdmin, expectAdmin, freePort, parseSiteList, type AdminTarget, type ChainSite } from './lab-chain.js';
export { describeExit, spawnSite, type SiteExit, type SiteProcess } from './lab-process.js';

export const LAB_SITES: readonly string[] = ['CEN', 'PRI', 'SEC'];
export const LAB_DP = 'dp1';
export const LAB_PACKAGE = 'Sitecast lab';
const LAB_FILE = 'lab.json';

export interface LabOptions {
  /** Site codes, top first (default CEN, PRI, SEC). */
  sites?: readonly string[];
  /** Folder for the lab (kept; run again to reuse it); default a new temporary folder, removed at close. */
  dir?: string;
  /** Keep the temporary folder at close. */
  keep?: boolean;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A site of the lab: its root, URL, token, DP and the server process running it. */
export interface LabSite extends ChainSite {
  dpPath: string;
  process: SiteProcess;
}

export interface Lab {
  dir: string;
  removedAtClose: boolean;
  /** Top first. */
  sites: LabSite[];
  site(code: string): LabSite;
  /** Starts the site again (same root, same port) after it was stopped or killed. */
  restart(code: string): Promise<LabSite>;
  /** Stops every site server (SIGTERM, wait), then removes the folder unless kept. Idempotent. */
  close(): Promise<{ code: string; exit: SiteExit }[]>;
}

const labFileSchema = z.object({ format: z.literal(1), sites: z.array(z.string()) });

/** Polls `check` every `everyMs` until it returns a value; a SITECAST_E_IO error naming `what` after `timeoutMs`. */
export async function until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs: number, everyMs = 25): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() >= deadline) throw new SitecastError('SITECAST_E_IO', `${what}: not within ${Math.round(timeoutMs / 1000)} s`, { hint: 'see the logs/ folder of each site root' });
    await sleep(everyMs);
  }
}

/**
 * A hierarchy on this machine: one `sitecast site start` process per site
 * on a fixed free loopback port, each site joined below the one before,
 * one DP each (added from the top site), http addresses both ways. A folder
 * holding a lab from an earlier run is started again as it is.
 */
export async function startLab(options: LabOptions = {}): Promise<Lab> {
  const log = options.log ?? ((): void => undefined);
  const temporary = options.dir === undefined;
  const dir = options.dir === undefined ? await mkdtemp(join(tmpdir(), 'sitecast-lab-')) : resolve(options.dir);
  const removedAtClose = temporary && options.keep !== true;
  const sites: LabSite[] = [];
  const safetyNet = (): void => {
    // The lab itself is ending without close(): never leave a site server behind.
    for (const s of sites) if (s.process.running()) process.kill(s.process.pid, 'SIGKILL');
  };
  process.on('exit', safetyNet);
  let closing: Promise<{ code: string; exit: SiteExit }[]> | undefined;
  const close = (): Promise<{ code: string; exit: SiteExit }[]> => {
    closing ??= (async () => {
      const exits = await Promise.all([...sites].reverse().map(async (s) => ({ code: s.code, exit: await s.process.stop() })));
      process.off('exit', safetyNet);
      if (removedAtClose) await rm(dir, { recursive: true, force: true });
      return exits.reverse();
    })();
    return closing;
  };
  const find = (code: string): LabSite => {
    const s = sites.find((x) => x.code === code);
    if (s === undefined) throw new SitecastError('SITECAST_E_NOT_FOUND', `no site ${code} in the lab`);
    return s;
  };
  const lab: Lab = {
    dir,
    removedAtClose,
    sites,
    site: find,
    restart: async (code) => {
      const s = find(code);
      if (s.process.running()) throw new SitecastError('SITECAST_E_CONFLICT', `site ${code} is running`);
      s.process = await spawnSite(s.root);
      log(`site ${code} started again at ${s.process.url} (pid ${s.process.pid})`);
      return s;
    },
    close,
  };
  try {
    await mkdir(dir, { recursive: true });
    const saved = await readLabFile(dir);
    if (saved !== undefined) {
      for (const code of saved.sites) {
        const root = join(dir, code.toLowerCase());
        const paths = sitePaths(root);
        const config = JSON.parse(await readFile(paths.config, 'utf8')) as { listen: { host: string; port: number } };
        const token = (await readFile(paths.adminToken, 'utf8')).trim();
        const proc = await spawnSite(root);
        const url = `http://${config.listen.host}:${config.listen.port}`;
        sites.push({ code, root, url, token, tokenFile: paths.adminToken, dpPath: dpPathOf(dir, code), process: proc });
        log(`site ${code} started at ${proc.url} (pid ${proc.pid})`);
      }
      return lab;
    }
    if ((await readdir(dir)).length > 0) {
      throw new SitecastError('SITECAST_E_SITE_EXISTS', `${dir} is not empty and holds no lab`, { hint: 'give --dir an empty or new folder, or one an earlier `sitecast lab --dir` made' });
    }
    const codes = options.sites ?? LAB_SITES;
    await buildChain<SiteProcess>({
      dir,
      codes,
      start: (site) => spawnSite(site.root),
      started: (site, proc) => {
        sites.push({ ...site, dpPath: dpPathOf(dir, site.code), process: proc });
        log(`site ${site.code} listening at ${proc.url} (pid ${proc.pid})`);
      },
      log,
    });
    await writeFileAtomic(join(dir, LAB_FILE), `${JSON.stringify({ format: 1, sites: codes })}\n`);
    await wireUp(lab, log);
    return lab;
  } catch (err) {
    await close().catch(() => undefined);
    throw err;
  }
}

function dpPathOf(dir: string, code: string): string {
  return join(dir, `dp-${code.toLowerCase()}`);
}

async function readLabFile(dir: string): Promise<z.infer<typeof labFileSchema> | undefined> {
  const path = join(dir, LAB_FILE);
  if (!existsSync(path)) return undefined;
  const parsed = labFileSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
  if (!parsed.success) throw new SitecastError('SITECAST_E_SITE_CONFIG', `${path} is not a lab description`);
  return parsed.data;
}

const sitesSchema = z.object({ sites: z.array(z.object({ code: z.string(), parentCode: z.string().nullable() })) });
const dpsSchema = z.object({ dps: z.array(z.object({ site: z.string(), name: z.string() })) });

/** Waits until the top site knows the whole chain, adds one DP per site from the top, and sets http addresses both ways. */
async function wireUp(lab: Lab, log: (line: string) => void): Promise<void> {
  const [top] = lab.sites;
  if (top === undefined) return;
  const codes = lab.sites.map((s) => s.code);
  log(`waiting until ${top.code} knows ${codes.join(', ')} (status reports travel up)`);
  await until(
    `${top.code} knows every site of the lab`,
    async () => {
      const r = sitesSchema.parse(await expectAdmin(top, 'GET', '/api/v1/sites', 200));
      return codes.every((c) => r.sites.some((s) => s.code === c)) ? true : undefined;
    },
    60_000,
    100,
  );
  for (const s of lab.sites) {
    await expectAdmin(top, 'POST', '/api/v1/dps', 201, { name: LAB_DP, path: s.dpPath, ...(s === top ? {} : { site: s.code }) });
  }
  for (let i = 1; i < lab.sites.length; i++) {
    const parent = lab.sites[i - 1];
    const child = lab.sites[i];
    if (parent === undefined || child === undefined) continue;
    await expectAdmin(parent, 'PUT', `/api/v1/addresses/${child.code}`, 200, { sender: 'http' });
    await expectAdmin(child, 'PUT', `/api/v1/addresses/${parent.code}`, 200, { sender: 'http' });
  }
  log(`DP ${LAB_DP} added at ${codes.join(', ')}; waiting until each site has created its own`);
  for (const s of lab.sites) {
    await until(
      `site ${s.code} has DP ${LAB_DP}`,
      async () => (dpsSchema.parse(await expectAdmin(s, 'GET', '/api/v1/dps', 200)).dps.some((d) => d.site === s.code && d.name === LAB_DP) ? true : undefined),
      60_000,
      100,
    );
  }
}

/** The sample package: a few generated files and an install script, the same bytes every time. */
export async function writeLabSource(source: string): Promise<void> {
  await mkdir(join(source, 'data'), { recursive: true });
  await writeFile(join(source, 'README.txt'), 'Sitecast lab package: sent from the central site down the hierarchy.\n');
  for (let i = 1; i <= 4; i++) {
    const lines = Array.from({ length: 3000 }, (_, n) => `record ${i}.${n}: ${((n * 2654435761 + i) >>> 0).toString(16)}`);
    await writeFile(join(source, 'data', `part-${i}.txt`), `${lines.join('\n')}\n`);
  }
  await writeFile(join(source, 'install.sh'), '#!/bin/sh\nset -eu\ntarget=${1:-installed}\nmkdir -p "$target"\ncp -R "$(dirname "$0")/data" "$target/"\necho "installed into $target"\n');
  await chmod(join(source, 'install.sh'), 0o755);
}

export interface Timeline {
  packageId: string;
  sourceVersion: number;
  /** Seconds from the create (or update) request until each DP turned installed, as its own site saw it. */
  dps: { site: string; dp: string; seconds: number }[];
  /** Seconds until the top site listed every DP installed (status travels up). */
  seenAtTopSeconds: number;
}

/** When the DP of each named site turns installed at `version` (or later), each polled at its own site; seconds from `t0`. */
export async function waitInstalled(lab: Lab, packageId: string, version: number, codes: readonly string[], t0: number, timeoutMs = 120_000): Promise<Map<string, number>> {
  const done = new Map<string, number>();
  await until(
    `${packageId} installed on ${codes.map((c) => `${c}/${LAB_DP}`).join(', ')}`,
    async () => {
      await Promise.all(
        codes
          .filter((c) => !done.has(c))
          .map(async (code) => {
            const site = lab.site(code);
            const r = await callAdmin(site, 'GET', `/api/v1/packages/${packageId}/status`);
            if (r.status !== 200) return;
            const s = packageStatusSchema.parse(r.json);
            if (s.dps.some((d) => d.site === code && d.dp === LAB_DP && d.state === 'installed' && d.sourceVersion >= version)) done.set(code, (performance.now() - t0) / 1000);
          }),
      );
      return done.size === codes.length ? done : undefined;
    },
    timeoutMs,
    20,
  );
  return done;
}

/**
 * Creates the sample package at the top site and sends it to the DP of every
 * site (or, in a folder where an earlier run did, changes a file and updates
 * it: the new version travels as a delta), then times each DP.
 */
export async function distributeSample(lab: Lab, timeoutMs = 120_000): Promise<Timeline> {
  const top = lab.sites[0];
  if (top === undefined) throw new SitecastError('SITECAST_E_USAGE', 'a lab needs at least one site');
  const source = join(lab.dir, 'source');
  const codes = lab.sites.map((s) => s.code);
  const known = packageListSchema.parse(await expectAdmin(top, 'GET', '/api/v1/packages', 200)).packages.find((p) => p.name === LAB_PACKAGE && p.sourcePath === source);
  let packageId: string;
  let version: number;
  let t0: number;
  if (known === undefined) {
    await writeLabSource(source);
    t0 = performance.now();
    const created = (await expectAdmin(top, 'POST', '/api/v1/packages', 201, { name: LAB_PACKAGE, sourcePath: source, version: '1.0', programs: [{ name: 'Install', commandLine: 'sh install.sh' }] })) as { id: string };
    packageId = created.id;
    version = 1;
    await expectAdmin(top, 'POST', `/api/v1/packages/${packageId}/distribute`, 200, { dps: lab.sites.map((s) => `${s.code}/${LAB_DP}`) });
  } else {
    await writeFile(join(source, 'RUN.txt'), `lab run at ${new Date().toISOString()}\n`);
    t0 = performance.now();
    packageId = known.id;
    version = known.sourceVersion + 1;
    await expectAdmin(top, 'POST', `/api/v1/packages/${packageId}/update`, 200);
  }
  const dps = await waitInstalled(lab, packageId, version, codes, t0, timeoutMs);
  const seenAtTop = await until(
    `${top.code} lists every DP of ${packageId} installed`,
    async () => {
      const s = packageStatusSchema.parse(await expectAdmin(top, 'GET', `/api/v1/packages/${packageId}/status`, 200));
      const ok = codes.every((c) => s.dps.some((d) => d.site === c && d.dp === LAB_DP && d.state === 'installed' && d.sourceVersion >= version));
      return ok ? (performance.now() - t0) / 1000 : undefined;
    },
    timeoutMs,
    50,
  );
  return {
    packageId,
    sourceVersion: version,
    dps: codes.map((c) => ({ site: c, dp: LAB_DP, seconds: dps.get(c) ?? Number.NaN })),
    seenAtTopSeconds: seenAtTop,
  };
}

/** Commands worth trying against a running lab, one line each. */
export function labCommands(lab: Lab, packageId: string): string[] {
  const [top] = lab.sites;
  const second = lab.sites[1];
  if (top === undefined) return [];
  const r = shellWord(top.root);
  return [
    `npx sitecast package status ${packageId} --root ${r}`,
    `npx sitecast address status --root ${r}`,
    ...(second === undefined ? [] : [`npx sitecast address status --root ${shellWord(second.root)}`]),
    `npx sitecast status messages --package ${packageId} --root ${r}`,
    `npx sitecast package update ${packageId} --root ${r}   # after editing ${shellWord(join(lab.dir, 'source'))}`,
  ];
}

/** What `sitecast lab` prints once every DP has the package. */
export function describeLab(lab: Lab, t: Timeline): string {
  const slowest = Math.max(...t.dps.map((d) => d.seconds));
  const after = lab.removedAtClose ? `${lab.dir} is removed on exit (--keep keeps it)` : `${lab.dir} is kept`;
  const chain = lab.sites.map((s) => s.code).join(' → ');
  return [
    `Sitecast lab ${chain} is running.`,
    '',
    `Timeline of ${t.packageId} (source version ${t.sourceVersion}), seconds after the ${t.sourceVersion === 1 ? 'create' : 'update'}:`,
    ...t.dps.map((d) => `  +${d.seconds.toFixed(2)} s  installed on ${d.site}/${d.dp}`),
    `  +${t.seenAtTopSeconds.toFixed(2)} s  ${lab.sites[0]?.code ?? ''} lists every DP installed`,
    `all installed: ${t.dps.length} DPs in ${slowest.toFixed(2)} s`,
    '',
    'Sites:',
    ...lab.sites.map((s) => `  ${s.code}  ${s.process.url}  pid ${s.process.pid}  token file ${s.tokenFile}  root ${s.root}`),
    '',
    'Try, in another terminal:',
    ...labCommands(lab, t.packageId).map((c) => `  ${c}`),
    '',
    `Press Ctrl-C to stop; ${after}.`,
    '',
  ].join('\n');
}
