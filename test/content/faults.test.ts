import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildDelta } from '../../src/content/delta.js';
import { ingestTree } from '../../src/content/ingest.js';
import { packManifest } from '../../src/content/pack.js';
import { listManifests, openLibrary } from '../../src/content/library.js';
import { verifyLibrary } from '../../src/content/verify.js';
import { makeTree, randomBytesFrom, tempDir } from '../helpers/fixtures.js';
import { mountSkip, mountTmpfs } from '../helpers/mounts.js';

const isRoot = process.getuid?.() === 0;
const bin = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

/** Every file under chunks/ must be a complete chunk: no temporary names, and every one verifies. */
async function assertNoPartialChunks(libDir: string): Promise<void> {
  const prefixes = await readdir(join(libDir, 'chunks'));
  for (const p of prefixes) for (const name of await readdir(join(libDir, 'chunks', p))) assert.match(name, /^[0-9a-f]{64}$/);
  const r = await verifyLibrary(libDir);
  assert.deepEqual(r.bad.filter((b) => b.problem === 'corrupt'), []);
}

/** Runs `body` with a small tmpfs at `<temporary folder>/small`, unmounted after. */
async function onSmallDisk(t: TestContext, size: string, body: (dir: string, mnt: string) => Promise<void>): Promise<void> {
  const dir = await tempDir(t);
  const mnt = join(dir, 'small');
  const unmount = await mountTmpfs(mnt, size);
  if (unmount === undefined) {
    t.skip('cannot mount tmpfs here');
    return;
  }
  try {
    await body(dir, mnt);
  } finally {
    unmount();
  }
}

test('ENOSPC while ingesting: a clear error, no manifest, no partial chunk, earlier versions intact', { skip: mountSkip() }, (t) => onSmallDisk(t, '2m', enospcCase));

/** Nothing but `keep` in the folder: no temporary file left, no archive under the target name. */
async function assertOnly(dir: string, keep: string[]): Promise<void> {
  assert.deepEqual((await readdir(dir)).sort(), keep.sort());
}

test('ENOSPC while writing an archive (pack) or a delta: an error, nothing under the target name, an earlier archive unchanged', { skip: mountSkip() }, (t) =>
  onSmallDisk(t, '1m', async (dir, mnt) => {
    const libDir = join(dir, 'lib');
    await mkdir(join(dir, 'small-src'));
    await writeFile(join(dir, 'small-src/a.txt'), 'small package');
    const small = await ingestTree(libDir, join(dir, 'small-src'));
    await packManifest(libDir, small.manifest, join(mnt, 'small.pkg'));
    const before = await readFile(join(mnt, 'small.pkg'));
    await mkdir(join(dir, 'v1'));
    await writeFile(join(dir, 'v1/blob'), randomBytesFrom('pack-enospc-1', 3 * 1024 * 1024));
    const v1 = await ingestTree(libDir, join(dir, 'v1'));
    await mkdir(join(dir, 'v2'));
    await writeFile(join(dir, 'v2/blob'), randomBytesFrom('pack-enospc-2', 3 * 1024 * 1024));
    const v2 = await ingestTree(libDir, join(dir, 'v2'));
    const isEnospc = (err: Error & { code?: string }): boolean => {
      assert.equal(err.code, 'SITECAST_E_IO');
      assert.match(err.message, /ENOSPC|no space/);
      return true;
    };
    await assert.rejects(packManifest(libDir, v1.manifest, join(mnt, 'v1.pkg')), isEnospc);
    await assertOnly(mnt, ['small.pkg']);
    await assert.rejects(buildDelta(libDir, v1.manifest, v2.manifest, join(mnt, 'v1-v2.delta')), isEnospc);
    await assertOnly(mnt, ['small.pkg']);
    assert.deepEqual(await readFile(join(mnt, 'small.pkg')), before);
  }),
);

async function enospcCase(dir: string, mnt: string): Promise<void> {
  const libDir = join(mnt, 'lib');
  await mkdir(join(dir, 'small-src'));
  await writeFile(join(dir, 'small-src/a.txt'), 'small package');
  const first = await ingestTree(libDir, join(dir, 'small-src'));
  await mkdir(join(dir, 'big'));
  await writeFile(join(dir, 'big/blob'), randomBytesFrom('enospc', 6 * 1024 * 1024));
  await assert.rejects(ingestTree(libDir, join(dir, 'big')), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_IO');
    assert.match(err.message, /ENOSPC/);
    return true;
  });
  assert.deepEqual(await listManifests(await openLibrary(libDir)), [first.manifest]);
  await assertNoPartialChunks(libDir);
}

test('EACCES on the library: a clear error from the CLI and nothing changed', { skip: !isRoot && 'uses setpriv to drop to an unprivileged user' }, async (t) => {
  const dir = await tempDir(t);
  await chmod(dir, 0o755);
  await makeTree(join(dir, 'src'));
  execFileSync('chmod', ['-R', 'a+rX', join(dir, 'src')]);
  const libDir = join(dir, 'lib');
  const first = await ingestTree(libDir, join(dir, 'src'));
  await mkdir(join(dir, 'src2'));
  await writeFile(join(dir, 'src2/new.bin'), randomBytesFrom('eacces', 200_000));
  execFileSync('chmod', ['-R', 'a+rX', join(dir, 'src2')]);
  const r = spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, bin, 'content', 'ingest', '--library', libDir, join(dir, 'src2'), '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 1, r.stderr);
  assert.match(r.stderr, /SITECAST_E_IO.*(EACCES|EPERM)/);
  const json = JSON.parse(r.stdout) as { error: { code: string; hint?: string } };
  assert.equal(json.error.code, 'SITECAST_E_IO');
  assert.match(json.error.hint ?? '', /permissions/);
  assert.deepEqual(await listManifests(await openLibrary(libDir)), [first.manifest]);
  await assertNoPartialChunks(libDir);
});
