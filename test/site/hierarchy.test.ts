import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFile, chmod, readFile, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadManifest, openLibrary } from '../../src/content/library.js';
import { chunkPath } from '../../src/content/store.js';
import { getPackage, getTargets } from '../../src/db/index.js';
import { getHolding, getSent, listSiteNodes, listWanted } from '../../src/db/hierarchy.js';
import { writeBundle } from '../../src/formats/bundle.js';
import { defaultIcon } from '../../src/formats/icon.js';
import { describeTree, makeTree, randomBytesFrom } from '../helpers/fixtures.js';
import { api, startLab } from '../helpers/hierarchy.js';
import { eventually } from '../helpers/site.js';

interface StatusRow {
  site: string;
  dp: string;
  state: string;
  sourceVersion: number;
}

async function statusAtCentral(lab: Awaited<ReturnType<typeof startLab>>, id: string): Promise<StatusRow[]> {
  const r = await api(lab.site('CEN'), 'GET', `/api/v1/packages/${id}/status`);
  assert.equal(r.status, 200);
  return (r.json as { dps: StatusRow[] }).dps;
}

/** The DPs a site lists (`SITE/dp`), through its admin API. */
async function dpsAt(site: Parameters<typeof api>[0]): Promise<string[]> {
  return ((await api(site, 'GET', '/api/v1/dps')).json as { dps: { site: string; name: string }[] }).dps.map((d) => `${d.site}/${d.name}`);
}

function allAt(rows: StatusRow[], version: number, count: number): StatusRow[] | undefined {
  return rows.length === count && rows.every((r) => r.state === 'installed' && r.sourceVersion === version) ? rows : undefined;
}

test('a package targeted at DPs of CEN, PRI and SEC flows down, updates travel as deltas, and status flows back up to CEN', async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  const sec = lab.site('SEC');

  // The hierarchy as CEN knows it: PRI joined directly, SEC reported up by PRI.
  const known = await eventually('SEC known at CEN', async () => {
    const sites = await listSiteNodes(cen.handle.ctx.db);
    return sites.find((s) => s.code === 'SEC')?.parentCode === 'PRI' ? sites : undefined;
  });
  assert.deepEqual(known.map((s) => `${s.code}<${s.parentCode ?? '-'}`), ['CEN<-', 'PRI<CEN', 'SEC<PRI']);
  assert.ok((await listSiteNodes(sec.handle.ctx.db)).some((s) => s.code === 'CEN' && s.publicKey !== null), 'SEC knows the key of CEN, its ancestor');

  // DPs created from the central site: the definitions travel down and each site creates its own.
  for (const code of ['CEN', 'PRI', 'SEC']) {
    const r = await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, `dp-${code.toLowerCase()}`), ...(code === 'CEN' ? {} : { site: code }) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  await eventually('SEC has its DP', async () => {
    const r = await api(sec, 'GET', '/api/v1/dps');
    return (r.json as { dps: { site: string; name: string }[] }).dps.some((d) => d.site === 'SEC' && d.name === 'dp1') ? true : undefined;
  });

  const src = join(lab.dir, 'src');
  await makeTree(src, 'hier');
  const created = await api(cen, 'POST', '/api/v1/packages', { name: 'Hierarchy test', sourcePath: src, version: '1.0', programs: [{ name: 'Install', commandLine: 'setup.sh' }] });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = (created.json as { id: string }).id;
  const dist = await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['CEN/dp1', 'PRI/dp1', 'SEC/dp1'] });
  assert.equal(dist.status, 200, JSON.stringify(dist.json));

  const v1 = await eventually('every DP installed at version 1, seen from CEN', async () => allAt(await statusAtCentral(lab, id), 1, 3), 60_000);
  assert.deepEqual(v1.map((r) => `${r.site}/${r.dp}`), ['CEN/dp1', 'PRI/dp1', 'SEC/dp1']);
  const expected = await describeTree(src);
  for (const code of ['cen', 'pri', 'sec']) assert.deepEqual(await describeTree(join(lab.dir, `dp-${code}`, 'SMSPKG', id)), expected, `DP of ${code}`);
  const first = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(first !== undefined && first.sourceVersion === 1);

  // The SEC DP's version is held by PRI too: PRI reported it holds version 1, so the update is a delta.
  await eventually('CEN knows PRI holds version 1', async () => {
    const rows = await cen.handle.ctx.db.db.withTables<{ site_holdings: { site_code: string; package_id: string; source_version: number } }>().selectFrom('site_holdings').selectAll().execute();
    return rows.some((r) => r.site_code === 'PRI' && r.package_id === id && Number(r.source_version) === 1) ? true : undefined;
  });
  await appendFile(join(src, 'lib/big.bin'), randomBytesFrom('update', 2000));
  await writeFile(join(src, 'README.txt'), 'changed readme\n');
  const updated = await api(cen, 'POST', `/api/v1/packages/${id}/update`);
  assert.equal(updated.status, 200);
  await eventually('every DP installed at version 2, seen from CEN', async () => allAt(await statusAtCentral(lab, id), 2, 3), 60_000);
  const expected2 = await describeTree(src);
  for (const code of ['cen', 'pri', 'sec']) assert.deepEqual(await describeTree(join(lab.dir, `dp-${code}`, 'SMSPKG', id)), expected2, `DP of ${code} at version 2`);
  const second = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(second !== undefined && second.sourceVersion === 2);
  assert.ok(second.bytes * 10 < first.bytes, `the update bundle (${second.bytes} bytes) is far smaller than the first (${first.bytes} bytes)`);
  const pri = lab.site('PRI');
  const down = await getSent(pri.handle.ctx.db, 'SEC', id);
  assert.ok(down !== undefined && down.sourceVersion === 2 && down.bytes * 10 < first.bytes, 'PRI sent SEC a delta too');

  // Status messages about the package from below reached the central site.
  const messages = await api(cen, 'GET', `/api/v1/status-messages?package=${id}&site=SEC`);
  assert.ok((messages.json as { messages: { text: string }[] }).messages.some((m) => /installed on DP dp1/.test(m.text)));
});

