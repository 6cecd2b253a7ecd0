import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Readable, Writable } from 'node:stream';

/**
 * One long-lived `sh` per process that runs `sync -f` (syncfs(2)) for each
 * folder written to its standard input and answers with the exit status, a
 * line each.
 *
 * Why: starting `sync` directly forks this process, and the fork blocks the
 * event loop while the kernel copies its page tables: 10–20 ms for a site
 * server or a CLI ingest holding a few hundred MB, paid on every flush (an
 * ingest and each DP install flush once). `sh` is small, so its own fork of
 * `sync` costs this process nothing. The helper holds the process open only
 * while a flush is pending, and ends when this process does (its standard
 * input closes).
 */
class SyncHelper {
  private readonly child: ChildProcessByStdio<Writable, Readable, null>;
  private readonly waiting: ((status: number | null) => void)[] = [];
  dead = false;

  constructor() {
    this.child = spawn('sh', ['-c', 'while IFS= read -r d; do sync -f -- "$d" 2>/dev/null; echo $?; done'], { stdio: ['pipe', 'pipe', 'ignore'] });
    const stop = (): void => {
      this.dead = true;
      for (const resolve of this.waiting.splice(0)) resolve(null);
    };
    this.child.on('error', stop);
    this.child.on('exit', stop);
    this.child.stdin.on('error', stop);
    createInterface({ input: this.child.stdout }).on('line', (line) => {
      this.waiting.shift()?.(/^\d+$/.test(line) ? Number(line) : null);
      this.hold();
    });
    this.hold();
  }

  /** The exit status of `sync -f <dir>`, or null when the helper cannot run it (the caller runs `sync` itself). */
  run(dir: string): Promise<number | null> {
    if (this.dead || dir.includes('\n')) return Promise.resolve(null);
    return new Promise((resolve) => {
      this.waiting.push(resolve);
      this.hold();
      this.child.stdin.write(`${dir}\n`);
    });
  }

  /** Keeps the process alive while an answer is due, and only then. */
  private hold(): void {
    const stdout = this.child.stdout as Readable & { ref?: () => void; unref?: () => void };
    const stdin = this.child.stdin as Writable & { unref?: () => void };
    if (this.waiting.length > 0) {
      this.child.ref();
      stdout.ref?.();
    } else {
      this.child.unref();
      stdout.unref?.();
    }
    stdin.unref?.();
  }
}

let helper: SyncHelper | undefined;

/** `sync -f <dir>` through the process's helper; null when it could not be run that way. */
export function syncThroughHelper(dir: string): Promise<number | null> {
  if (helper === undefined || helper.dead) helper = new SyncHelper();
  return helper.run(dir);
}
