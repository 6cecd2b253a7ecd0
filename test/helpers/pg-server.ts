import { freePort } from '../../src/site/lab-chain.js';
import { spawnSync } from 'node:child_process';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A throw-away PostgreSQL server: initdb into a temporary folder, pg_ctl
 * start on a free loopback port, stopped (and its folder removed) by stop()
 * or when the process exits. Shared by the tests (test/helpers/postgres.ts)
 * and the scale benchmark (bench/suites/scale).
 */

/** Debian's layout: /usr/lib/postgresql/<major>/bin; the newest wins. SITECAST_TEST_PG_BIN overrides. */
export function postgresBinDir(): string | undefined {
  if (process.env.SITECAST_TEST_PG_BIN !== undefined) return process.env.SITECAST_TEST_PG_BIN;
  let majors: string[];
  try {
    majors = readdirSync('/usr/lib/postgresql').filter((n) => /^\d+$/.test(n));
  } catch {
    return undefined;
  }
  return majors
    .sort((a, b) => Number(b) - Number(a))
    .map((m) => join('/usr/lib/postgresql', m, 'bin'))
    .find((d) => existsSync(join(d, 'pg_ctl')) && existsSync(join(d, 'initdb')));
}

/** postgres refuses to run as root: as root, run its tools as the postgres user (or nobody). */
function asServerUser(): { prefix: string[]; uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' });
  if (id.status === 0) {
    const gid = spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' });
    return { prefix: ['runuser', '-u', 'postgres', '--'], uid: Number(id.stdout.trim()), gid: Number(gid.stdout.trim()) };
  }
  return { prefix: ['setpriv', '--reuid=65534', '--regid=65534', '--clear-groups', '--'], uid: 65534, gid: 65534 };
}

function run(command: string[], what: string): void {
  const [file, ...args] = command;
  const result = spawnSync(file ?? '', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  if (result.status !== 0) throw new Error(`${what} failed (${result.status ?? result.signal}): ${result.stderr}${result.stdout}`);
}

export interface ThrowAwayServer {
  /** DSN of the superuser `postgres` database (trust authentication on loopback). */
  url: string;
  /** Stops the server but keeps its data (an outage); resume() starts it again on the same port. */
  pause(): void;
  resume(): void;
  stop(): void;
}

export interface ThrowAwayOptions {
  /**
   * Keep PostgreSQL's durability (fsync, synchronous commit, full-page
   * writes), as a production server runs. Off by default: it buys a
   * throw-away server nothing and costs the tests time. A benchmark that
   * compares with SQLite's synchronous=FULL turns it on.
   */
  durable?: boolean;
  /** More `-c name=value` server settings. */
  settings?: Readonly<Record<string, string>>;
}

/** initdb into a temporary folder, pg_ctl start on a free loopback port. Stop it with stop(). */
export async function startThrowAwayServer(options: ThrowAwayOptions = {}): Promise<ThrowAwayServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'sitecast-pg-'));
  const user = asServerUser();
  const prefix = user?.prefix ?? [];
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  run([...prefix, join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'], 'initdb');
  const durability = options.durable === true ? '' : ' -c fsync=off -c synchronous_commit=off -c full_page_writes=off';
  const extra = Object.entries(options.settings ?? {})
    .map(([k, v]) => ` -c ${k}=${v}`)
    .join('');
  const settings = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir}${durability} -c max_connections=200${extra}`;
  const pgCtl = (args: string[], what: string): void =>
    run([...prefix, join(bin, 'pg_ctl'), '-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), ...args], what);
  try {
    pgCtl(['-o', settings, 'start'], 'pg_ctl start');
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw err;
  }
  let stopped = false;
  const stop = (): void => {
    if (stopped) return;
    stopped = true;
    const [file, ...args] = [...prefix, join(bin, 'pg_ctl'), '-D', data, '-m', 'immediate', '-w', 'stop'];
    spawnSync(file ?? '', args, { stdio: 'ignore' });
    rmSync(dir, { recursive: true, force: true });
  };
  process.once('exit', stop);
  return {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    pause: () => pgCtl(['-m', 'fast', 'stop'], 'pg_ctl stop'),
    resume: () => pgCtl(['-o', settings, 'start'], 'pg_ctl start'),
    stop,
  };
}
