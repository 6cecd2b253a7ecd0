import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { appendFile, readFile, rename, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { packManifest } from '../../src/content/pack.js';
import { getPackage, getTargets, listDps, listStatusMessages } from '../../src/db/index.js';
import { listSiteNodes } from '../../src/db/hierarchy.js';
import { type BundleHeader, type PackageDefinition, writeBundle } from '../../src/formats/bundle.js';
import { makeTree, randomBytesFrom, snapshot } from '../helpers/fixtures.js';
import { type Lab, api, startLab } from '../helpers/hierarchy.js';
import { eventually } from '../helpers/site.js';

async function installedAt(lab: Lab, id: string, version: number): Promise<void> {
  await eventually(
    `${id} installed at version ${version} on PRI/dp1, seen from CEN`,
    async () => {
      const r = await api(lab.site('CEN'), 'GET', `/api/v1/packages/${id}/status`);
      const rows = (r.json as { dps: { site: string; state: string; sourceVersion: number }[] }).dps;
      return rows.some((d) => d.site === 'PRI' && d.state === 'installed' && d.sourceVersion === version) ? true : undefined;
    },
    60_000,
  );
}

/** The definition CEN sends PRI, rebuilt from CEN's database (what a forger would need to imitate). */
async function definitionAt(lab: Lab, id: string, overrides: Partial<PackageDefinition>): Promise<PackageDefinition> {
  const db = lab.site('CEN').handle.ctx.db;
  const pkg = await getPackage(db, id);
  assert.ok(pkg !== undefined && pkg.manifestSha256 !== null);
  const targets = (await getTargets(db, id)).filter((t) => t.site === 'PRI');
  const dps = (await listDps(db, { site: 'PRI' })).map((d) => ({ site: d.site, name: d.name, path: d.path }));
  const sites = (await listSiteNodes(db)).filter((s) => s.code === 'PRI').map((s) => ({ code: s.code, name: s.name, parentCode: s.parentCode, publicKey: s.publicKey, url: s.url }));
  return { id, name: pkg.name, version: pkg.version, sourcePath: pkg.sourcePath, sourceVersion: pkg.sourceVersion, priority: pkg.priority, programs: pkg.programs, manifest: pkg.manifestSha256, targets, dps, sites, ...overrides };
}

test('a tampered, forged, truncated, corrupt or older bundle is refused into receive/bad/ with a status message, and nothing is applied', async (t) => {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  assert.equal((await api(cen, 'POST', '/api/v1/dps', { site: 'PRI', name: 'dp1', path: join(lab.dir, 'dp-pri') })).status, 201);
  const src = join(lab.dir, 'src');
  await makeTree(src, 'tamper');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Tamper test', sourcePath: src })).json as { id: string }).id;
  await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] });
  await installedAt(lab, id, 1);
  const v1 = (await getPackage(cen.handle.ctx.db, id))?.manifestSha256;
  await appendFile(join(src, 'lib/big.bin'), randomBytesFrom('v2', 5000));
  await api(cen, 'POST', `/api/v1/packages/${id}/update`);
  await installedAt(lab, id, 2);
  const v2 = (await getPackage(cen.handle.ctx.db, id))?.manifestSha256;
  assert.ok(v1 && v2 && v1 !== v2);

  const receive = pri.handle.ctx.paths.despoolrReceive;
  const share = join(lab.dir, 'dp-pri', 'SMSPKG', id);
  const before = { pkg: await getPackage(pri.handle.ctx.db, id), share: await snapshot(share) };
  assert.equal(before.pkg?.sourceVersion, 2);

  const full = join(lab.dir, 'v2.archive');
  await packManifest(cen.handle.ctx.paths.library, v2, full);
  const make = async (name: string, header: Partial<BundleHeader> & { package?: PackageDefinition }, options: { content?: string | null; key?: ReturnType<typeof generateKeyPairSync>['privateKey'] } = {}): Promise<string> => {
    const out = join(lab.dir, `${name}.bundle`);
    const def = header.package ?? (await definitionAt(lab, id, { sourceVersion: 3 }));
    const content = options.content === undefined ? full : options.content;
    await writeBundle(out, {
      header: { format: 1, id: name, from: 'CEN', to: 'PRI', created: new Date().toISOString(), kind: 'package', package: def, content: content === null ? null : { kind: 'full', base: null }, ...header } as BundleHeader,
      ...(content === null ? {} : { content }),
      privateKey: options.key ?? cen.handle.ctx.keys.privateKey,
    });
    return out;
  };
  const deliver = async (file: string, name: string): Promise<void> => {
    await rename(file, join(receive, `${name}.bundle`));
  };
  const refused = async (name: string, code: string, why: RegExp): Promise<void> => {
    const reason = await eventually(`${name} in receive/bad/`, async () => readFile(join(receive, 'bad', `${name}.bundle.reason`), 'utf8').catch(() => undefined));
    assert.match(reason, new RegExp(code));
    assert.match(reason, why);
    await stat(join(receive, 'bad', `${name}.bundle`));
    const messages = await listStatusMessages(pri.handle.ctx.db, { component: 'despooler', minSeverity: 'error' });
    assert.ok(messages.some((m) => m.text.includes(`${name}.bundle refused`) && new RegExp(code).test(m.text) && m.packageId === id), `a status message names why ${name} was refused`);
    const after = await getPackage(pri.handle.ctx.db, id);
    assert.equal(after?.sourceVersion, 2, 'the package keeps its version');
    assert.equal(after?.manifestSha256, before.pkg?.manifestSha256, 'and its content');
    assert.deepEqual(await snapshot(share), before.share, 'the DP share is unchanged');
  };

  // A flipped byte in the content: the digest no longer matches.
  const flipped = await make(`P-${id}-PRI-flipped`, {});
  const bytes = await readFile(flipped);
  const middle = Math.floor(bytes.length / 2);
  bytes.writeUInt8(bytes.readUInt8(middle) ^ 0x01, middle);
  await writeFile(flipped, bytes);
  await deliver(flipped, `P-${id}-PRI-flipped`);
  await refused(`P-${id}-PRI-flipped`, 'SITECAST_E_BAD_SIGNATURE', /do not match its SHA-256/);

  // Signed by CEN's name with another key.
  const otherKey = generateKeyPairSync('ed25519').privateKey;
  await deliver(await make(`P-${id}-PRI-forged`, {}, { key: otherKey }), `P-${id}-PRI-forged`);
  await refused(`P-${id}-PRI-forged`, 'SITECAST_E_BAD_SIGNATURE', /signature does not match the key recorded for site CEN/);

  // Signed by a site nobody knows.
  await deliver(await make(`P-${id}-PRI-unknown`, { from: 'XYZ' }, { key: otherKey }), `P-${id}-PRI-unknown`);
  await refused(`P-${id}-PRI-unknown`, 'SITECAST_E_UNKNOWN_SITE', /site XYZ, which this site does not know/);

  // Cut short in transit.
  const cut = await make(`P-${id}-PRI-truncated`, {});
  await truncate(cut, (await stat(cut)).size - 1000);
  await deliver(cut, `P-${id}-PRI-truncated`);
  await refused(`P-${id}-PRI-truncated`, 'SITECAST_E_BAD_BUNDLE', /truncated/);

  // Correctly signed, but a chunk inside the archive is damaged.
  const damaged = join(lab.dir, 'damaged.archive');
  const archive = await readFile(full);
  archive.writeUInt8(archive.readUInt8(archive.length - 5000) ^ 0xff, archive.length - 5000);
  await writeFile(damaged, archive);
  await deliver(await make(`P-${id}-PRI-corrupt`, {}, { content: damaged }), `P-${id}-PRI-corrupt`);
  await refused(`P-${id}-PRI-corrupt`, 'SITECAST_E_CORRUPT_CHUNK', /chunk [0-9a-f]{64} does not (decompress|match its SHA-256)/);

  // Correctly signed, but an older version than PRI holds.
  const older = await definitionAt(lab, id, { sourceVersion: 1, manifest: v1 });
  await deliver(await make(`P-${id}-PRI-older`, { package: older }, { content: null }), `P-${id}-PRI-older`);
  await refused(`P-${id}-PRI-older`, 'SITECAST_E_ROLLBACK', /holds source version 2; refusing the older version 1/);

  // The control: the same bundle untouched is applied.
  await deliver(await make(`P-${id}-PRI-good`, {}), `P-${id}-PRI-good`);
  await eventually('the genuine bundle applied', async () => ((await getPackage(pri.handle.ctx.db, id))?.sourceVersion === 3 ? true : undefined));
});

