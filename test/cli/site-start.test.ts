import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/fixtures.js';
import { runCli } from '../helpers/cli.js';

const BIN = fileURLToPath(new URL('../../../bin/sitecast.js', import.meta.url));

const run = runCli;

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

test('one server per root: a second site start is refused naming the first; after kill -9 the next start takes the stale lock over', { timeout: 40_000 }, async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'site');
  assert.equal((await run(['site', 'init', root, '--code', 'LCK', '--listen', '127.0.0.1:0'])).code, 0);
  const start = (): { child: ReturnType<typeof spawn>; url: Promise<string>; exit: Promise<{ code: number | null; out: string }> } => {
    const child = spawn(process.execPath, [BIN, 'site', 'start', root], { stdio: ['ignore', 'pipe', 'pipe'] });
    t.after(() => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    });
    let out = '';
    child.stdout?.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr?.on('data', (b: Buffer) => (out += b.toString()));
    const exit = new Promise<{ code: number | null; out: string }>((resolve) => child.once('exit', (code) => resolve({ code, out })));
    const url = new Promise<string>((resolve, reject) => {
      child.stdout?.on('data', () => {
        const m = /listening at (http:\/\/\S+)/.exec(out);
        if (m?.[1] !== undefined) resolve(m[1]);
      });
      void exit.then(({ code }) => reject(new Error(`site start exited ${String(code)}: ${out}`)));
    });
    url.catch(() => undefined);
    return { child, url, exit };
  };

  const first = start();
  const url = await first.url;
  const second = start();
  const refused = await second.exit;
  assert.equal(refused.code, 1, refused.out);
  assert.match(refused.out, new RegExp(`SITECAST_E_SITE_RUNNING.*already running in process ${first.child.pid}`));
  // The first one is untouched and still answers.
  assert.equal((await fetch(`${url}/openapi.json`)).status, 200);

  first.child.kill('SIGKILL');
  await first.exit;
  assert.equal(existsSync(join(root, 'site.lock')), true, 'kill -9 leaves the lock behind');
  const third = start();
  await third.url;
  third.child.kill('SIGTERM');
  assert.equal((await third.exit).code, 0);
  assert.equal(existsSync(join(root, 'site.lock')), false);
});
