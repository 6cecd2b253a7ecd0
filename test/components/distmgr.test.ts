import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { chunkPath } from '../../src/content/store.js';
import { extractManifest } from '../../src/content/extract.js';
import { ingestTree } from '../../src/content/ingest.js';
import { importArchive } from '../../src/content/import.js';
import { ackChanges, addDp, createPackage, getPackage, getPackageStatus, listDps, listStatusMessages, openSiteDb, readChanges, removeDp, setDpStatus, setTargets, updatePackage } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { hasManifest, loadManifest, openLibrary } from '../../src/content/library.js';
import { recordSent, setHolding, upsertSite } from '../../src/db/hierarchy.js';
import { verifyLibrary } from '../../src/content/verify.js';
import { serializePkn } from '../../src/formats/pkn.js';
import type { SiteContext } from '../../src/site/context.js';
import { nalFileSchema, pkgFileSchema, serializeInstruction } from '../../src/formats/instructions.js';
import { defaultIcon, iconProblem } from '../../src/formats/icon.js';
import { dropFile } from '../../src/inbox/index.js';
import { startSite, type SiteHandle } from '../../src/site/server.js';
import { describeTree, makeTree, textBytes } from '../helpers/fixtures.js';
import { distribute, sharePathOf, statusWhen } from '../helpers/distribution.js';
import { eventually, newSite, type TestSite } from '../helpers/site.js';

const FAST = { distmgr: { graceMs: 300, retry: { initialMs: 200, maxMs: 1000 }, rescanMs: 500 }, inboxmgr: { rescanMs: 500 }, provider: false } as const;

async function start(site: TestSite): Promise<SiteHandle> {
  const handle = await startSite(site.root, FAST);
  site.defer(() => handle.close());
  return handle;
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('a package goes to two DPs: shares equal the source, smspkg/.pkg unpacks, instruction files reach the MP', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src);
  const h = await start(site);
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1', 'DP2']);
  const rows = await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  assert.deepEqual(rows.map((r) => [r.dp, r.sourceVersion, r.retryCount]), [['DP1', 1, 0], ['DP2', 1, 0]]);

  const want = await describeTree(src);
  for (const dp of ['DP1', 'DP2']) assert.deepEqual(await describeTree(sharePathOf(site.dir, dp, pkg.id)), want, `${dp} share`);

  const stored = await getPackage(h.ctx.db, pkg.id);
  assert.match(stored?.manifestSha256 ?? '', /^[0-9a-f]{64}$/);
  const lib2 = join(site.dir, 'unpacked-lib');
  const imported = await importArchive(lib2, join(site.root, 'smspkg', `${pkg.id}.pkg`));
  assert.equal(imported.manifest, stored?.manifestSha256);
  await extractManifest(lib2, imported.manifest, join(site.dir, 'unpacked'));
  assert.deepEqual(await describeTree(join(site.dir, 'unpacked')), want);

  const mp = join(site.root, 'mp', 'pkginfo');
  await eventually('instruction files at the MP', async () => ((await readdir(mp)).length === 3 ? true : undefined));
  const pkgFile = pkgFileSchema.parse(JSON.parse(await readFile(join(mp, `${pkg.id}.PKG`), 'utf8')));
  assert.equal(pkgFile.manifest, stored?.manifestSha256);
  assert.deepEqual(pkgFile.programs.map((p) => p.commandLine), ['setup.sh --quiet']);
  const nal = nalFileSchema.parse(JSON.parse(await readFile(join(mp, `${pkg.id}.NAL`), 'utf8')));
  assert.deepEqual(nal.locations.map((l) => l.dp), ['DP1', 'DP2']);
  assert.equal(nal.locations[0]?.url, `${h.url}/dp/DP1/${pkg.id}/`);
  assert.equal(iconProblem(await readFile(join(mp, `${pkg.id}.ICO`))), undefined);
  assert.deepEqual((await readdir(join(site.root, 'inboxes', 'pkginfo.box'))).filter((n) => n !== 'bad'), []);

  // A repeated wake-up for the unchanged package does no work beyond checking.
  const pkgMtime = (await stat(join(site.root, 'smspkg', `${pkg.id}.pkg`))).mtimeMs;
  const shareTarget = (await stat(sharePathOf(site.dir, 'DP1', pkg.id))).ino;
  await dropFile(join(site.root, 'inboxes', 'distmgr.box'), `${pkg.id}.PKN`, JSON.stringify({ format: 1, packageId: pkg.id, reason: 'change', time: new Date().toISOString() }));
  h.ctx.wake('distmgr');
  await eventually('the repeated wake-up handled', async () => ((await readdir(join(site.root, 'inboxes', 'distmgr.box'))).includes(`${pkg.id}.PKN`) ? undefined : true));
  assert.equal((await stat(join(site.root, 'smspkg', `${pkg.id}.pkg`))).mtimeMs, pkgMtime);
  assert.equal((await stat(sharePathOf(site.dir, 'DP1', pkg.id))).ino, shareTarget);
  const log = await readFile(join(site.root, 'logs', 'distmgr.log'), 'utf8');
  assert.equal(log.match(/ingesting source version/g)?.length, 1, 'ingested once');
});

