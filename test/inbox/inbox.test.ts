import { test } from 'node:test';
import assert from 'node:assert/strict';
import { link, lstat, mkdtemp, mkdir, readdir, readFile, rm, unlink, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { SitecastError, isSitecastError } from '../../src/errors.js';
import { Inbox, badFileNames, dropFile, dropFiles, type InboxEntry, type InboxOptions } from '../../src/inbox/index.js';
import { holdForBad, placeInBad } from '../../src/inbox/bad.js';
import { removeIfUnchanged } from '../../src/inbox/claim.js';

async function tempDir(t: { after: (fn: () => Promise<void>) => void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-inbox-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

async function waitFor(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

async function exists(path: string): Promise<boolean> {
  return readFile(path).then(
    () => true,
    () => false,
  );
}

function open(t: { after: (fn: () => Promise<void>) => void }, options: InboxOptions): Inbox {
  const inbox = new Inbox({ onError: () => undefined, ...options });
  t.after(() => inbox.close());
  return inbox;
}

test('dropFile: a reader sees the whole file or nothing, and no temporary file is left', async (t) => {
  const dir = await tempDir(t);
  const size = 4 * 1024 * 1024;
  const seen: number[] = [];
  const inbox = open(t, {
    dir,
    concurrency: 4,
    rescanMs: 20,
    handler: async (file) => {
      seen.push((await readFile(file.path)).length);
    },
  });
  await inbox.start();
  const names = ['A.PKN', 'B.PKN', 'C.PKN', 'D.PKN', 'E.PKN'];
  await Promise.all(names.map((n) => dropFile(dir, n, Buffer.alloc(size, n))));
  await waitFor('all handled', () => seen.length === names.length);
  assert.deepEqual(seen, names.map(() => size));
  await waitFor('all deleted', async () => (await readdir(dir)).length === 1);
  assert.deepEqual(await readdir(dir), ['bad']);
});

test('dropFile refuses unsafe names with a named error and writes nothing', async (t) => {
  const dir = await tempDir(t);
  const bad = ['../escape', 'a/b', 'a\\b', '.hidden', 'a..b', '..', 'has space', 'semi;colon', '', 'x'.repeat(201), 'é.PKN'];
  for (const name of bad) {
    await assert.rejects(dropFile(dir, name, 'x'), (err: unknown) => isSitecastError(err, 'SITECAST_E_UNSAFE_NAME'), name);
  }
  assert.deepEqual(await readdir(dir), []);
  assert.deepEqual(await readdir(tmpdir()).then((l) => l.includes('escape')), false);
  await dropFile(dir, 'CEN0000A.PKN', '');
  assert.deepEqual(await readdir(dir), ['CEN0000A.PKN']);
});

test('a file-system event wakes the inbox without waiting for the rescan', async (t) => {
  const dir = await tempDir(t);
  const handled: string[] = [];
  const inbox = open(t, { dir, rescanMs: 60_000, handler: async (f) => void handled.push(f.name) });
  await inbox.start();
  const t0 = Date.now();
  await dropFile(dir, 'CEN00001.PKN', '');
  await waitFor('handled', () => handled.length === 1, 3000);
  assert.ok(Date.now() - t0 < 3000);
  await waitFor('deleted', async () => !(await exists(join(dir, 'CEN00001.PKN'))));
});

test('the rescan finds files whose events were missed, and files present before start', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'before.PKN'), 'b');
  const handled: string[] = [];
  const inbox = open(t, { dir, watch: false, rescanMs: 50, handler: async (f) => void handled.push(f.name) });
  await inbox.start();
  await waitFor('before handled', () => handled.includes('before.PKN'));
  await writeFile(join(dir, 'missed.PKN'), 'm');
  await waitFor('missed handled', () => handled.includes('missed.PKN'));
  await waitFor('both deleted', async () => (await readdir(dir)).length === 1);
});

test('temporary files, hidden files, sub-folders and files not accepted are left alone', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '.CEN00001.PKN.0a1b2c3d4e5f.tmp'), 'half');
  await mkdir(join(dir, 'outbound', 'high'), { recursive: true });
  await writeFile(join(dir, 'outbound', 'high', 'x.RPT'), 'r');
  await writeFile(join(dir, 'note.txt'), 'n');
  const handled: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 20,
    accept: (name) => name.endsWith('.PKN'),
    handler: async (f) => void handled.push(f.name),
  });
  await inbox.start();
  await dropFile(dir, 'CEN00002.PKN', '');
  await waitFor('handled', () => handled.length === 1);
  await waitFor('deleted', async () => !(await readdir(dir)).includes('CEN00002.PKN'));
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(handled, ['CEN00002.PKN']);
  assert.deepEqual((await readdir(dir)).sort(), ['.CEN00001.PKN.0a1b2c3d4e5f.tmp', 'bad', 'note.txt', 'outbound']);
});

