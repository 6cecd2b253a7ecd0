import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { clientId, clientName } from './keys.js';

/**
 * Fills the database of a freshly initialised site with a large site's
 * worth of rows, straight through the database (one transaction, rows built
 * by the database itself where it can), the same rows on SQLite and
 * PostgreSQL. Deterministic: the state of package i on DP j is a function of
 * (i, j).
 */

export const SHAPE = { packages: 10_000, dps: 250, clients: 100_000 } as const;
export const SITE = 'BEN';

export interface FillInput {
  /** An existing folder: the source path of every package (the update route checks it exists). */
  source: string;
  /** Parent folder of the DPs' paths (not created: nothing is installed on them). */
  dpRoot: string;
  /** SPKI PEM keys of clients 1…SHAPE.clients. */
  publicKeys: readonly string[];
}

export interface FillResult {
  seconds: number;
  statusRows: number;
}

/** The package id of package i (1-based), as createPackage would have made it. */
export function packageId(i: number): string {
  return `${SITE}${i.toString(16).toUpperCase().padStart(5, '0')}`;
}

interface Dialect {
  hexId(expr: string): string;
  pad3(expr: string): string;
  /** A FROM item yielding column `i` = 1…n (alias p) or `j` (alias d). */
  packagesFrom: string;
  dpsFrom: string;
}

const quote = (text: string): string => `'${text.replaceAll("'", "''")}'`;

/** 96 % installed, 2 % pending, 1 % retrying, 1 % failed, spread evenly over packages and DPs. */
function statusSql(d: Dialect, now: string): string {
  const later = quote(new Date(Date.parse(now) + 3_600_000).toISOString());
  return `INSERT INTO package_dp_status (package_id, site_code, dp_name, state, source_version, retry_count, next_attempt, last_message, updated_at)
SELECT pid, '${SITE}', dp,
  CASE WHEN h < 960 THEN 'installed' WHEN h < 980 THEN 'pending' WHEN h < 990 THEN 'retrying' ELSE 'failed' END,
  CASE WHEN h < 960 THEN 1 ELSE 0 END,
  CASE WHEN h >= 980 AND h < 990 THEN 2 ELSE 0 END,
  CASE WHEN h >= 980 AND h < 990 THEN ${later} ELSE NULL END,
  CASE WHEN h < 960 THEN 'source version 1 installed' WHEN h < 980 THEN 'installing source version 1'
       WHEN h < 990 THEN 'SITECAST_E_IO: cannot write the DP share (generated); retrying with back-off'
       ELSE 'source folder: not readable (generated)' END,
  ${quote(now)}
FROM (SELECT ${d.hexId('p.i')} AS pid, 'dp' || ${d.pad3('d.j')} AS dp, (p.i * 7919 + d.j * 104729) % 1000 AS h
      FROM ${d.packagesFrom} CROSS JOIN ${d.dpsFrom} ORDER BY p.i, d.j) AS g`;
}

function definitionsSql(d: Dialect, input: FillInput, now: string): string[] {
  const at = quote(now);
  return [
    `INSERT INTO packages (id, name, version, source_path, priority, source_version, manifest_sha256, created_at, updated_at)
     SELECT ${d.hexId('p.i')}, 'scale package ' || p.i, '1', ${quote(input.source)},
       CASE p.i % 3 WHEN 0 THEN 'high' WHEN 1 THEN 'medium' ELSE 'low' END, 1, NULL, ${at}, ${at} FROM ${d.packagesFrom}`,
    `INSERT INTO programs (package_id, name, command_line, max_run_time_seconds) SELECT id, 'Install', 'sh install.sh', 3600 FROM packages`,
    `UPDATE counters SET value = ${SHAPE.packages} WHERE name = 'package_id'`,
    `INSERT INTO dps (site_code, name, path, url, created_at)
     SELECT '${SITE}', 'dp' || ${d.pad3('d.j')}, ${quote(input.dpRoot)} || '/dp' || ${d.pad3('d.j')}, NULL, ${at} FROM ${d.dpsFrom}`,
    statusSql(d, now),
    // As if the database monitor had already turned the definitions into wake-up files and acknowledged them.
    'DELETE FROM change_log',
  ];
}

const CLIENT_COLUMNS = '(id, name, public_key, site_code, boundary, ip, approved, registered_at, last_seen_at)';

function ip(i: number): string {
  return `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
}

export async function fillSqlite(path: string, input: FillInput): Promise<FillResult> {
  const started = performance.now();
  const db = new BetterSqlite3(path);
  try {
    db.pragma('foreign_keys = ON');
    const now = new Date().toISOString();
    const series = (name: string, column: string, n: number): string =>
      `CREATE TEMP TABLE ${name} (${column} INTEGER PRIMARY KEY);
       WITH RECURSIVE s(v) AS (SELECT 1 UNION ALL SELECT v + 1 FROM s WHERE v < ${n}) INSERT INTO ${name} SELECT v FROM s;`;
    const d: Dialect = {
      hexId: (e) => `'${SITE}' || printf('%05X', ${e})`,
      pad3: (e) => `printf('%03d', ${e})`,
      packagesFrom: 'seq_p AS p',
      dpsFrom: 'seq_d AS d',
    };
    const insertClient = db.prepare(`INSERT INTO clients ${CLIENT_COLUMNS} VALUES (?, ?, ?, '${SITE}', NULL, ?, 1, ?, NULL)`);
    db.transaction(() => {
      db.exec(series('seq_p', 'i', SHAPE.packages));
      db.exec(series('seq_d', 'j', SHAPE.dps));
      for (const statement of definitionsSql(d, input, now)) db.exec(statement);
      input.publicKeys.forEach((key, n) => insertClient.run(clientId(n + 1), clientName(n + 1), key, ip(n + 1), now));
    })();
    const statusRows = Number((db.prepare('SELECT count(*) AS n FROM package_dp_status').get() as { n: number }).n);
    return { seconds: (performance.now() - started) / 1000, statusRows };
  } finally {
    db.close();
  }
}

export async function fillPostgres(url: string, input: FillInput): Promise<FillResult> {
  const started = performance.now();
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const now = new Date().toISOString();
    const d: Dialect = {
      hexId: (e) => `'${SITE}' || lpad(upper(to_hex(${e})), 5, '0')`,
      pad3: (e) => `lpad((${e})::text, 3, '0')`,
      packagesFrom: `generate_series(1, ${SHAPE.packages}) AS p(i)`,
      dpsFrom: `generate_series(1, ${SHAPE.dps}) AS d(j)`,
    };
    await client.query('BEGIN');
    for (const statement of definitionsSql(d, input, now)) await client.query(statement);
    const CHUNK = 10_000;
    for (let from = 0; from < input.publicKeys.length; from += CHUNK) {
      const keys = input.publicKeys.slice(from, from + CHUNK);
      const n = keys.map((_, k) => from + k + 1);
      await client.query(
        `INSERT INTO clients ${CLIENT_COLUMNS}
         SELECT id, name, key, '${SITE}', NULL, ip, 1, $5, NULL FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS c(id, name, key, ip)`,
        [n.map(clientId), n.map(clientName), keys, n.map(ip), now],
      );
    }
    await client.query('COMMIT');
    // What autovacuum does on its own soon after a load this size: statistics for the planner, and the visibility map index-only scans need.
    await client.query('VACUUM ANALYZE');
    const { rows } = await client.query<{ n: string }>('SELECT count(*) AS n FROM package_dp_status');
    return { seconds: (performance.now() - started) / 1000, statusRows: Number(rows[0]?.n ?? 0) };
  } finally {
    await client.end();
  }
}
