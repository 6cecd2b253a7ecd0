import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { EMPTY_STATE, type HoldingsCache, LATE_COMMIT_WINDOW_MS, type ReportState, collectReport } from '../../src/components/statmgr/collect.js';
import { openLibrary } from '../../src/content/library.js';
import { addDp, createPackage, deleteDpStatus, removeDp, setDpStatus, setTargets } from '../../src/db/index.js';
import { clearWanted, recordWanted, setLocalSite, upsertSite } from '../../src/db/hierarchy.js';
import { storeReceivedPackage, withdrawReceivedPackage } from '../../src/db/received.js';
import { newSite, openContext } from '../helpers/site.js';

const MANIFEST = 'a'.repeat(64);

/** A bundle of the parent's, made now: later calls are later bundles. */
const fromParent = (): { bundleId: string; created: string } => ({ bundleId: 'P-CEN00001-PRI-test', created: new Date().toISOString() });

/** A child site PRI below CEN, with `dps` DPs and `packages` packages received from CEN targeting all of them. */
async function childSite(t: Parameters<typeof newSite>[0], packages: number, dps: number): Promise<{ ctx: Awaited<ReturnType<typeof openContext>>; ids: string[]; names: string[] }> {
  const site = await newSite(t, 'PRI');
  const ctx = await openContext(site);
  await upsertSite(ctx.db, { code: 'CEN', name: 'Central', parentCode: null, publicKey: null, url: null });
  await setLocalSite(ctx.db, { parentCode: 'CEN' });
  const names = Array.from({ length: dps }, (_, i) => `dp${i + 1}`);
  for (const name of names) await addDp(ctx.db, { site: 'PRI', name, path: `/srv/${name}` });
  const ids: string[] = [];
  for (let i = 1; i <= packages; i++) {
    const id = `CEN${i.toString(16).toUpperCase().padStart(5, '0')}`;
    ids.push(id);
    await storeReceivedPackage(ctx.db, {
      id,
      name: `package ${i}`,
      version: '1',
      sourcePath: '/src',
      sourceVersion: 1,
      priority: 'medium',
      programs: [],
      manifest: MANIFEST,
      targets: names.map((dp) => ({ site: 'PRI', dp })),
      dps: [],
      sites: [],
    }, fromParent());
  }
  return { ctx, ids, names };
}

test('statmgr reports each DP state change once, reading only rows changed since its cursor; its state keeps only the rows of the window', async (t) => {
  const { ctx, ids, names } = await childSite(t, 30, 4);
  // A package made at PRI itself, on the same DPs: never reported up (it was not received from above).
  const local = await createPackage(ctx.db, { name: 'Local', sourcePath: '/srv/local' });
  await setTargets(ctx.db, local.id, [{ site: 'PRI', dp: names[0] as string }]);
  assert.equal((await ctx.db.db.selectFrom('package_dp_status').select('package_id').where('package_id', '=', local.id).execute()).length, 1);

  const first = await collectReport(ctx, EMPTY_STATE);
  assert.equal(first.parent, 'CEN');
  assert.equal(first.status?.dps.length, 120, 'every pending row once');
  assert.ok(first.status?.dps.every((d) => d.packageId.startsWith('CEN') && d.state === 'pending'));
  assert.ok(first.next.dpCursor !== undefined);

  const quiet = await collectReport(ctx, first.next);
  assert.deepEqual(quiet.status?.dps ?? [], [], 'nothing changed, nothing reported');

  await setDpStatus(ctx.db, { packageId: ids[3] as string, site: 'PRI', dp: names[1] as string, state: 'installed', sourceVersion: 1 });
  await setDpStatus(ctx.db, { packageId: ids[7] as string, site: 'PRI', dp: names[0] as string, state: 'retrying', retryCount: 1, lastMessage: 'disk full' });
  const changed = await collectReport(ctx, quiet.next);
  assert.deepEqual(
    changed.status?.dps.map((d) => [d.packageId, d.dp, d.state]),
    [
      [ids[3], names[1], 'installed'],
      [ids[7], names[0], 'retrying'],
    ],
  );
  // The same state written again (a new updated_at, same content) is not news.
  await setDpStatus(ctx.db, { packageId: ids[3] as string, site: 'PRI', dp: names[1] as string, state: 'installed', sourceVersion: 1 });
  assert.deepEqual((await collectReport(ctx, changed.next)).status?.dps ?? [], []);

  // Rows stamped long ago drop out of the state: an old cursor keeps only what the window can still read.
  const old = new Date(Date.now() - 3 * LATE_COMMIT_WINDOW_MS).toISOString();
  await ctx.db.db.updateTable('package_dp_status').set({ updated_at: old }).where('package_id', '!=', ids[7] as string).execute();
  const aged = Object.fromEntries(Object.entries(changed.next.dps).map(([k, v]) => [k, k.startsWith(ids[7] as string) ? v : `${old}${v.slice(v.indexOf(' '))}`]));
  const pruned = await collectReport(ctx, { ...changed.next, dps: aged, dpCursor: new Date().toISOString() });
  assert.deepEqual(Object.keys(pruned.next.dps).sort(), names.map((n) => `${ids[7]}/PRI/${n}`).sort(), 'only the rows inside the window are remembered');
  assert.deepEqual(pruned.status?.dps ?? [], []);
});

