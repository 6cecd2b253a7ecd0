import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { SENDERS, SenderComponent, type SenderFactory } from '../../../src/components/sender/index.js';
import { pick, type Pending } from '../../../src/components/sender/queue.js';
import { listStatusMessages, setAddress, getAddress, type Address } from '../../../src/db/index.js';
import { isSitecastError } from '../../../src/errors.js';
import { parseRate, parseWindow, parsePulse, applyWindows, OPEN_WEEK, isOpenFor } from '../../../src/formats/schedule.js';
import { writeSendRequest, type SendRequest } from '../../../src/formats/srq.js';
import { eventually } from '../../helpers/site.js';
import { makeRequest, sitePair } from './fixtures.js';

function pending(id: string, priority: SendRequest['priority'], created: string, to = 'PRI'): Pending {
  const request: SendRequest = { format: 1, id, to, priority, created, file: `${id}.bundle`, bytes: 1, sha256: '0'.repeat(64), kind: 'package', package: null };
  return { name: `${id}.SRQ`, path: `/x/${id}.SRQ`, sender: 'lan', request, status: undefined };
}

test('schedule text: windows spill past midnight, later windows win, bad text is refused naming it', () => {
  const week = applyWindows(OPEN_WEEK, [parseWindow('all 00-24 closed'), parseWindow('mon-fri 08-18 high'), parseWindow('fri 18-02 medium')]);
  const at = (d: number, h: number): Date => new Date(2026, 10, 23 + d, h, 30); // 23 Nov 2026 is a Monday
  assert.ok(isOpenFor(week, 'high', at(0, 9)));
  assert.ok(!isOpenFor(week, 'medium', at(0, 9)));
  assert.ok(!isOpenFor(week, 'high', at(0, 7)));
  assert.ok(isOpenFor(week, 'medium', at(4, 23)));
  assert.ok(isOpenFor(week, 'medium', at(5, 1)), 'Friday 18-02 reaches into Saturday');
  assert.ok(!isOpenFor(week, 'low', at(5, 1)));
  assert.ok(!isOpenFor(week, 'high', at(5, 2)));
  for (const bad of ['mon 08-18', 'xyz 08-18 all', 'mon 8-18 all', 'mon 08-08 all', 'mon 08-25 all', 'mon 08-18 low']) {
    assert.throws(() => parseWindow(bad), (err: unknown) => isSitecastError(err, 'SITECAST_E_INVALID_VALUE') && err.message.includes(bad));
  }
  assert.deepEqual(parseRate('09-17 128KB/s'), { from: 9, to: 17, kbps: 128 });
  assert.deepEqual(parseRate('unlimited'), { from: 0, to: 24, kbps: null });
  for (const bad of ['128', '128 KB/s', '0KB/s', '-1KB/s', '12MB/s']) assert.throws(() => parseRate(bad), /SITECAST_E_INVALID_VALUE|rate/);
  assert.deepEqual(parsePulse('64:2.5'), { blockKB: 64, delaySeconds: 2.5 });
  assert.equal(parsePulse('off'), null);
});

test('pick: a closed window holds, a high-only window lets high through, then high goes before low and lows wait for highs', () => {
  const base: Omit<Address, 'schedule'> = { to: 'PRI', sender: 'lan', path: '/r', rateLimit: Array(24).fill(null), pulse: null, maxConcurrent: 2, retries: 3, retryDelaySeconds: 1, paused: false, bytesSent: 0, currentRate: 0, lastError: null, createdAt: '', updatedAt: '' };
  const lows = [1, 2, 3].map((i) => pending(`low${i}`, 'low', `2026-01-01T00:00:0${i}Z`));
  const highs = [4, 5, 6].map((i) => pending(`high${i}`, 'high', `2026-01-01T00:00:0${i}Z`));
  const all = [...lows, ...highs];
  const now = new Date();
  const run = (schedule: string, active = new Map()): string[] =>
    pick({ pending: all, active, addresses: new Map([['PRI', { ...base, schedule: Array(7).fill(schedule.repeat(24)) }]]), holds: new Map(), now }).start.map((p) => p.request.id);
  assert.deepEqual(run('c'), []);
  assert.deepEqual(run('h'), ['high4', 'high5']);
  assert.deepEqual(run('a'), ['high4', 'high5'], 'the oldest highs, though the lows are older');
  assert.deepEqual(run('a', new Map([['high4.SRQ', { to: 'PRI', priority: 'high' }]])), ['high5'], 'one slot left, and a high still waits for it');
  const onlyLowsLeft = pick({ pending: lows, active: new Map([['high6.SRQ', { to: 'PRI', priority: 'high' }]]), addresses: new Map([['PRI', { ...base, schedule: OPEN_WEEK }]]), holds: new Map(), now });
  assert.deepEqual(onlyLowsLeft.start, [], 'no low starts while a high is sending');
  const paused = pick({ pending: all, active: new Map(), addresses: new Map([['PRI', { ...base, schedule: OPEN_WEEK, paused: true }]]), holds: new Map(), now });
  assert.deepEqual(paused.start, []);
});

