import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { listStatusMessages } from '../../src/db/index.js';
import { initSite } from '../../src/site/index.js';
import { startSite } from '../../src/site/server.js';
import { makeTree } from '../helpers/fixtures.js';
import { postgresBinDir, startThrowAwayServer } from '../helpers/postgres.js';
import { eventually } from '../helpers/site.js';

interface Status {
  dps: { dp: string; state: string; sourceVersion: number }[];
}

test('a site on PostgreSQL whose server stops and comes back: the API says 503 meanwhile, the process lives, nothing is lost, and the work goes on', { skip: postgresBinDir() === undefined ? 'needs the PostgreSQL server binaries' : false, timeout: 90_000 }, async (t) => {
  const server = await startThrowAwayServer();
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-pg-outage-'));
  const root = join(dir, 'cen');
  await initSite(root, { code: 'CEN', listen: '127.0.0.1:0', database: server.url });
  const h = await startSite(root, { dbmon: { pollMs: 100 }, distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 1000 }, rescanMs: 300 } });
  // The site first, then its database server, then its folder.
  t.after(async () => {
    await h.close().catch(() => undefined);
    server.stop();
    await rm(dir, { recursive: true, force: true });
  });
  const token = (await readFile(join(root, 'admin.token'), 'utf8')).trim();
  const call = async (method: string, path: string, body?: unknown): Promise<Response> =>
    fetch(`${h.url}/api/v1${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
  const installed = async (id: string, version: number): Promise<boolean> => {
    const r = await call('GET', `/packages/${id}/status`);
    if (r.status !== 200) return false;
    const s = (await r.json()) as Status;
    return s.dps.length === 1 && s.dps.every((d) => d.state === 'installed' && d.sourceVersion === version);
  };

  for (const name of ['one', 'two']) await makeTree(join(dir, name), name);
  assert.equal((await call('POST', '/dps', { name: 'dp1', path: join(dir, 'dp1') })).status, 201);
  const one = ((await (await call('POST', '/packages', { name: 'One', sourcePath: join(dir, 'one') })).json()) as { id: string }).id;
  assert.equal((await call('POST', `/packages/${one}/distribute`, { dps: ['CEN/dp1'] })).status, 200);
  await eventually('One installed', async () => ((await installed(one, 1)) ? true : undefined), 20_000);

  // The package is updated, and the database goes away at once, while Distribution Manager works on it.
  assert.equal((await call('POST', `/packages/${one}/update`)).status, 200);
  server.pause();
  const during = await call('GET', `/packages/${one}/status`);
  assert.equal(during.status, 503);
  const error = ((await during.json()) as { error: { code: string; message: string } }).error;
  assert.equal(error.code, 'SITECAST_E_DB');
  assert.ok(!error.message.includes(token));
  // A write is refused whole: the caller knows it did not happen.
  const refused = await call('POST', '/packages', { name: 'Two', sourcePath: join(dir, 'two') });
  assert.equal(refused.status, 503);
  await new Promise((r) => setTimeout(r, 1500));
  server.resume();

  // The update that was under way when the database went away is finished, and new work flows.
  await eventually('One at source version 2', async () => ((await installed(one, 2)) ? true : undefined), 30_000);
  const two = await eventually('the API writes again', async () => {
    const r = await call('POST', '/packages', { name: 'Two', sourcePath: join(dir, 'two') });
    return r.status === 201 ? ((await r.json()) as { id: string }).id : undefined;
  });
  assert.equal((await call('POST', `/packages/${two}/distribute`, { dps: ['CEN/dp1'] })).status, 200);
  await eventually('Two installed', async () => ((await installed(two, 1)) ? true : undefined), 20_000);
  // Exactly two packages: the refused write left nothing behind.
  const list = (await (await call('GET', '/packages')).json()) as { packages: { id: string }[] };
  assert.deepEqual(list.packages.map((p) => p.id).sort(), [one, two].sort());
  const said = await eventually('a status message about the outage', async () => (await listStatusMessages(h.ctx.db, { component: 'dbmon' })).find((m) => /could not be read/.test(m.text)), 10_000);
  assert.equal(said.severity, 'warning');
});