test('statmgr: a row deleted (package taken off the DP) is forgotten at the next look, so the same state made again is reported again', async (t) => {
  const { ctx, ids, names } = await childSite(t, 1, 2);
  const key = { packageId: ids[0] as string, site: 'PRI', dp: names[0] as string };
  await setDpStatus(ctx.db, { ...key, state: 'installed', sourceVersion: 1, lastMessage: 'source version 1 installed' });
  const first = await collectReport(ctx, EMPTY_STATE);
  assert.ok(first.status?.dps.some((d) => d.dp === key.dp && d.state === 'installed'));
  await deleteDpStatus(ctx.db, key);
  const gone = await collectReport(ctx, first.next);
  assert.equal(gone.next.dps[`${key.packageId}/PRI/${key.dp}`], undefined, 'forgotten');
  assert.ok(gone.next.dps[`${key.packageId}/PRI/${names[1] as string}`] !== undefined, 'the other DP is still remembered');
  await setDpStatus(ctx.db, { ...key, state: 'installed', sourceVersion: 1, lastMessage: 'source version 1 installed' });
  const again = await collectReport(ctx, gone.next);
  assert.deepEqual(again.status?.dps.map((d) => [d.dp, d.state, d.sourceVersion]), [[key.dp, 'installed', 1]]);
  assert.deepEqual((await collectReport(ctx, again.next)).status?.dps ?? [], [], 'and only once');
});

test('statmgr: a withdrawal and a definition applied back to back leave the DP as it was, and its row goes up again for a parent that forgot its copy', async (t) => {
  const { ctx, ids, names } = await childSite(t, 1, 1);
  const key = { packageId: ids[0] as string, site: 'PRI', dp: names[0] as string };
  await setDpStatus(ctx.db, { ...key, state: 'installed', sourceVersion: 1, lastMessage: 'source version 1 installed' });
  const first = await collectReport(ctx, EMPTY_STATE);
  assert.ok(first.status?.dps.some((d) => d.dp === key.dp && d.state === 'installed'));
  // The parent undistributed the DP (and forgot its row), then distributed it again: both bundles arrive before
  // this site's Distribution Manager looks, so the DP keeps the package and its row would not change.
  await withdrawReceivedPackage(ctx.db, { id: key.packageId, sourceVersion: 1 }, fromParent());
  const def = {
    id: key.packageId,
    name: 'package 1',
    version: '1',
    sourcePath: '/src',
    sourceVersion: 1,
    priority: 'medium' as const,
    programs: [],
    manifest: MANIFEST,
    targets: [{ site: 'PRI', dp: key.dp }],
    dps: [],
    sites: [],
  };
  await storeReceivedPackage(ctx.db, def, fromParent());
  const again = await collectReport(ctx, first.next);
  assert.deepEqual(again.status?.dps.map((d) => [d.dp, d.state, d.sourceVersion]), [[key.dp, 'installed', 1]], 'the row goes up again');
  assert.deepEqual((await collectReport(ctx, again.next)).status?.dps ?? [], [], 'once');
  // A definition that leaves the target where it was changes nothing.
  await storeReceivedPackage(ctx.db, def, fromParent());
  assert.deepEqual((await collectReport(ctx, again.next)).status?.dps ?? [], []);
});

