import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { LightMyRequestResponse } from 'fastify';
import { addDp, addStatusMessage, deleteDpStatus, getLocalSite, getPackage, getTargets, listDps, listPackages, listStatusMessages, setDpStatus } from '../../../src/db/index.js';
import { upsertSite } from '../../../src/db/hierarchy.js';
import { storeReceivedPackage } from '../../../src/db/received.js';
import { MAX_ICON_BYTES, defaultIcon } from '../../../src/formats/icon.js';
import { keyFingerprint } from '../../../src/formats/client-protocol.js';
import { providerSite, type ProviderSite } from '../../helpers/provider-site.js';

type Method = 'GET' | 'POST';

async function call(
  site: ProviderSite,
  method: Method,
  url: string,
  options: { token?: string | null; body?: unknown } = {},
): Promise<LightMyRequestResponse> {
  const token = options.token === undefined ? site.adminToken : options.token;
  return site.app.inject({
    method,
    url,
    headers: token === null ? {} : { authorization: `Bearer ${token}` },
    ...(options.body === undefined ? {} : { payload: options.body as Record<string, unknown> }),
  });
}

function errorOf(res: LightMyRequestResponse): { code: string; message: string; hint?: string } {
  const body = res.json<{ error: { code: string; message: string; hint?: string } }>();
  assert.ok(body.error, `an error body, got ${res.body}`);
  return body.error;
}

test('GET /site answers the site code, name, URL and the fingerprint of the site key', async (t) => {
  const site = await providerSite(t);
  const res = await call(site, 'GET', '/api/v1/site');
  assert.equal(res.statusCode, 200);
  const key = (await getLocalSite(site.db))?.publicKey;
  assert.ok(key !== null && key !== undefined);
  assert.deepEqual(res.json(), { code: 'ABC', name: 'Site ABC', url: 'http://127.0.0.1:0', keyFingerprint: keyFingerprint(key) });
  site.setBaseUrl('http://127.0.0.1:4242');
  assert.equal((await call(site, 'GET', '/api/v1/site', { token: site.readToken })).json<{ url: string }>().url, 'http://127.0.0.1:4242');
});

test('DPs: add answers 201 and wakes the database monitor; list shows it; a duplicate is 409', async (t) => {
  const site = await providerSite(t);
  const dpPath = join(site.dir, 'dp1');
  const res = await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: dpPath } });
  assert.equal(res.statusCode, 201, res.body);
  assert.deepEqual(res.json(), { site: 'ABC', name: 'dp1', path: dpPath });
  assert.deepEqual(site.wakes, ['dbmon']);

  const list = await call(site, 'GET', '/api/v1/dps', { token: site.readToken });
  assert.equal(list.statusCode, 200);
  assert.deepEqual(list.json(), { dps: [{ site: 'ABC', name: 'dp1', path: dpPath }] });

  const again = await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: join(site.dir, 'other') } });
  assert.equal(again.statusCode, 409);
  assert.equal(errorOf(again).code, 'SITECAST_E_CONFLICT');
  assert.match(errorOf(again).message, /ABC\/dp1/);
  assert.deepEqual((await listDps(site.db)).map((d) => d.path), [dpPath], 'the first DP is untouched');
  assert.deepEqual(site.wakes, ['dbmon'], 'a refused write wakes nobody');
});