test('a transient failure leaves the file and retries it with back-off; the work is repeated', async (t) => {
  const dir = await tempDir(t);
  let calls = 0;
  const errors: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 60_000,
    retry: { initialMs: 30, maxMs: 100 },
    onError: (_err, name) => void errors.push(name ?? '?'),
    handler: async (f) => {
      calls += 1;
      assert.equal(await readFile(f.path, 'utf8'), 'payload');
      if (calls < 3) throw new Error('database is locked');
    },
  });
  await inbox.start();
  await dropFile(dir, 'job.SRQ', 'payload');
  await waitFor('third call', () => calls === 3);
  await waitFor('deleted', async () => !(await exists(join(dir, 'job.SRQ'))));
  assert.deepEqual(errors, ['job.SRQ', 'job.SRQ']);
  assert.equal(inbox.stats().retrying, 0);
});

test('a crash in the middle of a handler keeps the file; the next start handles it again', async (t) => {
  const dir = await tempDir(t);
  await dropFile(dir, 'CEN00003.PKN', 'v1');
  let reached = false;
  const first = new Inbox({
    dir,
    handler: (_f, signal) =>
      new Promise<void>((_resolve, reject) => {
        reached = true;
        signal.addEventListener('abort', () => reject(new Error('killed')));
      }),
  });
  await first.start();
  await waitFor('handler running', () => reached);
  await first.close();
  assert.equal(await readFile(join(dir, 'CEN00003.PKN'), 'utf8'), 'v1');

  const outputs: string[] = [];
  await mkdir(join(dir, 'out'));
  const second = open(t, {
    dir,
    handler: async (f) => {
      // Idempotent: writing the same output twice is harmless.
      await writeFile(join(dir, 'out', 'result.txt'), await readFile(f.path));
      outputs.push(f.name);
    },
  });
  await second.start();
  await waitFor('handled again', () => outputs.length === 1);
  await waitFor('deleted', async () => !(await exists(join(dir, 'CEN00003.PKN'))));
  assert.equal(await readFile(join(dir, 'out', 'result.txt'), 'utf8'), 'v1');
});

test('bad files go to bad/ with a reason, onBad is told, and the inbox goes on', async (t) => {
  const dir = await tempDir(t);
  const schema = z.object({ packageId: z.string().regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/) });
  const told: [string, string][] = [];
  const handled: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 30,
    badCodes: ['SITECAST_E_BAD_MANIFEST'],
    onBad: (name, reason) => void told.push([name, reason]),
    handler: async (f) => {
      if (f.name === 'refused.RPT') throw new SitecastError('SITECAST_E_BAD_MANIFEST', 'path ../etc escapes');
      schema.parse(JSON.parse(await readFile(f.path, 'utf8')));
      handled.push(f.name);
    },
  });
  await inbox.start();
  await dropFile(dir, 'garbage.RPT', '{not json');
  await dropFile(dir, 'wrong.RPT', JSON.stringify({ packageId: '../x' }));
  await dropFile(dir, 'refused.RPT', '{}');
  await writeFile(join(dir, 'has space.RPT'), '{}');
  await dropFile(dir, 'good.RPT', JSON.stringify({ packageId: 'CEN00001' }));
  await waitFor('good handled', () => handled.includes('good.RPT'));
  await waitFor('four bad', () => told.length === 4);
  const badDir = join(dir, 'bad');
  await waitFor('moved', async () => (await readdir(badDir)).length === 8);
  await waitFor('inbox empty', async () => (await readdir(dir)).length === 1);
  assert.deepEqual(await readdir(dir), ['bad']);
  assert.match(await readFile(join(badDir, 'garbage.RPT.reason'), 'utf8'), /SyntaxError/);
  assert.match(await readFile(join(badDir, 'wrong.RPT.reason'), 'utf8'), /does not parse.*packageId/);
  assert.match(await readFile(join(badDir, 'refused.RPT.reason'), 'utf8'), /SITECAST_E_BAD_MANIFEST: path \.\.\/etc/);
  assert.match(await readFile(join(badDir, 'has space.RPT.reason'), 'utf8'), /unsafe file name/);
  assert.equal(await readFile(join(badDir, 'garbage.RPT'), 'utf8'), '{not json');
  assert.deepEqual(told.map(([n]) => n).sort(), ['garbage.RPT', 'has space.RPT', 'refused.RPT', 'wrong.RPT']);
  // The inbox still works after bad input.
  await dropFile(dir, 'after.RPT', JSON.stringify({ packageId: 'CEN00002' }));
  await waitFor('after handled', () => handled.includes('after.RPT'));
});

