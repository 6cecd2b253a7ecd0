import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import type { SiteTarget } from '../../../src/cli/client.js';
import { runMeasured } from '../../lib/exec.js';
import { sitecastBin } from '../../lib/paths.js';
import { SITE } from './generate.js';

const initOutput = z.object({ site: z.string(), url: z.string(), token: z.string() });

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
  const child: ChildProcess = spawn(process.execPath, [script, root], { stdio: ['ignore', 'pipe', 'pipe'] });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
      await gone;
      clearTimeout(timer);
    })();
    return stopping;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      let out = '';
      let err = '';
      child.stderr?.on('data', (b: Buffer) => (err += b.toString()));
      child.stdout?.on('data', (b: Buffer) => {
        out += b.toString();
        const m = /listening at (http:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      child.once('exit', (code) => reject(new Error(`site server exited ${String(code)}: ${(out + err).trim().slice(-300)}`)));
      setTimeout(() => reject(new Error('site server did not listen within 60 s')), 60_000).unref();
    });
    child.stdout?.resume();
    child.stderr?.resume();
    return { target: { url, token, root }, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
