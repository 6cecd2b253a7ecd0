import { type ChildProcess, spawn } from 'node:child_process';

/** A server process that said where it listens. */
export interface ListeningProcess {
  url: string;
  child: ChildProcess;
  /** SIGTERM, then SIGKILL after the grace period; resolves when the process is gone. Idempotent. */
  stop(): Promise<void>;
}

export interface ListeningOptions {
  cwd?: string;
  /** Named in errors: "site server", "site start". */
  what: string;
  /** How long it may take to print `listening at <url>`. */
  listenTimeoutMs: number;
  /** How long after SIGTERM before SIGKILL. */
  killAfterMs: number;
}

/**
 * Spawns a server (`sitecast site start`, or a script that starts a site) and
 * waits for its `listening at <url>` line. Its output keeps being drained so
 * it never blocks on a full pipe; if it exits or stays silent, the error
 * carries the end of what it printed, and the process is stopped.
 */
export async function spawnListening(file: string, args: readonly string[], options: ListeningOptions): Promise<ListeningProcess> {
  const child = spawn(file, args, { ...(options.cwd === undefined ? {} : { cwd: options.cwd }), stdio: ['ignore', 'pipe', 'pipe'] });
  const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), options.killAfterMs);
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
      child.once('exit', (code) => reject(new Error(`${options.what} exited ${String(code)}: ${(out + err).trim().slice(-300)}`)));
      setTimeout(() => reject(new Error(`${options.what} did not listen within ${options.listenTimeoutMs / 1000} s`)), options.listenTimeoutMs).unref();
    });
    child.stdout?.resume();
    child.stderr?.resume();
    return { url, child, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}
