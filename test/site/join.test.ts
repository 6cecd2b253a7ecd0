import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import type { Io } from '../../src/cli/output.js';
import { createJoinToken, getSiteNode, listSiteNodes } from '../../src/db/hierarchy.js';
import { openSiteDb } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { initSite } from '../../src/site/init.js';
import { initChildSite } from '../../src/site/join.js';
import { startSite } from '../../src/site/server.js';
import { FAST, api, freePort } from '../helpers/hierarchy.js';

async function central(t: { after: (fn: () => Promise<void>) => void }): Promise<{ dir: string; root: string; token: string; handle: Awaited<ReturnType<typeof startSite>> }> {
  // One hook, so the site stops (and its components write their last log lines) before its folder goes.
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-join-'));
  const running: { handle?: Awaited<ReturnType<typeof startSite>> } = {};
  t.after(async () => {
    await running.handle?.close();
    await rm(dir, { recursive: true, force: true });
  });
  const root = join(dir, 'cen');
  const token = (await initSite(root, { code: 'CEN', listen: '127.0.0.1:0' })).adminToken;
  const handle = await startSite(root, FAST);
  running.handle = handle;
  return { dir, root, token, handle };
}

async function invite(cen: Awaited<ReturnType<typeof central>>, child: string): Promise<string> {
  const r = await api(cen, 'POST', '/api/v1/site/invitations', { child });
  assert.equal(r.status, 201, JSON.stringify(r.json));
  return (r.json as { token: string }).token;
}

async function absent(path: string): Promise<boolean> {
  return stat(path).then(
    () => false,
    () => true,
  );
}

function refusedWith(pattern: RegExp): (err: unknown) => boolean {
  return (err) => {
    assert.ok(isSitecastError(err, 'SITECAST_E_JOIN_REFUSED'), `expected SITECAST_E_JOIN_REFUSED, got ${String(err)}`);
    assert.match(err.message, pattern);
    return true;
  };
}

test('a child joins with a one-time token: both sides record each other, the token is stored only hashed', async (t) => {
  const cen = await central(t);
  const token = await invite(cen, 'PRI');
  assert.match(token, /^scj_[A-Za-z0-9_-]{43}$/);
  const root = join(cen.dir, 'pri');
  const listen = `127.0.0.1:${await freePort()}`;
  const joined = await initChildSite(root, { code: 'PRI', listen, parent: cen.handle.url, joinToken: token });
  assert.equal(joined.parent.code, 'CEN');
  assert.equal(joined.parent.url, cen.handle.url);

  const atParent = await getSiteNode(cen.handle.ctx.db, 'PRI');
  assert.equal(atParent?.parentCode, 'CEN');
  assert.equal(atParent?.publicKey, await readFile(join(root, 'keys', 'site.pub'), 'utf8'));
  assert.equal(atParent?.url, `http://${listen}`);

  const db = await openSiteDb({ kind: 'sqlite', path: join(root, 'site.db') });
  try {
    const sites = await listSiteNodes(db);
    const self = sites.find((s) => s.isLocal);
    assert.equal(self?.code, 'PRI');
    assert.equal(self?.parentCode, 'CEN');
    const parent = sites.find((s) => s.code === 'CEN');
    assert.equal(parent?.publicKey, cen.handle.ctx.keys.publicKeyPem);
    assert.equal(parent?.url, cen.handle.url);
  } finally {
    await db.close();
  }
  const stored = await readFile(join(cen.root, 'site.db'));
  assert.ok(!stored.includes(Buffer.from(token.slice(4))), 'the token itself is not in the database');
});

test('a join token used twice, expired, or for another site code is refused, and the new root is removed', async (t) => {
  const cen = await central(t);
  const listen = (): Promise<string> => freePort().then((p) => `127.0.0.1:${p}`);

  const once = await invite(cen, 'PRI');
  await initChildSite(join(cen.dir, 'pri'), { code: 'PRI', listen: await listen(), parent: cen.handle.url, joinToken: once });
  const again = join(cen.dir, 'pri2');
  await assert.rejects(initChildSite(again, { code: 'PRI', listen: await listen(), parent: cen.handle.url, joinToken: once }), refusedWith(/already used/));
  assert.ok(await absent(again), 'a refused join leaves no site root behind');

  const expired = await createJoinToken(cen.handle.ctx.db, { child: 'OLD', expiresAt: new Date(Date.now() - 1000) });
  const oldRoot = join(cen.dir, 'old');
  await assert.rejects(initChildSite(oldRoot, { code: 'OLD', listen: await listen(), parent: cen.handle.url, joinToken: expired.token }), refusedWith(/expired/));
  assert.ok(await absent(oldRoot));

  const forAbc = await invite(cen, 'ABC');
  await assert.rejects(
    initChildSite(join(cen.dir, 'xyz'), { code: 'XYZ', listen: await listen(), parent: cen.handle.url, joinToken: forAbc }),
    refusedWith(/issued for site ABC, not XYZ/),
  );
  await assert.rejects(initChildSite(join(cen.dir, 'bad'), { code: 'BAD', listen: await listen(), parent: cen.handle.url, joinToken: 'scj_' + 'x'.repeat(43) }), refusedWith(/not known/));
  // The refusals changed nothing: the token for ABC still works, once.
  await initChildSite(join(cen.dir, 'abc'), { code: 'ABC', listen: await listen(), parent: cen.handle.url, joinToken: forAbc });
  const codes = (await listSiteNodes(cen.handle.ctx.db)).map((s) => s.code);
  assert.deepEqual(codes, ['ABC', 'CEN', 'PRI']);

  // The endpoint answers the refusal as HTTP 403 with the code.
  const raw = await fetch(`${cen.handle.url}/site/v1/join`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ code: 'PRI', name: 'x', url: 'http://127.0.0.1:1', publicKey: cen.handle.ctx.keys.publicKeyPem, token: once }),
  });
  assert.equal(raw.status, 403);
  assert.equal(((await raw.json()) as { error: { code: string } }).error.code, 'SITECAST_E_JOIN_REFUSED');
});

test('CLI: site invite --json prints the token; site init --parent --join-token joins', async (t) => {
  const cen = await central(t);
  let stdout = '';
  let stderr = '';
  const io: Io = { stdout: (s) => void (stdout += s), stderr: (s) => void (stderr += s), interactive: false, env: {} };
  assert.equal(await main(['site', 'invite', '--root', cen.root, '--child', 'PRI', '--json'], io), 0, stderr);
  const { token } = JSON.parse(stdout.trim()) as { token: string };
  assert.match(token, /^scj_/);
  stdout = '';
  const root = join(cen.dir, 'pri');
  const code = await main(['site', 'init', root, '--code', 'PRI', '--parent', cen.handle.url, '--join-token', token, '--listen', `127.0.0.1:${await freePort()}`, '--json'], io);
  assert.equal(code, 0, stderr);
  const out = JSON.parse(stdout.trim()) as { site: string; parent: string };
  assert.equal(out.site, 'PRI');
  assert.equal(out.parent, 'CEN');
  stdout = '';
  stderr = '';
  const reused = await main(['site', 'init', join(cen.dir, 'pri-again'), '--code', 'PRI', '--parent', cen.handle.url, '--join-token', token, '--json'], io);
  assert.equal(reused, 1);
  assert.equal((JSON.parse(stdout.trim()) as { error: { code: string } }).error.code, 'SITECAST_E_JOIN_REFUSED');
  assert.ok(!stderr.includes(token.slice(4)), 'the token is not echoed');
});
