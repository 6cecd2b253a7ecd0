import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describeTree, makeTree, tempDir } from '../helpers/fixtures.js';
import { type CliResult, runCli } from '../helpers/cli.js';
import { VERSION } from '../../src/cli/main.js';

const run = (args: string[]): Promise<CliResult> => runCli(args, null);

function json<T>(text: string): T {
  const lines = text.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints exactly one line, got: ${text}`);
  return JSON.parse(lines[0] as string) as T;
}

test('the content commands keep their --json contract end to end', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'v1'), 'v1');
  await makeTree(join(dir, 'v2'), 'v2');
  const lib = join(dir, 'lib');

  const a = await run(['content', 'ingest', '--library', lib, join(dir, 'v1'), '--json']);
  assert.equal(a.code, 0, a.stderr);
  const v1 = json<{ manifest: string; files: number; bytes: number; storedBytes: number; newBytes: number; modeBitsDropped: string[] }>(a.stdout);
  assert.deepEqual(Object.keys(v1).sort(), ['bytes', 'files', 'manifest', 'modeBitsDropped', 'newBytes', 'storedBytes']);
  assert.deepEqual(v1.modeBitsDropped, []);
  assert.equal(a.stderr, '');
  const v2 = json<{ manifest: string }>((await run(['content', 'ingest', '--library', lib, join(dir, 'v2'), '--json'])).stdout);

  const verify = await run(['content', 'verify', '--library', lib, '--json']);
  assert.equal(verify.code, 0);
  assert.deepEqual(json<{ chunks: number; bad: unknown[] }>(verify.stdout).bad, []);

  const delta = await run(['content', 'delta', '--library', lib, v1.manifest, v2.manifest, '--out', join(dir, 'd'), '--json']);
  assert.equal(delta.code, 0, delta.stderr);
  assert.ok(json<{ bytes: number }>(delta.stdout).bytes > 0);

  assert.equal((await run(['content', 'pack', '--library', lib, v1.manifest, '--out', join(dir, 'v1.pkg')])).code, 0);
  const unpack = await run(['content', 'unpack', '--library', join(dir, 'lib2'), join(dir, 'v1.pkg'), '--json']);
  assert.equal(json<{ manifest: string }>(unpack.stdout).manifest, v1.manifest);
  const apply = await run(['content', 'apply', '--library', join(dir, 'lib2'), join(dir, 'd'), '--json']);
  assert.equal(json<{ manifest: string }>(apply.stdout).manifest, v2.manifest, apply.stderr);

  const extract = await run(['content', 'extract', '--library', join(dir, 'lib2'), v2.manifest, join(dir, 'out')]);
  assert.equal(extract.code, 0, extract.stderr);
  assert.deepEqual(await describeTree(join(dir, 'out')), await describeTree(join(dir, 'v2')));

  const gc = await run(['content', 'gc', '--library', lib, '--keep', v2.manifest, '--json']);
  assert.equal(gc.code, 0);
  assert.equal(json<{ removedManifests: number }>(gc.stdout).removedManifests, 1);
});

test('errors carry their code on stderr and in --json; bad usage exits 2; a bad library makes verify exit 1', async (t) => {
  const dir = await tempDir(t);
  const missing = await run(['content', 'extract', '--library', join(dir, 'nope'), 'a'.repeat(64), join(dir, 'out'), '--json']);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /error SITECAST_E_LIBRARY: .*not a content library/);
  assert.equal(json<{ error: { code: string } }>(missing.stdout).error.code, 'SITECAST_E_LIBRARY');

  const badId = await run(['content', 'extract', '--library', dir, 'not-an-id', join(dir, 'out')]);
  assert.equal(badId.code, 2);
  assert.match(badId.stderr, /SITECAST_E_USAGE: "not-an-id" is not a manifest id/);

  const unknown = await run(['content', 'frobnicate']);
  assert.equal(unknown.code, 2);
  const noLibrary = await run(['content', 'verify']);
  assert.equal(noLibrary.code, 2);
  assert.match(noLibrary.stderr, /--library/);

  await makeTree(join(dir, 'src'));
  const lib = join(dir, 'lib');
  await run(['content', 'ingest', '--library', lib, join(dir, 'src')]);
  const { readdir, unlink } = await import('node:fs/promises');
  const prefix = (await readdir(join(lib, 'chunks')))[0] as string;
  const chunk = (await readdir(join(lib, 'chunks', prefix)))[0] as string;
  await unlink(join(lib, 'chunks', prefix, chunk));
  const verify = await run(['content', 'verify', '--library', lib, '--json']);
  assert.equal(verify.code, 1);
  const bad = json<{ bad: { chunk: string; problem: string }[] }>(verify.stdout).bad;
  assert.deepEqual(bad.map((b) => [b.chunk, b.problem]), [[chunk, 'missing']]);
});

test('the installed bin runs, stays quiet on stderr when piped, and prints help', async (t) => {
  const bin = new URL('../../../bin/sitecast.js', import.meta.url).pathname;
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const ingest = spawnSync(process.execPath, [bin, 'content', 'ingest', '--library', join(dir, 'lib'), join(dir, 'src')], { encoding: 'utf8' });
  assert.equal(ingest.status, 0, ingest.stderr);
  assert.equal(ingest.stderr, '', 'no progress bar when stderr is not a terminal');
  assert.match(ingest.stdout, /^[0-9a-f]{64}\n5 files/);
  const help = spawnSync(process.execPath, [bin, 'content', '--help'], { encoding: 'utf8' });
  assert.equal(help.status, 0);
  for (const cmd of ['ingest', 'extract', 'verify', 'delta', 'apply', 'pack', 'unpack', 'gc']) assert.match(help.stdout, new RegExp(`\\b${cmd}\\b`));
  for (const flag of ['--version', '-V']) {
    const version = spawnSync(process.execPath, [bin, flag], { encoding: 'utf8' });
    assert.equal(version.status, 0);
    assert.equal(version.stdout, `${VERSION}\n`);
  }
  // A command's own --version option is not the program's.
  const misplaced = spawnSync(process.execPath, [bin, 'content', '--version'], { encoding: 'utf8' });
  assert.equal(misplaced.status, 2);
});

test('set-user-ID, set-group-ID and sticky bits are not kept, and ingest says which paths had them', async (t) => {
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  await chmod(join(dir, 'src/bin/tool'), 0o4755);
  await chmod(join(dir, 'src/empty-dir'), 0o1777);
  const r = await run(['content', 'ingest', '--library', join(dir, 'lib'), join(dir, 'src'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = json<{ manifest: string; modeBitsDropped: string[] }>(r.stdout);
  assert.deepEqual(out.modeBitsDropped, ['bin/tool', 'empty-dir']);
  assert.match(r.stderr, /note: set-user-ID, set-group-ID and sticky bits are not kept \(only permission bits are\): bin\/tool, empty-dir/);
  assert.equal((await run(['content', 'extract', '--library', join(dir, 'lib'), out.manifest, join(dir, 'out')])).code, 0);
  assert.equal((await stat(join(dir, 'out/bin/tool'))).mode & 0o7777, 0o755);
  assert.equal((await stat(join(dir, 'out/empty-dir'))).mode & 0o7777, 0o777);
});

test('a first ingest or unpack that fails leaves no library behind; an existing empty folder stays as it was', async (t) => {
  const dir = await tempDir(t);
  const noSource = await run(['content', 'ingest', '--library', join(dir, 'new-lib'), join(dir, 'no-such-source')]);
  assert.equal(noSource.code, 1);
  assert.match(noSource.stderr, /SITECAST_E_NOT_FOUND: source folder .*no-such-source does not exist/);
  await assert.rejects(stat(join(dir, 'new-lib')), { code: 'ENOENT' });

  await makeTree(join(dir, 'src'));
  const lib = join(dir, 'lib');
  const v = json<{ manifest: string }>((await run(['content', 'ingest', '--library', lib, join(dir, 'src'), '--json'])).stdout);
  assert.equal((await run(['content', 'pack', '--library', lib, v.manifest, '--out', join(dir, 'v.pkg')])).code, 0);
  const whole = await readFile(join(dir, 'v.pkg'));
  await writeFile(join(dir, 'cut.pkg'), whole.subarray(0, Math.floor(whole.length / 2)));
  const cut = await run(['content', 'unpack', '--library', join(dir, 'lib2'), join(dir, 'cut.pkg')]);
  assert.equal(cut.code, 1);
  assert.match(cut.stderr, /SITECAST_E_BAD_ARCHIVE/);
  await assert.rejects(stat(join(dir, 'lib2')), { code: 'ENOENT' });
  await mkdir(join(dir, 'empty'));
  assert.equal((await run(['content', 'unpack', '--library', join(dir, 'empty'), join(dir, 'cut.pkg')])).code, 1);
  assert.deepEqual(await readdir(join(dir, 'empty')), []);
  // A library that was there keeps everything it had.
  assert.equal((await run(['content', 'unpack', '--library', lib, join(dir, 'cut.pkg')])).code, 1);
  assert.equal((await run(['content', 'verify', '--library', lib])).code, 0);
  assert.equal((await run(['content', 'extract', '--library', lib, v.manifest, join(dir, 'out')])).code, 0);
});

test('on a terminal, ingest draws a progress bar on stderr and still prints the result', { skip: spawnSync('script', ['--version']).status !== 0 && 'needs script(1) for a pseudo-terminal' }, async (t) => {
  const bin = new URL('../../../bin/sitecast.js', import.meta.url).pathname;
  const dir = await tempDir(t);
  await makeTree(join(dir, 'src'));
  const command = [process.execPath, bin, 'content', 'ingest', '--library', join(dir, 'lib'), join(dir, 'src')].map((a) => `'${a}'`).join(' ');
  const r = spawnSync('script', ['-qc', command, '/dev/null'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ingest \[[█░]+\] \d+%/);
  const manifest = /[0-9a-f]{64}/.exec(r.stdout)?.[0] ?? '';
  assert.notEqual(manifest, '');
  // So do pack, unpack and gc.
  const steps = [
    ['pack', '--library', join(dir, 'lib'), manifest, '--out', join(dir, 'v.pkg')],
    ['unpack', '--library', join(dir, 'lib2'), join(dir, 'v.pkg')],
    ['gc', '--library', join(dir, 'lib2'), '--keep', manifest],
  ];
  for (const args of steps) {
    const line = [process.execPath, bin, 'content', ...args].map((a) => `'${a}'`).join(' ');
    const s = spawnSync('script', ['-qc', line, '/dev/null'], { encoding: 'utf8' });
    assert.equal(s.status, 0, s.stdout);
    assert.match(s.stdout, new RegExp(`${args[0] as string} \\[[█░]+\\] \\d+%`));
  }
});
