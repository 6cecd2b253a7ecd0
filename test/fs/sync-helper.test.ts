import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { flushFileSystem } from '../../src/content/library.js';
import { syncThroughHelper } from '../../src/fs/sync-helper.js';
import { tempDir } from '../helpers/fixtures.js';

const run = promisify(execFile);

/** The helper shells running on this machine, from /proc (no `ps` needed). */
async function helperShells(): Promise<{ pid: number; ppid: number }[]> {
  const found: { pid: number; ppid: number }[] = [];
  for (const name of await readdir('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const cmdline = await readFile(`/proc/${name}/cmdline`, 'utf8');
      if (!cmdline.includes('while IFS= read -r d')) continue;
      const stat = await readFile(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      found.push({ pid: Number(name), ppid });
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

test('flushes go through one helper: many at once all answer, a missing folder is a failing status, a name with a newline falls back to sync itself', async (t) => {
  const dir = await tempDir(t, 'sitecast-sync');
  await writeFile(join(dir, 'file'), 'data');
  const statuses = await Promise.all(Array.from({ length: 20 }, () => syncThroughHelper(dir)));
  assert.deepEqual(statuses, Array.from({ length: 20 }, () => 0));
  assert.notEqual(await syncThroughHelper(join(dir, 'no-such-folder')), 0, 'sync -f of a missing folder fails, and says so');
  assert.equal(await syncThroughHelper(dir), 0, 'the helper goes on after a failure');
  const odd = join(dir, 'line\nbreak');
  await mkdir(odd);
  assert.equal(await syncThroughHelper(odd), null, 'not sent to the helper (one name per line)');
  await flushFileSystem(odd);
});

test('a process whose last work is a flush waits for it, and leaves no helper behind', async (t) => {
  const dir = await tempDir(t, 'sitecast-sync-exit');
  const library = new URL('../../src/content/library.js', import.meta.url).href;
  const script = `import { flushFileSystem } from ${JSON.stringify(library)}; await flushFileSystem(${JSON.stringify(dir)}); console.log('flushed');`;
  const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script], { timeout: 20_000 });
  assert.equal(stdout.trim(), 'flushed', 'the await finished before the process ended');
  // This test process has a helper of its own (the test above): only another process's would be a leftover.
  // The helper ends when its standard input closes, a moment after the process: give it 2 s.
  let others: string[] = [];
  for (let i = 0; i < 20; i++) {
    others = (await helperShells()).filter((h) => h.ppid !== process.pid).map((h) => `pid ${h.pid}, parent ${h.ppid}`);
    if (others.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.deepEqual(others, [], 'no helper shell left running');
});