test('if onBad fails the file stays and is retried, so the status message is not lost', async (t) => {
  const dir = await tempDir(t);
  let attempts = 0;
  const inbox = open(t, {
    dir,
    retry: { initialMs: 20, maxMs: 20 },
    onBad: () => {
      attempts += 1;
      if (attempts === 1) throw new Error('database is locked');
    },
    handler: async () => {
      throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', 'unknown record type');
    },
  });
  await inbox.start();
  await dropFile(dir, 'x.MJB', 'x');
  await waitFor('moved', () => exists(join(dir, 'bad', 'x.MJB')));
  assert.equal(attempts, 2);
});

test('a bad file removed from the inbox while its status message is written still reaches bad/ with its reason', async (t) => {
  const dir = await tempDir(t);
  const told: string[] = [];
  const handled: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 30,
    onBad: async (name) => {
      // An operator (or another process) deletes the file from the inbox meanwhile.
      await unlink(join(dir, name));
      told.push(name);
    },
    handler: async (f) => {
      if (f.name.endsWith('.BAD')) throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', 'unknown record type');
      handled.push(f.name);
    },
  });
  await inbox.start();
  await dropFile(dir, 'x.BAD', 'kept');
  await waitFor('told', () => told.length === 1);
  await dropFile(dir, 'later.MJB', 'x');
  await waitFor('later handled', () => handled.includes('later.MJB'));
  await waitFor('inbox empty', async () => (await readdir(dir)).length === 1);
  // The message said the file moved to bad/, and it did: no reason is left without its file.
  assert.deepEqual((await readdir(join(dir, 'bad'))).sort(), ['x.BAD', 'x.BAD.reason']);
  assert.equal(await readFile(join(dir, 'bad', 'x.BAD'), 'utf8'), 'kept');
  assert.match(await readFile(join(dir, 'bad', 'x.BAD.reason'), 'utf8'), /unknown record type/);
  assert.deepEqual(told, ['x.BAD']);
});

test('a bad file gone before it could be moved: no status message, no reason, and the inbox goes on', async (t) => {
  const dir = await tempDir(t);
  const told: string[] = [];
  const errors: unknown[] = [];
  const handled: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 30,
    onBad: (name) => void told.push(name),
    onError: (err) => void errors.push(err),
    handler: async (f) => {
      if (!f.name.endsWith('.BAD')) {
        handled.push(f.name);
        return;
      }
      await unlink(f.path);
      throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', 'unknown record type');
    },
  });
  await inbox.start();
  await dropFile(dir, 'gone.BAD', 'x');
  await dropFile(dir, 'later.MJB', 'x');
  await waitFor('later handled', () => handled.includes('later.MJB'));
  await waitFor('inbox empty', async () => (await readdir(dir)).length === 1);
  // The vanished file's turn ends a moment after its name is gone.
  await waitFor('nothing in flight', () => inbox.stats().inFlight === 0);
  assert.deepEqual(await readdir(join(dir, 'bad')), []);
  assert.deepEqual(told, []);
  assert.deepEqual(errors, []);
  assert.deepEqual(inbox.stats(), { inFlight: 0, queued: 0, retrying: 0 });
});

test('a hold a crash left in bad/ is removed at start; the file it held is judged again', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'bad'), { recursive: true });
  await dropFile(dir, 'again.BAD', 'x');
  await link(join(dir, 'again.BAD'), join(dir, 'bad', '.held.0123456789ab.tmp'));
  await writeFile(join(dir, 'bad', 'other-file.BAD'), 'an earlier bad file stays');
  const told: string[] = [];
  const inbox = open(t, {
    dir,
    rescanMs: 30,
    onBad: (name) => void told.push(name),
    handler: async () => {
      throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', 'still bad');
    },
  });
  await inbox.start();
  await waitFor('judged again', () => told.includes('again.BAD'));
  assert.deepEqual((await readdir(join(dir, 'bad'))).sort(), ['again.BAD', 'again.BAD.reason', 'other-file.BAD']);
});