test('statmgr: a row stamped before the cursor but committed after the last look (a late commit) is still reported; one older than the window is the documented limit', async (t) => {
  const { ctx, ids, names } = await childSite(t, 3, 1);
  const first = await collectReport(ctx, EMPTY_STATE);
  const cursor = first.next.dpCursor as string;
  // A transaction that stamped its row a minute before the newest row seen, committing only now.
  const late = new Date(Date.parse(cursor) - 60_000).toISOString();
  await ctx.db.db.updateTable('package_dp_status').set({ state: 'installed', source_version: 1, updated_at: late }).where('package_id', '=', ids[1] as string).execute();
  const r = await collectReport(ctx, first.next);
  assert.deepEqual(r.status?.dps.map((d) => [d.packageId, d.state]), [[ids[1], 'installed']]);
  assert.equal(r.next.dpCursor, cursor, 'the cursor never goes back');

  const tooLate = new Date(Date.parse(cursor) - 2 * LATE_COMMIT_WINDOW_MS).toISOString();
  await ctx.db.db.updateTable('package_dp_status').set({ state: 'failed', updated_at: tooLate }).where('package_id', '=', ids[2] as string).execute();
  assert.deepEqual((await collectReport(ctx, r.next)).status?.dps ?? [], []);

  // A cursor from a clock that has since gone back: everything is read again (and reported where it differs).
  const ahead: ReportState = { ...r.next, dpCursor: new Date(Date.now() + 3600_000).toISOString() };
  const reread = await collectReport(ctx, ahead);
  assert.deepEqual(reread.status?.dps.map((d) => [d.packageId, d.dp, d.state]), [[ids[2], names[0], 'failed']]);
});

test('statmgr: a state file from before the cursor (fingerprints without times) reads everything once and reports nothing already reported', async (t) => {
  const { ctx } = await childSite(t, 5, 2);
  const first = await collectReport(ctx, EMPTY_STATE);
  const legacy: ReportState = {
    ...first.next,
    dpCursor: undefined,
    dps: Object.fromEntries(Object.entries(first.next.dps).map(([k, v]) => [k, v.slice(v.indexOf(' ') + 1)])),
  };
  delete legacy.dpCursor;
  const r = await collectReport(ctx, legacy);
  assert.deepEqual(r.status?.dps ?? [], []);
  assert.ok(Object.values(r.next.dps).every((v) => / /.test(v)));
});

test('statmgr: a status message whose id was taken before a later one but committed after it (a late commit) is still reported, once; gaps are bounded and expire', async (t) => {
  const { ctx, ids } = await childSite(t, 1, 1);
  const message = (id: number, text: string) => ({ id, time: new Date().toISOString(), severity: 'info', component: 'distmgr', site_code: 'PRI', package_id: ids[0] as string, text });
  await ctx.db.db.insertInto('status_messages').values([message(1, 'one'), message(2, 'two'), message(4, 'four')]).execute();
  const first = await collectReport(ctx, EMPTY_STATE);
  assert.deepEqual(first.status?.messages.map((m) => m.text), ['one', 'two', 'four']);
  assert.equal(first.next.messageId, 4);
  assert.deepEqual(Object.keys(first.next.messageGaps ?? {}), ['3']);

  // Id 3 commits now.
  await ctx.db.db.insertInto('status_messages').values([message(3, 'three'), message(5, 'five')]).execute();
  const second = await collectReport(ctx, first.next);
  assert.deepEqual(second.status?.messages.map((m) => m.text), ['three', 'five']);
  assert.deepEqual(second.next.messageGaps, {});
  const third = await collectReport(ctx, second.next);
  assert.deepEqual(third.status?.messages ?? [], [], 'nothing twice');

  // A jump of the sequence: only the newest ids below it are remembered; a gap older than the window is forgotten.
  await ctx.db.db.insertInto('status_messages').values([message(5000, 'far')]).execute();
  const jump = await collectReport(ctx, third.next);
  const open = Object.keys(jump.next.messageGaps ?? {}).map(Number);
  assert.equal(open.length, 200);
  assert.equal(Math.min(...open), 4800);
  const old = new Date(Date.now() - 2 * LATE_COMMIT_WINDOW_MS).toISOString();
  const expired = await collectReport(ctx, { ...jump.next, messageGaps: Object.fromEntries(open.map((id) => [String(id), old])) });
  assert.deepEqual(expired.next.messageGaps, {});
});

