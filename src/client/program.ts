import { spawn } from 'node:child_process';
import { open } from 'node:fs/promises';

export interface ProgramRun {
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  timedOut: boolean;
  seconds: number;
}

export interface ProgramOptions {
  commandLine: string;
  cwd: string;
  maxRunTimeSeconds: number;
  /** Standard output and error go here. */
  logFile: string;
}

/**
 * Runs a program's command line with `/bin/sh -c` in the package's working
 * folder, in a process group of its own, so that at the time limit the whole
 * tree (installers start installers) is killed with SIGKILL, not just the
 * shell. Output goes to a file: a pipe would keep the run open as long as any
 * grandchild holds it.
 */
export async function runProgram(options: ProgramOptions): Promise<ProgramRun> {
  const out = await open(options.logFile, 'a', 0o600);
  const started = Date.now();
  try {
    return await new Promise<ProgramRun>((resolve, reject) => {
      const child = spawn('/bin/sh', ['-c', options.commandLine], {
        cwd: options.cwd,
        detached: true,
        stdio: ['ignore', out.fd, out.fd],
        env: { ...process.env, SITECAST_PACKAGE_DIR: options.cwd },
      });
      let timedOut = false;
      const killTree = (): void => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      };
      const timer = setTimeout(() => {
        timedOut = true;
        killTree();
      }, options.maxRunTimeSeconds * 1000);
      child.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once('exit', (code, signal) => {
        clearTimeout(timer);
        resolve({ exitCode: code, signal, timedOut, seconds: (Date.now() - started) / 1000 });
      });
    });
  } finally {
    await out.close();
  }
}
