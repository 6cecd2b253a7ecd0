import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { type Socket, createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getSent } from '../../src/db/hierarchy.js';
import { DEFAULT_PART_BYTES } from '../../src/components/sender/index.js';
import { type Lab, LAB_DP, callAdmin, expectAdmin, startLab, waitInstalled } from '../../src/site/lab.js';
import { sitePaths } from '../../src/site/layout.js';
import { describeTree, makeTree, randomBytesFrom } from '../helpers/fixtures.js';
import { FAST, api, startLab as startInProcessLab } from '../helpers/hierarchy.js';
import { eventually } from '../helpers/site.js';

type Ctx = { after: (fn: () => Promise<void>) => void };

/** A lab of real site server processes (CEN → PRI → SEC), stopped and removed after the test whatever happens. */
async function processLab(t: Ctx): Promise<Lab> {
  // One clean-up hook, in this order: the folder goes only once every site server has stopped.
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-faults-'));
  const running: { lab?: Lab } = {};
  t.after(async () => {
    await running.lab?.close();
    await rm(dir, { recursive: true, force: true });
  });
  running.lab = await startLab({ dir: join(dir, 'lab') });
  return running.lab;
}

async function createAndDistribute(lab: Lab, source: string, name: string): Promise<{ id: string; t0: number }> {
  const cen = lab.site('CEN');
  const t0 = performance.now();
  const { id } = (await expectAdmin(cen, 'POST', '/api/v1/packages', 201, { name, sourcePath: source, version: '1.0' })) as { id: string };
  await expectAdmin(cen, 'POST', `/api/v1/packages/${id}/distribute`, 200, { dps: lab.sites.map((s) => `${s.code}/${LAB_DP}`) });
  return { id, t0 };
}

async function assertSameAtEveryDp(lab: Lab, id: string, source: string): Promise<void> {
  const expected = await describeTree(source);
  for (const s of lab.sites) assert.deepEqual(await describeTree(join(s.dpPath, 'SMSPKG', id)), expected, `the share at ${s.code}/${LAB_DP} holds the source, hash for hash`);
}

interface SendStatus {
  state: string;
  attempts: number;
  lastError: string | null;
}

async function sendStatuses(root: string): Promise<SendStatus[]> {
  const dir = join(sitePaths(root).scheduleOutboxes, 'http');
  const out: SendStatus[] = [];
  for (const name of await readdir(dir)) {
    if (!name.endsWith('.SRS')) continue;
    const text = await readFile(join(dir, name), 'utf8').catch(() => undefined);
    if (text !== undefined) out.push((JSON.parse(text) as { status: SendStatus }).status);
  }
  return out;
}

test('a child site that is down: its requests back off, the other address keeps flowing, and it catches up when back (real site processes)', { timeout: 150_000 }, async (t) => {
  const lab = await processLab(t);
  const pri = lab.site('PRI');
  await expectAdmin(pri, 'PUT', '/api/v1/addresses/SEC', 200, { retryDelay: 1 });
  const down = await lab.site('SEC').process.stop();
  assert.deepEqual(down, { code: 0, signal: null });

  const source = join(lab.dir, 'src-down');
  await makeTree(source, 'down');
  const { id } = await createAndDistribute(lab, source, 'Child down');
  await waitInstalled(lab, id, 1, ['CEN', 'PRI'], performance.now(), 60_000);
  // PRI → CEN is another address of PRI: its status reports reach CEN while SEC is down.
  await eventually(
    'CEN sees PRI/dp1 installed while SEC is down',
    async () => {
      const s = (await expectAdmin(lab.site('CEN'), 'GET', `/api/v1/packages/${id}/status`, 200)) as { dps: { site: string; state: string }[] };
      return s.dps.some((d) => d.site === 'PRI' && d.state === 'installed') ? true : undefined;
    },
    30_000,
  );
  // The request for SEC retries with doubling delays (1, 2, 4 s …), not at every pass of the sender.
  const retrying = await eventually(
    'the request to SEC retrying',
    async () => {
      const s = (await sendStatuses(pri.root)).find((x) => x.state === 'retrying' && x.attempts >= 2);
      return s;
    },
    30_000,
  );
  await new Promise((r) => setTimeout(r, 3000));
  const later = (await sendStatuses(pri.root)).find((x) => x.state === 'retrying');
  assert.ok(later !== undefined && later.attempts >= retrying.attempts && later.attempts <= retrying.attempts + 2, `attempts ${retrying.attempts} then ${later?.attempts ?? '?'} 3 s later`);
  assert.match(later.lastError ?? '', /cannot send to SEC/);
  const addresses = (await expectAdmin(pri, 'GET', '/api/v1/addresses', 200)) as { addresses: { to: string; lastError: string | null; bytesSent: number }[] };
  assert.match(addresses.addresses.find((a) => a.to === 'SEC')?.lastError ?? '', /cannot send to SEC/);
  assert.ok((addresses.addresses.find((a) => a.to === 'CEN')?.bytesSent ?? 0) > 0, 'PRI kept sending to CEN');

  await lab.restart('SEC');
  await waitInstalled(lab, id, 1, ['SEC'], performance.now(), 60_000);
  await assertSameAtEveryDp(lab, id, source);
  assert.deepEqual(await sendStatuses(pri.root), [], 'nothing is left to send');
});