/** CEN → PRI with a DP at PRI, a package sent there and installed at version 1, and CEN knowing PRI holds it. */
async function versionOneAtPri(t: Parameters<typeof startLab>[0], seed: string, name: string) {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  const dp = await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, 'dp-pri'), site: 'PRI' });
  assert.equal(dp.status, 201, JSON.stringify(dp.json));
  await eventually('PRI has its DP', async () => ((await api(pri, 'GET', '/api/v1/dps')).json as { dps: unknown[] }).dps.length === 1 || undefined);

  const src = join(lab.dir, 'src');
  await makeTree(src, seed);
  const created = await api(cen, 'POST', '/api/v1/packages', { name, sourcePath: src, version: '1.0' });
  const id = (created.json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('PRI installed version 1', async () => allAt(await statusAtCentral(lab, id), 1, 1), 60_000);
  const first = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(first !== undefined);
  await eventually('CEN knows PRI holds version 1', async () => ((await getHolding(cen.handle.ctx.db, 'PRI', id))?.sourceVersion === 1 ? true : undefined));
  return { lab, cen, pri, src, id, first };
}

test('a child that lost the version a delta was made against refuses it, says it wants the version whole, and gets it whole', async (t) => {
  const { lab, cen, pri, src, id, first } = await versionOneAtPri(t, 'lost-base', 'Lost base');

  // PRI's library loses version 1 (a restore from an old backup, a clean-up by hand): CEN still plans a delta against it.
  const v1 = (await api(pri, 'GET', `/api/v1/packages/${id}`)).json as { manifestSha256: string };
  const library = join(pri.root, 'library', 'manifests');
  for (const name of await readdir(library)) if (name.startsWith(v1.manifestSha256)) await rm(join(library, name));

  await writeFile(join(src, 'README.txt'), 'version two\n');
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/update`)).status, 200);
  await eventually('PRI installed version 2', async () => allAt(await statusAtCentral(lab, id), 2, 1), 60_000);
  assert.deepEqual(await describeTree(join(lab.dir, 'dp-pri', 'SMSPKG', id)), await describeTree(src));

  // The delta was refused at PRI, and the version went again, whole.
  const bad = await readdir(join(pri.root, 'inboxes', 'despoolr.box', 'receive', 'bad'));
  assert.ok(bad.some((n) => n.startsWith(`P-${id}-`)), `the refused delta is kept in bad/: ${bad.join(', ')}`);
  const second = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(second !== undefined && second.sourceVersion === 2 && second.bytes > first.bytes / 2, `the resend (${second?.bytes} bytes) is the whole version, not a delta (first send ${first.bytes} bytes)`);
  const messages = (await api(cen, 'GET', `/api/v1/status-messages?package=${id}`)).json as { messages: { text: string; severity: string }[] };
  assert.ok(messages.messages.some((m) => m.severity === 'warning' && /PRI cannot build source version 2 .* sending source version 2 whole/.test(m.text)));
  await eventually('PRI no longer wants anything', async () => ((await listWanted(pri.handle.ctx.db)).length === 0 ? true : undefined));
});

test('a child whose copy of the base is damaged refuses the delta (a patch reads a chunk that fails its hash), wants the version whole, and gets it whole', async (t) => {
  const { lab, cen, pri, src, id, first } = await versionOneAtPri(t, 'damaged-base', 'Damaged base');

  // README.txt's chunk in PRI's library is damaged in place; an edit of README travels as a patch against it.
  const v1 = (await api(pri, 'GET', `/api/v1/packages/${id}`)).json as { manifestSha256: string };
  const manifest = await loadManifest(await openLibrary(join(pri.root, 'library')), v1.manifestSha256);
  const readme = manifest.entries.find((e) => e.path === 'README.txt');
  assert.ok(readme?.type === 'file' && readme.chunks.length === 1);
  const chunk = chunkPath(join(pri.root, 'library'), readme.chunks[0]?.hash as string);
  const bytes = await readFile(chunk);
  bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0xff, bytes.length >> 1);
  await chmod(chunk, 0o644);
  await writeFile(chunk, bytes);

  await appendFile(join(src, 'README.txt'), 'one more line for version two\n');
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/update`)).status, 200);
  await eventually('PRI installed version 2', async () => allAt(await statusAtCentral(lab, id), 2, 1), 60_000);
  assert.deepEqual(await describeTree(join(lab.dir, 'dp-pri', 'SMSPKG', id)), await describeTree(src));

  const bad = await readdir(join(pri.root, 'inboxes', 'despoolr.box', 'receive', 'bad'));
  assert.ok(bad.some((n) => n.startsWith(`P-${id}-`)), `the refused delta is kept in bad/: ${bad.join(', ')}`);
  const priMessages = (await api(pri, 'GET', `/api/v1/status-messages?package=${id}`)).json as { messages: { text: string }[] };
  assert.ok(priMessages.messages.some((m) => /refused: SITECAST_E_CORRUPT_CHUNK/.test(m.text)), `PRI says why it refused the delta: ${priMessages.messages.map((m) => m.text).join(' | ')}`);
  const second = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(second !== undefined && second.sourceVersion === 2 && second.bytes > first.bytes / 2, `the resend (${second?.bytes} bytes) is the whole version, not a delta (first send ${first.bytes} bytes)`);
  await eventually('PRI no longer wants anything', async () => ((await listWanted(pri.handle.ctx.db)).length === 0 ? true : undefined));
});

