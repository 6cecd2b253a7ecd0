import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, rm, stat, writeFile } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { join } from 'node:path';
import Fastify from 'fastify';
import { ChunkCodec, putChunkFrame, sha256 } from '../../src/content/store.js';
import { ChunkFrameCache } from '../../src/dp/chunk-cache.js';
import { MAX_BATCH_CHUNKS, dpPlugin } from '../../src/dp/http.js';
import { tempDir } from '../helpers/fixtures.js';

async function dpWithChunks(t: Parameters<typeof tempDir>[0], sizes: number[], chunkCacheBytes?: number): Promise<{ app: ReturnType<typeof Fastify>; frames: Map<string, Buffer>; hashes: string[]; library: string }> {
  const dir = await tempDir(t, 'sitecast-dp-http');
  const library = join(dir, 'dp1', 'library');
  await mkdir(join(library, 'chunks'), { recursive: true });
  const codec = new ChunkCodec();
  const frames = new Map<string, Buffer>();
  const hashes: string[] = [];
  for (const [i, size] of sizes.entries()) {
    const data = Buffer.alloc(size, i + 1);
    const hash = sha256(data);
    const frame = codec.compress(data);
    putChunkFrame(library, hash, frame);
    frames.set(hash, frame);
    hashes.push(hash);
  }
  const app = Fastify();
  await app.register(dpPlugin, { resolveDp: async (name) => (name === 'dp1' ? join(dir, 'dp1') : undefined), ...(chunkCacheBytes === undefined ? {} : { chunkCacheBytes }) });
  t.after(() => app.close());
  return { app, frames, hashes, library };
}

test('GET /dp/<dp>/chunks/<sha256>: the frame with its length; HEAD; a missing chunk and a bad name are 404', async (t) => {
  const { app, frames, hashes } = await dpWithChunks(t, [1000, 300_000]);
  for (const hash of hashes) {
    const r = await app.inject({ method: 'GET', url: `/dp/dp1/chunks/${hash}` });
    assert.equal(r.statusCode, 200);
    assert.equal(r.headers['content-length'], String(frames.get(hash)?.length));
    assert.equal(r.headers['content-type'], 'application/zstd');
    assert.deepEqual(r.rawPayload, frames.get(hash));
  }
  const head = await app.inject({ method: 'HEAD', url: `/dp/dp1/chunks/${hashes[0]}` });
  assert.equal(head.statusCode, 200);
  assert.equal(head.headers['content-length'], String(frames.get(hashes[0] as string)?.length));
  assert.equal((await app.inject({ method: 'GET', url: `/dp/dp1/chunks/${'0'.repeat(64)}` })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: '/dp/dp1/chunks/..%2f..%2fetc' })).statusCode, 404);
  assert.equal((await app.inject({ method: 'GET', url: `/dp/nodp/chunks/${hashes[0]}` })).statusCode, 404);
});

test('POST /dp/<dp>/chunks: frames in the order asked (hash, length, frame) with a Content-Length; missing chunks and bad bodies refused before any byte', async (t) => {
  const { app, frames, hashes } = await dpWithChunks(t, [10, 70_000, 2_000_000]);
  const order = [hashes[2], hashes[0], hashes[1], hashes[0]] as string[];
  const r = await app.inject({ method: 'POST', url: '/dp/dp1/chunks', payload: { hashes: order } });
  assert.equal(r.statusCode, 200);
  const body = r.rawPayload;
  assert.equal(r.headers['content-length'], String(body.length));
  let off = 0;
  for (const hash of order) {
    assert.equal(body.subarray(off, off + 32).toString('hex'), hash);
    const length = body.readUInt32BE(off + 32);
    assert.deepEqual(body.subarray(off + 36, off + 36 + length), frames.get(hash));
    off += 36 + length;
  }
  assert.equal(off, body.length);

  const missing = await app.inject({ method: 'POST', url: '/dp/dp1/chunks', payload: { hashes: [hashes[0], 'f'.repeat(64)] } });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().error.code, 'SITECAST_E_NOT_FOUND');
  assert.deepEqual(missing.json().error.missing, ['f'.repeat(64)]);
  for (const payload of [{ hashes: [] }, { hashes: ['../x'] }, { hashes: [hashes[0]], extra: 1 }, { hashes: Array(MAX_BATCH_CHUNKS + 1).fill(hashes[0]) }]) {
    const bad = await app.inject({ method: 'POST', url: '/dp/dp1/chunks', payload });
    assert.equal(bad.statusCode, 400);
    assert.equal(bad.json().error.code, 'SITECAST_E_INVALID_VALUE');
  }
  assert.equal((await app.inject({ method: 'POST', url: '/dp/nodp/chunks', payload: { hashes: [hashes[0]] } })).statusCode, 404);
});