test('kill -9 of PRI during replication, then a restart: the hierarchy converges, the same bytes at every DP (real site processes)', { timeout: 150_000 }, async (t) => {
  const lab = await processLab(t);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  // Slow enough that PRI is caught with a bundle half received.
  await expectAdmin(cen, 'PUT', '/api/v1/addresses/PRI', 200, { rates: ['4096KB/s'], retryDelay: 1 });
  const source = join(lab.dir, 'src-kill');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'payload.bin'), randomBytesFrom('kill-9', 16 * 1024 * 1024));
  await makeTree(join(source, 'tree'), 'kill');
  const { id } = await createAndDistribute(lab, source, 'Killed mid-transfer');

  const partial = join(sitePaths(pri.root).despoolrReceive, '.partial');
  await eventually(
    'PRI holding part of the bundle',
    async () => {
      for (const name of await readdir(partial)) if (!name.endsWith('.json') && (await stat(join(partial, name))).size > 0) return true;
      return undefined;
    },
    60_000,
  );
  const killed = await pri.process.kill();
  assert.equal(killed.signal, 'SIGKILL');
  await new Promise((r) => setTimeout(r, 500));
  await lab.restart('PRI');

  await waitInstalled(lab, id, 1, ['CEN', 'PRI', 'SEC'], performance.now(), 90_000);
  await assertSameAtEveryDp(lab, id, source);
  await eventually(
    'CEN lists every DP installed',
    async () => {
      const s = (await callAdmin(cen, 'GET', `/api/v1/packages/${id}/status`)).json as { dps: { state: string }[] };
      return s.dps.length === 3 && s.dps.every((d) => d.state === 'installed') ? true : undefined;
    },
    30_000,
  );
});

/** A loopback proxy in front of a site whose address is known later; counts bytes toward it and cuts the link once, after `cutAfter` of them from arming. */
async function cuttingProxy(t: Ctx): Promise<{ url: string; target: (url: string) => void; arm: (cutAfter: number) => void; upstream: () => number; cuts: () => number }> {
  let target: URL | undefined;
  let total = 0;
  let cutAt = Number.POSITIVE_INFINITY;
  let cuts = 0;
  const sockets = new Set<Socket>();
  const server = createServer((client) => {
    if (target === undefined) return client.destroy();
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client).add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (total + chunk.length > cutAt) {
        const keep = cutAt - total;
        cutAt = Number.POSITIVE_INFINITY;
        cuts++;
        total += keep;
        if (keep > 0) upstream.write(chunk.subarray(0, keep));
        client.destroy();
        upstream.destroy();
        return;
      }
      total += chunk.length;
      upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => client.write(chunk));
    client.on('error', () => upstream.destroy());
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((r) => server.close(() => r()));
  });
  const a = server.address();
  assert.ok(a !== null && typeof a === 'object');
  return {
    url: `http://127.0.0.1:${a.port}`,
    target: (url) => void (target = new URL(url)),
    arm: (cutAfter) => {
      total = 0;
      cutAt = cutAfter;
    },
    upstream: () => total,
    cuts: () => cuts,
  };
}

