import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { type SiteTarget, callSite } from '../cli/client.js';
import { outcome } from '../cli/package-wait.js';
import {
  ROUTES,
  createdSchema,
  distributeResultSchema,
  dpListSchema,
  dpSchema,
  packageListSchema,
  packageStatusSchema,
  type PackageStatusView,
} from '../components/provider/contract.js';
import { SitecastError, ioError } from '../errors.js';
import { initSite } from './init.js';
import { sitePaths } from './layout.js';
import { type SiteHandle, startSite } from './server.js';

export const DEMO_CODE = 'DEM';
const DEMO_DP = 'dp1';
const DEMO_PACKAGE = 'Sitecast demo';

export interface DemoOptions {
  /** Folder holding the demo (site root, DP, package source); default a new temporary folder, removed at close. */
  dir?: string;
  /** Keep the temporary folder at close. */
  keep?: boolean;
  /** How long to wait for the package to reach the DP (default 60 s). */
  installTimeoutMs?: number;
  /** Progress lines, one step each. */
  log?: (line: string) => void;
}

export interface DemoSite {
  dir: string;
  root: string;
  url: string;
  tokenFile: string;
  packageId: string;
  /** The package's share on the demo DP. */
  share: string;
  /** Commands to try, each one line to paste into a shell. */
  commands: string[];
  /** True when close() removes `dir`. */
  removedAtClose: boolean;
  /** Stops the site, then removes the temporary folder unless kept. Idempotent. */
  close(): Promise<void>;
}

/** Quotes a word for a POSIX shell only when it needs it, so ordinary paths stay readable. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", `'\\''`)}'`;
}

/** The package source: a few generated files and an install script, the same bytes every time. */
async function writeSampleSource(source: string): Promise<void> {
  await mkdir(join(source, 'bin'), { recursive: true });
  await mkdir(join(source, 'data'), { recursive: true });
  await writeFile(join(source, 'README.txt'), 'Sitecast demo package.\nRun install.sh with a target folder to install it there.\n');
  await writeFile(join(source, 'bin', 'hello'), '#!/bin/sh\necho "hello from the Sitecast demo package"\n');
  await chmod(join(source, 'bin', 'hello'), 0o755);
  for (let i = 1; i <= 5; i++) {
    const lines = Array.from({ length: 2000 }, (_, n) => `record ${i}.${n}: ${((n * 2654435761) >>> 0).toString(16)}`);
    await writeFile(join(source, 'data', `sample-${i}.txt`), `${lines.join('\n')}\n`);
  }
  const install = [
    '#!/bin/sh',
    '# Copies the package into the folder named by $1 (default ./installed).',
    'set -eu',
    'here=$(cd "$(dirname "$0")" && pwd)',
    'target=${1:-installed}',
    'mkdir -p "$target"',
    'cp -R "$here/bin" "$here/data" "$here/README.txt" "$target/"',
    'echo "installed into $target"',
    '',
  ].join('\n');
  await writeFile(join(source, 'install.sh'), install);
  await chmod(join(source, 'install.sh'), 0o755);
}

async function waitInstalled(target: SiteTarget, packageId: string, timeoutMs: number): Promise<PackageStatusView> {
  const path = ROUTES.packageStatus.url.replace(':id', packageId);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const status = await callSite(target, { method: 'GET', path }, packageStatusSchema);
    const r = outcome(status);
    if (r.outcome === 'done') return status;
    if (r.outcome === 'failed') {
      throw new SitecastError('SITECAST_E_IO', `the demo package ${packageId} failed on its DP: ${status.dps.map((d) => d.lastMessage ?? d.state).join('; ')}`, {
        hint: `see ${sitePaths(target.root ?? '.').logs}/distmgr.log`,
      });
    }
    if (Date.now() >= deadline) {
      throw new SitecastError('SITECAST_E_IO', `the demo package ${packageId} was not installed within ${timeoutMs / 1000} s`, {
        hint: `see ${sitePaths(target.root ?? '.').logs}/distmgr.log`,
      });
    }
    await sleep(100);
  }
}