test('holding and placing a bad file that vanished writes nothing to bad/', async (t) => {
  const dir = await tempDir(t);
  const badDir = join(dir, 'bad');
  await writeFile(join(dir, 'x.MJB'), 'x');
  const stats = await lstat(join(dir, 'x.MJB'));
  const entry: InboxEntry = { name: 'x.MJB', path: join(dir, 'x.MJB'), size: stats.size, mtimeMs: stats.mtimeMs, ino: stats.ino };
  await unlink(entry.path);
  assert.equal(await holdForBad(entry, badDir), 'gone');
  assert.deepEqual(await readdir(badDir), []);
  // Without a held link (no hard links there) the move itself finds the file gone: its reason is taken away again.
  await assert.rejects(placeInBad(entry, { badDir, held: undefined, reason: 'bad' }), (err: unknown) => (err as NodeJS.ErrnoException).code === 'ENOENT');
  assert.deepEqual(await readdir(badDir), []);
});

test('badFileNames counts the bad files, not their reasons or writes in flight', () => {
  const listed = ['a.PKN', 'a.PKN.reason', 'orphan.PKN.reason', '.a.PKN.reason.0123456789ab.tmp', '.held.0123456789ab.tmp', 'b.reason', 'b.reason.reason'];
  assert.deepEqual(badFileNames(listed), ['a.PKN', 'b.reason']);
});

test('files are handled oldest first, or in the caller order, with bounded concurrency', async (t) => {
  const dir = await tempDir(t);
  const names = ['c', 'a', 'd', 'b'];
  for (const [i, name] of names.entries()) {
    await writeFile(join(dir, name), name);
    const when = new Date(Date.UTC(2020, 0, 1, 0, 0, i));
    await utimes(join(dir, name), when, when);
  }
  const order: string[] = [];
  const inbox = open(t, { dir, handler: async (f) => void order.push(f.name) });
  await inbox.start();
  await waitFor('all', () => order.length === 4);
  assert.deepEqual(order, names);
  await inbox.close();

  for (const name of names) await writeFile(join(dir, name), name);
  for (let i = 0; i < 6; i += 1) await writeFile(join(dir, `z${i}`), '');
  const sorted: string[] = [];
  let running = 0;
  let peak = 0;
  const byName = (a: InboxEntry, b: InboxEntry): number => a.name.localeCompare(b.name);
  const parallel = open(t, {
    dir,
    concurrency: 2,
    sort: byName,
    handler: async (f) => {
      running += 1;
      peak = Math.max(peak, running);
      sorted.push(f.name);
      await new Promise((r) => setTimeout(r, 15));
      running -= 1;
    },
  });
  await parallel.start();
  await waitFor('all ten', () => sorted.length === 10);
  assert.equal(peak, 2);
  assert.deepEqual(sorted.slice(0, 4), ['a', 'b', 'c', 'd']);
});

test('a file dropped again while its handler runs is not deleted but handled again', async (t) => {
  const dir = await tempDir(t);
  const contents: string[] = [];
  let release: () => void = () => undefined;
  const gate = new Promise<void>((r) => (release = r));
  const inbox = open(t, {
    dir,
    rescanMs: 50,
    handler: async (f) => {
      contents.push(await readFile(f.path, 'utf8'));
      if (contents.length === 1) await gate;
    },
  });
  await inbox.start();
  await dropFile(dir, 'CEN00004.PKN', 'first');
  await waitFor('first running', () => contents.length === 1);
  await dropFile(dir, 'CEN00004.PKN', 'second!');
  release();
  await waitFor('second handled', () => contents.length === 2);
  assert.deepEqual(contents, ['first', 'second!']);
  await waitFor('deleted', async () => !(await exists(join(dir, 'CEN00004.PKN'))));
});

test('a name dropped again and again while it is handled: the last drop is always handled and nothing is left, without waiting for a rescan', async (t) => {
  // "Look, then delete" lost a drop that landed between the two; 5 rounds in 40 lost one before the file was moved aside first.
  for (let round = 0; round < 25; round++) {
    const dir = await tempDir(t);
    let last = '';
    const inbox = open(t, {
      dir,
      rescanMs: 600_000,
      handler: async (f) => {
        last = await readFile(f.path, 'utf8');
      },
    });
    await inbox.start();
    const drops = 200;
    for (let i = 1; i <= drops; i++) {
      await dropFile(dir, 'CEN00009.PKN', String(i), { durable: false });
      if (i % 3 === 0) await new Promise((r) => setImmediate(r));
    }
    await waitFor(`round ${round}: drop ${drops} handled (last handled ${last})`, () => last === String(drops));
    await waitFor(`round ${round}: inbox empty`, async () => (await readdir(dir)).filter((n) => n !== 'bad').length === 0);
    await inbox.close();
  }
});

