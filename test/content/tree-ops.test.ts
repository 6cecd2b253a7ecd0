import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, readFile, readlink, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ChunkPool } from '../../src/content/pool.js';
import { tempDir } from '../helpers/fixtures.js';

test('tree operations run in a worker, in order: folders, hard links only to a usable copy, links, modes; a failure names the path', async (t) => {
  const dir = await tempDir(t, 'sitecast-tree-ops');
  const pool = new ChunkPool(dir);
  const old = join(dir, 'old.bin');
  await writeFile(old, 'twelve bytes');
  const linked = await pool.treeOps([
    { op: 'mkdir', path: join(dir, 'a'), name: 'a', mode: 0o700 },
    { op: 'mkdir', path: join(dir, 'a', 'b'), name: 'a/b' },
    { op: 'linkIfSame', path: join(dir, 'a', 'same.bin'), name: 'a/same.bin', from: old, size: 12 },
    { op: 'linkIfSame', path: join(dir, 'a', 'resized.bin'), name: 'a/resized.bin', from: old, size: 13 },
    { op: 'linkIfSame', path: join(dir, 'a', 'gone.bin'), name: 'a/gone.bin', from: join(dir, 'nothing'), size: 12 },
    { op: 'symlink', path: join(dir, 'a', 'link'), name: 'a/link', target: 'same.bin' },
    { op: 'chmod', path: join(dir, 'a', 'b'), name: 'a/b', mode: 0o750 },
  ]);
  assert.deepEqual(linked, [true, false, false]);
  assert.equal((await stat(join(dir, 'a', 'same.bin'))).ino, (await stat(old)).ino, 'a hard link, not a copy');
  await assert.rejects(lstat(join(dir, 'a', 'resized.bin')), { code: 'ENOENT' });
  assert.equal(await readlink(join(dir, 'a', 'link')), 'same.bin');
  assert.equal(await readFile(join(dir, 'a', 'link'), 'utf8'), 'twelve bytes');
  assert.equal((await stat(join(dir, 'a', 'b'))).mode & 0o777, 0o750);
  assert.equal((await stat(join(dir, 'a'))).mode & 0o777, 0o700);

  await assert.rejects(pool.treeOps([{ op: 'mkdir', path: join(dir, 'a', 'b'), name: 'a/b' }]), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_IO');
    assert.match(err.message, /cannot create folder a\/b .*EEXIST/);
    return true;
  });
  await assert.rejects(pool.treeOps([{ op: 'symlink', path: join(dir, 'missing', 'l'), name: 'missing/l', target: 'x' }]), /cannot create link missing\/l/);
  await pool.close();
});
