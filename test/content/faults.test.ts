import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync, spawnSync } from 'node:child_process';
import { chmod, mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestTree } from '../../src/content/ingest.js';
import { listManifests, openLibrary } from '../../src/content/library.js';
import { verifyLibrary } from '../../src/content/verify.js';
import { makeTree, randomBytesFrom, tempDir } from '../helpers/fixtures.js';

const isRoot = process.getuid?.() === 0;
const bin = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

/** Every file under chunks/ must be a complete chunk: no temporary names, and every one verifies. */
async function assertNoPartialChunks(libDir: string): Promise<void> {
  const prefixes = await readdir(join(libDir, 'chunks'));
  for (const p of prefixes) for (const name of await readdir(join(libDir, 'chunks', p))) assert.match(name, /^[0-9a-f]{64}$/);
  const r = await verifyLibrary(libDir);
  assert.deepEqual(r.bad.filter((b) => b.problem === 'corrupt'), []);
}

test('ENOSPC while ingesting: a clear error, no manifest, no partial chunk, earlier versions intact', { skip: !isRoot && 'needs root to mount a small tmpfs' }, async (t) => {
  const dir = await tempDir(t);
  const mnt = join(dir, 'small');
  await mkdir(mnt);
  const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=2m', 'tmpfs', mnt]);
  if (mounted.status !== 0) {
    t.skip('cannot mount tmpfs here');
    return;
  }
  try {
    await enospcCase(dir, mnt);
  } finally {
    spawnSync('umount', ['-l', mnt]);
  }
});

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
