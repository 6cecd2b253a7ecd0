import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sign, verify } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ErrorCode, isSitecastError } from '../../src/errors.js';
import { getLocalSite, listAdminTokens, openSiteDb, verifyAdminToken } from '../../src/db/index.js';
import { createLogger, initSite, loadSiteConfig, loadSiteKeys, siteFolders, sitePaths } from '../../src/site/index.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

async function tempDir(t: Ctx): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-site-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

function named(code: ErrorCode, pattern?: RegExp) {
  return (err: unknown): boolean => {
    assert.ok(isSitecastError(err, code), `expected ${code}, got ${String(err)}`);
    if (pattern !== undefined) assert.match(err.message, pattern);
    return true;
  };
}

const mode = async (path: string): Promise<number> => (await stat(path)).mode & 0o777;

test('init creates the whole site root: config, database, keys, inboxes, token', async (t) => {
  const parent = await tempDir(t);
  const root = join(parent, 'cen');
  const result = await initSite(root, { code: 'CEN', name: 'Central site' });
  const paths = sitePaths(root);

  assert.deepEqual(await readdir(parent), ['cen'], 'no staging folder is left behind');
  for (const folder of siteFolders(paths)) assert.ok((await stat(folder)).isDirectory(), folder);
  assert.deepEqual((await readdir(paths.replmgr)).sort(), ['outbound']);
  assert.deepEqual((await readdir(join(paths.replmgr, 'outbound'))).sort(), ['high', 'low', 'medium']);
  assert.deepEqual((await readdir(paths.schedule)).sort(), ['outboxes', 'tosend']);
  assert.deepEqual(await readdir(paths.despoolr), ['receive']);

  const config = await loadSiteConfig(root);
  assert.deepEqual(config, result.config);
  assert.equal(config.code, 'CEN');
  assert.equal(config.name, 'Central site');
  assert.deepEqual(config.listen, { host: '127.0.0.1', port: 8430 });
  assert.ok(Object.isFrozen(config) && Object.isFrozen(config.listen));

  assert.equal(await mode(paths.privateKey), 0o600);
  assert.equal(await mode(paths.keys), 0o700);
  assert.match(await readFile(paths.privateKey, 'utf8'), /^-----BEGIN PRIVATE KEY-----/);
  const keys = await loadSiteKeys(paths);
  const signature = sign(null, Buffer.from('hello'), keys.privateKey);
  assert.ok(verify(null, Buffer.from('hello'), keys.publicKey, signature));
  assert.equal(keys.publicKeyPem, result.publicKeyPem);

  assert.equal(await mode(paths.adminToken), 0o600);
  assert.equal((await readFile(paths.adminToken, 'utf8')).trim(), result.adminToken);
  const dbBytes = await readFile(paths.database);
  assert.ok(!dbBytes.includes(Buffer.from(result.adminToken)), 'the token is stored hashed only');

  const site = await openSiteDb({ kind: 'sqlite', path: paths.database });
  t.after(() => site.close());
  assert.equal((await verifyAdminToken(site, result.adminToken))?.role, 'admin');
  assert.equal((await listAdminTokens(site)).length, 1);
  const local = await getLocalSite(site);
  assert.equal(local?.code, 'CEN');
  assert.equal(local?.publicKey, result.publicKeyPem);
});

test('init takes a listen address and defaults the name; an existing empty folder is fine', async (t) => {
  const parent = await tempDir(t);
  const root = join(parent, 'pri');
  await mkdir(root);
  const r = await initSite(root, { code: 'P01', listen: '[::1]:9000' });
  assert.deepEqual(r.config.listen, { host: '::1', port: 9000 });
  assert.equal(r.config.name, 'Site P01');
  const r2 = await initSite(join(parent, 'x'), { code: 'X99', listen: '0.0.0.0:0' });
  assert.deepEqual(r2.config.listen, { host: '0.0.0.0', port: 0 });
  for (const listen of ['nohost:', 'host:99999', 'a b:80', '[::1:80', 'http://x:80']) {
    await assert.rejects(initSite(join(parent, 'y'), { code: 'Y01', listen }), named('SITECAST_E_INVALID_VALUE'), listen);
  }
  assert.deepEqual((await readdir(parent)).sort(), ['pri', 'x']);
});

test('init refuses a bad site code and creates nothing', async (t) => {
  const parent = await tempDir(t);
  for (const code of ['cen', 'CE', 'CENT', 'C-N', '', '../']) {
    await assert.rejects(initSite(join(parent, 'root'), { code }), named('SITECAST_E_INVALID_VALUE', /site code/), code);
  }
  await assert.rejects(initSite(join(parent, 'root'), { code: 'CEN', name: 'two\nlines' }), named('SITECAST_E_INVALID_VALUE'));
  assert.deepEqual(await readdir(parent), []);
});

test('init refuses a folder that is not empty, or a file, and leaves it untouched', async (t) => {
  const parent = await tempDir(t);
  const root = join(parent, 'busy');
  await mkdir(root);
  await writeFile(join(root, 'precious.txt'), 'keep me');
  await assert.rejects(initSite(root, { code: 'CEN' }), named('SITECAST_E_SITE_EXISTS', /not empty/));
  assert.deepEqual(await readdir(root), ['precious.txt']);
  assert.equal(await readFile(join(root, 'precious.txt'), 'utf8'), 'keep me');
  await writeFile(join(parent, 'afile'), 'x');
  await assert.rejects(initSite(join(parent, 'afile'), { code: 'CEN' }), named('SITECAST_E_SITE_EXISTS'));
  const first = await initSite(join(parent, 'cen'), { code: 'CEN' });
  await assert.rejects(initSite(first.root, { code: 'CEN' }), named('SITECAST_E_SITE_EXISTS'));
  assert.deepEqual((await readdir(parent)).sort(), ['afile', 'busy', 'cen']);
});