test('undistribute at the centre takes a package off DPs of sites below: each site is sent a withdrawal, takes it off its own DPs and passes it on; a later distribution there works again', async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  const sec = lab.site('SEC');
  await eventually('SEC known at CEN', async () => ((await listSiteNodes(cen.handle.ctx.db)).some((s) => s.code === 'SEC') ? true : undefined));
  for (const code of ['CEN', 'PRI', 'SEC']) {
    const r = await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, `dp-${code.toLowerCase()}`), ...(code === 'CEN' ? {} : { site: code }) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  await eventually('SEC has its DP', async () => ((await api(sec, 'GET', '/api/v1/dps')).json as { dps: { site: string }[] }).dps.some((d) => d.site === 'SEC') || undefined);
  const src = join(lab.dir, 'src');
  await makeTree(src, 'withdraw');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Withdrawn', sourcePath: src, version: '1.0' })).json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['CEN/dp1', 'PRI/dp1', 'SEC/dp1'] })).status, 200);
  await eventually('installed everywhere', async () => allAt(await statusAtCentral(lab, id), 1, 3), 60_000);
  const share = (code: string): string => join(lab.dir, `dp-${code}`, 'SMSPKG', id);
  const targetsAt = async (site: typeof cen): Promise<string[]> => (await getTargets(site.handle.ctx.db, id)).map((x) => `${x.site}/${x.dp}`);

  // SEC/dp1 first: PRI keeps its own DP and gets the definition without SEC's; PRI withdraws the package from SEC.
  const off = await api(cen, 'POST', `/api/v1/packages/${id}/undistribute`, { dps: ['SEC/dp1'] });
  assert.equal(off.status, 200, JSON.stringify(off.json));
  await eventually('SEC took it off its DP', async () => ((await readdir(join(lab.dir, 'dp-sec', 'SMSPKG'))).length === 0 ? true : undefined), 60_000);
  assert.deepEqual(await targetsAt(sec), []);
  assert.deepEqual(await targetsAt(pri), ['PRI/dp1']);
  assert.deepEqual((await statusAtCentral(lab, id)).map((r) => `${r.site}/${r.dp}`), ['CEN/dp1', 'PRI/dp1'], 'CEN shows SEC/dp1 no more');
  assert.deepEqual(await describeTree(share('pri')), await describeTree(src), 'PRI/dp1 untouched');
  assert.equal(await getSent(pri.handle.ctx.db, 'SEC', id), undefined, 'PRI no longer sends SEC anything about it');
  assert.ok((await getSent(cen.handle.ctx.db, 'PRI', id)) !== undefined);
  await eventually('the withdrawal reported up to CEN', async () => {
    const m = await api(cen, 'GET', `/api/v1/status-messages?package=${id}&site=SEC`);
    return (m.json as { messages: { text: string }[] }).messages.some((x) => /withdrawn by PRI/.test(x.text)) ? true : undefined;
  });

  // Then PRI/dp1: nothing at or below PRI any more.
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/undistribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('PRI took it off its DP', async () => ((await readdir(join(lab.dir, 'dp-pri', 'SMSPKG'))).length === 0 ? true : undefined), 60_000);
  assert.deepEqual(await targetsAt(pri), []);
  assert.deepEqual((await statusAtCentral(lab, id)).map((r) => `${r.site}/${r.dp}`), ['CEN/dp1']);
  await eventually('CEN forgot what it sent PRI', async () => ((await getSent(cen.handle.ctx.db, 'PRI', id)) === undefined ? true : undefined));
  assert.deepEqual(await describeTree(share('cen')), await describeTree(src), 'CEN/dp1 untouched');

  // Distributed to SEC again: the content flows down as before.
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['SEC/dp1'] })).status, 200);
  await eventually('SEC installed again', async () => allAt(await statusAtCentral(lab, id), 1, 2), 60_000);
  assert.deepEqual(await describeTree(share('sec')), await describeTree(src));
});

