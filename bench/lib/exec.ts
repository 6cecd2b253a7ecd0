import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { Measured, RunOptions } from './types.js';

const GNU_TIME = '/usr/bin/time';
const TAIL = 300;
const COMMAND = 80;

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

function spawnCollect(cmd: string, args: string[], cwd: string | undefined): Promise<Exit> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) =>
      resolve({
        code,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      }),
    );
  });
}

/**
 * One line saying why a program failed: the first line that names an error
 * (a Node stack trace starts with it), else the last line of output.
 */
function summary(text: string): string {
  const lines = text.split('\n').map((l) => l.trim()).filter((l) => l !== '');
  const named = lines.find((l) => /error|SITECAST_E_|^code:/i.test(l) && !l.startsWith('at '));
  const line = named ?? lines[lines.length - 1] ?? '';
  return line.length > TAIL ? `${line.slice(0, TAIL)}…` : line;
}

function commandLine(cmd: string, args: string[]): string {
  const text = [basename(cmd), ...args].join(' ');
  return text.length > COMMAND ? `${text.slice(0, COMMAND)}…` : text;
}

/**
 * Runs a program under GNU time so the peak RSS (`%M`, the largest process of
 * the tree, in KiB) comes from the kernel rather than from sampling. Wall time
 * is measured here around the whole child.
 */
export async function runMeasured(
  cmd: string,
  args: string[],
  options: RunOptions = {},
): Promise<Measured> {
  const rssFile = join(tmpdir(), `bench-time-${randomBytes(6).toString('hex')}`);
  const started = process.hrtime.bigint();
  try {
    const exit = await spawnCollect(
      GNU_TIME,
      ['-q', '-f', '%M', '-o', rssFile, cmd, ...args],
      options.cwd,
    );
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    if (exit.code !== 0 && options.allowFailure !== true) {
      const how = exit.signal !== null ? `signal ${exit.signal}` : `exit ${String(exit.code)}`;
      const said = summary(exit.stderr) || summary(exit.stdout) || 'no output';
      throw new Error(`${commandLine(cmd, args)} failed (${how}): ${said}`);
    }
    const kib = Number.parseInt((await readFile(rssFile, 'utf8').catch(() => '0')).trim(), 10);
    return {
      seconds,
      peakRssBytes: Number.isFinite(kib) ? kib * 1024 : 0,
      stdout: exit.stdout,
      stderr: exit.stderr,
    };
  } finally {
    await rm(rssFile, { force: true });
  }
}

/** Quotes one word for `sh -c`. */
export function shq(word: string): string {
  return `'${word.replaceAll("'", `'\\''`)}'`;
}

/** Runs a shell pipeline under bash with pipefail, so a failing stage fails the run. */
export function runShell(script: string, options: RunOptions = {}): Promise<Measured> {
  return runMeasured('bash', ['-o', 'pipefail', '-e', '-c', script], options);
}