test('update: only changed files are rewritten, unchanged ones stay the same inode, and readers never see a partial share', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src);
  const h = await start(site);
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1', 'DP2']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  const share = sharePathOf(site.dir, 'DP1', pkg.id);
  const toolIno = (await stat(join(share, 'bin/tool'))).ino;
  const bigIno = (await stat(join(share, 'lib/big.bin'))).ino;
  const oldReadme = sha(await readFile(join(share, 'README.txt')));
  const tool = sha(await readFile(join(share, 'bin/tool')));
  const newReadmeBytes = textBytes('version two', 9000);
  const newReadme = sha(newReadmeBytes);

  // Readers hammer the share while it is switched.
  let stop = false;
  let reads = 0;
  const problems: string[] = [];
  const reader = (async () => {
    while (!stop) {
      try {
        const r = sha(await readFile(join(share, 'README.txt')));
        if (r !== oldReadme && r !== newReadme) problems.push('README.txt was neither version');
        if (sha(await readFile(join(share, 'bin/tool'))) !== tool) problems.push('bin/tool changed');
        reads += 1;
      } catch (err) {
        problems.push(String(err));
      }
    }
  })();

  await writeFile(join(src, 'README.txt'), newReadmeBytes);
  await writeFile(join(src, 'new-file.txt'), 'added in version two');
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed' && s.sourceVersion === 2);
  await new Promise((r) => setTimeout(r, 500)); // past the grace period: the old version is gone
  stop = true;
  await reader;
  assert.deepEqual(problems.slice(0, 5), []);
  assert.ok(reads > 10, `only ${reads} reads`);

  assert.equal((await stat(join(share, 'bin/tool'))).ino, toolIno, 'unchanged file is the same hard link');
  assert.equal((await stat(join(share, 'lib/big.bin'))).ino, bigIno);
  assert.notEqual(sha(await readFile(join(share, 'README.txt'))), oldReadme);
  for (const dp of ['DP1', 'DP2']) assert.deepEqual(await describeTree(sharePathOf(site.dir, dp, pkg.id)), await describeTree(src));
  const smspkg = (await readdir(join(site.dir, 'dp1', 'SMSPKG'))).sort();
  assert.deepEqual(smspkg, [`.${pkg.id}.v2`, `.${pkg.id}.v2.json`, pkg.id], 'the old version was removed');
  const log = await readFile(join(site.root, 'logs', 'distmgr.log'), 'utf8');
  assert.match(log, /source version 2 installed on DP1 \(2 files written, 4 unchanged files linked/);
});

