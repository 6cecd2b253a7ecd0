import { type ChildProcess, spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { SitecastError } from '../errors.js';

/** How a site server process ended: its exit code, or the signal that ended it. */
export interface SiteExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A `sitecast site start <root>` child process. */
export interface SiteProcess {
  readonly root: string;
  readonly url: string;
  readonly pid: number;
  /** Resolves when the process is gone. */
  readonly exited: Promise<SiteExit>;
  /** True until the process exits. */
  running(): boolean;
  /** SIGTERM, then SIGKILL after `graceMs` (default 15 s); resolves with how it ended. Idempotent. */
  stop(graceMs?: number): Promise<SiteExit>;
  /** SIGKILL at once, as a crash would end it (kill -9). */
  kill(): Promise<SiteExit>;
  /** The last lines it wrote (stdout and stderr), for error messages. */
  output(): string;
}

const BIN = fileURLToPath(new URL('../../../bin/sitecast.js', import.meta.url));
const START_TIMEOUT_MS = 30_000;
const KEEP_OUTPUT = 4000;

/**
 * Runs `node bin/sitecast.js site start <root>` and resolves once it listens.
 * The child gets its own process group, so a Ctrl-C at the terminal reaches
 * only the parent, which then stops its sites in order.
 */
export async function spawnSite(root: string): Promise<SiteProcess> {
  const child: ChildProcess = spawn(process.execPath, [BIN, 'site', 'start', root], { stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  let tail = '';
  const note = (b: Buffer): void => {
    tail = (tail + b.toString()).slice(-KEEP_OUTPUT);
  };
  child.stdout?.on('data', note);
  child.stderr?.on('data', note);
  const exited = new Promise<SiteExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  const running = (): boolean => child.exitCode === null && child.signalCode === null;
  let stopping: Promise<SiteExit> | undefined;
  const stop = (graceMs = 15_000): Promise<SiteExit> => {
    stopping ??= (async () => {
      if (running()) child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
      const how = await exited;
      clearTimeout(timer);
      return how;
    })();
    return stopping;
  };
  const kill = async (): Promise<SiteExit> => {
    if (running()) child.kill('SIGKILL');
    return exited;
  };
  try {
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new SitecastError('SITECAST_E_SITE_DOWN', `the site server in ${root} did not listen within ${START_TIMEOUT_MS / 1000} s`)), START_TIMEOUT_MS);
      const onData = (): void => {
        const m = /listening at (http:\/\/\S+)/.exec(tail);
        if (m?.[1] === undefined) return;
        clearTimeout(timer);
        child.stdout?.off('data', onData);
        resolve(m[1]);
      };
      child.stdout?.on('data', onData);
      void exited.then((how) => {
        clearTimeout(timer);
        reject(
          new SitecastError('SITECAST_E_SITE_DOWN', `the site server in ${root} exited (${how.signal ?? `code ${String(how.code)}`}) before it listened: ${tail.trim().slice(-500)}`),
        );
      });
    });
    if (child.pid === undefined) throw new SitecastError('SITECAST_E_SITE_DOWN', `the site server in ${root} has no process id`);
    return { root, url, pid: child.pid, exited, running, stop, kill, output: () => tail };
  } catch (err) {
    await kill();
    throw err;
  }
}

/** Describes an exit for a person: "exit 0", "exit 1", "killed by SIGKILL". */
export function describeExit(how: SiteExit): string {
  return how.signal !== null ? `killed by ${how.signal}` : `exit ${String(how.code)}`;
}
