import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runPass } from '../../src/client/agent.js';
import { registerAgent } from '../../src/client/register.js';
import { clientPaths, identitySchema } from '../../src/client/state.js';
import { isSitecastError } from '../../src/errors.js';
import { keyFingerprint } from '../../src/formats/client-protocol.js';
import { startSite } from '../../src/site/server.js';
import { newSite } from '../helpers/site.js';
import { clientLab } from './lab.js';

const run = promisify(execFile);
const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

async function cli(args: string[]): Promise<CliResult> {
  return run(process.execPath, [CLI, ...args]).then(
    (ok) => ({ code: 0, stdout: ok.stdout, stderr: ok.stderr }),
    (e: { code: number; stdout: string; stderr: string }) => ({ code: e.code, stdout: e.stdout, stderr: e.stderr }),
  );
}

const exists = (path: string): Promise<boolean> => stat(path).then(() => true, () => false);

test('client register --site-key: the site key is checked against the pinned fingerprint; a wrong one saves nothing and leaves an earlier registration as it was', async (t) => {
  const lab = await clientLab(t);
  const site = await lab.admin<{ code: string; keyFingerprint: string }>('GET', '/api/v1/site');
  const pin = site.body.keyFingerprint;
  assert.equal(pin, keyFingerprint(lab.h.ctx.keys.publicKeyPem), 'GET /site shows the fingerprint of the site key');
  const wrong = `sha256:${'0'.repeat(64)}`;

  const fresh = join(lab.site.dir, 'client-pinned');
  const refused = await cli(['client', 'register', '--mp', lab.h.url, '--state', fresh, '--name', 'pc1', '--site-key', wrong, '--json']);
  assert.equal(refused.code, 1, refused.stderr);
  const error = (JSON.parse(refused.stdout) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, 'SITECAST_E_UNTRUSTED_KEY');
  assert.match(error.message, new RegExp(`answered for site CEN with key ${pin}, which is not a key this client was told to trust`));
  assert.equal(await exists(clientPaths(fresh).identity), false, 'no registration saved');

  const malformed = await cli(['client', 'register', '--mp', lab.h.url, '--state', fresh, '--site-key', 'abc']);
  assert.equal(malformed.code, 2, malformed.stderr);
  assert.match(malformed.stderr, /--site-key: .*sha256: and 64 hex digits/);

  const ok = await cli(['client', 'register', '--mp', lab.h.url, '--state', fresh, '--name', 'pc1', '--site-key', wrong, '--site-key', pin, '--json']);
  assert.equal(ok.code, 0, ok.stderr);
  const out = JSON.parse(ok.stdout) as { site: string; siteKey: string; siteKeyPinned: boolean };
  assert.deepEqual([out.site, out.siteKey, out.siteKeyPinned], ['CEN', pin, true]);
  const saved = identitySchema.parse(JSON.parse(await readFile(clientPaths(fresh).identity, 'utf8')));
  assert.deepEqual(saved.trustedSiteKeys, [wrong, pin]);
  assert.equal((await runPass(fresh)).site, 'CEN', 'the pinned client polls as any other');

  // Registering again with a key that does not match: refused, and the registration it has stays.
  const before = await readFile(clientPaths(fresh).identity, 'utf8');
  await assert.rejects(registerAgent(fresh, lab.h.url, 'pc1', [wrong]), (err: unknown) => isSitecastError(err, 'SITECAST_E_UNTRUSTED_KEY'));
  assert.equal(await readFile(clientPaths(fresh).identity, 'utf8'), before);

  // Without --site-key: trusted on first use, and said so.
  const tofu = await cli(['client', 'register', '--mp', lab.h.url, '--state', join(lab.site.dir, 'client-tofu'), '--name', 'pc2']);
  assert.equal(tofu.code, 0, tofu.stderr);
  assert.match(tofu.stdout, new RegExp(`site key ${pin} \\(trusted on first use; pin it with --site-key\\)`));
});

test('a pinned client sent on to another site by its boundary moves only when that site\'s key is pinned too', async (t) => {
  const lab = await clientLab(t);
  const other = await newSite(t, 'SEC');
  const sec = await startSite(other.root, {});
  other.defer(() => sec.close());
  const cenKey = keyFingerprint(lab.h.ctx.keys.publicKeyPem);
  const secKey = keyFingerprint(sec.ctx.keys.publicKeyPem);

  const onlyCen = join(lab.site.dir, 'client-only-cen');
  await registerAgent(onlyCen, lab.h.url, 'mover1', [cenKey]);
  const both = join(lab.site.dir, 'client-both');
  await registerAgent(both, lab.h.url, 'mover2', [cenKey, secKey]);
  assert.equal((await lab.admin('POST', '/api/v1/boundaries', { name: 'Branch', range: '127.0.0.0/8', site: 'SEC', mpUrl: sec.url })).status, 201);

  await runPass(onlyCen);
  const stayed = identitySchema.parse(JSON.parse(await readFile(clientPaths(onlyCen).identity, 'utf8')));
  assert.equal(stayed.site, 'CEN', 'SEC\'s key is not pinned: the client stays');
  const log = await readFile(join(onlyCen, 'logs', 'agent.log'), 'utf8');
  assert.match(log, new RegExp(`not moving to site SEC: .* with key ${secKey}, which is not a key this client was told to trust`));

  await runPass(both);
  const moved = identitySchema.parse(JSON.parse(await readFile(clientPaths(both).identity, 'utf8')));
  assert.deepEqual([moved.site, moved.mp, moved.trustedSiteKeys], ['SEC', sec.url, [cenKey, secKey]], 'moved, still pinned');
});