test('DP folders, package sources and the site root are kept apart (also through a link); nothing is written when refused', async (t) => {
  const site = await providerSite(t);
  const dp1 = join(site.dir, 'dp1');
  assert.equal((await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: dp1 } })).statusCode, 201);
  const pkg = await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } });
  assert.equal(pkg.statusCode, 201, pkg.body);
  await mkdir(join(dp1, 'inside'), { recursive: true });
  await symlink(site.source, join(site.dir, 'link-to-src'));
  const refusedDps: [string, RegExp][] = [
    [site.source, /^path: .* is the source folder of ABC00001/],
    [join(site.source, 'sub'), /lies inside the source folder of ABC00001/],
    [join(site.dir, 'link-to-src', 'sub'), /lies inside the source folder of ABC00001/],
    [join(site.root, 'dp'), /lies inside the site root/],
    [site.dir, /holds the site root/],
    [join(dp1, 'inside'), /lies inside DP ABC\/dp1/],
  ];
  for (const [path, message] of refusedDps) {
    const res = await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp2', path } });
    assert.equal(res.statusCode, 400, path);
    assert.equal(errorOf(res).code, 'SITECAST_E_INVALID_VALUE');
    assert.match(errorOf(res).message, message, path);
  }
  const refusedSources: [string, RegExp][] = [
    [join(dp1, 'inside'), /^sourcePath: .* lies inside DP ABC\/dp1/],
    [site.dir, /holds the site root/],
  ];
  for (const [path, message] of refusedSources) {
    const res = await call(site, 'POST', '/api/v1/packages', { body: { name: 'Q', sourcePath: path } });
    assert.equal(res.statusCode, 400, path);
    assert.match(errorOf(res).message, message, path);
  }
  assert.deepEqual((await listDps(site.db)).map((d) => d.name), ['dp1']);
  assert.deepEqual((await listPackages(site.db)).map((p) => p.id), ['ABC00001']);
  // Siblings are fine.
  assert.equal((await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp2', path: join(site.dir, 'dp2') } })).statusCode, 201);
});

test('undistribute: takes DPs off the targets; a DP not targeted is 404, a read-only token 403; nothing changes when refused', async (t) => {
  const site = await providerSite(t);
  for (const name of ['dp1', 'dp2']) assert.equal((await call(site, 'POST', '/api/v1/dps', { body: { name, path: join(site.dir, name) } })).statusCode, 201);
  const created = await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } });
  const { id } = created.json<{ id: string }>();
  assert.equal((await call(site, 'POST', `/api/v1/packages/${id}/distribute`, { body: { dps: ['ABC/dp1', 'ABC/dp2'] } })).statusCode, 200);
  const wakes = site.wakes.length;
  const notTargeted = await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { body: { dps: ['ABC/dp3'] } });
  assert.equal(notTargeted.statusCode, 404);
  assert.match(errorOf(notTargeted).message, /does not target ABC\/dp3/);
  const read = await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { token: site.readToken, body: { dps: ['ABC/dp2'] } });
  assert.equal(read.statusCode, 403);
  assert.deepEqual((await getTargets(site.db, id)).map((x) => x.dp), ['dp1', 'dp2'], 'nothing changed');
  assert.equal(site.wakes.length, wakes, 'a refused write wakes nobody');
  const ok = await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { body: { dps: ['ABC/dp2'] } });
  assert.equal(ok.statusCode, 200, ok.body);
  assert.deepEqual(ok.json(), { id, targets: [{ site: 'ABC', dp: 'dp1' }] });
  assert.deepEqual((await getTargets(site.db, id)).map((x) => x.dp), ['dp1']);
});

