import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import Fastify from 'fastify';
import { ChunkCodec, putChunkFrame, sha256 } from '../../src/content/store.js';
import { MAX_BATCH_CHUNKS, dpPlugin } from '../../src/dp/http.js';
import { tempDir } from '../helpers/fixtures.js';

async function dpWithChunks(t: Parameters<typeof tempDir>[0], sizes: number[]): Promise<{ app: ReturnType<typeof Fastify>; frames: Map<string, Buffer>; hashes: string[] }> {
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
  await app.register(dpPlugin, { resolveDp: async (name) => (name === 'dp1' ? join(dir, 'dp1') : undefined) });
  t.after(() => app.close());
  return { app, frames, hashes };
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