test('pick: requests about one package to one site go one at a time, oldest first, even past a retry wait or a higher priority; other packages and sites flow', () => {
  const base: Address = { to: 'PRI', sender: 'lan', path: '/r', schedule: OPEN_WEEK, rateLimit: Array(24).fill(null), pulse: null, maxConcurrent: 4, retries: 3, retryDelaySeconds: 1, paused: false, bytesSent: 0, currentRate: 0, lastError: null, createdAt: '', updatedAt: '' };
  const about = (id: string, pkg: string, created: string, priority: SendRequest['priority'] = 'medium', to = 'PRI'): Pending => {
    const p = pending(id, priority, created, to);
    return { ...p, request: { ...p.request, package: pkg } };
  };
  const content = about('content', 'CEN00001', '2026-01-01T00:00:01Z');
  const withdrawal = about('withdrawal', 'CEN00001', '2026-01-01T00:00:02Z', 'high');
  const other = about('other', 'CEN00002', '2026-01-01T00:00:03Z');
  const elsewhere = about('elsewhere', 'CEN00001', '2026-01-01T00:00:04Z', 'medium', 'SEC');
  const now = new Date('2026-01-01T01:00:00Z');
  const addresses = new Map([
    ['PRI', base],
    ['SEC', { ...base, to: 'SEC' }],
  ]);
  const run = (pending: Pending[], active = new Map()): string[] => pick({ pending, active, addresses, holds: new Map(), now }).start.map((p) => p.request.id);
  assert.deepEqual(run([withdrawal, content, other, elsewhere]), ['content', 'other', 'elsewhere'], 'the withdrawal waits for the content made before it');
  assert.deepEqual(run([withdrawal, other], new Map([['content.SRS', { to: 'PRI', priority: 'medium', package: 'CEN00001' }]])), ['other'], 'and while the content is on its way');
  const retrying: Pending = { ...content, name: 'content.SRS', status: { state: 'retrying', bytesSent: 0, bytesTotal: 1, attempts: 1, nextRetry: '2026-01-01T02:00:00Z', lastError: 'refused', updated: '2026-01-01T00:59:00Z' } };
  const waiting = pick({ pending: [retrying, withdrawal, other], active: new Map(), addresses, holds: new Map(), now });
  assert.deepEqual(waiting.start.map((p) => p.request.id), ['other'], 'and while the content waits for its retry');
  assert.equal(waiting.nextDue, Date.parse('2026-01-01T02:00:00Z'));
  assert.deepEqual(run([withdrawal, other]), ['withdrawal'], 'then it goes (high, so before the medium one)');
});

test('a closed window holds every request; once it opens every high one arrives before any low one', async (t) => {
  const p = await sitePair(t);
  const recv = p.pri.paths.despoolrReceive;
  await setAddress(p.cen.db, 'PRI', { sender: 'lan', path: recv, maxConcurrent: 2, windows: [parseWindow('all 00-24 closed')] });
  const events: string[] = [];
  const recording: SenderFactory = (deps) => {
    const inner = SENDERS.lan(deps);
    return {
      kind: 'lan',
      async send(req, file, progress, signal) {
        events.push(`start ${req.priority} ${req.id}`);
        await new Promise((r) => setTimeout(r, 20));
        await inner.send(req, file, progress, signal);
        events.push(`done ${req.priority} ${req.id}`);
      },
    };
  };
  const component = new SenderComponent(p.cen, { pollMs: 50, senders: { lan: recording } });
  await component.start();
  p.defer(() => component.close());
  const ids: string[] = [];
  for (let i = 0; i < 8; i++) {
    const { req } = await makeRequest(p.cen, 5000, { priority: 'low', id: `low-${i}` });
    await writeSendRequest(p.cen.paths, { ...req, sender: 'lan' });
    ids.push(req.id);
  }
  for (let i = 0; i < 3; i++) {
    const { req } = await makeRequest(p.cen, 5000, { priority: 'high', id: `high-${i}` });
    await writeSendRequest(p.cen.paths, { ...req, sender: 'lan' });
    ids.push(req.id);
  }
  await new Promise((r) => setTimeout(r, 600));
  assert.equal(events.length, 0, 'nothing moves while the window is closed');
  assert.equal((await readdir(recv)).filter((n) => n.endsWith('.bundle')).length, 0);
  await setAddress(p.cen.db, 'PRI', { windows: [parseWindow('all 00-24 all')] });
  await eventually('all delivered', async () => ((await readdir(recv)).filter((n) => n.endsWith('.bundle')).length === ids.length ? true : undefined));
  const lastHighDone = Math.max(...events.map((e, i) => (e.startsWith('done high') ? i : -1)));
  const firstLowStart = events.findIndex((e) => e.startsWith('start low'));
  assert.ok(lastHighDone < firstLowStart, events.join('\n'));
});