test('loadSiteConfig refuses a missing, broken or invalid site.json with a named error', async (t) => {
  const dir = await tempDir(t);
  await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /not a site root/));
  await writeFile(join(dir, 'site.json'), '{ nope');
  await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /not valid JSON/));
  const valid = {
    format: 1,
    code: 'CEN',
    name: 'c',
    listen: { host: '127.0.0.1', port: 8430 },
    database: { kind: 'sqlite', file: 'site.db' },
  };
  await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, code: 'cen' }));
  await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /code/));
  await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, listen: { host: '127.0.0.1', port: -1 } }));
  await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /listen\.port/));
  await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, extra: true }));
  await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG'));
  for (const bad of [-1, 1.5, '64', 70_000]) {
    await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, dpChunkCacheMiB: bad }));
    await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /dpChunkCacheMiB/));
  }
  await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, dpChunkCacheMiB: 0 }));
  assert.equal((await loadSiteConfig(dir)).dpChunkCacheMiB, 0);
  for (const bad of [-1, 2.5, '30', 40_000]) {
    await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, statusMessageDays: bad }));
    await assert.rejects(loadSiteConfig(dir), named('SITECAST_E_SITE_CONFIG', /statusMessageDays/));
  }
  await writeFile(join(dir, 'site.json'), JSON.stringify({ ...valid, statusMessageDays: 0 }));
  assert.equal((await loadSiteConfig(dir)).statusMessageDays, 0);
  await writeFile(join(dir, 'site.json'), JSON.stringify(valid));
  assert.equal((await loadSiteConfig(dir)).code, 'CEN');
});

test('loadSiteKeys refuses a public key that does not belong to the private key', async (t) => {
  const parent = await tempDir(t);
  const a = await initSite(join(parent, 'a'), { code: 'AAA' });
  const b = await initSite(join(parent, 'b'), { code: 'BBB' });
  await writeFile(a.paths.publicKey, b.publicKeyPem);
  await assert.rejects(loadSiteKeys(a.paths), named('SITECAST_E_SITE_CONFIG', /does not belong/));
});

test('the component log appends timestamped lines and never writes secrets', async (t) => {
  const root = await tempDir(t);
  let clock = Date.UTC(2024, 0, 2, 3, 4, 5, 6);
  const log = createLogger(root, 'distmgr', { now: () => new Date(clock++) });
  const token = 'sct_' + 'A'.repeat(43);
  log.info('processing CEN00001.PKN');
  log.warn(`client sent Authorization: Bearer ${token}`);
  log.error('cannot sign', new Error('key -----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY----- bad'));
  log.info(`token ${token} issued\nsecond line`);
  await log.flush();
  const text = await readFile(join(root, 'logs', 'distmgr.log'), 'utf8');
  const lines = text.trimEnd().split('\n');
  assert.equal(lines.length, 4);
  assert.equal(lines[0], '2024-01-02T03:04:05.006Z INFO  processing CEN00001.PKN');
  assert.match(lines[1] ?? '', /^2024-01-02T03:04:05\.007Z WARN {2}client sent Authorization: Bearer \[redacted\]$/);
  assert.match(lines[2] ?? '', /ERROR cannot sign: Error: key \[private key redacted\] bad$/);
  assert.match(lines[3] ?? '', /INFO {2}token sct_\[redacted\] issued ⏎ second line$/);
  assert.ok(!text.includes('AAAA') && !text.includes('MC4CAQ'));
  assert.throws(() => createLogger(root, '../x'), named('SITECAST_E_INVALID_VALUE'));
});

test('a full component log becomes <component>.lo_ (the one before replaced), and no line is lost or split', async (t) => {
  const root = await tempDir(t);
  const dir = join(root, 'logs');
  // Each line is 24 (time) + 1 + 5 + 1 + 9 ("entry 000") + 1 = 41 bytes; 10 fit in 420 bytes.
  const first = createLogger(root, 'sender', { maxBytes: 420, now: () => new Date(0) });
  for (let i = 0; i < 15; i++) first.info(`entry ${String(i).padStart(3, '0')}`);
  await first.flush();
  const lines = async (name: string): Promise<string[]> => (await readFile(join(dir, name), 'utf8')).trimEnd().split('\n');
  assert.deepEqual((await lines('sender.lo_')).map((l) => l.slice(-3)), ['000', '001', '002', '003', '004', '005', '006', '007', '008', '009']);
  assert.deepEqual((await lines('sender.log')).map((l) => l.slice(-3)), ['010', '011', '012', '013', '014']);
  // A new logger (a restart) counts from what is in the file, and the next rotation replaces the .lo_.
  const second = createLogger(root, 'sender', { maxBytes: 420, now: () => new Date(0) });
  for (let i = 15; i < 21; i++) second.info(`entry ${String(i).padStart(3, '0')}`);
  await second.flush();
  assert.deepEqual((await lines('sender.lo_')).map((l) => l.slice(-3)), ['010', '011', '012', '013', '014', '015', '016', '017', '018', '019']);
  assert.deepEqual((await lines('sender.log')).map((l) => l.slice(-3)), ['020']);
  for (const name of ['sender.lo_', 'sender.log']) for (const l of await lines(name)) assert.match(l, /^1970-01-01T00:00:00\.000Z INFO {2}entry \d{3}$/);
});