for (const cache of [undefined, 0]) test(`served frames are kept in memory (cache ${cache ?? 'default'}), but a chunk file rewritten on disk is served as it is now, and a removed one is 404`, async (t) => {
  const { app, frames, hashes, library } = await dpWithChunks(t, [50_000, 80_000], cache);
  const [a, b] = hashes as [string, string];
  const batch = async (): Promise<Buffer> => {
    const r = await app.inject({ method: 'POST', url: '/dp/dp1/chunks', payload: { hashes: [a, b] } });
    assert.equal(r.statusCode, 200);
    return r.rawPayload;
  };
  const first = await batch();
  assert.deepEqual(await batch(), first, 'the second answer (from memory) is the first');
  // Damage on disk (another size, as a truncation or an overwrite would leave it): the DP serves what it now holds, so clients see the damage and go elsewhere.
  const path = join(library, 'chunks', a.slice(0, 2), a);
  const damaged = Buffer.alloc(1234, 7);
  await writeFile(path, damaged);
  const single = await app.inject({ method: 'GET', url: `/dp/dp1/chunks/${a}` });
  assert.deepEqual(single.rawPayload, damaged);
  const after = await batch();
  assert.equal(after.readUInt32BE(32), damaged.length);
  assert.deepEqual(after.subarray(36, 36 + damaged.length), damaged);
  // Damage of the same size, same second: the modification time still tells.
  const sameSize = Buffer.from(frames.get(b) as Buffer);
  sameSize.writeUInt8(sameSize.readUInt8(sameSize.length - 1) ^ 0xff, sameSize.length - 1);
  const pathB = join(library, 'chunks', b.slice(0, 2), b);
  await writeFile(pathB, sameSize);
  assert.deepEqual((await app.inject({ method: 'GET', url: `/dp/dp1/chunks/${b}` })).rawPayload, sameSize);
  await rm(path);
  assert.equal((await app.inject({ method: 'GET', url: `/dp/dp1/chunks/${a}` })).statusCode, 404);
  const gone = await app.inject({ method: 'POST', url: '/dp/dp1/chunks', payload: { hashes: [a, b] } });
  assert.equal(gone.statusCode, 404);
  assert.deepEqual(gone.json().error.missing, [a]);
});

test('ChunkFrameCache: bounded by bytes, least recently used dropped first; a stat that no longer matches is a miss', async (t) => {
  const dir = await tempDir(t, 'sitecast-chunk-cache');
  const cache = new ChunkFrameCache(4000);
  const files: { path: string; frame: Buffer }[] = [];
  for (let i = 0; i < 5; i++) {
    const path = join(dir, `f${i}`);
    const frame = Buffer.alloc(900, i);
    await writeFile(path, frame);
    files.push({ path, frame });
  }
  const file = (i: number): { path: string; frame: Buffer } => {
    const f = files[i];
    assert.ok(f !== undefined);
    return f;
  };
  const st = (i: number): Promise<Stats> => stat(file(i).path);
  for (let i = 0; i < 4; i++) cache.put(file(i).path, await st(i), file(i).frame);
  assert.equal(cache.bytes, 3600);
  assert.deepEqual(cache.get(file(0).path, await st(0)), file(0).frame, 'f0 used: now the most recent');
  cache.put(file(4).path, await st(4), file(4).frame);
  assert.ok(cache.bytes <= 4000);
  assert.equal(cache.get(file(1).path, await st(1)), undefined, 'f1, the least recently used, was dropped');
  assert.notEqual(cache.get(file(0).path, await st(0)), undefined);
  assert.notEqual(cache.get(file(4).path, await st(4)), undefined);
  // A frame larger than a quarter of the budget is not kept; nor one whose size disagrees with its stat.
  const big = join(dir, 'big');
  await writeFile(big, Buffer.alloc(1500));
  cache.put(big, await stat(big), Buffer.alloc(1500));
  assert.equal(cache.get(big, await stat(big)), undefined);
  cache.put(file(1).path, await st(1), Buffer.alloc(10));
  assert.equal(cache.get(file(1).path, await st(1)), undefined);
  // A rewritten file: its stat changes, the entry is dropped.
  await writeFile(file(0).path, Buffer.alloc(900, 99));
  const before = cache.bytes;
  assert.equal(cache.get(file(0).path, await st(0)), undefined);
  assert.equal(cache.bytes, before - 900);
});
