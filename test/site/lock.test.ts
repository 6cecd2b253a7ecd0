import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, readdir, symlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { LOCK_FILE, lockSiteRoot } from '../../src/site/lock.js';
import { tempDir } from '../helpers/fixtures.js';

const linux = existsSync('/proc/self/stat') ? {} : { skip: 'no /proc' };

interface Held {
  pid: number;
  host: string;
  startedAt: string;
  startTicks?: number;
  bootId?: string;
}

async function held(root: string): Promise<Held> {
  return JSON.parse(await readFile(join(root, LOCK_FILE), 'utf8')) as Held;
}

/** A lock as another server (or an older Sitecast, without startTicks) would have left it. */
async function leaveLock(root: string, lock: Omit<Held, 'host' | 'startedAt'>): Promise<string> {
  const text = `${JSON.stringify({ host: hostname(), startedAt: '2020-01-01T00:00:00.000Z', ...lock })}\n`;
  await writeFile(join(root, LOCK_FILE), text);
  return text;
}

async function refused(root: string, pid: number): Promise<void> {
  await assert.rejects(lockSiteRoot(root, 'LCK'), (err: Error & { code?: string }) => {
    assert.equal(err.code, 'SITECAST_E_SITE_RUNNING');
    assert.match(err.message, new RegExp(`site LCK at .* is already running in process ${pid} \\(since `));
    return true;
  });
}

/** Takes the root over from a stale lock, checks the lock names this process now, and gives it back. */
async function takenOver(root: string): Promise<void> {
  const lock = await lockSiteRoot(root, 'LCK');
  assert.equal((await held(root)).pid, process.pid);
  await lock.release();
  assert.equal(existsSync(join(root, LOCK_FILE)), false);
}

function stopAfter(t: { after: (fn: () => void) => void }, child: ChildProcess): void {
  t.after(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
}

test('lockSiteRoot: a live owner refuses a second start, naming its process; release frees the root', async (t) => {
  const root = await tempDir(t, 'sitecast-lock');
  const first = await lockSiteRoot(root, 'LCK');
  const text = await readFile(join(root, LOCK_FILE), 'utf8');
  await refused(root, process.pid);
  assert.equal(await readFile(join(root, LOCK_FILE), 'utf8'), text, 'a refused start leaves the lock as it was');
  await first.release();
  await first.release();
  assert.equal(existsSync(join(root, LOCK_FILE)), false);
  await takenOver(root);
});

test('lockSiteRoot: starters racing for a free root, or for a stale lock, leave exactly one winner and no temporary file', async (t) => {
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  const dead = child.pid ?? assert.fail('no pid');
  for (const stale of [false, true]) {
    const root = await tempDir(t, 'sitecast-lock-race');
    if (stale) await leaveLock(root, { pid: dead });
    const results = await Promise.allSettled(Array.from({ length: 8 }, () => lockSiteRoot(root, 'LCK')));
    const won = results.filter((r) => r.status === 'fulfilled');
    assert.equal(won.length, 1, `one winner (${stale ? 'stale lock' : 'free root'})`);
    for (const r of results) if (r.status === 'rejected') assert.equal((r.reason as { code?: string }).code, 'SITECAST_E_SITE_RUNNING');
    assert.equal((JSON.parse(await readFile(join(root, LOCK_FILE), 'utf8')) as { pid: number }).pid, process.pid);
    assert.deepEqual(await readdir(root), [LOCK_FILE]);
  }
});

test('lockSiteRoot: a lock naming a process that no longer exists is taken over, with or without a start time', async (t) => {
  const root = await tempDir(t, 'sitecast-lock-gone');
  const child = spawn(process.execPath, ['-e', '']);
  await new Promise((resolve) => child.once('exit', resolve));
  const pid = child.pid ?? assert.fail('no pid');
  await leaveLock(root, { pid });
  await takenOver(root);
  await leaveLock(root, { pid, startTicks: 12345 });
  await takenOver(root);
});

test('lockSiteRoot: a live pid whose start time differs from the recorded one (a pid reused after a reboot) is stale; the same start time runs', linux, async (t) => {
  const root = await tempDir(t, 'sitecast-lock-reused');
  const mine = await lockSiteRoot(root, 'LCK');
  const { startTicks } = await held(root);
  await mine.release();
  assert.equal(typeof startTicks, 'number', 'the lock records the start time of its process');
  const ticks = startTicks as number;

  await leaveLock(root, { pid: process.pid, startTicks: ticks + 1 });
  await takenOver(root);
  const text = await leaveLock(root, { pid: process.pid, startTicks: ticks });
  await refused(root, process.pid);
  assert.equal(await readFile(join(root, LOCK_FILE), 'utf8'), text);
});

test('lockSiteRoot: a lock from an earlier boot is stale even when its pid and start time match a running process', linux, async (t) => {
  const root = await tempDir(t, 'sitecast-lock-boot');
  const mine = await lockSiteRoot(root, 'LCK');
  const { startTicks, bootId } = await held(root);
  await mine.release();
  assert.match(bootId ?? '', /^[0-9a-f-]{36}$/, 'the lock records the boot it was taken in');
  await leaveLock(root, { pid: process.pid, startTicks: startTicks as number, bootId: '00000000-0000-4000-8000-000000000000' });
  await takenOver(root);
  await leaveLock(root, { pid: process.pid, startTicks: startTicks as number, bootId: bootId as string });
  await refused(root, process.pid);
});

test('lockSiteRoot: a zombie owner (killed, not yet reaped) is stale, with or without a start time', linux, async (t) => {
  const root = await tempDir(t, 'sitecast-lock-zombie');
  // The short sleep outlives the shell, whose process becomes the long sleep: that never reaps its
  // child, so the short one stays a zombie until the long one ends.
  const parent = spawn('sh', ['-c', 'sleep 0.1 & echo $!; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'] });
  stopAfter(t, parent);
  const line = await new Promise<string>((resolve) => parent.stdout.once('data', (b: Buffer) => resolve(b.toString())));
  const pid = Number(line.trim());
  let stat = '';
  for (let i = 0; i < 200 && !/\) Z /.test(stat); i++) {
    await sleep(10);
    stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  }
  assert.match(stat, /\) Z /, `process ${pid} is a zombie`);
  const ticks = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]);

  await leaveLock(root, { pid });
  await takenOver(root);
  await leaveLock(root, { pid, startTicks: ticks });
  await takenOver(root);
});

test('lockSiteRoot: /proc/<pid>/stat is read after the last ")", so a command name with spaces and parentheses is not misread', linux, async (t) => {
  const dir = await tempDir(t, 'sitecast-lock-comm');
  // Read naively (up to the first ")"), this name would make the process look like a zombie.
  const odd = join(dir, 'x) Z 1 (y');
  await symlink(process.execPath, odd);
  const owner = spawn(odd, ['-e', 'setTimeout(() => {}, 30000)'], { stdio: 'ignore' });
  stopAfter(t, owner);
  await new Promise((resolve, reject) => owner.once('spawn', resolve).once('error', reject));
  const pid = owner.pid ?? assert.fail('no pid');
  assert.match(await readFile(`/proc/${pid}/stat`, 'utf8'), /^\d+ \(x\) Z 1 \(y\) [RSD] /);

  await leaveLock(dir, { pid });
  await refused(dir, pid);
  await leaveLock(dir, { pid, startTicks: 1 });
  await takenOver(dir);
});
