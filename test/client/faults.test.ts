import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { runPass } from '../../src/client/agent.js';
import { registerAgent } from '../../src/client/register.js';
import { clientPaths } from '../../src/client/state.js';
import { listStatusMessages } from '../../src/db/index.js';
import { isSitecastError } from '../../src/errors.js';
import { eventually } from '../helpers/site.js';
import { clientLab, exists } from './lab.js';
import { freePort as deadPort } from '../../src/site/lab-chain.js';

const run = promisify(execFile);
const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

/** A loopback proxy in front of the site that rewrites policy answers (keeping the site's signature header). */
async function tamperingProxy(upstream: string, tamper: (body: string) => string): Promise<{ url: string; server: Server }> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const headers: Record<string, string> = {};
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === 'string' && k !== 'host' && k !== 'content-length') headers[k] = v;
      void fetch(`${upstream}${req.url ?? '/'}`, { method: req.method ?? 'GET', headers, ...(chunks.length > 0 ? { body: Buffer.concat(chunks) } : {}) })
        .then(async (r) => {
          let body = Buffer.from(await r.arrayBuffer());
          if ((req.url ?? '').startsWith('/mp/v1/policy')) body = Buffer.from(tamper(body.toString('utf8')));
          const out: Record<string, string> = {};
          r.headers.forEach((v, k) => {
            if (k !== 'content-length' && k !== 'transfer-encoding' && k !== 'connection') out[k] = v;
          });
          res.writeHead(r.status, out).end(body);
        })
        .catch(() => res.writeHead(502).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

test('a policy whose bytes were changed on the way is refused by the client; nothing runs', async (t) => {
  const lab = await clientLab(t);
  const out = join(lab.site.dir, 'ran.txt');
  const pkg = await lab.makePackage('sig', [{ name: 'Install', commandLine: `sh install.sh ${out}`, maxRunTimeSeconds: 60 }], [{ name: 'DP1' }]);
  await lab.admin('POST', '/api/v1/collections', { name: 'All', rules: ['site:CEN'] });
  await lab.advertise(pkg, 'Install', 'All');
  const proxy = await tamperingProxy(lab.h.url, (body) => body.replace(`sh install.sh ${out}`, `sh install.sh ${out}.evil`));
  lab.site.defer(() => new Promise((r) => proxy.server.close(r)));
  const dir = join(lab.site.dir, 'client-victim');
  await registerAgent(dir, proxy.url, 'victim');
  await assert.rejects(runPass(dir), (err: unknown) => isSitecastError(err, 'SITECAST_E_BAD_SIGNATURE') && /not signed by site CEN/.test(err.message));
  assert.equal(await exists(`${out}.evil`), false);
  assert.equal(await exists(out), false);
  assert.equal(await exists(join(dir, 'work')), false);
});

test('a DP serving a corrupt chunk: fetched from the other DP, the bad one reported', async (t) => {
  const lab = await clientLab(t);
  const pkg = await lab.makePackage('bad', [{ name: 'Install', commandLine: 'cmp payload.bin payload.bin', maxRunTimeSeconds: 60 }], [{ name: 'DP1' }, { name: 'DP2' }]);
  // Corrupt one chunk of DP1's library: same size, other bytes.
  const chunks = join(lab.site.dir, 'dp1', 'library', 'chunks');
  let victim = '';
  let size = 0;
  for (const sub of await readdir(chunks)) {
    for (const name of await readdir(join(chunks, sub))) {
      const data = await readFile(join(chunks, sub, name));
      if (data.length > size) {
        size = data.length;
        victim = join(chunks, sub, name);
      }
    }
  }
  const data = await readFile(victim);
  data[data.length >> 1] = (data[data.length >> 1] ?? 0) ^ 0xff;
  await chmod(victim, 0o644);
  await writeFile(victim, data);

  await lab.admin('POST', '/api/v1/collections', { name: 'All', rules: ['name:*'] });
  const ad = await lab.advertise(pkg, 'Install', 'All');
  const dir = await lab.registerClient('pc-bad-dp');
  const r = await runPass(dir);
  assert.equal(r.advertisements[0]?.outcome, 'succeeded', JSON.stringify(r));
  assert.deepEqual(r.badDps, ['CEN/DP1']);
  const warnings = await listStatusMessages(lab.h.ctx.db, { packageId: pkg, minSeverity: 'warning' });
  assert.ok(warnings.some((m) => /DP CEN\/DP1/.test(m.text) && /SHA-256|decompress/.test(m.text)), JSON.stringify(warnings));
  const status = await lab.admin<{ succeeded: number }>('GET', `/api/v1/advertisements/${ad}/status`);
  assert.equal(status.body.succeeded, 1);
});

test('a DP that is down: the client falls back to the next DP and reports the one that failed', async (t) => {
  const lab = await clientLab(t);
  const port = await deadPort();
  const pkg = await lab.makePackage(
    'down',
    [{ name: 'Install', commandLine: 'test -s payload.bin', maxRunTimeSeconds: 60 }],
    [{ name: 'DP1', url: `http://127.0.0.1:${port}/dp/DP1` }, { name: 'DP2' }],
  );
  await lab.admin('POST', '/api/v1/collections', { name: 'All', rules: ['name:*'] });
  await lab.advertise(pkg, 'Install', 'All');
  const dir = await lab.registerClient('pc-down');
  const r = await runPass(dir);
  assert.equal(r.advertisements[0]?.outcome, 'succeeded', JSON.stringify(r));
  assert.deepEqual(r.badDps, ['CEN/DP1']);
  const warnings = await listStatusMessages(lab.h.ctx.db, { packageId: pkg, minSeverity: 'warning' });
  assert.ok(warnings.some((m) => /DP CEN\/DP1/.test(m.text) && /unreachable/.test(m.text)), JSON.stringify(warnings));
});

test('a program that hangs is killed with its whole process group at its limit and reported failed', async (t) => {
  const lab = await clientLab(t);
  const pidFile = join(lab.site.dir, 'hang.pid');
  const pkg = await lab.makePackage('hang', [{ name: 'Hang', commandLine: `sleep 60 & echo $! > ${pidFile}; wait`, maxRunTimeSeconds: 1 }], [{ name: 'DP1' }]);
  await lab.admin('POST', '/api/v1/collections', { name: 'All', rules: ['name:*'] });
  const ad = await lab.advertise(pkg, 'Hang', 'All');
  const dir = await lab.registerClient('pc-hang');
  const started = Date.now();
  const r = await runPass(dir);
  assert.ok(Date.now() - started < 15_000);
  assert.equal(r.advertisements[0]?.outcome, 'failed');
  assert.match(r.advertisements[0]?.message ?? '', /maximum run time of 1 s/);
  const grandchild = Number((await readFile(pidFile, 'utf8')).trim());
  // Gone, or a zombie waiting for whatever reaps orphans here: either way no longer running.
  await eventually('the grandchild to be killed', async () => {
    const stat = await readFile(`/proc/${grandchild}/stat`, 'utf8').catch(() => '');
    return stat === '' || /^\d+ \(.*\) Z/.test(stat) ? true : undefined;
  }, 5000);
  const status = await lab.admin<{ failed: number; clients: { state: string }[] }>('GET', `/api/v1/advertisements/${ad}/status`);
  assert.equal(status.body.failed, 1);
  const errors = await listStatusMessages(lab.h.ctx.db, { packageId: pkg, minSeverity: 'error' });
  assert.ok(errors.some((m) => /failed/.test(m.text) && /maximum run time/.test(m.text)));
  // Failed is final for this advertisement too: it is not started again.
  assert.equal((await runPass(dir)).advertisements[0]?.outcome, 'already-run');
});

test('the MP refuses unregistered clients, unknown ids and requests signed by another key (401)', async (t) => {
  const lab = await clientLab(t);
  const url = `${lab.h.url}/mp/v1/policy`;
  const none = await fetch(url);
  assert.equal(none.status, 401);
  assert.equal(((await none.json()) as { error: { code: string } }).error.code, 'SITECAST_E_UNAUTHORIZED');
  const time = new Date().toISOString();
  const unknown = await fetch(url, {
    headers: { 'x-sitecast-client': 'GUID:00000000-0000-4000-8000-000000000000', 'x-sitecast-time': time, 'x-sitecast-signature': 'AAAA' },
  });
  assert.equal(unknown.status, 401);
  // A registered id, but the request is signed by another client's key.
  const a = await lab.registerClient('a');
  const b = await lab.registerClient('b');
  const idA = (JSON.parse(await readFile(clientPaths(a).identity, 'utf8')) as { clientId: string }).clientId;
  await writeFile(clientPaths(a).key, await readFile(clientPaths(b).key));
  await assert.rejects(runPass(a), (err: unknown) => isSitecastError(err, 'SITECAST_E_BAD_SIGNATURE'));
  const status = await fetch(`${lab.h.url}/mp/v1/status`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-sitecast-client': idA }, body: '{}' });
  assert.equal(status.status, 401);
  const manifest = await fetch(`${lab.h.url}/mp/v1/manifests/${'0'.repeat(64)}`);
  assert.equal(manifest.status, 401);
});

test('approval: a new client gets no policy until an administrator approves it', async (t) => {
  const lab = await clientLab(t);
  assert.equal((await lab.admin('POST', '/api/v1/client-settings', { requireApproval: true })).status, 200);
  const dir = await lab.registerClient('newbie');
  assert.equal((await runPass(dir)).approved, false);
  assert.equal((await lab.admin('POST', '/api/v1/clients/newbie/approve')).status, 200);
  // The MP notices the change within its cache check interval (250 ms).
  await eventually('the approved client to get its policy', async () => ((await runPass(dir)).approved ? true : undefined), 5000);
});

test('a client in another site\'s boundary is told its site and MP', async (t) => {
  const lab = await clientLab(t);
  const added = await lab.admin('POST', '/api/v1/boundaries', { name: 'Branch', range: '127.0.0.0/8', site: 'SEC', mpUrl: 'http://127.0.0.1:9/' });
  assert.equal(added.status, 201);
  const { register } = await import('../../src/client/mp-client.js');
  const { ensureKeys } = await import('../../src/client/state.js');
  const keys = await ensureKeys(join(lab.site.dir, 'client-mover'));
  assert.deepEqual(await register(lab.h.url, 'mover', keys), { status: 'moved', site: 'SEC', mp: 'http://127.0.0.1:9/' });
  const badRange = await lab.admin('POST', '/api/v1/boundaries', { name: 'Bad', range: '10.0.0.0/99', site: 'SEC' });
  assert.equal(badRange.status, 400);
});

test('a missing or corrupt state folder is a clear error (SITECAST_E_CLIENT_STATE), from the CLI too', async (t) => {
  const lab = await clientLab(t);
  const missing = join(lab.site.dir, 'no-such-client');
  await assert.rejects(runPass(missing), (err: unknown) => isSitecastError(err, 'SITECAST_E_CLIENT_STATE') && /does not exist/.test(err.message));
  const cli = (await run(process.execPath, [CLI, 'client', 'run', '--state', missing, '--once', '--json']).then(
    (ok) => ({ ...ok, code: 0 }),
    (e: { code: number; stdout: string }) => e,
  )) as { code: number; stdout: string };
  assert.equal(cli.code, 1);
  assert.equal((JSON.parse(cli.stdout) as { error: { code: string } }).error.code, 'SITECAST_E_CLIENT_STATE');

  const dir = await lab.registerClient('broken');
  const identity = await readFile(clientPaths(dir).identity, 'utf8');
  await writeFile(clientPaths(dir).identity, identity.slice(0, 40));
  await assert.rejects(runPass(dir), (err: unknown) => isSitecastError(err, 'SITECAST_E_CLIENT_STATE') && /client\.json is not JSON/.test(err.message));
  await writeFile(clientPaths(dir).identity, identity);
  await writeFile(clientPaths(dir).key, 'not a key');
  await assert.rejects(runPass(dir), (err: unknown) => isSitecastError(err, 'SITECAST_E_CLIENT_STATE') && /client\.key/.test(err.message));
  const empty = join(lab.site.dir, 'empty-state');
  await mkdir(empty);
  await assert.rejects(runPass(empty), (err: unknown) => isSitecastError(err, 'SITECAST_E_CLIENT_STATE') && /client\.key is missing/.test(err.message));
});