test('DP remove: refused (409) while a package targets the DP or is still being taken off it, 404 for an unknown DP, 403 for a read-only token, 400 for a bad name, nothing changed; then removed with a status message, its folder left', async (t) => {
  const site = await providerSite(t);
  for (const name of ['dp1', 'dp2']) assert.equal((await call(site, 'POST', '/api/v1/dps', { body: { name, path: join(site.dir, name) } })).statusCode, 201);
  await mkdir(join(site.dir, 'dp1', 'SMSPKG'), { recursive: true });
  const { id } = (await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } })).json<{ id: string }>();
  assert.equal((await call(site, 'POST', `/api/v1/packages/${id}/distribute`, { body: { dps: ['ABC/dp1'] } })).statusCode, 200);
  const dpsBefore = await listDps(site.db);

  const targeted = await call(site, 'POST', '/api/v1/dps/dp1/remove');
  assert.equal(targeted.statusCode, 409);
  assert.match(errorOf(targeted).message, new RegExp(`DP ABC/dp1 still has 1 package\\(s\\) distributed to it: ${id}`));
  assert.match(errorOf(targeted).hint ?? '', /package undistribute/);
  // Taken off the targets, but Distribution Manager has not cleared the DP yet: its status row is still there.
  await setDpStatus(site.db, { packageId: id, site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  assert.equal((await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { body: { dps: ['ABC/dp1'] } })).statusCode, 200);
  const clearing = await call(site, 'POST', '/api/v1/dps/dp1/remove');
  assert.equal(clearing.statusCode, 409);
  assert.match(errorOf(clearing).message, new RegExp(`DP ABC/dp1 is still being cleared: ${id} \\(installed\\) not taken off yet`));
  assert.equal((await call(site, 'POST', '/api/v1/dps/dp9/remove')).statusCode, 404);
  assert.match(errorOf(await call(site, 'POST', '/api/v1/dps/dp9/remove')).message, /no distribution point ABC\/dp9/);
  assert.equal((await call(site, 'POST', '/api/v1/dps/dp2/remove', { token: site.readToken })).statusCode, 403);
  assert.equal((await call(site, 'POST', '/api/v1/dps/..%2Fetc/remove')).statusCode, 400);
  assert.deepEqual(await listDps(site.db), dpsBefore, 'nothing changed');

  const free = await call(site, 'POST', '/api/v1/dps/dp2/remove');
  assert.equal(free.statusCode, 200, free.body);
  assert.deepEqual(free.json(), { site: 'ABC', name: 'dp2', path: join(site.dir, 'dp2'), state: 'removed' });
  assert.deepEqual((await listDps(site.db)).map((d) => d.name), ['dp1']);
  const messages = await listStatusMessages(site.db, { component: 'provider' });
  assert.ok(messages.some((m) => m.text.startsWith('DP ABC/dp2 removed by token ')), 'a status message says who removed it');
  // A package cannot be distributed to it any more.
  const gone = await call(site, 'POST', `/api/v1/packages/${id}/distribute`, { body: { dps: ['ABC/dp2'] } });
  assert.equal(gone.statusCode, 404);
  // Once the DP is cleared (its status row gone), it can go too; its folder stays.
  await deleteDpStatus(site.db, { packageId: id, site: 'ABC', dp: 'dp1' });
  assert.equal((await call(site, 'POST', '/api/v1/dps/dp1/remove')).statusCode, 200);
  assert.ok((await stat(join(site.dir, 'dp1', 'SMSPKG'))).isDirectory(), 'the folder is left as it is');
  assert.deepEqual(await listDps(site.db), []);
});

test('package icon: an ICO file inside the source folder is kept and shown; one outside it, missing, a folder, a link, too large or not an icon is a 400 naming why, and no package is created', async (t) => {
  const site = await providerSite(t);
  await writeFile(join(site.source, 'app.ico'), defaultIcon('mine'));
  await writeFile(join(site.source, 'readme.txt'), 'hello');
  await writeFile(join(site.source, 'huge.ico'), Buffer.alloc(MAX_ICON_BYTES + 1));
  await mkdir(join(site.source, 'folder.ico'));
  await symlink(join(site.source, 'app.ico'), join(site.source, 'link.ico'));
  const refused: [string, RegExp][] = [
    ['../app.ico', /icon: must be a plain path inside the source folder/],
    ['/etc/passwd', /icon: must be a path inside the source folder/],
    ['missing.ico', /icon: missing\.ico in .* cannot be read \(ENOENT\)/],
    ['folder.ico', /icon: folder\.ico in .* is not a regular file/],
    ['link.ico', /icon: link\.ico in .* is not a regular file/],
    ['huge.ico', /icon: huge\.ico in .* is 1048577 bytes, more than an icon may be/],
    ['readme.txt', /icon: readme\.txt in .* is not an icon: too short for an icon/],
  ];
  for (const [icon, why] of refused) {
    const res = await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source, icon } });
    assert.equal(res.statusCode, 400, `${icon}: ${res.body}`);
    assert.match(errorOf(res).message, why);
  }
  assert.deepEqual(await listPackages(site.db), [], 'nothing was created');
  const ok = await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source, icon: 'app.ico' } });
  assert.equal(ok.statusCode, 201, ok.body);
  const { id } = ok.json<{ id: string }>();
  assert.equal((await call(site, 'GET', `/api/v1/packages/${id}`)).json<{ icon?: string }>().icon, 'app.ico');
  const plain = (await call(site, 'POST', '/api/v1/packages', { body: { name: 'Q', sourcePath: site.source } })).json<{ id: string }>();
  assert.equal('icon' in (await call(site, 'GET', `/api/v1/packages/${plain.id}`)).json<object>(), false, 'no icon: no field');
});

