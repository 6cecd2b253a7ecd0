import { createHash } from 'node:crypto';
import pg from 'pg';
import { postgresBinDir, startThrowAwayServer } from './pg-server.js';

export { postgresBinDir, startThrowAwayServer, type ThrowAwayServer } from './pg-server.js';

/**
 * A PostgreSQL server for the tests. SITECAST_TEST_PG (a DSN with a user
 * allowed to create databases) names one; otherwise, when Debian's server
 * binaries are installed, a throw-away server is started on a free loopback
 * port in a temporary folder and stopped when the test process exits. Without
 * either, PostgreSQL tests are not declared.
 */

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