test('a withdrawal made while the content is still on its way to the child does not overtake it: the child ends without the package on its DP', async (t) => {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  assert.equal((await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, 'dp-pri'), site: 'PRI' })).status, 201);
  await eventually('PRI has its DP', async () => ((await api(pri, 'GET', '/api/v1/dps')).json as { dps: { site: string }[] }).dps.some((d) => d.site === 'PRI') || undefined);
  // A slow link: the content takes seconds, while a withdrawal is a few bytes.
  const slow = await api(cen, 'PUT', '/api/v1/addresses/PRI', { rates: ['1024KB/s'] });
  assert.equal(slow.status, 200, JSON.stringify(slow.json));
  const src = join(lab.dir, 'src');
  await makeTree(src, 'overtake');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Overtaken', sourcePath: src, version: '1.0' })).json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('the content on its way to PRI', async () => ((await getSent(cen.handle.ctx.db, 'PRI', id)) !== undefined ? true : undefined), 30_000);
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/undistribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('CEN sent the withdrawal', async () => ((await getSent(cen.handle.ctx.db, 'PRI', id)) === undefined ? true : undefined), 30_000);

  await eventually('PRI received the package', async () => ((await getPackage(pri.handle.ctx.db, id)) !== undefined ? true : undefined), 60_000);
  await eventually(
    'PRI holds no target and no share of it',
    async () => ((await getTargets(pri.handle.ctx.db, id)).length === 0 && (await readdir(join(lab.dir, 'dp-pri', 'SMSPKG')).catch(() => [])).length === 0 ? true : undefined),
    30_000,
  );
});

