import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSitecastError, type ErrorCode } from '../../src/errors.js';
import { MIGRATIONS } from '../../src/db/index.js';
import { backupSite } from '../../src/site/backup/backup.js';
import { restoreSite } from '../../src/site/backup/restore.js';
import { rewriteBackup, siblings, siteWithPackage } from '../helpers/backup.js';

const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

/** Runs a restore that must fail with `code` and a message matching `message`, and leave the folder holding the root as it was. */
async function refused(file: string, root: string, code: ErrorCode, message: RegExp, database?: string): Promise<void> {
  const before = await siblings(root);
  await assert.rejects(restoreSite(file, root, database === undefined ? {} : { database }), (err: unknown) => {
    assert.ok(isSitecastError(err, code), `expected ${code}, got ${String(err)}`);
    assert.match(err.message, message);
    return true;
  });
  assert.deepEqual(await siblings(root), before, 'nothing was left beside the root');
}

test('restore refuses bad backups and busy targets with a named error and leaves nothing behind', async (t) => {
  const s = await siteWithPackage(t);
  await s.handle.close();
  // Made while the site is stopped, in-process.
  const good = join(s.site.dir, 'good.backup');
  const made = await backupSite(s.site.root, good, { sitecast: 'test' });
  assert.equal(made.schemaVersion, MIGRATIONS.length);
  const bytes = await readFile(good);
  const work = join(s.site.dir, 'work');
  await mkdir(work);
  const root = join(work, 'restored');

  await t.test('truncated', async () => {
    const cut = join(s.site.dir, 'cut.backup');
    await writeFile(cut, bytes.subarray(0, Math.floor(bytes.length / 2)));
    await refused(cut, root, 'SITECAST_E_BAD_BACKUP', /cut short|checksum/);
    await writeFile(cut, bytes.subarray(0, bytes.length - 1));
    await refused(cut, root, 'SITECAST_E_BAD_BACKUP', /cut short|end marker/);
    // The command: exit 1, the code in --json, nothing created.
    const failed = await promisify(execFile)(process.execPath, [CLI, 'site', 'restore', cut, root, '--json']).then(
      () => assert.fail('the restore succeeded'),
      (err: { code: number; stdout: string }) => err,
    );
    assert.equal(failed.code, 1);
    assert.equal((JSON.parse(failed.stdout) as { error: { code: string } }).error.code, 'SITECAST_E_BAD_BACKUP');
    assert.ok(!(await readdir(work)).includes('restored'));
  });

  await t.test('one flipped byte', async () => {
    const flipped = join(s.site.dir, 'flipped.backup');
    const copy = Buffer.from(bytes);
    const at = Math.floor(copy.length * 0.7);
    copy[at] = (copy[at] ?? 0) ^ 0x01;
    await writeFile(flipped, copy);
    await refused(flipped, root, 'SITECAST_E_BAD_BACKUP', /checksum does not match/);
  });

  await t.test('not a backup', async () => {
    const other = join(s.site.dir, 'notes.txt');
    await writeFile(other, 'shopping list\n');
    await refused(other, root, 'SITECAST_E_BAD_BACKUP', /not a Sitecast backup/);
    await refused(join(s.site.dir, 'cen'), root, 'SITECAST_E_BAD_BACKUP', /not a file/);
    await refused(join(s.site.dir, 'absent.backup'), root, 'SITECAST_E_NOT_FOUND', /no backup file/);
  });

  await t.test('target root not empty: its files untouched', async () => {
    const busy = join(work, 'busy');
    await mkdir(busy);
    await writeFile(join(busy, 'keep.txt'), 'mine\n');
    await refused(good, busy, 'SITECAST_E_SITE_EXISTS', /not empty/);
    assert.deepEqual(await readdir(busy), ['keep.txt']);
    assert.equal(await readFile(join(busy, 'keep.txt'), 'utf8'), 'mine\n');
  });

  await t.test('backup from a newer schema', async () => {
    const newer = join(s.site.dir, 'newer.backup');
    await rewriteBackup(good, newer, (f) => Buffer.from(f.toString('latin1').replace(`"schemaVersion":${MIGRATIONS.length}`, '"schemaVersion":99'), 'latin1'));
    await refused(newer, root, 'SITECAST_E_DB_TOO_NEW', new RegExp(`schema version 99 .*knows versions up to ${MIGRATIONS.length}`));
  });

  await t.test('a file path out of the site root, with a matching checksum', async () => {
    const escape = join(s.site.dir, 'escape.backup');
    await rewriteBackup(good, escape, (f) => Buffer.from(f.toString('latin1').replace('"path":"admin.token"', '"path":"../evil.tok"'), 'latin1'));
    await refused(escape, root, 'SITECAST_E_BAD_BACKUP', /outside the site root/);
    assert.ok(!(await readdir(s.site.dir)).includes('evil.tok'));
  });

  await t.test('a damaged chunk with a matching checksum: found by the library check after everything was written, and removed again', async () => {
    const damaged = join(s.site.dir, 'damaged.backup');
    await rewriteBackup(good, damaged, (f) => {
      const copy = Buffer.from(f);
      const header = copy.indexOf('"path":"library/chunks/');
      const body = copy.indexOf(0x0a, header) + 1;
      copy[body + 20] = (copy[body + 20] ?? 0) ^ 0xff;
      return copy;
    });
    await refused(damaged, root, 'SITECAST_E_BAD_BACKUP', /content library is incomplete: chunk [0-9a-f]{64}/);
  });

  await t.test('unreachable PostgreSQL: the error names the DSN without its password', async () => {
    const before = await siblings(root);
    await assert.rejects(restoreSite(good, root, { database: 'postgres://sitecast:s3cretpw@127.0.0.1:1/sitecast' }), (err: unknown) => {
      assert.ok(isSitecastError(err, 'SITECAST_E_DB'), String(err));
      assert.match(err.message, /127\.0\.0\.1:1\/sitecast/);
      assert.doesNotMatch(err.message, /s3cretpw/);
      return true;
    });
    assert.deepEqual(await siblings(root), before);
  });

  await t.test('and the good backup still restores', async () => {
    const r = await restoreSite(good, root);
    assert.equal(r.site, 'CEN');
    assert.deepEqual(r.tables, made.tables);
  });
});
