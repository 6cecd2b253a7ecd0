import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Kysely } from 'kysely';
import { openSiteDb } from '../../src/db/index.js';
import { backupSite } from '../../src/site/backup/backup.js';
import { restoreSite } from '../../src/site/backup/restore.js';
import { TABLES, tableColumns } from '../../src/site/backup/tables.js';
import { startSite } from '../../src/site/server.js';
import { api, packageStatus, siblings, siteWithPackage, waitState } from '../helpers/backup.js';
import { newSite } from '../helpers/site.js';

const run = promisify(execFile);
const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

async function cli(...args: string[]): Promise<unknown> {
  const { stdout } = await run(process.execPath, [CLI, ...args]);
  return JSON.parse(stdout) as unknown;
}

async function packages(url: string, token: string): Promise<unknown> {
  const r = (await (await api(url, token, 'GET', '/packages')).json()) as { packages: Record<string, unknown>[] };
  return r.packages.map((p) => ({ ...p })).sort((a, b) => String(a.id).localeCompare(String(b.id)));
}

test('backup lists every table of the newest schema (a new migration adds its tables to TABLES)', async (t) => {
  const site = await newSite(t);
  const db = await openSiteDb({ kind: 'sqlite', path: join(site.dir, 'fresh.db') });
  try {
    const present = [...(await tableColumns(db.db as unknown as Kysely<unknown>, db.dialect)).keys()].filter((n) => n !== 'schema_migrations').sort();
    assert.deepEqual(present, TABLES.map((s) => s.name).sort());
  } finally {
    await db.close();
  }
});

test('backup of a running site, restore into a new root: same packages, statuses, DPs and token; unfinished work resumes; library verifies', async (t) => {
  const s = await siteWithPackage(t);
  const { site, handle, token } = s;
  const before = { packages: await packages(handle.url, token), installed: await packageStatus(handle.url, token, s.installed), dps: await (await api(handle.url, token, 'GET', '/dps')).json() };
  const messages = ((await (await api(handle.url, token, 'GET', '/status-messages')).json()) as { messages: { id: number }[] }).messages;
  assert.equal((await readdir(join(site.root, 'inboxes', 'distmgr.box'))).includes(`${s.waiting}.PKN`), true);

  // While the server runs, from another process, as an administrator would.
  const out = join(site.dir, 'cen.backup');
  const started = Date.now();
  const made = (await cli('site', 'backup', site.root, '--out', out, '--json')) as { file: string; bytes: number; tables: Record<string, number>; chunks: number };
  t.diagnostic(`backup of a site with one package: ${made.bytes} bytes, ${made.chunks} chunks in ${Date.now() - started} ms`);
  assert.equal(made.file, out);
  assert.equal(made.bytes, (await stat(out)).size);
  assert.equal((await stat(out)).mode & 0o777, 0o600);
  assert.equal(made.tables.packages, 2);
  assert.equal(made.tables.dps, 2);
  assert.ok(made.chunks > 0);
  assert.ok((made.tables.status_messages ?? 0) > 0);
  await handle.close();

  const root = join(site.dir, 'restored');
  const t1 = Date.now();
  const restored = (await cli('site', 'restore', out, root, '--json')) as { root: string; site: string; tables: Record<string, number>; chunks: number };
  t.diagnostic(`restore: ${Date.now() - t1} ms`);
  assert.equal(restored.root, root);
  assert.equal(restored.site, 'CEN');
  assert.deepEqual(restored.tables, made.tables);
  assert.equal(restored.chunks, made.chunks);
  assert.deepEqual(await siblings(root), ['blocked', 'cen', 'cen.backup', 'dp1', 'restored', 'src']);
  for (const f of ['admin.token', 'keys/site.key', 'keys/site.pub']) assert.deepEqual(await readFile(join(root, f)), await readFile(join(site.root, f)));
  assert.equal((await stat(join(root, 'keys/site.key'))).mode & 0o777, 0o600);
  assert.deepEqual(await readdir(join(root, 'smspkg')), await readdir(join(site.root, 'smspkg')));
  assert.deepEqual(await readdir(join(root, 'inboxes', 'distmgr.box')), [`${s.waiting}.PKN`]);
  const verify = (await cli('content', 'verify', '--library', join(root, 'library'), '--json')) as { bad: unknown[]; chunks: number };
  assert.deepEqual(verify.bad, []);
  assert.equal(verify.chunks, made.chunks);

  // The original is gone from this machine; the restored site takes over.
  await rm(site.root, { recursive: true });
  await rm(s.blocker);
  const h2 = await startSite(root, { distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 500 } } });
  site.defer(() => h2.close());
  assert.deepEqual(await packages(h2.url, token), before.packages);
  assert.deepEqual(await packageStatus(h2.url, token, s.installed), before.installed);
  assert.deepEqual(await (await api(h2.url, token, 'GET', '/dps')).json(), before.dps);
  // The unfinished distribution resumes from the inbox file the backup carried.
  await waitState(h2.url, token, s.waiting, 'dp2', 'installed');
  assert.ok((await readdir(join(s.blocker, 'dp2', 'SMSPKG', s.waiting))).includes('README.txt'));
  // Status messages kept their ids; new ones follow them.
  const after = ((await (await api(h2.url, token, 'GET', '/status-messages')).json()) as { messages: { id: number }[] }).messages;
  const maxBefore = Math.max(...messages.map((m) => m.id));
  for (const m of messages) assert.ok(after.some((a) => a.id === m.id), `status message ${m.id} kept`);
  assert.ok(after.some((a) => a.id > maxBefore));
  // The token works for changes too.
  assert.equal((await api(h2.url, token, 'POST', '/dps', { name: 'dp3', path: join(site.dir, 'dp3') })).status, 201);
});

