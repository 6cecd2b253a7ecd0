import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { getEventListeners } from 'node:events';
import { runLoop, runPass } from '../../src/client/agent.js';
import { listStatusMessages } from '../../src/db/index.js';
import { clientLab } from './lab.js';

const run = promisify(execFile);
const CLI = new URL('../../../bin/sitecast.js', import.meta.url).pathname;

test('register (CLI process), policy, download, run, report: succeeded end to end; once per advertisement; rerun', async (t) => {
  const lab = await clientLab(t);
  const out = join(lab.site.dir, 'ran.txt');
  const pkg = await lab.makePackage('a', [{ name: 'Install', commandLine: `sh install.sh ${out}`, maxRunTimeSeconds: 60 }], [{ name: 'DP1' }]);

  const stateDir = join(lab.site.dir, 'client-pc1');
  const reg = await run(process.execPath, [CLI, 'client', 'register', '--mp', lab.h.url, '--state', stateDir, '--name', 'pc1', '--json']);
  const identity = JSON.parse(reg.stdout) as { clientId: string; site: string; approved: boolean };
  assert.match(identity.clientId, /^GUID:/);
  assert.equal(identity.site, 'CEN');
  assert.equal(identity.approved, true);
  assert.equal((await stat(join(stateDir, 'client.key'))).mode & 0o777, 0o600);

  const col = await lab.admin('POST', '/api/v1/collections', { name: 'Workstations', rules: ['name:pc*'] });
  assert.equal(col.status, 201);
  const ad = await lab.advertise(pkg, 'Install', 'Workstations');

  const first = await runPass(stateDir);
  assert.equal(first.advertisements.length, 1);
  assert.equal(first.advertisements[0]?.outcome, 'succeeded', JSON.stringify(first));
  assert.equal(first.advertisements[0]?.exitCode, 0);
  // The program ran in the materialised package: it counted the payload's bytes.
  assert.equal((await readFile(out, 'utf8')).trim(), '1500000');

  const status = await lab.admin<{ targeted: number; succeeded: number; failed: number; clients: { client: string; state: string; exitCode: number | null }[] }>(
    'GET',
    `/api/v1/advertisements/${ad}/status`,
  );
  assert.equal(status.status, 200);
  assert.equal(status.body.succeeded, 1);
  assert.equal(status.body.targeted, 0);
  assert.deepEqual(status.body.clients.map((c) => [c.client, c.state, c.exitCode]), [[identity.clientId, 'succeeded', 0]]);
  const messages = await listStatusMessages(lab.h.ctx.db, { packageId: pkg, component: 'mp' });
  assert.ok(messages.some((m) => m.text.includes('succeeded') && m.text.includes(ad)), JSON.stringify(messages));

  // Once per advertisement: a second pass does not run it again.
  await run('sh', ['-c', `rm ${out}`]);
  const second = await runPass(stateDir);
  assert.equal(second.advertisements[0]?.outcome, 'already-run');
  await assert.rejects(stat(out));

  // Unless asked to: "run again" runs it once more, from the cache (no chunk fetched again).
  assert.equal((await lab.admin('POST', `/api/v1/advertisements/${ad}/rerun`)).status, 200);
  const cli = await run(process.execPath, [CLI, 'client', 'run', '--state', stateDir, '--once', '--json']);
  const third = JSON.parse(cli.stdout) as { advertisements: { outcome: string }[] };
  assert.equal(third.advertisements[0]?.outcome, 'succeeded');
  assert.equal((await readFile(out, 'utf8')).trim(), '1500000');
  const log = await readFile(join(stateDir, 'logs', 'agent.log'), 'utf8');
  assert.match(log, /0 chunks fetched, \d+ cached/);

  // The admin CLI's view of the same advertisement.
  const cliStatus = await run(process.execPath, [CLI, 'advertisement', 'status', '--root', lab.site.root, ad, '--json']);
  const view = JSON.parse(cliStatus.stdout) as Record<string, unknown>;
  assert.deepEqual(Object.keys(view), ['targeted', 'received', 'running', 'succeeded', 'failed', 'clients']);
  assert.equal(view.succeeded, 1);
});

test('a client outside the collection gets nothing; an expired or not yet available advertisement is not offered', async (t) => {
  const lab = await clientLab(t);
  const pkg = await lab.makePackage('b', [{ name: 'Install', commandLine: 'true', maxRunTimeSeconds: 60 }], [{ name: 'DP1' }]);
  const inside = await lab.registerClient('lab-1');
  const outside = await lab.registerClient('other');
  await lab.admin('POST', '/api/v1/collections', { name: 'Lab', members: ['lab-1'] });
  await lab.advertise(pkg, 'Install', 'Lab');
  const later = await lab.admin('POST', '/api/v1/advertisements', { packageId: pkg, program: 'Install', collection: 'Lab', available: new Date(Date.now() + 3600_000).toISOString() });
  assert.equal(later.status, 201);
  assert.equal((await runPass(outside)).advertisements.length, 0);
  const r = await runPass(inside);
  assert.deepEqual(r.advertisements.map((a) => a.outcome), ['succeeded']);
  const bad = await lab.admin<{ error: { code: string } }>('POST', '/api/v1/advertisements', { packageId: pkg, program: 'Nope', collection: 'Lab' });
  assert.equal(bad.status, 404);
  const badRule = await lab.admin<{ error: { code: string } }>('POST', '/api/v1/collections', { name: 'X', rules: ['colour:red'] });
  assert.equal(badRule.status, 400);
});

test('the agent loop: passes until its signal aborts, and leaves no abort listener behind per pass', async (t) => {
  const lab = await clientLab(t);
  const client = await lab.registerClient('loop-1');
  const stop = new AbortController();
  let passes = 0;
  let listenersAtLastPass = -1;
  const errors: unknown[] = [];
  const loop = runLoop(client, {
    intervalSeconds: 0.005,
    signal: stop.signal,
    onPass: () => {
      passes += 1;
      if (passes < 15) return;
      listenersAtLastPass = getEventListeners(stop.signal, 'abort').length;
      stop.abort();
    },
    onError: (err) => errors.push(err),
  });
  await loop;
  assert.deepEqual(errors, []);
  assert.equal(passes, 15);
  // One listener a pass piled up before (Node warned of a leak after ten): none may outlive its wait.
  assert.equal(listenersAtLastPass, 0);
  assert.equal(getEventListeners(stop.signal, 'abort').length, 0);
});