test('undistribute: a DP of a site below is taken off the targets (that site takes the package off it); one of a site not below is 400 and nothing changes', async (t) => {
  const site = await providerSite(t);
  await upsertSite(site.db, { code: 'PRI', name: 'Primary', parentCode: 'ABC', publicKey: null, url: null });
  await upsertSite(site.db, { code: 'SEC', name: 'Secondary', parentCode: 'PRI', publicKey: null, url: null });
  await upsertSite(site.db, { code: 'OTH', name: 'Another tree', parentCode: null, publicKey: null, url: null });
  assert.equal((await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: join(site.dir, 'dp1') } })).statusCode, 201);
  for (const code of ['PRI', 'SEC', 'OTH']) await addDp(site.db, { site: code, name: 'dp1', path: join(site.dir, `dp-${code}`) });
  const { id } = (await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } })).json<{ id: string }>();
  const all = ['ABC/dp1', 'PRI/dp1', 'SEC/dp1', 'OTH/dp1'];
  assert.equal((await call(site, 'POST', `/api/v1/packages/${id}/distribute`, { body: { dps: all } })).statusCode, 200);
  const targetsNow = async (): Promise<string[]> => (await getTargets(site.db, id)).map((x) => `${x.site}/${x.dp}`).sort();

  const elsewhere = await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { body: { dps: ['SEC/dp1', 'OTH/dp1'] } });
  assert.equal(elsewhere.statusCode, 400);
  assert.equal(errorOf(elsewhere).code, 'SITECAST_E_INVALID_VALUE');
  assert.match(errorOf(elsewhere).message, /OTH\/dp1 belong to sites not below ABC/);
  assert.doesNotMatch(errorOf(elsewhere).message, /SEC/);
  assert.deepEqual(await targetsNow(), [...all].sort(), 'nothing changed');

  const below = await call(site, 'POST', `/api/v1/packages/${id}/undistribute`, { body: { dps: ['SEC/dp1', 'PRI/dp1'] } });
  assert.equal(below.statusCode, 200, below.body);
  assert.deepEqual(await targetsNow(), ['ABC/dp1', 'OTH/dp1']);

  // A package received from the parent: its targets are the parent's to choose.
  await storeReceivedPackage(site.db, { id: 'OTH00001', name: 'R', version: '1', sourcePath: '/src', sourceVersion: 1, priority: 'medium', programs: [], manifest: 'a'.repeat(64), targets: [{ site: 'ABC', dp: 'dp1' }], dps: [], sites: [] }, { bundleId: 'P-OTH00001-ABC-test', created: new Date().toISOString() });
  const received = await call(site, 'POST', '/api/v1/packages/OTH00001/undistribute', { body: { dps: ['ABC/dp1'] } });
  assert.equal(received.statusCode, 409);
  assert.match(errorOf(received).message, /received from the parent/);
  assert.deepEqual((await getTargets(site.db, 'OTH00001')).map((x) => `${x.site}/${x.dp}`), ['ABC/dp1'], 'nothing changed');
  // Nor may it be distributed further here, or given a new source version: the next definition from the parent would undo either.
  await addDp(site.db, { site: 'ABC', name: 'dp2', path: join(site.dir, 'dp2') });
  const distributed = await call(site, 'POST', '/api/v1/packages/OTH00001/distribute', { body: { dps: ['ABC/dp2'] } });
  assert.equal(distributed.statusCode, 409);
  assert.match(errorOf(distributed).message, /OTH00001 was received from the parent: its DPs are chosen at the site that created it \(OTH\)/);
  const updated = await call(site, 'POST', '/api/v1/packages/OTH00001/update', { body: {} });
  assert.equal(updated.statusCode, 409);
  assert.match(errorOf(updated).message, /its source is updated at the site that created it/);
  assert.deepEqual((await getTargets(site.db, 'OTH00001')).map((x) => `${x.site}/${x.dp}`), ['ABC/dp1'], 'nothing changed');
  assert.equal((await getPackage(site.db, 'OTH00001'))?.sourceVersion, 1, 'nothing changed');
});

