import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getPackageStatus, openSiteDb, updatePackage, type SiteDb } from '../../src/db/index.js';
import type { SiteContext } from '../../src/site/context.js';
import { describeTree, makeTree, textBytes } from '../helpers/fixtures.js';
import { distribute, sharePathOf } from '../helpers/distribution.js';
import { eventually, newSite } from '../helpers/site.js';

const MAIN = new URL('../../src/site/main.js', import.meta.url).pathname;

function launch(root: string): ChildProcess {
  return spawn(process.execPath, [MAIN, root], { stdio: ['ignore', 'ignore', 'inherit'] });
}

async function waitUrl(root: string): Promise<string> {
  return eventually('site.url', async () => (await readFile(join(root, 'site.url'), 'utf8').catch(() => undefined))?.trim(), 15_000);
}

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

test('kill -9 during the distribution of several packages, then a restart: every DP converges, no share is ever seen half-written; SIGTERM exits 0', async (t) => {
  const site = await newSite(t);
  const { root, dir } = site;
  const sources = ['a', 'b', 'c'].map((n) => join(dir, `src-${n}`));
  for (const [i, s] of sources.entries()) await makeTree(s, `crash-${i}`);
  const valid = new Map<string, Set<string>>();
  const remember = async (src: string): Promise<void> => {
    for (const item of await describeTree(src)) if (item.hash !== undefined) valid.set(`${src}|${item.path}`, new Set([...(valid.get(`${src}|${item.path}`) ?? []), item.hash]));
  };
  for (const s of sources) await remember(s);

  let child = launch(root);
  site.defer(async () => {
    child.kill('SIGKILL');
    await exited(child);
  });
  await waitUrl(root);
  const db: SiteDb = await openSiteDb({ kind: 'sqlite', path: join(root, 'site.db') });
  site.defer(() => db.close());
  const ctx = { db, siteCode: 'CEN', wake: () => undefined } as unknown as SiteContext;
  const ids: string[] = [];
  for (const s of sources) ids.push((await distribute(ctx, dir, s, ['DP1', 'DP2'])).id);

  // Readers: whatever a share shows, on either DP, must be a whole file of some version
  // (every file of the tree; the 5.5 MB one every tenth pass).
  let stop = false;
  const problems: string[] = [];
  let reads = 0;
  const files = (await describeTree(sources[0] as string)).filter((item) => item.hash !== undefined).map((item) => item.path);
  const reader = (async () => {
    for (let pass = 0; !stop; pass++) {
      for (const [i, id] of ids.entries()) {
        for (const dp of ['DP1', 'DP2']) {
          const share = sharePathOf(dir, dp, id);
          const exists = await stat(share).then(() => true, () => false);
          if (!exists) continue;
          for (const path of files) {
            if (path === 'lib/big.bin' && pass % 10 !== 0) continue;
            try {
              const h = sha(await readFile(join(share, path)));
              if (!(valid.get(`${sources[i]}|${path}`)?.has(h) ?? false)) problems.push(`${id}/${path} on ${dp} is not a whole version`);
              reads += 1;
            } catch (err) {
              problems.push(`${id}/${path} on ${dp}: ${String(err)}`);
            }
          }
        }
      }
      await new Promise((r) => setTimeout(r, 5));
    }
  })();

  // Kill at several points of the distribution, restarting each time.
  // A kill counts as landing mid-distribution when some DP of some package did not yet hold its version.
  let midJob = 0;
  const unfinished = async (): Promise<boolean> => {
    for (const id of ids) {
      const rows = await getPackageStatus(db, id);
      if (rows.length < 2 || rows.some((r) => r.state !== 'installed')) return true;
    }
    return false;
  };
  for (const [round, delay] of [120, 350, 80, 600].entries()) {
    await new Promise((r) => setTimeout(r, delay));
    child.kill('SIGKILL');
    await exited(child);
    if (await unfinished()) midJob += 1;
    if (round === 1) {
      // An update lands while the server is down.
      await writeFile(join(sources[0] as string, 'README.txt'), textBytes('crash update', 7000));
      await remember(sources[0] as string);
      await updatePackage(db, ids[0] as string, { refreshSource: true });
    }
    await rm(join(root, 'site.url'), { force: true });
    child = launch(root);
    await waitUrl(root);
  }

  const want = new Map(ids.map((id, i) => [id, i === 0 ? 2 : 1]));
  await eventually(
    'every DP installed at the current version',
    async () => {
      for (const id of ids) {
        const rows = await getPackageStatus(db, id);
        if (rows.length !== 2 || !rows.every((r) => r.state === 'installed' && r.sourceVersion === want.get(id))) return undefined;
      }
      return true;
    },
    60_000,
  );
  stop = true;
  await reader;
  assert.deepEqual(problems.slice(0, 5), []);
  assert.ok(reads > 0);
  t.diagnostic(`kills that landed mid-distribution: ${midJob} of 4; files read from shares meanwhile: ${reads}`);
  assert.ok(midJob >= 1, 'at least one kill landed while a distribution was unfinished');
  for (const [i, id] of ids.entries()) {
    for (const dp of ['DP1', 'DP2']) assert.deepEqual(await describeTree(sharePathOf(dir, dp, id)), await describeTree(sources[i] as string), `${id} on ${dp}`);
  }

  child.kill('SIGTERM');
  assert.equal(await exited(child), 0);
  await assert.rejects(stat(join(root, 'site.url')), { code: 'ENOENT' });
});