/** Adds the demo DP and creates and distributes the sample package, unless an earlier run in the same folder did. */
async function ensurePackage(target: SiteTarget, dir: string): Promise<string> {
  const dps = await callSite(target, { method: 'GET', path: ROUTES.listDps.url }, dpListSchema);
  if (!dps.dps.some((d) => d.site === DEMO_CODE && d.name === DEMO_DP)) {
    await callSite(target, { method: 'POST', path: ROUTES.addDp.url, body: { name: DEMO_DP, path: join(dir, DEMO_DP) } }, dpSchema);
  }
  const source = join(dir, 'source');
  const packages = await callSite(target, { method: 'GET', path: ROUTES.listPackages.url }, packageListSchema);
  const known = packages.packages.find((p) => p.name === DEMO_PACKAGE && p.sourcePath === source);
  if (known !== undefined) return known.id;
  await writeSampleSource(source);
  const body = { name: DEMO_PACKAGE, sourcePath: source, version: '1.0', programs: [{ name: 'Install', commandLine: 'sh install.sh' }] };
  const created = await callSite(target, { method: 'POST', path: ROUTES.createPackage.url, body }, createdSchema);
  const path = ROUTES.distribute.url.replace(':id', created.id);
  await callSite(target, { method: 'POST', path, body: { dps: [`${DEMO_CODE}/${DEMO_DP}`] } }, distributeResultSchema);
  return created.id;
}

/**
 * A ready-to-try site: a site root (code DEM, a free loopback port), one DP
 * and one sample package installed on it, all made through the admin API as
 * the CLI makes them. `--dir` given a second time reuses what the first run made.
 */
export async function startDemo(options: DemoOptions = {}): Promise<DemoSite> {
  const log = options.log ?? ((): void => undefined);
  const temporary = options.dir === undefined;
  const dir = options.dir === undefined ? await mkdtemp(join(tmpdir(), 'sitecast-demo-')) : resolve(options.dir);
  const removedAtClose = temporary && options.keep !== true;
  const root = join(dir, 'site');
  const paths = sitePaths(root);
  let site: SiteHandle | undefined;
  const cleanUp = async (): Promise<void> => {
    try {
      await site?.close();
    } finally {
      if (removedAtClose) await rm(dir, { recursive: true, force: true });
    }
  };
  try {
    if (existsSync(paths.config)) log(`using the demo site in ${root}`);
    else {
      log(`creating site ${DEMO_CODE} in ${root}`);
      await initSite(root, { code: DEMO_CODE, name: 'Sitecast demo site', listen: '127.0.0.1:0' });
    }
    site = await startSite(root);
    log(`site server listening at ${site.url}`);
    const token = (await readFile(paths.adminToken, 'utf8').catch((err: unknown) => {
      throw ioError(`cannot read ${paths.adminToken}`, err);
    })).trim();
    const target: SiteTarget = { url: site.url, token, root };
    const packageId = await ensurePackage(target, dir);
    log(`package ${packageId} created and sent to ${DEMO_CODE}/${DEMO_DP}; waiting until it is installed`);
    await waitInstalled(target, packageId, options.installTimeoutMs ?? 60_000);
    const r = shellWord(root);
    let closing: Promise<void> | undefined;
    return {
      dir,
      root,
      url: site.url,
      tokenFile: paths.adminToken,
      packageId,
      share: join(dir, DEMO_DP, 'SMSPKG', packageId),
      commands: [
        `npx sitecast package status ${packageId} --root ${r}`,
        `npx sitecast package list --root ${r}`,
        `npx sitecast status messages --package ${packageId} --root ${r}`,
      ],
      removedAtClose,
      close: () => {
        closing ??= cleanUp();
        return closing;
      },
    };
  } catch (err) {
    await cleanUp().catch(() => undefined);
    throw err;
  }
}

/** What `sitecast site demo` prints once the package is installed. */
export function describeDemo(demo: DemoSite): string {
  const after = demo.removedAtClose ? `${demo.dir} is removed on exit (--keep keeps it)` : `${demo.dir} is kept`;
  return [
    `Sitecast demo site ${DEMO_CODE} is running.`,
    `  url:        ${demo.url}`,
    `  token file: ${demo.tokenFile}`,
    `  site root:  ${demo.root}`,
    `  package:    ${demo.packageId} installed on ${DEMO_CODE}/${DEMO_DP}, share ${demo.share}`,
    '',
    'Try, in another terminal:',
    ...demo.commands.map((c) => `  ${c}`),
    '',
    `Press Ctrl-C to stop; ${after}.`,
    '',
  ].join('\n');
}