test('a missing source folder: every targeted DP failed, a status message says why, nothing installed', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const pkg = await distribute(h.ctx, site.dir, join(site.dir, 'does-not-exist'), ['DP1', 'DP2']);
  const rows = await statusWhen(h.ctx, pkg.id, (s) => s.state === 'failed');
  for (const r of rows) assert.match(r.lastMessage ?? '', /does not exist/);
  const messages = await listStatusMessages(h.ctx.db, { packageId: pkg.id, minSeverity: 'error' });
  assert.equal(messages.length, 1);
  assert.match(messages[0]?.text ?? '', /does-not-exist does not exist.*DP1, DP2/);
  await stat(join(site.dir, 'dp1', 'SMSPKG', pkg.id)).then(
    () => assert.fail('no share may exist'),
    () => undefined,
  );
  await eventually('the wake-up file consumed', async () => ((await readdir(join(site.root, 'inboxes', 'distmgr.box'))).some((n) => n.endsWith('.PKN')) ? undefined : true));
});

test('a missing source folder with no DP targeted: the package itself is failed for that source version, until a version is ingested', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const src = join(site.dir, 'later');
  const pkg = await distribute(h.ctx, site.dir, src, []);
  const problem = await eventually('the source problem recorded', async () => (await getPackage(h.ctx.db, pkg.id))?.sourceProblem ?? undefined);
  assert.match(problem, /later does not exist/);
  const messages = await listStatusMessages(h.ctx.db, { packageId: pkg.id, minSeverity: 'error' });
  assert.match(messages[0]?.text ?? '', /no DP of this site is targeted/);
  // The administrator creates the folder and updates the package: ingested, the problem gone.
  await makeTree(src, 'later');
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  const after = await eventually('the new version ingested', async () => {
    const p = await getPackage(h.ctx.db, pkg.id);
    return p !== undefined && p.sourceVersion === 2 && p.manifestSha256 !== null ? p : undefined;
  });
  assert.equal(after.sourceProblem, null);
});

test('malformed or unknown files in distmgr.box and pkginfo.box go to bad/ with a status message; the components go on', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const distbox = join(site.root, 'inboxes', 'distmgr.box');
  const infobox = join(site.root, 'inboxes', 'pkginfo.box');
  await dropFile(distbox, 'CEN00099.PKN', 'this is not json');
  await dropFile(distbox, 'notes.txt', 'hello');
  await dropFile(distbox, 'CEN00001.PKN', JSON.stringify({ format: 1, packageId: 'CEN00002', reason: 'change', time: new Date().toISOString() }));
  await dropFile(distbox, 'CEN000AA.PKN', JSON.stringify({ format: 1, packageId: 'CEN000AA', reason: 'change', time: new Date().toISOString() }));
  await dropFile(infobox, 'CEN00001.PKG', '{"format":1}');
  await dropFile(infobox, 'CEN00001.ICO', 'not an icon at all, not at all');
  await dropFile(infobox, 'whatever.bin', 'x');
  const badOf = async (dir: string, n: number): Promise<string[]> =>
    eventually(`${n} files in ${dir}/bad`, async () => {
      const names = (await readdir(join(dir, 'bad'))).filter((x) => !x.endsWith('.reason') && !x.startsWith('.')).sort();
      return names.length === n ? names : undefined;
    });
  assert.deepEqual(await badOf(distbox, 4), ['CEN00001.PKN', 'CEN00099.PKN', 'CEN000AA.PKN', 'notes.txt']);
  assert.match(await readFile(join(distbox, 'bad', 'CEN000AA.PKN.reason'), 'utf8'), /names package CEN000AA, which does not exist at this site/);
  assert.deepEqual(await badOf(infobox, 3), ['CEN00001.ICO', 'CEN00001.PKG', 'whatever.bin']);
  assert.match(await readFile(join(distbox, 'bad', 'CEN00001.PKN.reason'), 'utf8'), /names package CEN00002/);
  const messages = await listStatusMessages(h.ctx.db, { minSeverity: 'error' });
  assert.equal(messages.filter((m) => m.component === 'distmgr').length, 4);
  assert.equal(messages.filter((m) => m.component === 'inboxmgr').length, 3);
  assert.ok(messages.some((m) => /pkginfo\.box\/CEN00001\.ICO moved to bad\/: .*not an ICO file/.test(m.text)));

  // Both go on: a real package still flows through.
  const src = join(site.dir, 'src');
  await makeTree(src, 'after-bad');
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  await eventually('instruction files at the MP', async () => ((await readdir(join(site.root, 'mp', 'pkginfo'))).length === 3 ? true : undefined));
});

