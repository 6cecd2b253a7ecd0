import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSiteConfig } from '../../src/site/index.js';
import { tempDir } from '../helpers/fixtures.js';
import { postgresAvailable, testDatabase } from '../helpers/postgres.js';
import { runCli } from '../helpers/cli.js';
import { freePort as deadPort } from '../../src/site/lab-chain.js';

const noServer = postgresAvailable() ? false : 'no PostgreSQL server (set SITECAST_TEST_PG or install postgresql)';

const run = runCli;

test('site init --database postgres://… puts the site on PostgreSQL', { skip: noServer }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'cen');
  const url = await testDatabase(dir);
  const r = await run(['site', 'init', root, '--code', 'CEN', '--listen', '127.0.0.1:0', '--database', url, '--json']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal((await loadSiteConfig(root)).database.kind, 'postgres');
  assert.ok(!(await readdir(root)).includes('site.db'));
});

test('site init --database with an unreachable server fails with SITECAST_E_DB and never prints the password', async (t) => {
  const dir = await tempDir(t);
  const port = await deadPort();
  const r = await run(['site', 'init', join(dir, 'cen'), '--code', 'CEN', '--database', `postgres://site:pw-Zq81x@127.0.0.1:${port}/cen`, '--json']);
  assert.equal(r.code, 1);
  assert.match(r.stdout + r.stderr, /SITECAST_E_DB/);
  assert.match(r.stdout + r.stderr, new RegExp(`127\\.0\\.0\\.1:${port}`));
  assert.ok(!(r.stdout + r.stderr).includes('pw-Zq81x'));
  assert.deepEqual(await readdir(dir), []);
});
