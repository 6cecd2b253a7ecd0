import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sitePaths, type SitePaths } from '../../src/site/layout.js';
import { collectingSiteLibrary, readingSiteLibraryForBackup, usingSiteLibrary } from '../../src/site/library.js';

async function paths(t: { after: (fn: () => Promise<void>) => void }): Promise<SitePaths> {
  const root = await mkdtemp(join(tmpdir(), 'sitecast-library-'));
  t.after(() => rm(root, { recursive: true, force: true }));
  const p = sitePaths(root);
  await mkdir(p.library, { recursive: true });
  return p;
}

function gate(): { open: () => void; opened: Promise<void> } {
  let open = (): void => undefined;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const tick = (ms = 50): Promise<void> => new Promise((r) => setTimeout(r, ms));

test('a collection steps back while a backup reads the library, and runs once the backup is done', async (t) => {
  const p = await paths(t);
  const backupDone = gate();
  let collected = 0;
  const backup = readingSiteLibraryForBackup(p, () => backupDone.opened.then(() => 'backed up'));
  await tick();
  assert.equal(await collectingSiteLibrary(p, async () => ++collected), 'backup-running');
  assert.equal(collected, 0, 'nothing collected while the backup reads');
  backupDone.open();
  assert.equal(await backup, 'backed up');
  assert.deepEqual(await readdir(p.libraryMarkers), [], 'the backup removed its marker');
  assert.equal(await collectingSiteLibrary(p, async () => ++collected), 1);
  assert.deepEqual(await readdir(p.libraryMarkers), [], 'the collection removed its marker');
});

test('a backup waits for a collection that runs, then reads', async (t) => {
  const p = await paths(t);
  const collectDone = gate();
  const order: string[] = [];
  const collecting = collectingSiteLibrary(p, async () => {
    order.push('collect start');
    await collectDone.opened;
    order.push('collect end');
  });
  await tick();
  const backup = readingSiteLibraryForBackup(p, async () => void order.push('backup reads'), { pollMs: 10 });
  await tick(100);
  assert.deepEqual(order, ['collect start'], 'the backup waits');
  collectDone.open();
  await Promise.all([collecting, backup]);
  assert.deepEqual(order, ['collect start', 'collect end', 'backup reads']);
});

test('a collection waits for the users of the library in this process, and users that come while it runs wait for it', async (t) => {
  const p = await paths(t);
  const useDone = gate();
  const order: string[] = [];
  const use = usingSiteLibrary(p, async () => {
    order.push('use');
    await useDone.opened;
    order.push('use end');
  });
  const collecting = collectingSiteLibrary(p, async () => {
    order.push('collect');
    await tick();
    order.push('collect end');
  });
  await tick();
  assert.deepEqual(order, ['use']);
  useDone.open();
  await use;
  await tick(10);
  const later = usingSiteLibrary(p, async () => void order.push('later use'));
  await Promise.all([collecting, later]);
  assert.deepEqual(order, ['use', 'use end', 'collect', 'collect end', 'later use']);
});

test('markers of a process that is gone are removed and block nothing; a live one of another host makes a backup give up with a clear error', async (t) => {
  const p = await paths(t);
  await mkdir(p.libraryMarkers, { recursive: true });
  const ended = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  const gonePid = Number(ended.stdout);
  const gone = JSON.stringify({ pid: gonePid, host: (await import('node:os')).hostname(), startedAt: new Date().toISOString() });
  await writeFile(join(p.libraryMarkers, `backup-${gonePid}-dead.json`), gone);
  await writeFile(join(p.libraryMarkers, `collect-${gonePid}-dead.json`), gone);
  assert.equal(await collectingSiteLibrary(p, async () => 'collected'), 'collected');
  assert.equal(await readingSiteLibraryForBackup(p, async () => 'read'), 'read');
  assert.deepEqual(await readdir(p.libraryMarkers), []);

  await writeFile(join(p.libraryMarkers, 'collect-4242-other.json'), JSON.stringify({ pid: 4242, host: 'another-host.example', startedAt: new Date().toISOString() }));
  let read = false;
  await assert.rejects(
    readingSiteLibraryForBackup(p, async () => void (read = true), { waitMs: 200, pollMs: 20 }),
    (err: Error & { code?: string }) => {
      assert.equal(err.code, 'SITECAST_E_BUSY');
      assert.match(err.message, /being collected \(process 4242\)/);
      return true;
    },
  );
  assert.equal(read, false);
  assert.deepEqual(await readdir(p.libraryMarkers), ['collect-4242-other.json'], 'the backup took its own marker away');
});

test('users that let go of the library in the same moment: a user that comes while the collection then runs still waits for it', async (t) => {
  const p = await paths(t);
  const done = gate();
  const order: string[] = [];
  // Three jobs that end on one event (say, one database answer), each with a little more or less to do after it.
  const users = [0, 1, 0].map((steps, i) =>
    usingSiteLibrary(p, async () => {
      await done.opened;
      for (let s = 0; s < steps; s++) await Promise.resolve();
      order.push(`use ${i} end`);
    }),
  );
  const collecting = collectingSiteLibrary(p, async () => {
    order.push('collect');
    await tick();
    order.push('collect end');
  });
  await tick(10);
  done.open();
  await Promise.all(users);
  await tick(10);
  const later = usingSiteLibrary(p, async () => void order.push('later use'));
  await Promise.all([collecting, later]);
  assert.deepEqual(order.slice(3), ['collect', 'collect end', 'later use']);
});

test('a marker that cannot be read counts as live: a collection steps back for such a backup marker, a backup waits for such a collect marker', async (t) => {
  const p = await paths(t);
  // A folder under a marker's name: reading it fails as another account's file would (tests may run as root).
  await mkdir(join(p.libraryMarkers, 'backup-4343-unreadable.json'), { recursive: true });
  let collected = false;
  assert.equal(await collectingSiteLibrary(p, async () => void (collected = true)), 'backup-running');
  assert.equal(collected, false);
  await rm(join(p.libraryMarkers, 'backup-4343-unreadable.json'), { recursive: true });
  await mkdir(join(p.libraryMarkers, 'collect-4444-unreadable.json'));
  await assert.rejects(readingSiteLibraryForBackup(p, async () => 'read', { waitMs: 100, pollMs: 20 }), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_BUSY');
    assert.match(err.message, /process 4444/);
    return true;
  });
});
