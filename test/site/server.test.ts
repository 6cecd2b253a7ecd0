import { test } from 'node:test';
import { existsSync } from 'node:fs';
import assert from 'node:assert/strict';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { startSite } from '../../src/site/server.js';
import { chunkPath } from '../../src/content/store.js';
import { loadManifest } from '../../src/content/library.js';
import { makeTree } from '../helpers/fixtures.js';
import { distribute, statusWhen } from '../helpers/distribution.js';
import { eventually, newSite } from '../helpers/site.js';

test('startSite: instruction files from the MP and DP files with Range over real HTTP; site.url; close() idempotent', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src, 'http');
  const h = await startSite(site.root, { distmgr: { graceMs: 100 } });
  site.defer(() => h.close());
  assert.match(h.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.notEqual(h.url, 'http://127.0.0.1:0');
  assert.equal((await readFile(join(site.root, 'site.url'), 'utf8')).trim(), h.url);

  const pkg = await distribute(h.ctx, site.dir, src, ['DP1']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  const pkgUrl = `${h.url}/mp/v1/pkginfo/${pkg.id}.PKG`;
  const info = await eventually('the .PKG at the MP', async () => {
    const r = await fetch(pkgUrl);
    return r.status === 200 ? ((await r.json()) as { packageId: string; sourceVersion: number }) : undefined;
  });
  assert.equal(info.packageId, pkg.id);
  const ico = await eventually('the .ICO at the MP', async () => {
    const r = await fetch(`${h.url}/mp/v1/pkginfo/${pkg.id}.ICO`);
    return r.status === 200 ? r : undefined;
  });
  assert.equal(ico.headers.get('content-type'), 'image/x-icon');
  assert.equal((await fetch(`${h.url}/mp/v1/pkginfo/CEN0FFFF.PKG`)).status, 404);
  assert.equal((await fetch(`${h.url}/mp/v1/pkginfo/..%2Fsite.json`)).status, 404);
  assert.equal((await fetch(`${h.url}/mp/v1/pkginfo/site.db`)).status, 404);

  const nal = (await (await fetch(`${h.url}/mp/v1/pkginfo/${pkg.id}.NAL`)).json()) as { locations: { url: string }[] };
  const base = nal.locations[0]?.url ?? '';
  const big = await readFile(join(src, 'lib/big.bin'));
  const ranged = await fetch(`${base}lib/big.bin`, { headers: { range: 'bytes=1000000-1000099' } });
  assert.equal(ranged.status, 206);
  assert.equal(ranged.headers.get('content-range'), `bytes 1000000-1000099/${big.length}`);
  assert.deepEqual(Buffer.from(await ranged.arrayBuffer()), big.subarray(1000000, 1000100));
  const whole = await fetch(`${base}lib/readme-link`);
  assert.deepEqual(Buffer.from(await whole.arrayBuffer()), await readFile(join(src, 'README.txt')));
  assert.equal((await fetch(`${base}lib/missing`)).status, 404);
  assert.equal((await fetch(`${h.url}/dp/DP1/${pkg.id}/..%2F..%2Flibrary%2Flibrary.json`)).status >= 400, true);
  assert.equal((await fetch(`${h.url}/dp/NOPE/${pkg.id}/README.txt`)).status, 404);
  const put = await fetch(`${base}README.txt`, { method: 'PUT', body: 'x' });
  assert.ok(put.status === 404 || put.status === 405, `PUT answered ${put.status}`);

  const manifest = await loadManifest({ dir: join(site.dir, 'dp1', 'library') }, info && ((await h.ctx.db.db.selectFrom('packages').select('manifest_sha256').executeTakeFirstOrThrow()).manifest_sha256 ?? ''));
  const file = manifest.entries.find((e) => e.type === 'file' && e.chunks.length > 0);
  const hash = file?.type === 'file' ? (file.chunks[0]?.hash ?? '') : '';
  const chunk = await fetch(`${h.url}/dp/DP1/chunks/${hash}`);
  assert.equal(chunk.status, 200);
  assert.deepEqual(Buffer.from(await chunk.arrayBuffer()), await readFile(chunkPath(join(site.dir, 'dp1', 'library'), hash)));

  await Promise.all([h.close(), h.close()]);
  await h.close();
  await assert.rejects(stat(join(site.root, 'site.url')), { code: 'ENOENT' });
  await assert.rejects(fetch(pkgUrl));
  for (const log of ['smsdbmon', 'distmgr', 'inboxmgr', 'site']) assert.match(await readFile(join(site.root, 'logs', `${log}.log`), 'utf8'), /stopped/);
});

test('startSite refuses a folder that is not a site root, and a port already taken, leaving nothing running', async (t) => {
  const site = await newSite(t);
  await assert.rejects(startSite(join(site.dir, 'nothing-here')), { code: 'SITECAST_E_SITE_CONFIG' });
  const first = await startSite(site.root, { provider: false });
  site.defer(() => first.close());
  const port = Number(new URL(first.url).port);
  const other = await newSite(t, 'OTH');
  await assert.rejects(startSite(other.root, { provider: false, listen: { host: '127.0.0.1', port } }));
  assert.equal(existsSync(join(other.root, 'site.lock')), false, 'a start that failed leaves no lock');
  assert.equal((await readFile(join(site.root, 'site.url'), 'utf8')).trim(), first.url, 'the running server keeps its site.url');
  // A second server on the same root is refused before it touches anything, naming the process that runs.
  await assert.rejects(startSite(site.root, { provider: false, listen: { host: '127.0.0.1', port: 0 } }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_SITE_RUNNING');
    assert.match(err.message, new RegExp(`already running in process ${process.pid}`));
    return true;
  });
  assert.equal((await readFile(join(site.root, 'site.url'), 'utf8')).trim(), first.url);
  await first.close();
  assert.equal(existsSync(join(site.root, 'site.lock')), false, 'a clean stop removes the lock');
});