test('undistribute, then distribute again, while the content is still on its way: the second definition is not lost behind the first send of the same definition, and the child ends with the package', async (t) => {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  assert.equal((await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, 'dp-pri'), site: 'PRI' })).status, 201);
  await eventually('PRI has its DP', async () => ((await api(pri, 'GET', '/api/v1/dps')).json as { dps: { site: string }[] }).dps.some((d) => d.site === 'PRI') || undefined);
  assert.equal((await api(cen, 'PUT', '/api/v1/addresses/PRI', { rates: ['1024KB/s'] })).status, 200);
  const src = join(lab.dir, 'src');
  await makeTree(src, 'toggle');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Toggled', sourcePath: src, version: '1.0' })).json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] })).status, 200);
  const first = await eventually('the content on its way to PRI', async () => getSent(cen.handle.ctx.db, 'PRI', id), 30_000);
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/undistribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('the withdrawal queued', async () => ((await getSent(cen.handle.ctx.db, 'PRI', id)) === undefined ? true : undefined), 30_000);
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] })).status, 200);
  const again = await eventually('the definition queued again', async () => getSent(cen.handle.ctx.db, 'PRI', id), 30_000);
  assert.equal(again.definition, first.definition, 'the same definition as the first send');

  await eventually('CEN shows PRI/dp1 installed', async () => allAt(await statusAtCentral(lab, id), 1, 1), 60_000);
  assert.deepEqual(await getTargets(pri.handle.ctx.db, id), [{ site: 'PRI', dp: 'dp1' }]);
  assert.deepEqual(await describeTree(join(lab.dir, 'dp-pri', 'SMSPKG', id)), await describeTree(src));
  assert.deepEqual(await readdir(join(cen.root, 'inboxes', 'schedule.box', 'outboxes', 'http', 'bad')).catch(() => []), [], 'no send request refused');
});

