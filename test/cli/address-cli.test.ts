import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { startSite } from '../../src/site/server.js';
import { writeSendRequest } from '../../src/formats/srq.js';
import { newSite } from '../helpers/site.js';
import { runCli } from '../helpers/cli.js';

const run = runCli;

test('address set and address status keep their contract; a bad window or rate is refused whole', async (t) => {
  const site = await newSite(t, 'CEN');
  const running = await startSite(site.root, { listen: { host: '127.0.0.1', port: 0 } });
  site.defer(() => running.close());
  const root = site.root;

  const set = await run(['address', 'set', '--root', root, '--to', 'PRI', '--window', 'all 00-24 closed', '--window', 'sat,sun 22-06 high', '--rate', '512KB/s', '--rate', '09-17 128KB/s', '--max-concurrent', '3', '--retries', '4', '--retry-delay', '2', '--json']);
  assert.equal(set.code, 0, set.stderr);
  const view = JSON.parse(set.stdout) as { to: string; schedule: string[]; rateLimit: (number | null)[]; maxConcurrent: number; retries: number; retryDelay: number; sender: string };
  assert.equal(view.to, 'PRI');
  assert.equal(view.sender, 'http');
  assert.equal(view.schedule[0], 'hhhhhh' + 'c'.repeat(18), 'Monday: closed but for the Sunday night spilling past midnight');
  assert.equal(view.schedule[5], 'c'.repeat(22) + 'hh', 'Saturday from 22 h');
  assert.equal(view.schedule[6], 'hhhhhh' + 'c'.repeat(16) + 'hh', 'Sunday: Saturday night spills into it, and its own night');
  assert.deepEqual(view.rateLimit.slice(8, 18), [512, 128, 128, 128, 128, 128, 128, 128, 128, 512]);
  assert.equal(view.maxConcurrent, 3);
  assert.equal(view.retries, 4);
  assert.equal(view.retryDelay, 2);

  // Two requests wait behind the closed window.
  for (const id of ['r1', 'r2']) {
    const data = Buffer.from(`bundle ${id}`);
    await writeFile(join(running.ctx.paths.scheduleToSend, `${id}.bundle`), data);
    await writeSendRequest(running.ctx.paths, { sender: 'http', id, to: 'PRI', priority: 'low', file: `${id}.bundle`, bytes: data.length, sha256: createHash('sha256').update(data).digest('hex'), kind: 'package', package: 'CEN00001' });
  }
  const status = await run(['address', 'status', '--root', root, '--json']);
  assert.equal(status.code, 0, status.stderr);
  assert.deepEqual(JSON.parse(status.stdout), [{ to: 'PRI', queued: 2, sending: 0, bytesSent: 0, rate: 0, lastError: null }]);
  const human = await run(['address', 'status', '--root', root]);
  assert.match(human.stdout, /PRI\s+2\s+0\s+0/);

  // Bad values: a usage error naming the value, and the address as it was.
  for (const [flag, value, named] of [
    ['--window', 'mon-fry 08-18 high', /mon-fry/],
    ['--window', 'mon 25-26 all', /25-26/],
    ['--window', 'mon 08-18 sometimes', /sometimes/],
    ['--rate', 'fast', /fast/],
    ['--rate', '0KB/s', /0KB\/s/],
    ['--pulse', '64', /64/],
  ] as const) {
    const bad = await run(['address', 'set', '--root', root, '--to', 'PRI', '--max-concurrent', '9', flag, value, '--json']);
    assert.equal(bad.code, 2, `${flag} ${value}`);
    assert.match(bad.stderr, /SITECAST_E_USAGE/);
    assert.match(bad.stderr, named);
  }
  const token = (await readFile(join(root, 'admin.token'), 'utf8')).trim();
  const api = async (method: string, path: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> => {
    const res = await fetch(`${running.url}${path}`, { method, headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) }, ...(body === undefined ? {} : { body: JSON.stringify(body) }) });
    return { status: res.status, json: (await res.json()) as Record<string, unknown> };
  };
  const refused = await api('PUT', '/api/v1/addresses/PRI', { maxConcurrent: 9, windows: ['mon 08-18 high', 'tue 08-18 maybe'] });
  assert.equal(refused.status, 400);
  assert.match(JSON.stringify(refused.json), /tue 08-18 maybe/);
  const after = await api('GET', '/api/v1/addresses/PRI');
  assert.equal(after.json.maxConcurrent, 3, 'nothing saved');
  assert.deepEqual(after.json.schedule, view.schedule);

  const lan = await run(['address', 'set', '--root', root, '--to', 'SEC', '--sender', 'lan']);
  assert.equal(lan.code, 1);
  assert.match(lan.stderr, /needs a path/);

  const doc = await api('GET', '/openapi.json');
  const paths = doc.json.paths as Record<string, Record<string, unknown>>;
  assert.ok(paths['/api/v1/addresses']?.get);
  assert.ok(paths['/api/v1/addresses/{to}']?.put);
  assert.ok(paths['/api/v1/addresses/{to}']?.get);
});
