import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { SiteTarget } from '../../../src/cli/client.js';
import { runMeasured } from '../../lib/exec.js';
import { spawnListening } from '../../lib/listening.js';
import { sitecastBin } from '../../lib/paths.js';
import { SITE } from './generate.js';

// Only the token is used: with port 0 the URL is known once the site starts (`url` is null here).
const initOutput = z.object({ site: z.string(), token: z.string() });

/** `sitecast site init` as a user runs it, on SQLite (database undefined) or a postgres:// URL; returns the admin token. */
export async function initSite(root: string, repoRoot: string, database: string | undefined): Promise<string> {
  const args = [sitecastBin, 'site', 'init', root, '--code', SITE, '--listen', '127.0.0.1:0', '--json'];
  if (database !== undefined) args.push('--database', database);
  const init = await runMeasured(process.execPath, args, { cwd: repoRoot });
  return initOutput.parse(JSON.parse(init.stdout)).token;
}

export interface ScaleSite {
  target: SiteTarget;
  /** SIGTERM, then SIGKILL after 15 s; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

/** Starts site-child.js on an initialised (and filled) site root. */
export async function startScaleSite(root: string, token: string): Promise<ScaleSite> {
  const script = fileURLToPath(new URL('./site-child.js', import.meta.url));
  const p = await spawnListening(process.execPath, [script, root], { what: 'site server', listenTimeoutMs: 60_000, killAfterMs: 15_000 });
  return { target: { url: p.url, token, root }, stop: p.stop };
}