test('Inbox Manager: an instruction file of an unknown package or of a version not yet made goes to bad/; a late one of an older version leaves the newer at the MP', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const src = join(site.dir, 'src');
  await makeTree(src, 'instructions');
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  const mp = join(site.root, 'mp', 'pkginfo');
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  const v2 = await eventually('version 2 at the MP', async () => {
    const f = pkgFileSchema.parse(JSON.parse(await readFile(join(mp, `${pkg.id}.PKG`), 'utf8')));
    return f.sourceVersion === 2 ? f : undefined;
  });
  const infobox = join(site.root, 'inboxes', 'pkginfo.box');
  const as = (v: object): string => serializeInstruction(pkgFileSchema.parse(v));
  await dropFile(infobox, `${pkg.id}.PKG`, as({ ...v2, sourceVersion: 1, name: 'stale' }));
  await eventually('the stale file consumed', async () => ((await readdir(infobox)).includes(`${pkg.id}.PKG`) ? undefined : true));
  assert.deepEqual(pkgFileSchema.parse(JSON.parse(await readFile(join(mp, `${pkg.id}.PKG`), 'utf8'))), v2, 'the newer file stays');
  await dropFile(infobox, 'CEN000FF.PKG', as({ ...v2, packageId: 'CEN000FF' }));
  const future = `${pkg.id}.NAL`;
  await dropFile(infobox, future, serializeInstruction(nalFileSchema.parse({ format: 1, packageId: pkg.id, sourceVersion: 9, locations: [] })));
  const bad = await eventually('two files in bad/', async () => {
    const names = (await readdir(join(infobox, 'bad'))).filter((n) => !n.endsWith('.reason') && !n.startsWith('.')).sort();
    return names.length === 2 ? names : undefined;
  });
  assert.deepEqual(bad, [future, 'CEN000FF.PKG'].sort());
  assert.match(await readFile(join(infobox, 'bad', 'CEN000FF.PKG.reason'), 'utf8'), /package CEN000FF does not exist at this site/);
  assert.match(await readFile(join(infobox, 'bad', `${future}.reason`), 'utf8'), /source version 9 of .*, which is at version 2/);
  await assert.rejects(readFile(join(mp, 'CEN000FF.PKG')), { code: 'ENOENT' });
  const nal = nalFileSchema.parse(JSON.parse(await readFile(join(mp, future), 'utf8')));
  assert.equal(nal.sourceVersion, 2);
});

