import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { applyStatus } from '../../src/components/despooler/reports.js';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { planPackage } from '../../src/components/scheduler/package-bundle.js';
import { ingestTree } from '../../src/content/ingest.js';
import { addDp, createPackage, listStatusMessages, setPackageManifest, setTargets } from '../../src/db/index.js';
import { SEND_TO_REPEAT, getHolding, getSent, recordSent, setHolding, upsertSite } from '../../src/db/hierarchy.js';
import { bundleHeaderSchema } from '../../src/formats/bundle-header.js';
import { newSite, openContext } from '../helpers/site.js';

const M1 = '1'.repeat(64);

test('a child that wants a version whole: the parent forgets its holding, marks its last send to be repeated and asks Replication Manager for that child alone, once per want; unknown packages and versions newer than held are ignored', async (t) => {
  const site = await newSite(t, 'CEN');
  const ctx = await openContext(site);
  const log = ctx.logger('despool');
  await upsertSite(ctx.db, { code: 'PRI', name: 'Primary', parentCode: 'CEN', publicKey: null, url: null });
  const pkg = await createPackage(ctx.db, { name: 'Tools', sourcePath: '/srv/tools' });
  await setHolding(ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, manifest: M1 });
  const sentAt = new Date(Date.now() - 60_000).toISOString();
  await recordSent(ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, definition: '2'.repeat(64), sendId: 'P-x', bytes: 10, sentAt });

  const header = (wants: unknown[]) =>
    bundleHeaderSchema.parse({
      format: 1,
      id: `S-PRI-${Math.random().toString(36).slice(2, 8)}`,
      from: 'PRI',
      to: 'CEN',
      created: new Date().toISOString(),
      kind: 'status',
      status: { sites: [], dps: [], holdings: [], messages: [], wants },
    }) as Extract<ReturnType<typeof bundleHeaderSchema.parse>, { kind: 'status' }>;
  const since = new Date().toISOString();
  await applyStatus(
    ctx,
    log,
    header([
      // A version newer than this site holds: not ours to send (yet).
      { packageId: pkg.id, sourceVersion: 9, manifest: M1, since },
      { packageId: 'CEN0FFFF', sourceVersion: 1, manifest: M1, since },
      { packageId: pkg.id, sourceVersion: 1, manifest: M1, since },
    ]),
  );
  assert.equal(await getHolding(ctx.db, 'PRI', pkg.id), undefined, 'the holding PRI no longer has is forgotten');
  assert.equal((await getSent(ctx.db, 'PRI', pkg.id))?.definition, SEND_TO_REPEAT, 'the last send no longer counts: the next one is planned afresh');
  const outbound = ctx.paths.replmgrOutbound[pkg.priority];
  const names = await readdir(outbound);
  assert.deepEqual(names, [`${pkg.id}-PRI.RPT`]);
  const request = JSON.parse(await readFile(`${outbound}/${names[0]}`, 'utf8')) as { kind: string; package: string; sites: string[] };
  assert.deepEqual([request.kind, request.package, request.sites], ['package', pkg.id, ['PRI']]);
  const warnings = await listStatusMessages(ctx.db, { packageId: pkg.id, minSeverity: 'warning' });
  assert.equal(warnings.length, 1);
  assert.match(warnings[0]?.text ?? '', /PRI cannot build source version 1/);

  // The whole version went out after the want: the same want, reported again, changes nothing.
  await recordSent(ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, definition: '2'.repeat(64), sendId: 'P-y', bytes: 1000, sentAt: new Date(Date.now() + 1000).toISOString() });
  await applyStatus(ctx, log, header([{ packageId: pkg.id, sourceVersion: 1, manifest: M1, since }]));
  assert.equal((await getSent(ctx.db, 'PRI', pkg.id))?.sendId, 'P-y');
  assert.equal((await listStatusMessages(ctx.db, { packageId: pkg.id, minSeverity: 'warning' })).length, 1);
});

test('a child that wants a version whole and is then taken off: the repeated send becomes a withdrawal (the child still has the package on its DPs); still targeted, it is the whole version', async (t) => {
  const site = await newSite(t, 'CEN');
  const ctx = await openContext(site);
  const log = ctx.logger('despool');
  await upsertSite(ctx.db, { code: 'PRI', name: 'Primary', parentCode: 'CEN', publicKey: null, url: null });
  await addDp(ctx.db, { site: 'PRI', name: 'dp1', path: join(site.dir, 'pri-dp1') });
  const src = join(site.dir, 'src');
  await mkdir(src, { recursive: true });
  await writeFile(join(src, 'setup.exe'), 'version one');
  const pkg = await createPackage(ctx.db, { name: 'Tools', sourcePath: src });
  const ingested = await ingestTree(ctx.paths.library, src);
  await setPackageManifest(ctx.db, pkg.id, ingested.manifest);
  await setTargets(ctx.db, pkg.id, [{ site: 'PRI', dp: 'dp1' }]);
  await setHolding(ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, manifest: M1 });
  await recordSent(ctx.db, { site: 'PRI', packageId: pkg.id, sourceVersion: 1, definition: '2'.repeat(64), sendId: 'P-x', bytes: 10, sentAt: new Date(Date.now() - 60_000).toISOString() });
  const since = new Date().toISOString();
  await applyStatus(
    ctx,
    log,
    bundleHeaderSchema.parse({
      format: 1,
      id: 'S-PRI-want01',
      from: 'PRI',
      to: 'CEN',
      created: since,
      kind: 'status',
      status: { sites: [], dps: [], holdings: [], messages: [], wants: [{ packageId: pkg.id, sourceVersion: 1, manifest: M1, since }] },
    }) as Extract<ReturnType<typeof bundleHeaderSchema.parse>, { kind: 'status' }>,
  );
  const job = { format: 1, id: 'P-CEN-0001', kind: 'package', to: 'PRI', priority: 'medium', package: pkg.id, sourceVersion: 1, created: since } as const;
  const whole = await planPackage(ctx, job);
  assert.ok(!('skip' in whole), JSON.stringify(whole));
  assert.deepEqual([whole.base, whole.held, whole.withdrawal], [null, false, undefined], 'still targeted: the whole version');

  await setTargets(ctx.db, pkg.id, []);
  const withdrawal = await planPackage(ctx, job);
  assert.ok(!('skip' in withdrawal), `not skipped: ${JSON.stringify(withdrawal)}`);
  assert.equal(withdrawal.withdrawal, true);
  assert.deepEqual(withdrawal.definition.targets, []);
});