test('packages: create, list, get, distribute, update, status', async (t) => {
  const site = await providerSite(t);
  await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: join(site.dir, 'dp1') } });
  await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp2', path: join(site.dir, 'dp2') } });
  site.wakes.length = 0;

  const created = await call(site, 'POST', '/api/v1/packages', {
    body: {
      name: 'Office 2000',
      sourcePath: site.source,
      version: '9.0',
      priority: 'high',
      programs: [{ name: 'Install', commandLine: 'setup.exe /q', maxRunTimeSeconds: 600 }, { name: 'Remove', commandLine: 'setup.exe /x' }],
    },
  });
  assert.equal(created.statusCode, 201, created.body);
  assert.deepEqual(created.json(), { id: 'ABC00001' });
  assert.deepEqual(site.wakes, ['dbmon']);

  const minimal = await call(site, 'POST', '/api/v1/packages', { body: { name: 'Tools', sourcePath: site.source } });
  assert.deepEqual(minimal.json(), { id: 'ABC00002' });

  const one = await call(site, 'GET', '/api/v1/packages/ABC00001', { token: site.readToken });
  assert.equal(one.statusCode, 200);
  const pkg = one.json<{ id: string; priority: string; version: string; sourceVersion: number; programs: unknown[] }>();
  assert.equal(pkg.priority, 'high');
  assert.equal(pkg.version, '9.0');
  assert.equal(pkg.sourceVersion, 1);
  assert.deepEqual(pkg.programs, [
    { name: 'Install', commandLine: 'setup.exe /q', maxRunTimeSeconds: 600 },
    { name: 'Remove', commandLine: 'setup.exe /x', maxRunTimeSeconds: 3600 },
  ]);

  const list = await call(site, 'GET', '/api/v1/packages', { token: site.readToken });
  assert.deepEqual(
    list.json<{ packages: { id: string; priority: string }[] }>().packages.map((p) => [p.id, p.priority]),
    [
      ['ABC00001', 'high'],
      ['ABC00002', 'medium'],
    ],
  );

  site.wakes.length = 0;
  const dist = await call(site, 'POST', '/api/v1/packages/ABC00001/distribute', { body: { dps: ['ABC/dp1'] } });
  assert.equal(dist.statusCode, 200, dist.body);
  assert.deepEqual(dist.json(), { id: 'ABC00001', targets: [{ site: 'ABC', dp: 'dp1' }] });
  const more = await call(site, 'POST', '/api/v1/packages/ABC00001/distribute', { body: { dps: ['ABC/dp2'] } });
  assert.deepEqual(more.json(), { id: 'ABC00001', targets: [{ site: 'ABC', dp: 'dp1' }, { site: 'ABC', dp: 'dp2' }] }, 'distribute adds');
  assert.deepEqual(site.wakes, ['dbmon', 'dbmon']);

  const pending = await call(site, 'GET', '/api/v1/packages/ABC00001/status', { token: site.readToken });
  assert.deepEqual(pending.json(), {
    id: 'ABC00001',
    sourceVersion: 1,
    dps: [
      { site: 'ABC', dp: 'dp1', state: 'pending', sourceVersion: 0 },
      { site: 'ABC', dp: 'dp2', state: 'pending', sourceVersion: 0 },
    ],
  });

  await setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  const next = '2030-01-01T00:00:00.000Z';
  await setDpStatus(site.db, {
    packageId: 'ABC00001',
    site: 'ABC',
    dp: 'dp2',
    state: 'retrying',
    retryCount: 2,
    nextAttempt: next,
    lastMessage: 'disk full',
  });
  const status = await call(site, 'GET', '/api/v1/packages/ABC00001/status', { token: site.readToken });
  assert.deepEqual(status.json(), {
    id: 'ABC00001',
    sourceVersion: 1,
    dps: [
      { site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 },
      { site: 'ABC', dp: 'dp2', state: 'retrying', sourceVersion: 0, retryCount: 2, nextAttempt: next, lastMessage: 'disk full' },
    ],
  });

  site.wakes.length = 0;
  const update = await call(site, 'POST', '/api/v1/packages/ABC00001/update');
  assert.equal(update.statusCode, 200, update.body);
  assert.deepEqual(update.json(), { id: 'ABC00001', sourceVersion: 2 });
  assert.deepEqual(site.wakes, ['dbmon']);
  const withBody = await call(site, 'POST', '/api/v1/packages/ABC00001/update', { body: {} });
  assert.deepEqual(withBody.json(), { id: 'ABC00001', sourceVersion: 3 });
  assert.equal((await getPackage(site.db, 'ABC00001'))?.sourceVersion, 3);
});

