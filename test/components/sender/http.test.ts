import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { type Server, type Socket, createConnection, createServer } from 'node:net';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { AddressThrottle, createHttpSender, RECEIVE_PREFIX } from '../../../src/components/sender/index.js';
import { sha256Hex, signRequest } from '../../../src/components/sender/auth.js';
import { type Pair, makeRequest, sitePair } from './fixtures.js';

const PART = 256 * 1024;

/**
 * A loopback TCP proxy that counts the bytes going to the server and cuts
 * the first connection after `cutAfter` of them.
 */
async function proxy(t: { after: (fn: () => Promise<void>) => void }, target: URL, cutAfter: number): Promise<{ url: string; upstreamBytes: () => number; cuts: () => number }> {
  let total = 0;
  let cuts = 0;
  let armed = true;
  const sockets = new Set<Socket>();
  const server: Server = createServer((client) => {
    const upstream = createConnection({ host: target.hostname, port: Number(target.port) });
    sockets.add(client);
    sockets.add(upstream);
    client.on('data', (chunk: Buffer) => {
      if (armed && total + chunk.length > cutAfter) {
        armed = false;
        cuts++;
        const keep = cutAfter - total;
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
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const address = server.address();
  assert.ok(address !== null && typeof address === 'object');
  return { url: `http://127.0.0.1:${address.port}`, upstreamBytes: () => total, cuts: () => cuts };
}

function httpDeps(p: Pair, url: string, privateKey = p.cen.keys.privateKey): Parameters<typeof createHttpSender>[0] {
  const limit = (): { mode: 'rate'; bytesPerSecond: null } => ({ mode: 'rate', bytesPerSecond: null });
  return { from: 'CEN', keys: { ...p.cen.keys, privateKey }, target: { code: 'PRI', url, path: null }, throttle: new AddressThrottle(limit), limit, partBytes: PART };
}

test('a link cut mid-transfer: the http sender resumes and resends at most one part (bytes counted on the proxy)', async (t) => {
  const p = await sitePair(t);
  const size = 3 * 1024 * 1024;
  const { req, file, data } = await makeRequest(p.cen, size);
  const px = await proxy(t, new URL(p.priUrl), Math.floor(1.6 * 1024 * 1024));
  const sender = createHttpSender(httpDeps(p, px.url));
  let wire = 0;
  await assert.rejects(sender.send(req, file, (pr) => void (wire += pr.wireBytes), new AbortController().signal), (err: Error) => /SITECAST_E_SEND|cannot send/.test(`${(err as { code?: string }).code} ${err.message}`));
  assert.equal(px.cuts(), 1);
  await sender.send(req, file, (pr) => void (wire += pr.wireBytes), new AbortController().signal);
  const got = await readFile(join(p.pri.paths.despoolrReceive, `${req.id}.bundle`));
  assert.ok(got.equals(data));
  const overhead = px.upstreamBytes() - size;
  // One part resent at most, plus request headers (a few hundred bytes per request).
  assert.ok(overhead <= PART + 40 * 1024, `resent ${overhead} bytes over the file's size`);
  assert.ok(overhead > 0);
  // bytesSent counts what the sender put on the link: the file, headers and the cut part (some of
  // which the proxy never forwarded: it was in flight when the link dropped).
  assert.ok(wire >= size && wire <= px.upstreamBytes() + PART + 64 * 1024, `wire ${wire}, proxy ${px.upstreamBytes()}`);
});

async function put(p: Pair, headers: Record<string, string>, body: Buffer, id = 'x1'): Promise<number> {
  const res = await fetch(`${p.priUrl}${RECEIVE_PREFIX}/${id}`, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', ...headers }, body });
  await res.arrayBuffer();
  return res.status;
}

function signed(p: Pair, over: { from?: string; key?: Parameters<typeof signRequest>[0]; at?: Date; body: Buffer; id?: string }): Record<string, string> {
  const body = over.body;
  const range = `bytes 0-${body.length - 1}/${body.length}`;
  const fileSha256 = createHash('sha256').update(body).digest('hex');
  const path = `${RECEIVE_PREFIX}/${over.id ?? 'x1'}`;
  return {
    ...signRequest(over.key ?? p.cen.keys.privateKey, { method: 'PUT', path, from: over.from ?? 'CEN', to: 'PRI', range, fileSha256, bodySha256: sha256Hex(body) }, over.at),
    'content-range': range,
  };
}

test('an unlimited upload of large parts waits for the socket slice after slice without piling up listeners on the request', async (t) => {
  const p = await sitePair(t);
  const { req, file, data } = await makeRequest(p.cen, 12 * 1024 * 1024 + 77);
  const warnings: string[] = [];
  const onWarning = (w: Error): void => void warnings.push(`${w.name}: ${w.message}`);
  process.on('warning', onWarning);
  t.after(() => void process.off('warning', onWarning));
  // 8 MiB parts written in 256 KiB slices: each slice fills the socket's buffer and waits for it to drain.
  const sender = createHttpSender({ ...httpDeps(p, p.priUrl), partBytes: 8 * 1024 * 1024 });
  await sender.send(req, file, () => undefined, new AbortController().signal);
  assert.ok((await readFile(join(p.pri.paths.despoolrReceive, `${req.id}.bundle`))).equals(data), 'the bundle arrived whole');
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(warnings.filter((w) => w.startsWith('MaxListenersExceededWarning')), []);
});

test('the receive endpoint refuses a bad signature, an unknown site and a stale timestamp with 401, and stores nothing', async (t) => {
  const p = await sitePair(t);
  const body = Buffer.from('a bundle that should never arrive');
  const stranger = generateKeyPairSync('ed25519').privateKey;

  assert.equal(await put(p, signed(p, { body, key: stranger }), body), 401, 'signed with a key that is not CEN');
  assert.equal(await put(p, signed(p, { body, from: 'XYZ', key: stranger }), body), 401, 'a site PRI does not know');
  assert.equal(await put(p, signed(p, { body, at: new Date(Date.now() - 10 * 60_000) }), body), 401, 'ten minutes old');
  const tampered = signed(p, { body });
  assert.equal(await put(p, tampered, Buffer.from('a bundle that should never arrivX')), 401, 'body changed after signing');
  assert.equal(await put(p, {}, body), 401, 'no signature at all');

  const left = await readdir(p.pri.paths.despoolrReceive, { recursive: true });
  assert.deepEqual(left.filter((n) => !n.endsWith('.partial')), [], `nothing stored: ${left.join(',')}`);
  await p.pri.logger('receive').flush();
  const log = await readFile(join(p.pri.paths.logs, 'receive.log'), 'utf8');
  assert.match(log, /not known here/);
  assert.match(log, /more than 5 minutes/);
  assert.match(log, /signature does not verify/);

  // The same request properly signed goes through.
  assert.equal(await put(p, signed(p, { body }), body), 200);
  assert.ok((await readFile(join(p.pri.paths.despoolrReceive, 'x1.bundle'))).equals(body));
});

test('the http sender against an unknown receiver key fails with the target\'s refusal and leaves receive/ empty', async (t) => {
  const p = await sitePair(t);
  const { req, file } = await makeRequest(p.cen, 1000);
  const stranger = generateKeyPairSync('ed25519').privateKey;
  await assert.rejects(createHttpSender(httpDeps(p, p.priUrl, stranger)).send(req, file, () => undefined, new AbortController().signal), /refused this site's signature/);
  assert.deepEqual((await readdir(p.pri.paths.despoolrReceive)).filter((n) => !n.startsWith('.')), []);
});

test('a file whose bytes do not match its SHA-256 is discarded at the receiver, never renamed into receive/', async (t) => {
  const p = await sitePair(t);
  const { req, file } = await makeRequest(p.cen, 600 * 1024);
  const lie = { ...req, sha256: 'f'.repeat(64) };
  await assert.rejects(createHttpSender(httpDeps(p, p.priUrl)).send(lie, file, () => undefined, new AbortController().signal), /SITECAST_E_CORRUPT_CHUNK|HTTP 422/);
  assert.deepEqual((await readdir(p.pri.paths.despoolrReceive)).filter((n) => !n.startsWith('.')), []);
});