test('statmgr: holdings (received versions whose manifest the library holds) are looked up again only when the library\'s manifests or the received versions change', async (t) => {
  const { ctx, ids } = await childSite(t, 2, 1);
  const cache: HoldingsCache = {};
  const first = await collectReport(ctx, EMPTY_STATE, cache);
  assert.deepEqual(first.status?.holdings, [], 'nothing held yet');
  const key = cache.key;
  const quiet = await collectReport(ctx, first.next, cache);
  assert.equal(quiet.status, undefined, 'nothing changed: no report');
  assert.equal(cache.key, key);

  // The library gains the manifest both packages name (as a despooled bundle would leave it).
  await openLibrary(ctx.paths.library, { create: true });
  const manifests = join(ctx.paths.library, 'manifests');
  await writeFile(join(manifests, `${MANIFEST}.zst`), 'frame');
  const gained = await collectReport(ctx, quiet.next, cache);
  assert.deepEqual(gained.status?.holdings.map((h) => h.packageId), ids);
  assert.notEqual(cache.key, key);

  await rm(join(manifests, `${MANIFEST}.zst`));
  const lost = await collectReport(ctx, gained.next, cache);
  assert.deepEqual(lost.status?.holdings, []);
});

test('statmgr: versions wanted whole go up once, with the report; none, no field', async (t) => {
  const { ctx, ids } = await childSite(t, 2, 1);
  const first = await collectReport(ctx, EMPTY_STATE);
  assert.equal(first.status?.wants, undefined, 'nothing wanted: no field (a parent of an older build reads the report)');
  const since = new Date().toISOString();
  await recordWanted(ctx.db, { packageId: ids[1] as string, sourceVersion: 2, manifest: 'b'.repeat(64), since });
  const wanted = await collectReport(ctx, first.next);
  assert.deepEqual(wanted.status?.wants, [{ packageId: ids[1], sourceVersion: 2, manifest: 'b'.repeat(64), since }]);
  assert.equal((await collectReport(ctx, wanted.next)).status, undefined, 'the same want is not reported twice');
  await clearWanted(ctx.db, ids[1] as string, 2);
  const cleared = await collectReport(ctx, wanted.next);
  assert.ok(cleared.status !== undefined && cleared.status.wants === undefined, 'a report tells the want is gone');
});

test('statmgr: a DP removed at this site or below is named once in the next site definitions; an older state (no DPs recorded) names none', async (t) => {
  const { ctx } = await childSite(t, 0, 3);
  await upsertSite(ctx.db, { code: 'SEC', name: 'Secondary', parentCode: 'PRI', publicKey: null, url: null });
  await addDp(ctx.db, { site: 'SEC', name: 'dp1', path: '/srv/sec' });
  const first = await collectReport(ctx, EMPTY_STATE);
  assert.deepEqual(first.site?.dps.map((d) => `${d.site}/${d.name}`), ['PRI/dp1', 'PRI/dp2', 'PRI/dp3', 'SEC/dp1']);
  assert.equal(first.site?.removed, undefined, 'nothing removed yet: no field');
  assert.deepEqual(first.next.reportedDps, ['PRI/dp1', 'PRI/dp2', 'PRI/dp3', 'SEC/dp1']);

  await removeDp(ctx.db, { site: 'PRI', name: 'dp2' });
  await removeDp(ctx.db, { site: 'SEC', name: 'dp1' }, { statusRows: 'forget' });
  const second = await collectReport(ctx, first.next);
  assert.deepEqual(second.site?.dps.map((d) => `${d.site}/${d.name}`), ['PRI/dp1', 'PRI/dp3']);
  assert.deepEqual(second.site?.removed, [{ site: 'PRI', name: 'dp2' }, { site: 'SEC', name: 'dp1' }]);
  assert.equal((await collectReport(ctx, second.next)).site, undefined, 'reported once');

  // A state written by an older build has no DP list: a removal since then cannot be told, and none is named.
  await removeDp(ctx.db, { site: 'PRI', name: 'dp3' });
  const older = await collectReport(ctx, { ...second.next, reportedDps: undefined });
  assert.deepEqual(older.site?.dps.map((d) => `${d.site}/${d.name}`), ['PRI/dp1']);
  assert.equal(older.site?.removed, undefined);
});
