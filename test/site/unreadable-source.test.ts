import { test } from 'node:test';
import assert from 'node:assert/strict';
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTree } from '../helpers/fixtures.js';
import { eventually, newSite } from '../helpers/site.js';

const MAIN = new URL('../../src/site/main.js', import.meta.url).pathname;
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

function exited(child: ChildProcess): Promise<number | null> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve(child.exitCode);
    else child.once('exit', (code) => resolve(code));
  });
}

interface PackageStatus {
  sourceProblem?: string;
  dps: { state: string; lastMessage?: string }[];
}

/*
 * An unreadable source needs a site server that permissions apply to: root
 * reads everything, so the server runs here as an unprivileged user
 * (setpriv), on a site root that user owns, as a real process.
 */
test('a source the site server may not read (a folder, a small file, a large file): the package is failed on its DP with a status message, nothing is installed, and the server goes on', { skip: !asRoot && 'needs root to run the site server as another user' }, async (t) => {
  const site = await newSite(t);
  const { root, dir } = site;
  await chmod(dir, 0o755);
  execFileSync('chown', ['-R', `${NOBODY}:${NOBODY}`, root]);
  const dpDir = join(dir, 'dp1');
  await mkdir(dpDir);
  execFileSync('chown', [`${NOBODY}:${NOBODY}`, dpDir]);

  const sources = { folder: join(dir, 'src-folder'), small: join(dir, 'src-small'), large: join(dir, 'src-large') };
  for (const [name, src] of Object.entries(sources)) {
    await makeTree(src, `unreadable-${name}`);
    execFileSync('chmod', ['-R', 'a+rX', src]);
  }
  await chmod(join(sources.folder, 'lib/deep'), 0o700); // a folder it cannot list
  await chmod(join(sources.small, 'README.txt'), 0o600); // a small file it cannot read
  await chmod(join(sources.large, 'lib/big.bin'), 0o600); // the large file, read in blocks on the main thread

  const child = spawn('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', process.execPath, MAIN, root], { stdio: ['ignore', 'ignore', 'inherit'] });
  site.defer(async () => {
    child.kill('SIGKILL');
    await exited(child);
  });
  const url = await eventually('site.url', async () => (await readFile(join(root, 'site.url'), 'utf8').catch(() => undefined))?.trim(), 15_000);
  const token = (await readFile(join(root, 'admin.token'), 'utf8')).trim();
  const api = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  assert.equal((await api('POST', '/dps', { name: 'dp1', path: dpDir })).status, 201);

  for (const [name, src] of Object.entries(sources)) {
    const created = await api('POST', '/packages', { name: `Unreadable ${name}`, sourcePath: src });
    assert.equal(created.status, 201, name);
    const { id } = (await created.json()) as { id: string };
    assert.equal((await api('POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] })).status, 200, name);
    const status = await eventually(`${name}: failed`, async () => {
      const s = (await (await api('GET', `/packages/${id}/status`)).json()) as PackageStatus;
      return s.dps[0]?.state === 'failed' ? s : undefined;
    }, 20_000);
    assert.match(status.dps[0]?.lastMessage ?? '', /EACCES/, name);
    assert.match(status.sourceProblem ?? '', /EACCES/, name);
    assert.ok((status.sourceProblem ?? '').includes(src), `${name}: the problem names the source: ${status.sourceProblem ?? ''}`);
    const messages = (await (await api('GET', `/status-messages?package=${id}&severity=error`)).json()) as { messages: { text: string }[] };
    assert.match(messages.messages[0]?.text ?? '', /failed: .*EACCES.*not installed on dp1/, name);
    await assert.rejects(stat(join(dpDir, 'SMSPKG', id)), { code: 'ENOENT' }, `${name}: no share`);
  }

  // The server is still well: a readable package goes through, then SIGTERM ends it cleanly.
  const fine = join(dir, 'src-fine');
  await makeTree(fine, 'fine');
  execFileSync('chmod', ['-R', 'a+rX', fine]);
  const { id } = (await (await api('POST', '/packages', { name: 'Fine', sourcePath: fine })).json()) as { id: string };
  await api('POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] });
  await eventually('the readable package installed', async () => {
    const s = (await (await api('GET', `/packages/${id}/status`)).json()) as PackageStatus;
    return s.dps[0]?.state === 'installed' ? true : undefined;
  }, 20_000);
  child.kill('SIGTERM');
  assert.equal(await exited(child), 0);
});