test('undistribute: a package taken off one DP loses its share, status row and chunks there; the other DP and another package on that DP are untouched; the .NAL names the DP no more', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const src = join(site.dir, 'src');
  await makeTree(src, 'undistribute');
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1', 'DP2']);
  const otherSrc = join(site.dir, 'other');
  await makeTree(otherSrc, 'stays');
  const other = await distribute(h.ctx, site.dir, otherSrc, ['DP2']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  await statusWhen(h.ctx, other.id, (s) => s.state === 'installed');
  const dp2 = join(site.dir, 'dp2');
  const ownManifest = (await getPackage(h.ctx.db, pkg.id))?.manifestSha256 as string;

  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'DP1' }]);
  h.ctx.wake('dbmon');
  await eventually('taken off DP2', async () => ((await getPackageStatus(h.ctx.db, pkg.id)).map((r) => r.dp).join() === 'DP1' ? true : undefined), 15_000);
  await eventually('share gone from DP2', async () => ((await readdir(join(dp2, 'SMSPKG'))).some((n) => n.includes(pkg.id)) ? undefined : true));
  const dp2Library = await openLibrary(join(dp2, 'library'));
  assert.equal(await hasManifest(dp2Library, ownManifest), false, 'its manifest left the DP2 library');
  assert.deepEqual((await verifyLibrary(join(dp2, 'library'))).bad, [], 'the other package still verifies whole on DP2');
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP2', other.id)), await describeTree(otherSrc));
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP1', pkg.id)), await describeTree(src));
  const nal = await eventually('the .NAL at the MP names DP1 only', async () => {
    const n = nalFileSchema.parse(JSON.parse(await readFile(join(site.root, 'mp', 'pkginfo', `${pkg.id}.NAL`), 'utf8')));
    return n.locations.length === 1 ? n : undefined;
  });
  assert.equal(nal.locations[0]?.dp, 'DP1');
  const messages = await listStatusMessages(h.ctx.db, { packageId: pkg.id });
  assert.ok(messages.some((m) => /taken off DP DP2 \(share removed; \d+ chunks, \d+ bytes freed from its library\)/.test(m.text)), messages.map((m) => m.text).join('\n'));
});

test('a DP is removed once Distribution Manager has taken its last package off it: refused before, then gone from the site, its folder left empty of packages', async (t) => {
  const site = await newSite(t);
  const h = await start(site);
  const src = join(site.dir, 'src');
  await makeTree(src, 'retire');
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1', 'DP2']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  await assert.rejects(removeDp(h.ctx.db, { site: 'CEN', name: 'DP2' }), (err: unknown) => isSitecastError(err, 'SITECAST_E_CONFLICT') && /still has 1 package/.test(err.message));

  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'DP1' }]);
  h.ctx.wake('dbmon');
  await eventually('taken off DP2', async () => ((await getPackageStatus(h.ctx.db, pkg.id)).map((r) => r.dp).join() === 'DP1' ? true : undefined), 15_000);
  const removed = await removeDp(h.ctx.db, { site: 'CEN', name: 'DP2' });
  assert.equal(removed.path, join(site.dir, 'dp2'));
  assert.deepEqual((await listDps(h.ctx.db, { site: 'CEN' })).map((d) => d.name), ['DP1']);
  assert.deepEqual((await readdir(join(site.dir, 'dp2', 'SMSPKG'))).filter((n) => n.includes(pkg.id)), [], 'no share or record of the package is left in the folder');
  // The site goes on: an update reaches the remaining DP.
  await writeFile(join(src, 'added.txt'), 'v2');
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed' && s.sourceVersion === 2);
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP1', pkg.id)), await describeTree(src));
});