test('unknown package or DP: 404 naming it; nothing changes', async (t) => {
  const site = await providerSite(t);
  await call(site, 'POST', '/api/v1/dps', { body: { name: 'dp1', path: join(site.dir, 'dp1') } });
  await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } });

  for (const [method, url] of [
    ['GET', '/api/v1/packages/ABC000FF'],
    ['GET', '/api/v1/packages/ABC000FF/status'],
    ['POST', '/api/v1/packages/ABC000FF/update'],
  ] as const) {
    const res = await call(site, method, url);
    assert.equal(res.statusCode, 404, `${method} ${url}`);
    assert.equal(errorOf(res).code, 'SITECAST_E_NOT_FOUND');
    assert.match(errorOf(res).message, /ABC000FF/);
  }
  const noPkg = await call(site, 'POST', '/api/v1/packages/ABC000FF/distribute', { body: { dps: ['ABC/dp1'] } });
  assert.equal(noPkg.statusCode, 404);

  const noDp = await call(site, 'POST', '/api/v1/packages/ABC00001/distribute', { body: { dps: ['ABC/dp1', 'XYZ/dp9'] } });
  assert.equal(noDp.statusCode, 404);
  assert.equal(errorOf(noDp).code, 'SITECAST_E_NOT_FOUND');
  assert.match(errorOf(noDp).message, /XYZ\/dp9/);
  assert.deepEqual(await getTargets(site.db, 'ABC00001'), [], 'no target was added');

  const route = await call(site, 'GET', '/api/v1/nothing');
  assert.equal(route.statusCode, 404);
  assert.equal(errorOf(route).code, 'SITECAST_E_NOT_FOUND');
});

test('a malformed body or query is a 400 naming the field; nothing is written', async (t) => {
  const site = await providerSite(t);
  const cases: [string, unknown, RegExp][] = [
    ['/api/v1/packages', { sourcePath: site.source }, /name/],
    ['/api/v1/packages', { name: 'P', sourcePath: 'relative/path' }, /sourcePath/],
    ['/api/v1/packages', { name: 'P', sourcePath: site.source, priority: 'urgent' }, /priority/],
    ['/api/v1/packages', { name: 'P', sourcePath: site.source, programs: [{ name: 'x', commandLine: '' }] }, /programs\.0\.commandLine/],
    ['/api/v1/packages', { name: 'P', sourcePath: site.source, programs: [{ name: 'x', commandLine: 'a', maxRunTimeSeconds: -1 }] }, /maxRunTimeSeconds/],
    ['/api/v1/packages', { name: 'P', sourcePath: site.source, colour: 'red' }, /colour/],
    ['/api/v1/packages', { name: 'P', sourcePath: join(site.dir, 'missing') }, /sourcePath: .*missing.*ENOENT/],
    ['/api/v1/dps', { name: '../evil', path: '/tmp/x' }, /name/],
    ['/api/v1/dps', { name: 'dp1' }, /path/],
    ['/api/v1/dps', [], /expected object/],
  ];
  for (const [url, body, field] of cases) {
    const res = await call(site, 'POST', url, { body });
    assert.equal(res.statusCode, 400, `${JSON.stringify(body)}: ${res.body}`);
    assert.equal(errorOf(res).code, 'SITECAST_E_INVALID_VALUE');
    assert.match(errorOf(res).message, field);
  }
  const badJson = await site.app.inject({
    method: 'POST',
    url: '/api/v1/packages',
    headers: { authorization: `Bearer ${site.adminToken}`, 'content-type': 'application/json' },
    payload: '{"name":',
  });
  assert.equal(badJson.statusCode, 400);
  assert.equal(errorOf(badJson).code, 'SITECAST_E_INVALID_VALUE');

  await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } });
  const badDp = await call(site, 'POST', '/api/v1/packages/ABC00001/distribute', { body: { dps: ['dp1'] } });
  assert.equal(badDp.statusCode, 400);
  assert.match(errorOf(badDp).message, /dps\.0: name a DP as SITE\/dp/);
  const badId = await call(site, 'GET', '/api/v1/packages/nope');
  assert.equal(badId.statusCode, 400);
  assert.match(errorOf(badId).message, /id: a package id/);
  const badQuery = await call(site, 'GET', '/api/v1/status-messages?severity=loud&limit=0');
  assert.equal(badQuery.statusCode, 400);
  assert.match(errorOf(badQuery).message, /severity/);
  assert.match(errorOf(badQuery).message, /limit/);

  assert.equal((await listPackages(site.db)).length, 1, 'only the one good package exists');
  assert.deepEqual(await listDps(site.db), []);
});

