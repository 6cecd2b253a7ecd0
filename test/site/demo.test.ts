import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describeDemo, shellWord, startDemo } from '../../src/site/demo.js';
import { tempDir } from '../helpers/fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/sitecast.js', import.meta.url));
const exec = promisify(execFile);

/** Runs a printed command in a shell as a user pastes it, with `npx sitecast` meaning this build. */
async function runPrinted(command: string): Promise<{ stdout: string }> {
  assert.match(command, /^npx sitecast /);
  const line = command.replace(/^npx sitecast /, `${shellWord(process.execPath)} ${shellWord(BIN)} `);
  return exec('sh', ['-c', line], { env: { ...process.env, SITECAST_URL: '', SITECAST_TOKEN: '' } });
}

test('the demo installs its package, prints commands that work, and removes its temporary folder at close', { timeout: 60_000 }, async (t) => {
  const demo = await startDemo();
  t.after(() => demo.close());
  assert.equal(demo.removedAtClose, true);
  assert.match(demo.url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.equal(demo.packageId, 'DEM00001');
  assert.match(await readFile(demo.tokenFile, 'utf8'), /^sct_/);
  // The share holds the sample package, its install script runnable.
  assert.match(await readFile(join(demo.share, 'install.sh'), 'utf8'), /^#!\/bin\/sh/);
  assert.equal(existsSync(join(demo.share, 'data', 'sample-5.txt')), true);

  const printed = describeDemo(demo);
  for (const shown of [demo.url, demo.tokenFile, demo.root, ...demo.commands]) assert.ok(printed.includes(shown), shown);
  assert.equal(demo.commands.length, 3);
  const status = await runPrinted(`${demo.commands[0] ?? ''} --json`);
  const parsed = JSON.parse(status.stdout) as { id: string; dps: { site: string; dp: string; state: string }[] };
  assert.equal(parsed.id, 'DEM00001');
  assert.deepEqual(
    parsed.dps.map((d) => [d.site, d.dp, d.state]),
    [['DEM', 'dp1', 'installed']],
  );
  assert.match((await runPrinted(demo.commands[1] ?? '')).stdout, /DEM00001\s+Sitecast demo/);
  assert.match((await runPrinted(demo.commands[2] ?? '')).stdout, /installed on DP dp1/);

  await demo.close();
  assert.equal(existsSync(demo.dir), false, 'the temporary folder is removed');
});

test('site demo --dir runs until SIGTERM, exits 0, keeps the folder, and a second run reuses it', { timeout: 60_000 }, async (t) => {
  const dir = join(await tempDir(t), 'demo');
  const child = spawn(process.execPath, [BIN, 'site', 'demo', '--dir', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      if (out.includes('Press Ctrl-C')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`site demo exited ${String(code)}: ${out}${err}`)));
  });
  assert.match(out, /site root: {2}\S+\/demo\/site\n/);
  assert.match(out, /is kept\.\n$/);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `${out}${err}`);
  assert.match(out, /SIGTERM: stopping\nstopped\n$/);
  assert.equal(existsSync(join(dir, 'site', 'site.json')), true, 'the folder given with --dir is kept');
  assert.equal(existsSync(join(dir, 'site', 'site.url')), false, 'the server stopped cleanly');

  const again = await startDemo({ dir });
  try {
    assert.equal(again.packageId, 'DEM00001', 'the earlier package is reused, not created twice');
    assert.equal(again.removedAtClose, false);
    const list = await runPrinted(`${again.commands[1] ?? ''} --json`);
    assert.equal((JSON.parse(list.stdout) as { packages: unknown[] }).packages.length, 1);
  } finally {
    await again.close();
  }
  assert.equal(existsSync(dir), true);
});