test('a package icon: the .ICO at the MP is the icon file of each source version; a version whose icon is gone or is not an icon gets the default with a warning, and the next good one is used again', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src, 'icon');
  const own = defaultIcon('a custom picture');
  await mkdir(join(src, 'art'), { recursive: true });
  await writeFile(join(src, 'art', 'app.ico'), own);
  const h = await start(site);
  await addDp(h.ctx.db, { site: 'CEN', name: 'DP1', path: join(site.dir, 'dp1') });
  const pkg = await createPackage(h.ctx.db, { name: 'With icon', sourcePath: src, icon: 'art/app.ico' });
  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'DP1' }]);
  h.ctx.wake('dbmon');
  const ico = join(site.root, 'mp', 'pkginfo', `${pkg.id}.ICO`);
  await eventually('the package icon at the MP', async () => ((await readFile(ico).catch(() => Buffer.alloc(0))).equals(own) ? true : undefined), 20_000);

  // Version 2: the icon file is not an icon any more.
  await writeFile(join(src, 'art', 'app.ico'), 'not an icon');
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  await eventually('the default icon for version 2', async () => ((await readFile(ico)).equals(defaultIcon(pkg.id)) ? true : undefined), 20_000);
  const warned = (await listStatusMessages(h.ctx.db, { packageId: pkg.id, minSeverity: 'warning' })).map((m) => m.text);
  assert.ok(warned.some((m) => m.includes('icon art/app.ico is not an icon (too short for an icon) in source version 2; the default icon is used')), warned.join('\n'));

  // Version 3: gone altogether; version 4: a good icon again.
  await rm(join(src, 'art'), { recursive: true });
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed' && s.sourceVersion === 3);
  await eventually('the missing icon reported', async () =>
    (await listStatusMessages(h.ctx.db, { packageId: pkg.id, minSeverity: 'warning' })).some((m) => m.text.includes('icon art/app.ico is missing in source version 3')) ? true : undefined,
  );
  assert.ok((await readFile(ico)).equals(defaultIcon(pkg.id)));
  const other = defaultIcon('another picture');
  await mkdir(join(src, 'art'));
  await writeFile(join(src, 'art', 'app.ico'), other);
  await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
  h.ctx.wake('dbmon');
  await eventually('the icon of version 4 at the MP', async () => ((await readFile(ico)).equals(other) ? true : undefined), 20_000);
});

test('a restart resumes a wake-up file left in the inbox and DPs left pending', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src, 'restart');
  // The state a crash leaves: the definition committed, its wake-up file written, the change log acknowledged, nothing distributed.
  const db = await openSiteDb({ kind: 'sqlite', path: join(site.root, 'site.db') });
  let pkgId: string;
  let orphanId: string;
  try {
    const ctx = { db, siteCode: 'CEN', wake: () => undefined } as unknown as SiteContext;
    pkgId = (await distribute(ctx, site.dir, src, ['DP1'])).id;
    // A second package whose wake-up file was lost: only its pending DP row remains.
    orphanId = (await distribute(ctx, site.dir, src, ['DP2'])).id;
    await dropFile(join(site.root, 'inboxes', 'distmgr.box'), `${pkgId}.PKN`, serializePkn(pkgId, 'change'));
    const changes = await readChanges(db);
    await ackChanges(db, changes[changes.length - 1]?.id ?? 0);
  } finally {
    await db.close();
  }
  const h = await start(site);
  await statusWhen(h.ctx, pkgId, (s) => s.state === 'installed');
  await statusWhen(h.ctx, orphanId, (s) => s.state === 'installed');
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP1', pkgId)), await describeTree(src));
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP2', orphanId)), await describeTree(src));
});

test('the package archive cannot be written (smspkg is not a folder): the DPs are installed meanwhile, the package is retried, and completes once smspkg is writable', async (t) => {
  const site = await newSite(t);
  const src = join(site.dir, 'src');
  await makeTree(src);
  const smspkg = join(site.root, 'smspkg');
  await rm(smspkg, { recursive: true, force: true });
  await writeFile(smspkg, 'not a folder');
  const h = await start(site);
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  assert.deepEqual(await describeTree(sharePathOf(site.dir, 'DP1', pkg.id)), await describeTree(src));
  // Not done: the wake-up file stays, and no instruction file went out without the archive.
  await eventually('distmgr logged the failed archive', async () => (/smspkg/.test(await readFile(join(site.root, 'logs', 'distmgr.log'), 'utf8')) ? true : undefined));
  assert.ok((await readdir(join(site.root, 'inboxes', 'distmgr.box'))).includes(`${pkg.id}.PKN`));
  assert.deepEqual(await readdir(join(site.root, 'mp', 'pkginfo')), []);

  await rm(smspkg);
  await mkdir(smspkg);
  await eventually('the archive written on a retry', async () => ((await stat(join(smspkg, `${pkg.id}.pkg`)).catch(() => undefined)) !== undefined ? true : undefined), 15_000);
  await eventually('instruction files at the MP', async () => ((await readdir(join(site.root, 'mp', 'pkginfo'))).length === 3 ? true : undefined), 15_000);
});