test('status messages filter by component, package, severity, since and limit', async (t) => {
  const site = await providerSite(t);
  await addStatusMessage(site.db, { severity: 'info', component: 'distmgr', site: 'ABC', packageId: 'ABC00001', text: 'one', time: '2030-01-01T00:00:00.000Z' });
  await addStatusMessage(site.db, { severity: 'error', component: 'distmgr', site: 'ABC', packageId: 'ABC00002', text: 'two', time: '2030-01-02T00:00:00.000Z' });
  await addStatusMessage(site.db, { severity: 'warning', component: 'sender', site: 'ABC', text: 'three', time: '2030-01-03T00:00:00.000Z' });
  const texts = async (query: string): Promise<string[]> => {
    const res = await call(site, 'GET', `/api/v1/status-messages${query}`, { token: site.readToken });
    assert.equal(res.statusCode, 200, res.body);
    return res.json<{ messages: { text: string }[] }>().messages.map((m) => m.text);
  };
  assert.deepEqual(await texts(''), ['three', 'two', 'one']);
  assert.deepEqual(await texts('?component=distmgr'), ['two', 'one']);
  assert.deepEqual(await texts('?package=ABC00001'), ['one']);
  assert.deepEqual(await texts('?severity=warning'), ['three', 'two']);
  assert.deepEqual(await texts('?since=2030-01-02T00:00:00.000Z'), ['three', 'two']);
  assert.deepEqual(await texts('?limit=1'), ['three']);
  await addStatusMessage(site.db, { severity: 'info', component: 'dbmon', site: 'ABC', text: 'monitor', time: '2029-01-01T00:00:00.000Z' });
  // Its log is smsdbmon.log: that name finds its messages too.
  assert.deepEqual(await texts('?component=smsdbmon'), ['monitor']);
  assert.deepEqual(await texts('?component=dbmon'), ['monitor']);
  const full = await call(site, 'GET', '/api/v1/status-messages?limit=1', { token: site.readToken });
  assert.deepEqual(Object.keys(full.json<{ messages: object[] }>().messages[0] ?? {}).sort(), [
    'component',
    'id',
    'packageId',
    'severity',
    'site',
    'text',
    'time',
  ]);
});

test('no token or a wrong token: 401; a read-only token may read but not write: 403', async (t) => {
  const site = await providerSite(t);
  const wrong = `sct_${'A'.repeat(43)}`;
  for (const [method, url] of [
    ['GET', '/api/v1/site'],
    ['GET', '/api/v1/packages'],
    ['POST', '/api/v1/packages'],
    ['GET', '/api/v1/status-messages'],
  ] as const) {
    const none = await call(site, method, url, { token: null, body: method === 'POST' ? { name: 'P', sourcePath: site.source } : undefined });
    assert.equal(none.statusCode, 401, `${method} ${url} without a token`);
    assert.equal(errorOf(none).code, 'SITECAST_E_UNAUTHORIZED');
    assert.ok(errorOf(none).hint);
    const bad = await call(site, method, url, { token: wrong });
    assert.equal(bad.statusCode, 401);
    assert.ok(!bad.body.includes(wrong), 'the token is not echoed');
  }
  const basic = await site.app.inject({ method: 'GET', url: '/api/v1/site', headers: { authorization: `Basic ${site.adminToken}` } });
  assert.equal(basic.statusCode, 401);

  assert.equal((await call(site, 'GET', '/api/v1/dps', { token: site.readToken })).statusCode, 200);
  for (const [url, body] of [
    ['/api/v1/dps', { name: 'dp1', path: join(site.dir, 'dp1') }],
    ['/api/v1/packages', { name: 'P', sourcePath: site.source }],
    ['/api/v1/packages/ABC00001/update', undefined],
    ['/api/v1/packages/ABC00001/distribute', { dps: ['ABC/dp1'] }],
  ] as const) {
    const res = await call(site, 'POST', url, { token: site.readToken, body });
    assert.equal(res.statusCode, 403, url);
    assert.equal(errorOf(res).code, 'SITECAST_E_FORBIDDEN');
  }
  // Authentication comes before parsing: garbage from a stranger is a 401, not a 400.
  const garbage = await call(site, 'POST', '/api/v1/packages', { token: null, body: { nonsense: true } });
  assert.equal(garbage.statusCode, 401);
  assert.deepEqual(await listPackages(site.db), []);
  assert.deepEqual(await listDps(site.db), []);
  assert.deepEqual(site.wakes, []);
});

