import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, readFile, readdir, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { verifyLibrary } from '../../src/content/verify.js';
import { createAdminToken, listRefreshRequests } from '../../src/db/index.js';
import { startSite, type SiteHandle } from '../../src/site/server.js';
import { makeTree } from '../helpers/fixtures.js';
import { eventually, newSite } from '../helpers/site.js';

const run = promisify(execFile);
const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

async function api(h: SiteHandle, token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${h.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

interface Status {
  dps: { dp: string; state: string; sourceVersion: number; lastMessage: string | null }[];
}

async function dpStatus(h: SiteHandle, token: string, id: string, dp: string): Promise<Status['dps'][number] | undefined> {
  const s = (await (await api(h, token, 'GET', `/packages/${id}/status`)).json()) as Status;
  return s.dps.find((d) => d.dp === dp);
}

/** Every chunk file of a DP library (chunks/xx/<sha256>). */
async function chunkFiles(library: string): Promise<string[]> {
  const out: string[] = [];
  for (const prefix of await readdir(join(library, 'chunks'))) for (const name of await readdir(join(library, 'chunks', prefix))) out.push(join(library, 'chunks', prefix, name));
  return out.sort();
}

test('redistribute: a DP whose share and library were damaged gets a fresh, verified copy; the request is then cleared', async (t) => {
  const site = await newSite(t);
  const h = await startSite(site.root, { distmgr: { graceMs: 50 } });
  site.defer(() => h.close());
  const admin = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const reader = (await createAdminToken(h.ctx.db, { role: 'read-only', label: 'viewer' })).token;
  const src = join(site.dir, 'src');
  await makeTree(src, 'redistribute');
  for (const name of ['dp1', 'dp2']) assert.equal((await api(h, admin, 'POST', '/dps', { name, path: join(site.dir, name) })).status, 201);
  const { id } = (await (await api(h, admin, 'POST', '/packages', { name: 'R', sourcePath: src })).json()) as { id: string };
  assert.equal((await api(h, admin, 'POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] })).status, 200);
  await eventually('installed on dp1', async () => ((await dpStatus(h, admin, id, 'dp1'))?.state === 'installed' ? true : undefined));

  // Damage: a file of the share changed by hand, one chunk of the DP library flipped, another removed.
  const share = join(site.dir, 'dp1', 'SMSPKG', id);
  await writeFile(join(share, 'README.txt'), 'changed by hand\n');
  const library = join(site.dir, 'dp1', 'library');
  const chunks = await chunkFiles(library);
  assert.ok(chunks.length >= 2);
  const flipped = chunks[0] as string;
  await chmod(flipped, 0o644);
  const bytes = await readFile(flipped);
  bytes[bytes.length - 1] = (bytes[bytes.length - 1] ?? 0) ^ 0xff;
  await writeFile(flipped, bytes);
  await unlink(chunks[1] as string);
  assert.equal(((await (await api(h, admin, 'POST', `/packages/${id}/dps/dp1/validate`, {})).json()) as { ok: boolean }).ok, false);
  assert.ok((await verifyLibrary(library)).bad.length >= 2);

  // Refused, and nothing recorded: a read-only token, an unknown DP, a DP the package is not on, an unknown package, a bad name.
  assert.equal((await api(h, reader, 'POST', `/packages/${id}/dps/dp1/redistribute`)).status, 403);
  const unknownDp = await api(h, admin, 'POST', `/packages/${id}/dps/nope/redistribute`);
  assert.equal(unknownDp.status, 404);
  assert.match(((await unknownDp.json()) as { error: { message: string } }).error.message, /no distribution point CEN\/nope/);
  const notTarget = await api(h, admin, 'POST', `/packages/${id}/dps/dp2/redistribute`);
  assert.equal(notTarget.status, 409);
  assert.equal(((await notTarget.json()) as { error: { code: string } }).error.code, 'SITECAST_E_CONFLICT');
  assert.equal((await api(h, admin, 'POST', `/packages/CEN0FFFF/dps/dp1/redistribute`)).status, 404);
  assert.equal((await api(h, admin, 'POST', `/packages/${id}/dps/..%2Fx/redistribute`)).status, 400);
  assert.equal((await listRefreshRequests(h.ctx.db, id, 'CEN')).size, 0);

  // Through the CLI, as an administrator would.
  const { stdout } = await run(process.execPath, [CLI, 'package', 'redistribute', '--root', site.root, id, '--dp', 'dp1', '--json']);
  const answer = JSON.parse(stdout) as { id: string; site: string; dp: string; requestedAt: string };
  assert.deepEqual({ id: answer.id, site: answer.site, dp: answer.dp }, { id, site: 'CEN', dp: 'dp1' });
  assert.ok(!Number.isNaN(Date.parse(answer.requestedAt)));

  await eventually(
    'redistributed on dp1',
    async () => {
      const s = await dpStatus(h, admin, id, 'dp1');
      return s?.state === 'installed' && s.lastMessage === 'source version 1 redistributed' ? s : undefined;
    },
    20_000,
  );
  const validated = (await (await api(h, admin, 'POST', `/packages/${id}/dps/dp1/validate`, {})).json()) as { ok: boolean; problems: string[] };
  assert.equal(validated.ok, true, validated.problems.join('\n'));
  assert.deepEqual((await verifyLibrary(library)).bad, []);
  assert.equal(await readFile(join(share, 'README.txt'), 'utf8'), await readFile(join(src, 'README.txt'), 'utf8'));
  await eventually('request cleared', async () => ((await listRefreshRequests(h.ctx.db, id, 'CEN')).size === 0 ? true : undefined));
  const messages = (await (await api(h, reader, 'GET', `/status-messages?package=${id}`)).json()) as { messages: { text: string }[] };
  assert.ok(messages.messages.some((m) => m.text.startsWith(`${id} source version 1 redistributed on DP dp1`)));
  // dp2 was never a target: it holds nothing of the package.
  assert.equal(await dpStatus(h, admin, id, 'dp2'), undefined);
});
