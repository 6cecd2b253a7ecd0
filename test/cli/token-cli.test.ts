import { test } from 'node:test';
import assert from 'node:assert/strict';
import { listAdminTokens } from '../../src/db/index.js';
import { startSite } from '../../src/site/server.js';
import { newSite } from '../helpers/site.js';
import { runCli } from '../helpers/cli.js';

const run = runCli;

interface Issued {
  id: string;
  role: string;
  label: string | null;
  token: string;
}

test('token create / list / revoke: a read-only token looks but cannot act, a revoked one is refused at once, the last admin token stays', async (t) => {
  const site = await newSite(t, 'CEN');
  const running = await startSite(site.root, { listen: { host: '127.0.0.1', port: 0 } });
  site.defer(() => running.close());
  const root = site.root;

  const created = await run(['token', 'create', '--root', root, '--role', 'read-only', '--label', 'dashboard', '--json']);
  assert.equal(created.code, 0, created.stderr);
  const viewer = JSON.parse(created.stdout) as Issued;
  assert.equal(viewer.role, 'read-only');
  assert.equal(viewer.label, 'dashboard');
  assert.match(viewer.token, /^sct_/);
  const human = await run(['token', 'create', '--root', root, '--role', 'admin']);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /shown only this once/);

  // The list shows ids, roles and labels, never a secret.
  const listed = await run(['token', 'list', '--root', root, '--json']);
  assert.equal(listed.code, 0, listed.stderr);
  const tokens = (JSON.parse(listed.stdout) as { tokens: { id: string; role: string; label: string | null }[] }).tokens;
  assert.equal(tokens.length, 3);
  assert.ok(tokens.some((x) => x.id === viewer.id && x.role === 'read-only' && x.label === 'dashboard'));
  assert.ok(!listed.stdout.includes('sct_'), 'no secret in the list');
  assert.match((await run(['token', 'list', '--root', root])).stdout, /dashboard/);

  // The read-only token reads, and may not act (403): it cannot issue itself an admin token or list tokens.
  const asViewer = { SITECAST_URL: running.url, SITECAST_TOKEN: viewer.token };
  assert.equal((await run(['package', 'list', '--json'], asViewer)).code, 0);
  const escalate = await run(['token', 'create', '--role', 'admin'], asViewer);
  assert.equal(escalate.code, 1);
  assert.match(escalate.stderr, /SITECAST_E_FORBIDDEN/);
  assert.match(escalate.stderr, /changes the site/);
  assert.match((await run(['token', 'list'], asViewer)).stderr, /SITECAST_E_FORBIDDEN: token .* is read-only; GET \/api\/v1\/tokens is for admin tokens only/);

  // Bad input: an unknown role, a malformed id, an unknown id; nothing changes.
  const badRole = await run(['token', 'create', '--root', root, '--role', 'root']);
  assert.equal(badRole.code, 2, badRole.stderr);
  assert.match(badRole.stderr, /role/);
  assert.equal((await run(['token', 'revoke', '--root', root, 'nothex'])).code, 2);
  const unknown = await run(['token', 'revoke', '--root', root, 'abcdefabcdef']);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /no token abcdefabcdef/);
  assert.equal((await listAdminTokens(running.ctx.db)).length, 3);

  // Revoked: refused at once.
  const revoked = await run(['token', 'revoke', '--root', root, viewer.id, '--json']);
  assert.equal(revoked.code, 0, revoked.stderr);
  assert.deepEqual(JSON.parse(revoked.stdout), { id: viewer.id, revoked: true });
  const after = await run(['package', 'list'], asViewer);
  assert.equal(after.code, 1);
  assert.match(after.stderr, /SITECAST_E_UNAUTHORIZED/);

  // Two admin tokens: one may go; the last may not.
  const admins = (await listAdminTokens(running.ctx.db)).filter((x) => x.role === 'admin');
  assert.equal(admins.length, 2);
  const second = JSON.parse((await run(['token', 'list', '--root', root, '--json'])).stdout) as { tokens: { id: string; role: string }[] };
  const newest = second.tokens.filter((x) => x.role === 'admin').at(-1)?.id as string;
  assert.equal((await run(['token', 'revoke', '--root', root, newest])).code, 0);
  const first = (await listAdminTokens(running.ctx.db)).find((x) => x.role === 'admin')?.id as string;
  const last = await run(['token', 'revoke', '--root', root, first]);
  assert.equal(last.code, 1);
  assert.match(last.stderr, /SITECAST_E_CONFLICT.*last admin token/);
  assert.equal((await listAdminTokens(running.ctx.db)).filter((x) => x.role === 'admin').length, 1);
});
