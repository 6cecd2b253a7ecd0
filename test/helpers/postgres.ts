import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';

/**
 * A PostgreSQL server for the tests. SITECAST_TEST_PG (a DSN with a user
 * allowed to create databases) names one; otherwise, when Debian's server
 * binaries are installed, a throw-away server is started on a free loopback
 * port in a temporary folder and stopped when the test process exits. Without
 * either, PostgreSQL tests are not declared.
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

/**
 * True when the PostgreSQL backend can run in this process (SITECAST_TEST_NO_PG
 * turns it off). With SITECAST_TEST_REQUIRE_PG set (CI sets it), a missing
 * server is an error instead of skipped tests.
 */
export function postgresAvailable(): boolean {
  if (process.env.SITECAST_TEST_NO_PG !== undefined) return false;
  const available = process.env.SITECAST_TEST_PG !== undefined || postgresBinDir() !== undefined;
  if (!available && process.env.SITECAST_TEST_REQUIRE_PG !== undefined) {
    throw new Error('SITECAST_TEST_REQUIRE_PG is set but no PostgreSQL server was found: apt-get install postgresql, or set SITECAST_TEST_PG to a DSN');
  }
  return available;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address !== null ? resolve(address.port) : reject(new Error('no port'))));
    });
  });
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

/** initdb into a temporary folder, pg_ctl start on a free loopback port. Stop it with stop(). */
export async function startThrowAwayServer(): Promise<ThrowAwayServer> {
  const bin = postgresBinDir();
  if (bin === undefined) throw new Error('PostgreSQL server binaries not found (apt-get install postgresql)');
  const dir = mkdtempSync(join(tmpdir(), 'sitecast-pg-'));
  const user = asServerUser();
  const prefix = user?.prefix ?? [];
  if (user !== undefined) chownSync(dir, user.uid, user.gid);
  const data = join(dir, 'data');
  const port = await freePort();
  run([...prefix, join(bin, 'initdb'), '-D', data, '-U', 'postgres', '-A', 'trust', '--no-sync', '-E', 'UTF8', '--locale=C'], 'initdb');
  // Durability buys nothing for a throw-away server and costs the tests time.
  const settings = `-c listen_addresses=127.0.0.1 -p ${port} -k ${dir} -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200`;
  const pgCtl = (args: string[], what: string): void =>
    run([...prefix, join(bin, 'pg_ctl'), '-D', data, '-w', '-t', '60', '-l', join(dir, 'server.log'), ...args], what);
  pgCtl(['-o', settings, 'start'], 'pg_ctl start');
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

let shared: Promise<string> | undefined;

/** The DSN of the server this test process uses (SITECAST_TEST_PG, or one throw-away server per process). */
export function testServerUrl(): Promise<string> {
  shared ??= process.env.SITECAST_TEST_PG !== undefined
    ? Promise.resolve(process.env.SITECAST_TEST_PG)
    : startThrowAwayServer().then((s) => s.url);
  return shared;
}

function withDatabase(url: string, database: string): string {
  const u = new URL(url);
  u.pathname = `/${database}`;
  return u.toString();
}

const created = new Set<string>();
let cleanupArmed = false;

/** On a server the tests did not start, drop the databases this process created once it has nothing else to do. */
function armCleanup(): void {
  if (cleanupArmed || process.env.SITECAST_TEST_PG === undefined) return;
  cleanupArmed = true;
  process.once('beforeExit', () => {
    const names = [...created];
    created.clear();
    void Promise.all(names.map((n) => dropDatabase(n).catch(() => undefined)));
  });
}

async function dropDatabase(name: string): Promise<void> {
  const admin = new pg.Client({ connectionString: await testServerUrl() });
  await admin.connect();
  try {
    await admin.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
  } finally {
    await admin.end();
  }
}

/**
 * The DSN of a database of its own for `key` (a test's temporary folder):
 * created on first use, the same one on every later call, dropped by drop().
 */
export async function testDatabase(key: string): Promise<string> {
  const server = await testServerUrl();
  const name = `sitecast_t_${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
  const admin = new pg.Client({ connectionString: server });
  await admin.connect();
  try {
    const exists = await admin.query('SELECT 1 FROM pg_database WHERE datname = $1', [name]);
    if (exists.rowCount === 0) {
      await admin.query(`CREATE DATABASE ${name}`).catch((err: { code?: string }) => {
        // Two opens of one folder at once: the other one created it.
        if (err.code !== '42P04' && err.code !== '23505') throw err;
      });
    }
  } finally {
    await admin.end();
  }
  created.add(name);
  armCleanup();
  return withDatabase(server, name);
}