test('bundles about one package applied out of order: a definition older than the withdrawal already applied is skipped with a warning, also for a package never received; a later definition applies', async (t) => {
  const lab = await startLab(t, ['CEN', 'PRI']);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  assert.equal((await api(cen, 'POST', '/api/v1/dps', { site: 'PRI', name: 'dp1', path: join(lab.dir, 'dp-pri') })).status, 201);
  const src = join(lab.dir, 'src');
  await makeTree(src, 'order');
  const id = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Order test', sourcePath: src })).json as { id: string }).id;
  await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1'] });
  await installedAt(lab, id, 1);
  // A second package PRI never received, with content to carry.
  const other = ((await api(cen, 'POST', '/api/v1/packages', { name: 'Never sent', sourcePath: src })).json as { id: string }).id;
  const otherManifest = await eventually('the second package ingested at CEN', async () => (await getPackage(cen.handle.ctx.db, other))?.manifestSha256 ?? undefined);
  const otherArchive = join(lab.dir, 'other.archive');
  await packManifest(cen.handle.ctx.paths.library, otherManifest, otherArchive);

  const receive = pri.handle.ctx.paths.despoolrReceive;
  const deliver = async (name: string, def: PackageDefinition, created: Date, content?: string): Promise<void> => {
    const file = join(lab.dir, `${name}.bundle`);
    await writeBundle(file, {
      header: { format: 1, id: name, from: 'CEN', to: 'PRI', created: created.toISOString(), kind: 'package', package: def, content: content === undefined ? null : { kind: 'full', base: null } },
      ...(content === undefined ? {} : { content }),
      privateKey: cen.handle.ctx.keys.privateKey,
    });
    await rename(file, join(receive, `${name}.bundle`));
    // Handled: gone from receive/, and not refused.
    await eventually(`${name} handled`, async () => (await stat(join(receive, `${name}.bundle`)).then(() => false, () => true)) || undefined);
    await assert.rejects(stat(join(receive, 'bad', `${name}.bundle`)), `${name} is not in bad/`);
  };
  const skippedFor = async (pkg: string, name: string): Promise<void> => {
    const messages = await listStatusMessages(pri.handle.ctx.db, { component: 'despooler' });
    assert.ok(
      messages.some((m) => m.severity === 'warning' && m.packageId === pkg && m.text.includes(`bundle ${name} `) && /is older than bundle .*already applied; skipped, nothing changed/.test(m.text)),
      `a warning names the skipped ${name}`,
    );
  };
  const dp1 = await definitionAt(lab, id, {});
  const made = Date.now();

  // The definition (made first) is held back; the withdrawal that followed it arrives and is applied.
  await deliver(`P-${id}-PRI-withdrawal`, { ...dp1, targets: [] }, new Date(made + 2000));
  assert.deepEqual(await getTargets(pri.handle.ctx.db, id), [], 'the withdrawal took the target off');
  // The held-back definition arrives: it would put the package back on PRI/dp1, which CEN no longer targets.
  await deliver(`P-${id}-PRI-late`, dp1, new Date(made + 1000));
  await skippedFor(id, `P-${id}-PRI-late`);
  assert.deepEqual(await getTargets(pri.handle.ctx.db, id), [], 'the late definition changed nothing');

  // The same for a package PRI never held: the withdrawal is remembered, the late definition and its content skipped.
  const otherDef = await definitionAt(lab, other, { targets: [{ site: 'PRI', dp: 'dp1' }] });
  await deliver(`P-${other}-PRI-withdrawal`, { ...otherDef, targets: [] }, new Date(made + 2000));
  await deliver(`P-${other}-PRI-late`, otherDef, new Date(made + 1000), otherArchive);
  await skippedFor(other, `P-${other}-PRI-late`);
  assert.equal(await getPackage(pri.handle.ctx.db, other), undefined, 'PRI still does not know the package');

  // A definition made after the withdrawal applies: the package goes back on PRI/dp1 (the same bundle sent again too).
  await deliver(`P-${id}-PRI-again`, dp1, new Date(made + 3000));
  await deliver(`P-${id}-PRI-again`, dp1, new Date(made + 3000));
  assert.deepEqual(await getTargets(pri.handle.ctx.db, id), [{ site: 'PRI', dp: 'dp1' }]);
  const skips = (await listStatusMessages(pri.handle.ctx.db, { component: 'despooler' })).filter((m) => m.text.includes('skipped, nothing changed'));
  assert.equal(skips.length, 2, 'only the two late definitions were skipped');
});