test('a DP removed at a site below is forgotten at every site above it; one a package still targets above stays with a warning, and a child cannot remove a DP outside its subtree', async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  const sec = lab.site('SEC');
  await eventually('SEC known at CEN', async () => ((await listSiteNodes(cen.handle.ctx.db)).some((s) => s.code === 'SEC') ? true : undefined));
  const add = async (site: string, name: string): Promise<void> => {
    const r = await api(cen, 'POST', '/api/v1/dps', { name, path: join(lab.dir, `dp-${site.toLowerCase()}-${name}`), ...(site === 'CEN' ? {} : { site }) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  };
  for (const [site, name] of [['CEN', 'dp1'], ['PRI', 'dp1'], ['SEC', 'dp1'], ['SEC', 'dp2']] as const) await add(site, name);
  await eventually('SEC has its two DPs', async () => ((await dpsAt(sec)).join() === 'SEC/dp1,SEC/dp2' ? true : undefined));
  const src = join(lab.dir, 'src');
  await makeTree(src, 'retire-dp');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'On SEC', sourcePath: src })).json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['SEC/dp1'] })).status, 200);
  await eventually('installed on SEC/dp1', async () => allAt(await statusAtCentral(lab, id), 1, 1), 60_000);

  // SEC/dp1 holds a package: SEC refuses to remove it.
  const busy = await api(sec, 'POST', '/api/v1/dps/dp1/remove');
  assert.equal(busy.status, 409, JSON.stringify(busy.json));
  // SEC/dp2 holds nothing: SEC removes it, PRI and CEN forget it.
  const removed = await api(sec, 'POST', '/api/v1/dps/dp2/remove');
  assert.equal(removed.status, 200, JSON.stringify(removed.json));
  assert.deepEqual(await dpsAt(sec), ['SEC/dp1']);
  await eventually('PRI forgot SEC/dp2', async () => (!(await dpsAt(pri)).includes('SEC/dp2') ? true : undefined), 30_000);
  await eventually('CEN forgot SEC/dp2', async () => ((await dpsAt(cen)).join() === 'CEN/dp1,PRI/dp1,SEC/dp1' ? true : undefined), 30_000);
  const messages = (await api(cen, 'GET', '/api/v1/status-messages?component=despooler')).json as { messages: { text: string }[] };
  assert.ok(messages.messages.some((m) => m.text === 'DP SEC/dp2 removed at SEC (reported by PRI); forgotten here'), JSON.stringify(messages));
  const gone = await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['SEC/dp2'] });
  assert.equal(gone.status, 404, 'a package can no longer be sent to it');

  // PRI claims SEC/dp1 (which CEN still targets) and CEN/dp1 (not in PRI's subtree) were removed: CEN keeps both.
  const bundle = join(lab.dir, 'claim.bundle');
  const sites = (await listSiteNodes(pri.handle.ctx.db)).filter((s) => s.code === 'PRI' || s.code === 'SEC');
  await writeBundle(bundle, {
    header: {
      format: 1, id: 'D-CEN-claim', from: 'PRI', to: 'CEN', created: new Date().toISOString(), kind: 'site',
      site: {
        sites: sites.map((s) => ({ code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: s.url })),
        dps: [{ site: 'PRI', name: 'dp1', path: join(lab.dir, 'dp-pri-dp1') }],
        removed: [{ site: 'SEC', name: 'dp1' }, { site: 'CEN', name: 'dp1' }],
      },
    },
    privateKey: pri.handle.ctx.keys.privateKey,
  });
  await rename(bundle, join(cen.handle.ctx.paths.despoolrReceive, 'D-CEN-claim.bundle'));
  const warning = await eventually('CEN warns it keeps SEC/dp1', async () => {
    const m = (await api(cen, 'GET', '/api/v1/status-messages?component=despooler&severity=warning')).json as { messages: { text: string }[] };
    return m.messages.find((x) => x.text.startsWith('PRI reports DP SEC/dp1 removed, but it is kept here'));
  });
  assert.match(warning.text, new RegExp(`still has 1 package\\(s\\) distributed to it: ${id}`));
  assert.deepEqual(await dpsAt(cen), ['CEN/dp1', 'PRI/dp1', 'SEC/dp1'], 'CEN keeps both');
  assert.ok(allAt(await statusAtCentral(lab, id), 1, 1), 'and the status of SEC/dp1');
});

test('a package icon travels with the package: the child records it and its MP serves the same .ICO as the centre', async (t) => {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  assert.equal((await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, 'dp-pri'), site: 'PRI' })).status, 201);
  const src = join(lab.dir, 'src');
  await makeTree(src, 'icon-travels');
  const icon = defaultIcon('the package picture');
  await writeFile(join(src, 'setup.ico'), icon);
  const created = await api(cen, 'POST', '/api/v1/packages', { name: 'Pictured', sourcePath: src, icon: 'setup.ico' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = (created.json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] })).status, 200);
  await eventually('installed on PRI/dp1', async () => allAt(await statusAtCentral(lab, id), 1, 1), 60_000);
  assert.equal(((await api(pri, 'GET', `/api/v1/packages/${id}`)).json as { icon?: string }).icon, 'setup.ico');
  const ico = join(pri.root, 'mp', 'pkginfo', `${id}.ICO`);
  await eventually('the icon at PRI\'s MP', async () => ((await readFile(ico).catch(() => Buffer.alloc(0))).equals(icon) ? true : undefined));
});