test('a link cut mid-transfer between two sites: the bundle resumes, at most one part is sent again, and the package reaches SEC', { timeout: 120_000 }, async (t) => {
  // The sender's own test proves the resume on one hop with the sender alone; this one runs the
  // whole CEN → PRI path (Scheduler, sender component, receive endpoint, Despooler) through the proxy.
  const proxy = await cuttingProxy(t);
  const running: { lab?: Awaited<ReturnType<typeof startInProcessLab>> } = {};
  const options = {
    ...FAST,
    sender: {
      ...FAST.sender,
      resolveTarget: async (code: string, address: { path: string | null }) => ({
        code,
        url: code === 'PRI' ? proxy.url : (running.lab?.site(code).handle.url ?? null),
        path: address.path,
      }),
    },
  };
  const lab = await startInProcessLab(t, ['CEN', 'PRI', 'SEC'], options);
  running.lab = lab;
  const cen = lab.site('CEN');
  proxy.target(lab.site('PRI').handle.url);
  for (const code of ['CEN', 'PRI', 'SEC']) {
    await eventually(`${code} known at CEN`, async () => ((await api(cen, 'GET', '/api/v1/sites')).json as { sites: { code: string }[] }).sites.some((s) => s.code === code) || undefined, 30_000);
    const r = await api(cen, 'POST', '/api/v1/dps', { name: 'dp1', path: join(lab.dir, `dp-${code.toLowerCase()}`), ...(code === 'CEN' ? {} : { site: code }) });
    assert.equal(r.status, 201, JSON.stringify(r.json));
  }
  await eventually('SEC has its DP', async () => ((await api(lab.site('SEC'), 'GET', '/api/v1/dps')).json as { dps: { site: string }[] }).dps.some((d) => d.site === 'SEC') || undefined, 30_000);
  // Quiet link: whatever site definitions were on their way have arrived.
  await new Promise((r) => setTimeout(r, 1500));

  const source = join(lab.dir, 'src-cut');
  await mkdir(source, { recursive: true });
  await writeFile(join(source, 'payload.bin'), randomBytesFrom('cut', 5 * 1024 * 1024));
  proxy.arm(Math.floor(2.5 * 1024 * 1024));
  const created = await api(cen, 'POST', '/api/v1/packages', { name: 'Cut link', sourcePath: source, version: '1.0' });
  assert.equal(created.status, 201, JSON.stringify(created.json));
  const id = (created.json as { id: string }).id;
  assert.equal((await api(cen, 'POST', `/api/v1/packages/${id}/distribute`, { dps: ['PRI/dp1', 'SEC/dp1'] })).status, 200);

  await eventually(
    'PRI/dp1 and SEC/dp1 installed, seen from CEN',
    async () => {
      const s = (await api(cen, 'GET', `/api/v1/packages/${id}/status`)).json as { dps: { state: string }[] };
      return s.dps.length === 2 && s.dps.every((d) => d.state === 'installed') ? true : undefined;
    },
    60_000,
  );
  assert.equal(proxy.cuts(), 1, 'the link was cut once');
  const sent = await getSent(cen.handle.ctx.db, 'PRI', id);
  assert.ok(sent !== undefined);
  const overhead = proxy.upstream() - sent.bytes;
  // Sent again: at most the part that was cut, plus the headers of every request (a few hundred bytes each).
  assert.ok(overhead > 0 && overhead <= DEFAULT_PART_BYTES + 64 * 1024, `the bundle is ${sent.bytes} bytes; ${proxy.upstream()} crossed the proxy`);
  const expected = await describeTree(source);
  for (const code of ['pri', 'sec']) assert.deepEqual(await describeTree(join(lab.dir, `dp-${code}`, 'SMSPKG', id)), expected);
});
