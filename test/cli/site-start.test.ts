import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { tempDir } from '../helpers/fixtures.js';

const BIN = fileURLToPath(new URL('../../../bin/sitecast.js', import.meta.url));

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const io: Io = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), interactive: false, env: {} };
  return { code: await main(args, io), stdout, stderr };
}

test('site start runs the server until SIGTERM, then closes cleanly and exits 0', { timeout: 30_000 }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'site');
  assert.equal((await run(['site', 'init', root, '--code', 'RUN', '--listen', '127.0.0.1:0'])).code, 0);

  const child = spawn(process.execPath, [BIN, 'site', 'start', root], { stdio: ['ignore', 'pipe', 'pipe'] });
  t.after(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });
  let out = '';
  let err = '';
  child.stderr.on('data', (b: Buffer) => (err += b.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening at (http:\/\/\S+)/.exec(out);
      if (m?.[1] !== undefined) resolve(m[1]);
    });
    child.once('exit', (code) => reject(new Error(`site start exited ${String(code)}: ${out}${err}`)));
  });
  assert.match(url, /^http:\/\/127\.0\.0\.1:\d+$/);
  assert.ok(!url.endsWith(':0'));

  // The CLI finds the running server through <root>/site.url.
  const site = await run(['package', 'list', '--root', root, '--json']);
  assert.equal(site.code, 0, site.stderr);
  assert.equal(site.stdout, '{"packages":[]}\n');

  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.kill('SIGTERM');
  assert.equal(await exited, 0, `${out}${err}`);
  assert.match(out, /SIGTERM: stopping\nstopped\n$/);
  assert.equal(existsSync(join(root, 'site.url')), false, 'site.url is removed on a clean stop');
  const down = await run(['package', 'list', '--root', root]);
  assert.equal(down.code, 1);
  assert.match(down.stderr, /SITECAST_E_SITE_DOWN/);
});