test('site library: a version two updates old goes to a collection; the current and the previous version of each package and a version a child site holds stay, and what stays is whole', async (t) => {
  const site = await newSite(t);
  const srcA = join(site.dir, 'srcA');
  const srcB = join(site.dir, 'srcB');
  await makeTree(srcA, 'a');
  await makeTree(srcB, 'b');
  const h = await start(site);
  const a = await distribute(h.ctx, site.dir, srcA, ['DP1']);
  const b = await distribute(h.ctx, site.dir, srcB, ['DP1']);
  await statusWhen(h.ctx, a.id, (s) => s.state === 'installed');
  await statusWhen(h.ctx, b.id, (s) => s.state === 'installed');
  const manifestOf = async (id: string): Promise<string> => (await getPackage(h.ctx.db, id))?.manifestSha256 ?? '';
  const a1 = await manifestOf(a.id);
  const b1 = await manifestOf(b.id);
  const lib = await openLibrary(join(site.root, 'library'));
  const chunksOf = async (m: string): Promise<Set<string>> => new Set((await loadManifest(lib, m)).entries.flatMap((e) => (e.type === 'file' ? e.chunks.map((c) => c.hash) : [])));
  const log = (): Promise<string> => readFile(join(site.root, 'logs', 'distmgr.log'), 'utf8');
  // A child site holds A's first version: the base of the delta it is sent next.
  await upsertSite(h.ctx.db, { code: 'PRI', name: 'Primary', parentCode: 'CEN', publicKey: null, url: null });
  await setHolding(h.ctx.db, { site: 'PRI', packageId: a.id, sourceVersion: 1, manifest: a1 });
  const update = async (src: string, pkg: { id: string }, version: number): Promise<string> => {
    await writeFile(join(src, 'bin/tool'), textBytes(`${pkg.id} version ${version}`, 200_000));
    await rm(join(src, 'lib/big.bin'), { force: true });
    await updatePackage(h.ctx.db, pkg.id, { refreshSource: true });
    h.ctx.wake('dbmon');
    await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed' && s.sourceVersion === version);
    return manifestOf(pkg.id);
  };

  // One update each: every first version is still the previous one, nothing goes.
  const a2 = await update(srcA, a, 2);
  const b2 = await update(srcB, b, 2);
  for (const m of [a1, a2, b1, b2]) assert.ok(await hasManifest(lib, m), `${m} kept after one update`);

  // B again: its first version is two updates old and held by nobody.
  const b3 = await update(srcB, b, 3);
  const b1Chunks = await chunksOf(b1);
  for (const m of [a1, a2, b2, b3]) for (const c of await chunksOf(m)) b1Chunks.delete(c);
  assert.ok(b1Chunks.size > 0, 'B version 1 has chunks of its own');
  // The collection removes the manifest first, then the chunks: done when it says so in the log.
  const collected = /site library: 1 versions no longer in use removed \(\d+ chunks, \d+ bytes freed; 4 versions kept/;
  await eventually('B version 1 collected', async () => (collected.test(await log()) ? true : undefined));
  assert.ok(!(await hasManifest(lib, b1)), 'B version 1 is gone');
  for (const m of [a1, a2, b2, b3]) assert.ok(await hasManifest(lib, m), `${m} kept`);
  for (const c of b1Chunks) assert.ok(!existsSync(chunkPath(lib.dir, c)), `chunk ${c} only B version 1 used is gone`);
  const verified = await verifyLibrary(join(site.root, 'library'));
  assert.deepEqual([verified.bad, verified.badManifests], [[], []]);
  await extractManifest(join(site.root, 'library'), b3, join(site.dir, 'b3'));
  assert.deepEqual(await describeTree(join(site.dir, 'b3')), await describeTree(srcB));

  // A again, its child now holding version 2: version 1 is neither previous nor held any more.
  await setHolding(h.ctx.db, { site: 'PRI', packageId: a.id, sourceVersion: 2, manifest: a2 });
  await update(srcA, a, 3);
  await eventually('A version 1 collected', async () => ((await hasManifest(lib, a1)) ? undefined : true));
  assert.ok(await hasManifest(lib, a2), 'A version 2: previous and held');

  // What a crash between an update and its collection leaves goes at the next start.
  await h.close();
  const stray = join(site.dir, 'stray');
  await makeTree(stray, 'stray');
  const leftover = (await ingestTree(join(site.root, 'library'), stray)).manifest;
  const again = await start(site);
  await eventually('the leftover version collected at start', async () => ((await hasManifest(lib, leftover)) ? undefined : true));
  assert.ok(await hasManifest(lib, b3));
  assert.deepEqual((await getPackageStatus(again.ctx.db, a.id)).map((s) => [s.state, s.sourceVersion]), [['installed', 3]]);
});

test('undistribute of a DP of a child site, then distribute again before the Scheduler sent anything: the child is told nothing new, and the row its last report gave stays', async (t) => {
  const site = await newSite(t);
  // No Scheduler: what Distribution Manager asks of it waits, as behind a busy Scheduler.
  const h = await startSite(site.root, { ...FAST, without: ['replmgr', 'scheduler'] });
  site.defer(() => h.close());
  const src = join(site.dir, 'src');
  await makeTree(src, 'child');
  await upsertSite(h.ctx.db, { code: 'PRI', name: 'Primary', parentCode: 'CEN', publicKey: null, url: null });
  await addDp(h.ctx.db, { site: 'PRI', name: 'dp1', path: '/srv/pri/dp1' });
  const pkg = await distribute(h.ctx, site.dir, src, ['DP1']);
  await statusWhen(h.ctx, pkg.id, (s) => s.state === 'installed');
  const both = [
    { site: 'CEN', dp: 'DP1' },
    { site: 'PRI', dp: 'dp1' },
  ];
  const log = join(site.root, 'logs', 'distmgr.log');
  const requests = async (): Promise<number> => ((await readFile(log, 'utf8').catch(() => '')).match(new RegExp(`${pkg.id}: ${pkg.id}\\.RPT written`, 'g')) ?? []).length;
  const jobDone = async (before: number): Promise<void> => {
    await eventually('a replication request written', async () => ((await requests()) > before ? true : undefined), 15_000);
    await eventually('the job done', async () => ((await readdir(join(site.root, 'inboxes', 'distmgr.box'))).includes(`${pkg.id}.PKN`) ? undefined : true), 15_000);
  };
  let before = await requests();
  await setTargets(h.ctx.db, pkg.id, both);
  h.ctx.wake('dbmon');
  await jobDone(before);
  // What PRI reported, and what this site sent it.
  await setDpStatus(h.ctx.db, { packageId: pkg.id, site: 'PRI', dp: 'dp1', state: 'installed', sourceVersion: 1, lastMessage: 'source version 1 installed' });
  await recordSent(h.ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, definition: 'b'.repeat(64), sendId: 'P-sent', bytes: 1, sentAt: new Date().toISOString() });

  before = await requests();
  await setTargets(h.ctx.db, pkg.id, [{ site: 'CEN', dp: 'DP1' }]);
  h.ctx.wake('dbmon');
  await jobDone(before);
  before = await requests();
  await setTargets(h.ctx.db, pkg.id, both);
  h.ctx.wake('dbmon');
  await jobDone(before);
  // The Scheduler will find the definition PRI already has and send nothing: PRI's row never changes, so only the one kept here is right.
  const row = (await getPackageStatus(h.ctx.db, pkg.id)).find((r) => r.site === 'PRI');
  assert.deepEqual([row?.state, row?.sourceVersion], ['installed', 1]);
});