test('a backup taken while packages are being created is one moment: the id counter, the packages and their programs agree', async (t) => {
  const site = await newSite(t);
  const h = await startSite(site.root);
  site.defer(() => h.close());
  const token = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  // A small source of its own (not the test folder, which holds the site root and the backups).
  const source = join(site.dir, 'source');
  await mkdir(source);
  await writeFile(join(source, 'setup.cmd'), 'echo setup\n');
  let writing = true;
  let created = 0;
  const writer = (async () => {
    while (writing) {
      const r = await api(h.url, token, 'POST', '/packages', { name: `P${created}`, sourcePath: source, programs: [{ name: 'Install', commandLine: 'setup --quiet' }] });
      if (r.status !== 201) throw new Error(`create: ${r.status} ${await r.text()}`);
      created++;
    }
  })();
  const made: string[] = [];
  for (let i = 0; i < 3; i++) {
    while (created < (i + 1) * 5) await new Promise((r) => setTimeout(r, 5));
    const out = join(site.dir, `during-${i}.backup`);
    await backupSite(site.root, out, { sitecast: 'test' });
    made.push(out);
  }
  writing = false;
  await writer;
  for (const [i, file] of made.entries()) {
    const root = join(site.dir, `during-${i}`);
    await restoreSite(file, root);
    const db = await openSiteDb({ kind: 'sqlite', path: join(root, 'site.db') });
    try {
      const counter = await db.db.selectFrom('counters').select('value').where('name', '=', 'package_id').executeTakeFirstOrThrow();
      const pkgs = await db.db.selectFrom('packages').select('id').orderBy('id').execute();
      const programs = await db.db.selectFrom('programs').select('package_id').execute();
      assert.ok(pkgs.length >= (i + 1) * 5);
      assert.equal(Number(counter.value), pkgs.length, 'the counter was read at the same moment as the packages');
      assert.equal(Number.parseInt(pkgs[pkgs.length - 1]?.id.slice(3) ?? '', 16), pkgs.length);
      assert.equal(programs.length, pkgs.length, 'every package has its program, and no program is without its package');
    } finally {
      await db.close();
    }
  }
});