async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const address = server.address();
  await new Promise<void>((r) => server.close(() => r()));
  assert.ok(address !== null && typeof address === 'object');
  return `http://127.0.0.1:${address.port}`;
}

test('an unreachable address backs off (doubling delays) while another address keeps flowing', async (t) => {
  const p = await sitePair(t);
  const dead = await deadUrl();
  await setAddress(p.cen.db, 'DWN', { sender: 'http', retryDelaySeconds: 0.2, retries: 10 });
  await setAddress(p.cen.db, 'PRI', { sender: 'lan', path: p.pri.paths.despoolrReceive });
  const component = new SenderComponent(p.cen, {
    pollMs: 50,
    resolveTarget: async (code, address) => ({ code, url: code === 'DWN' ? dead : p.priUrl, path: address.path }),
  });
  await component.start();
  p.defer(() => component.close());
  const down = await makeRequest(p.cen, 1000, { to: 'DWN', priority: 'high', id: 'to-down' });
  await writeSendRequest(p.cen.paths, { ...down.req, sender: 'http' });
  const srs = join(p.cen.paths.scheduleOutboxes, 'http', 'to-down.SRS');
  await eventually('the first failure', async () => ((await readFile(srs, 'utf8').catch(() => '')).includes('"retrying"') ? true : undefined));
  const started = Date.now();
  // Meanwhile PRI, low priority, keeps flowing.
  for (let i = 0; i < 5; i++) {
    const { req } = await makeRequest(p.cen, 20_000, { priority: 'low', id: `flow-${i}` });
    await writeSendRequest(p.cen.paths, { ...req, sender: 'lan' });
  }
  await eventually('PRI served', async () => ((await readdir(p.pri.paths.despoolrReceive)).filter((n) => n.startsWith('flow-')).length === 5 ? true : undefined), 5000);
  assert.ok(Date.now() - started < 3000, 'the down site did not hold the other address up');
  await new Promise((r) => setTimeout(r, 1500));
  const status = (JSON.parse(await readFile(srs, 'utf8')) as { status: { state: string; attempts: number; nextRetry: string; lastError: string } }).status;
  assert.equal(status.state, 'retrying');
  // 0.2 + 0.4 + 0.8 + 1.6 s: about four attempts in two seconds, not one every poll.
  assert.ok(status.attempts >= 2 && status.attempts <= 5, `attempts ${status.attempts}`);
  assert.match(status.lastError, /SITECAST_E_SEND: cannot send to DWN/);
  assert.ok(Date.parse(status.nextRetry) > Date.now() - 100);
  await component.close();
  const a = await getAddress(p.cen.db, 'DWN');
  assert.match(a?.lastError ?? '', /cannot send to DWN/);
  const pri = await getAddress(p.cen.db, 'PRI');
  assert.ok((pri?.bytesSent ?? 0) >= 100_000, `PRI bytesSent ${pri?.bytesSent}`);
});

test('a request whose tosend file is missing goes to bad/ with a reason, and the others go on', async (t) => {
  const p = await sitePair(t);
  await setAddress(p.cen.db, 'PRI', { sender: 'lan', path: p.pri.paths.despoolrReceive });
  const component = new SenderComponent(p.cen, { pollMs: 50 });
  await component.start();
  p.defer(() => component.close());
  await writeSendRequest(p.cen.paths, { sender: 'lan', id: 'ghost', to: 'PRI', priority: 'high', file: 'ghost.bundle', bytes: 3, sha256: 'a'.repeat(64), kind: 'package', package: null });
  const { req } = await makeRequest(p.cen, 100, { id: 'real' });
  await writeSendRequest(p.cen.paths, { ...req, sender: 'lan' });
  const bad = join(p.cen.paths.scheduleOutboxes, 'lan', 'bad');
  await eventually('ghost in bad/', async () => ((await readdir(bad).catch(() => [] as string[])).includes('ghost.SRS') ? true : undefined));
  assert.match(await readFile(join(bad, 'ghost.SRS.reason'), 'utf8'), /ghost\.bundle/);
  await eventually('real delivered', async () => ((await readdir(p.pri.paths.despoolrReceive)).includes('real.bundle') ? true : undefined));
  await mkdir(bad, { recursive: true });
});

test('a send request removed by hand before it could be moved to bad/ leaves no reason and no status message', async (t) => {
  const p = await sitePair(t);
  const component = new SenderComponent(p.cen, { pollMs: 50 });
  const outbox = join(p.cen.paths.scheduleOutboxes, 'lan');
  await mkdir(join(outbox, 'bad'), { recursive: true });
  // The step a scan takes for a bad request, reached for one that is already gone.
  const move = (component as unknown as { moveToBad(path: string, name: string, reason: string): Promise<void> }).moveToBad.bind(component);
  await move(join(outbox, 'vanished.SRS'), 'vanished.SRS', 'names a file that does not exist');
  assert.deepEqual(await readdir(join(outbox, 'bad')), []);
  assert.deepEqual((await listStatusMessages(p.cen.db, { component: 'sender' })).map((m) => m.text), []);
});