test('dp remove --site at the centre: a DP of a site two levels down is removed there and forgotten on the way back; one a package targets is refused at the centre, and a refusal below comes back up as a warning', async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  const sec = lab.site('SEC');
  await eventually('SEC known at CEN', async () => ((await listSiteNodes(cen.handle.ctx.db)).some((s) => s.code === 'SEC') ? true : undefined));
  for (const [site, name] of [['PRI', 'dp1'], ['SEC', 'dp1'], ['SEC', 'dp2']] as const) {
    const r = await api(cen, 'POST', '/api/v1/dps', { name, path: join(lab.dir, `dp-${site.toLowerCase()}-${name}`), site });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  await eventually('SEC has its two DPs', async () => ((await dpsAt(sec)).join() === 'SEC/dp1,SEC/dp2' ? true : undefined));
  const src = join(lab.dir, 'src');
  await makeTree(src, 'remove-from-above');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Kept', sourcePath: src })).json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1', 'SEC/dp1'] })).status, 200);
  await eventually('installed on PRI/dp1 and SEC/dp1', async () => allAt(await statusAtCentral(lab, id), 1, 2), 60_000);

  const notBelow = await api(cen, 'POST', '/api/v1/dps/dp1/remove', { site: 'XYZ' });
  assert.equal(notBelow.status, 404, JSON.stringify(notBelow.json));
  const targeted = await api(cen, 'POST', '/api/v1/dps/dp1/remove', { site: 'SEC' });
  assert.equal(targeted.status, 409, JSON.stringify(targeted.json));
  assert.match(JSON.stringify(targeted.json), new RegExp(`DP SEC/dp1 still has 1 package\\(s\\) distributed to it: ${id}`));

  // SEC/dp2 holds nothing: the request goes down through PRI, SEC removes it, and PRI and CEN forget it.
  const requested = await api(cen, 'POST', '/api/v1/dps/dp2/remove', { site: 'SEC' });
  assert.equal(requested.status, 200, JSON.stringify(requested.json));
  assert.deepEqual(requested.json, { site: 'SEC', name: 'dp2', path: join(lab.dir, 'dp-sec-dp2'), state: 'requested' });
  await eventually('SEC removed dp2', async () => ((await dpsAt(sec)).join() === 'SEC/dp1' ? true : undefined), 30_000);
  await eventually('PRI and CEN forgot it', async () => (!(await dpsAt(pri)).includes('SEC/dp2') && !(await dpsAt(cen)).includes('SEC/dp2') ? true : undefined), 30_000);
  const secMessages = (await api(sec, 'GET', '/api/v1/status-messages?component=despooler')).json as { messages: { text: string }[] };
  assert.ok(secMessages.messages.some((m) => m.text === 'DP SEC/dp2 removed at the request of PRI; its folder is left as it is'), JSON.stringify(secMessages));

  // A request that reaches PRI while a package still targets PRI/dp1 there (CEN's own check passed before, say): refused, said at CEN.
  const bundle = join(lab.dir, 'remove.bundle');
  await writeBundle(bundle, {
    header: { format: 1, id: 'D-PRI-remove', from: 'CEN', to: 'PRI', created: new Date().toISOString(), kind: 'site', site: { sites: [], dps: [], removed: [{ site: 'PRI', name: 'dp1' }] } },
    privateKey: cen.handle.ctx.keys.privateKey,
  });
  await rename(bundle, join(pri.handle.ctx.paths.despoolrReceive, 'D-PRI-remove.bundle'));
  const warning = await eventually('the refusal reported up to CEN', async () => {
    const m = (await api(cen, 'GET', `/api/v1/status-messages?package=${id}&site=PRI&severity=warning`)).json as { messages: { text: string }[] };
    return m.messages.find((x) => x.text.startsWith('CEN asked to remove DP PRI/dp1; not removed: DP PRI/dp1 still has 1 package(s) distributed to it'));
  }, 30_000);
  assert.ok(warning);
  assert.deepEqual(await dpsAt(pri), ['PRI/dp1', 'SEC/dp1'], 'PRI keeps its DP');
  assert.ok(allAt(await statusAtCentral(lab, id), 1, 2), 'and the package on it');
});