test('removeIfUnchanged deletes the file handled, keeps a newer drop of its name, and says when it is gone', async (t) => {
  const dir = await tempDir(t);
  const path = join(dir, 'CEN00010.PKN');
  const entryOf = async (): Promise<InboxEntry> => {
    const s = await lstat(path);
    return { name: 'CEN00010.PKN', path, size: s.size, mtimeMs: s.mtimeMs, ino: s.ino };
  };
  await dropFile(dir, 'CEN00010.PKN', 'one');
  const first = await entryOf();
  assert.equal(await removeIfUnchanged(first), 'removed');
  assert.deepEqual(await readdir(dir), []);
  assert.equal(await removeIfUnchanged(first), 'gone');
  await dropFile(dir, 'CEN00010.PKN', 'two');
  const second = await entryOf();
  await dropFile(dir, 'CEN00010.PKN', 'three, newer');
  assert.equal(await removeIfUnchanged(second), 'replaced');
  assert.equal(await readFile(path, 'utf8'), 'three, newer');
  assert.deepEqual(await readdir(dir), ['CEN00010.PKN'], 'nothing left aside');
});

test('a file a crash left moved aside is put back at start and handled; one whose name holds a newer drop gives way to it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, '.claim.0123456789ab.CEN00011.PKN.tmp'), 'aside');
  await writeFile(join(dir, '.claim.0123456789ab.CEN00012.PKN.tmp'), 'older');
  await writeFile(join(dir, 'CEN00012.PKN'), 'newer');
  await writeFile(join(dir, '.claim.0123456789ab...tmp'), 'not a safe name: left alone');
  const seen = new Map<string, string>();
  const inbox = open(t, {
    dir,
    handler: async (f) => {
      seen.set(f.name, await readFile(f.path, 'utf8'));
    },
  });
  await inbox.start();
  await waitFor('both handled', () => seen.size === 2);
  assert.deepEqual(Object.fromEntries(seen), { 'CEN00011.PKN': 'aside', 'CEN00012.PKN': 'newer' });
  await waitFor('inbox empty', async () => (await readdir(dir)).filter((n) => n !== 'bad').length === 1);
  assert.deepEqual((await readdir(dir)).filter((n) => n !== 'bad'), ['.claim.0123456789ab...tmp']);
});

test('close() is idempotent, start() after close is refused, and an AbortSignal closes', async (t) => {
  const dir = await tempDir(t);
  const inbox = new Inbox({ dir, handler: async () => undefined });
  await inbox.start();
  await inbox.start();
  const a = inbox.close();
  const b = inbox.close();
  assert.equal(a, b);
  await a;
  await inbox.close();
  await assert.rejects(inbox.start(), (err: unknown) => isSitecastError(err, 'SITECAST_E_CLOSED'));

  const controller = new AbortController();
  const handled: string[] = [];
  const aborted = new Inbox({ dir, signal: controller.signal, handler: async (f) => void handled.push(f.name) });
  await aborted.start();
  controller.abort();
  await aborted.close();
  await dropFile(dir, 'late.PKN', '');
  await new Promise((r) => setTimeout(r, 100));
  assert.deepEqual(handled, []);
  assert.ok(await exists(join(dir, 'late.PKN')));
});

test('dropFiles: many files at once, each whole, no temporary file left; an unsafe name writes nothing', async (t) => {
  const dir = await tempDir(t);
  const files = Array.from({ length: 100 }, (_, i) => ({ name: `P${String(i).padStart(4, '0')}.PKN`, data: `package ${i}\n` }));
  await dropFiles(dir, files);
  assert.deepEqual((await readdir(dir)).sort(), files.map((f) => f.name));
  for (const f of files) assert.equal(await readFile(join(dir, f.name), 'utf8'), f.data);

  const other = await tempDir(t);
  await assert.rejects(
    dropFiles(other, [{ name: 'GOOD.PKN', data: 'x' }, { name: '../escape', data: 'x' }]),
    (err: unknown) => isSitecastError(err, 'SITECAST_E_UNSAFE_NAME'),
  );
  assert.deepEqual(await readdir(other), []);
  await dropFiles(other, []);
  assert.deepEqual(await readdir(other), []);
});