test('tokens never appear in logs or error output', async (t) => {
  const site = await providerSite(t);
  const wrong = `sct_${'B'.repeat(43)}`;
  const outputs: string[] = [];
  outputs.push((await call(site, 'GET', '/api/v1/packages', { token: wrong })).body);
  outputs.push((await call(site, 'POST', '/api/v1/packages', { token: site.readToken, body: { name: 'P', sourcePath: site.source } })).body);
  outputs.push((await call(site, 'POST', '/api/v1/packages', { body: { name: `pkg ${site.adminToken}`, sourcePath: join(site.dir, site.adminToken) } })).body);
  await call(site, 'POST', '/api/v1/packages', { body: { name: 'P', sourcePath: site.source } });
  await site.logs.get('provider')?.flush();
  const { readFile } = await import('node:fs/promises');
  const log = await readFile(join(site.root, 'logs', 'provider.log'), 'utf8');
  assert.match(log, /refused GET \/api\/v1\/packages .*not valid/);
  assert.match(log, /package ABC00001 "P" created/);
  for (const secret of [wrong, site.adminToken, site.readToken]) {
    assert.ok(!log.includes(secret), 'no token in the log');
    for (const out of outputs) assert.ok(!out.includes(secret), `no token in ${out}`);
  }
});

test('OpenAPI 3.1 document: public, and lists every route the provider serves', async (t) => {
  const site = await providerSite(t);
  await site.app.ready();
  const routes = site.routes;
  const res = await call(site, 'GET', '/openapi.json', { token: null });
  assert.equal(res.statusCode, 200);
  const doc = res.json<{
    openapi: string;
    paths: Record<string, Record<string, { requestBody?: { content: { 'application/json': { schema: { required?: string[] } } } } }>>;
    components: { securitySchemes: Record<string, unknown> };
  }>();
  assert.equal(doc.openapi, '3.1.0');
  assert.ok(doc.components.securitySchemes.bearer);
  assert.ok(routes.length >= 11, `routes seen: ${routes.length}`);
  for (const r of routes) {
    const path = r.url.replace(/:([A-Za-z]+)/g, '{$1}');
    assert.ok(doc.paths[path]?.[r.method.toLowerCase()], `${r.method} ${path} is in the OpenAPI document`);
  }
  const create = doc.paths['/api/v1/packages']?.post?.requestBody?.content['application/json'].schema;
  assert.deepEqual(create?.required?.sort(), ['name', 'sourcePath']);
});

test('GET /package-status: state counts on DPs for every package; read-only tokens may read it', async (t) => {
  const site = await providerSite(t);
  const a = (await call(site, 'POST', '/api/v1/packages', { body: { name: 'a', sourcePath: site.source } })).json<{ id: string }>().id;
  const b = (await call(site, 'POST', '/api/v1/packages', { body: { name: 'b', sourcePath: site.source } })).json<{ id: string }>().id;
  await setDpStatus(site.db, { packageId: a, site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  await setDpStatus(site.db, { packageId: a, site: 'ABC', dp: 'dp2', state: 'failed', lastMessage: 'disk full' });
  await setDpStatus(site.db, { packageId: b, site: 'ABC', dp: 'dp1', state: 'pending' });

  const res = await call(site, 'GET', '/api/v1/package-status', { token: site.readToken });
  assert.equal(res.statusCode, 200);
  assert.deepEqual(res.json(), {
    packages: [
      { id: a, pending: 0, installed: 1, retrying: 0, failed: 1 },
      { id: b, pending: 1, installed: 0, retrying: 0, failed: 0 },
    ],
  });
  assert.equal((await call(site, 'GET', '/api/v1/package-status', { token: null })).statusCode, 401);
});
