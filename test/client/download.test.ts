import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import Fastify from 'fastify';
import { downloadChunks, type Location } from '../../src/client/download.js';
import { ChunkCodec, chunkPath, putChunkFrame, sha256 } from '../../src/content/store.js';
import type { Manifest } from '../../src/content/types.js';
import { dpPlugin } from '../../src/dp/http.js';
import { tempDir } from '../helpers/fixtures.js';
import { exists } from './lab.js';

type T = Parameters<typeof tempDir>[0];

/** Incompressible, deterministic bytes. */
function noise(size: number, seed: number): Buffer {
  const out = Buffer.alloc(size);
  for (let off = 0, n = 0; off < size; off += 32, n += 1) createHash('sha256').update(`${seed}:${n}`).digest().copy(out, off);
  return out;
}

/** Twelve distinct chunks of one file (about 40 kB each, incompressible), and their frames. */
function content(): { manifest: Manifest; frames: Map<string, Buffer> } {
  const codec = new ChunkCodec();
  const frames = new Map<string, Buffer>();
  const chunks = Array.from({ length: 12 }, (_, i) => {
    const data = noise(40_000 + i, i);
    const hash = sha256(data);
    frames.set(hash, codec.compress(data));
    return { hash, size: data.length };
  });
  const size = chunks.reduce((n, c) => n + c.size, 0);
  return { manifest: { format: 1, entries: [{ type: 'file', path: 'f.bin', mode: 0o644, size, hash: '0'.repeat(64), chunks }] }, frames };
}

/** A plain loopback HTTP server with the given handler; closed after the test. */
async function serve(t: T, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** A real DP (the site server's DP routes) whose library holds `frames`. */
async function realDp(t: T, frames: Map<string, Buffer>, requests: string[] = []): Promise<string> {
  const dir = await tempDir(t, 'sitecast-dl-dp');
  for (const [hash, frame] of frames) putChunkFrame(join(dir, 'dp1', 'library'), hash, frame);
  const app = Fastify();
  app.addHook('onRequest', async (req) => void requests.push(`${req.method} ${req.url.replace(/[0-9a-f]{64}/, '<sha256>')}`));
  await app.register(dpPlugin, { resolveDp: async (name) => (name === 'dp1' ? join(dir, 'dp1') : undefined) });
  t.after(() => app.close());
  return app.listen({ port: 0, host: '127.0.0.1' });
}

const location = (base: string, dp: string, site = 'CEN'): Location => ({ site, dp, url: `${base}/dp/${dp}/CEN00001/`, path: `/dp/${dp}` });

test('the agent fetches chunks in batches from a DP; every chunk arrives verified, 5 per request', async (t) => {
  const { manifest, frames } = content();
  const requests: string[] = [];
  const base = await realDp(t, frames, requests);
  const cache = await tempDir(t, 'sitecast-dl-cache');
  const bad: string[] = [];
  const result = await downloadChunks({ cacheDir: cache, manifest, locations: [location(base, 'dp1')], site: 'CEN', onBadDp: (_l, p) => bad.push(p), batchSize: 5 });
  assert.deepEqual(bad, []);
  assert.equal(result.fetched, 12);
  assert.deepEqual(result.used, ['CEN/dp1']);
  assert.deepEqual(requests, Array(3).fill('POST /dp/dp1/chunks'), '12 chunks in batches of 5: three requests');
  for (const hash of frames.keys()) assert.ok(await exists(chunkPath(cache, hash)), hash);
});

test('a DP without the batch route (404 without "missing"): the agent goes on chunk by chunk from it and reports nothing', async (t) => {
  const { manifest, frames } = content();
  let gets = 0;
  const base = await serve(t, (req, res) => {
    const hash = /\/chunks\/([0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
    const frame = hash === undefined ? undefined : frames.get(hash);
    if (req.method !== 'GET' || frame === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end('{"message":"Route not found"}');
    gets += 1;
    res.writeHead(200, { 'content-length': frame.length }).end(frame);
  });
  const cache = await tempDir(t, 'sitecast-dl-cache');
  const bad: string[] = [];
  const result = await downloadChunks({ cacheDir: cache, manifest, locations: [location(base, 'old')], site: 'CEN', onBadDp: (_l, p) => bad.push(p) });
  assert.deepEqual(bad, []);
  assert.equal(result.fetched, 12);
  assert.equal(gets, 12);
  assert.deepEqual(result.used, ['CEN/old']);
});

test('a batch answer cut off half-way: the chunks that came whole are kept, the DP is reported, the rest comes from the next DP', async (t) => {
  const { manifest, frames } = content();
  const good = await realDp(t, frames);
  // A proxy to the real DP that cuts every answer after ~100 kB (the Content-Length says more).
  const cut = await serve(t, (req, res) => {
    const body: Buffer[] = [];
    req.on('data', (b: Buffer) => body.push(b));
    req.on('end', () => {
      void fetch(`${good}${req.url ?? ''}`, { method: req.method ?? 'GET', headers: { 'content-type': 'application/json' }, ...(body.length > 0 ? { body: Buffer.concat(body) } : {}) })
        .then(async (r) => {
          const all = Buffer.from(await r.arrayBuffer());
          res.writeHead(r.status, { 'content-length': all.length, 'content-type': r.headers.get('content-type') ?? 'application/octet-stream' });
          res.write(all.subarray(0, Math.min(all.length, 100_000)));
          // The link drops a moment later (bytes already received are read before the error).
          setTimeout(() => res.destroy(), 150);
        })
        .catch(() => res.destroy());
    });
  });
  const cache = await tempDir(t, 'sitecast-dl-cache');
  const bad: { dp: string; problem: string }[] = [];
  const result = await downloadChunks({
    cacheDir: cache,
    manifest,
    locations: [location(cut, 'dp1'), location(good, 'dp1', 'PRI')],
    site: 'CEN',
    onBadDp: (l, problem) => bad.push({ dp: `${l.site}/${l.dp}`, problem }),
    concurrency: 1,
  });
  assert.equal(bad.length, 1);
  assert.equal(bad[0]?.dp, 'CEN/dp1');
  assert.match(bad[0]?.problem ?? '', /./);
  // 100 kB holds two whole 40 kB frames: those were kept ('CEN/dp1' is listed as used), the rest came from PRI.
  assert.equal(result.fetched, 12);
  assert.deepEqual(result.used, ['CEN/dp1', 'PRI/dp1']);
  for (const hash of frames.keys()) assert.ok(await exists(chunkPath(cache, hash)), hash);
});
