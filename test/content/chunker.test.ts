import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Readable } from 'node:stream';
import { chunkLengths, chunkStream, DEFAULT_CHUNKER, validateChunkerParams } from '../../src/content/chunker.js';
import { randomBytesFrom } from '../helpers/fixtures.js';

test('chunk sizes stay within the bounds and cover the input', () => {
  const data = randomBytesFrom('bounds', 8 * 1024 * 1024);
  const lengths = chunkLengths(data);
  assert.equal(lengths.reduce((a, b) => a + b, 0), data.length);
  for (const len of lengths.slice(0, -1)) {
    assert.ok(len >= DEFAULT_CHUNKER.minSize && len <= DEFAULT_CHUNKER.maxSize, `chunk of ${len} bytes out of bounds`);
  }
  const mean = data.length / lengths.length;
  assert.ok(mean > DEFAULT_CHUNKER.avgSize * 0.6 && mean < DEFAULT_CHUNKER.avgSize * 1.6, `mean chunk ${mean}`);
});

test('an insertion changes only the chunks near it', () => {
  const data = randomBytesFrom('shift', 4 * 1024 * 1024);
  const edited = Buffer.concat([data.subarray(0, 2_000_000), Buffer.from('inserted bytes'), data.subarray(2_000_000)]);
  const hashes = (buf: Buffer): Set<string> => {
    const set = new Set<string>();
    let pos = 0;
    for (const len of chunkLengths(buf)) {
      set.add(buf.subarray(pos, pos + len).toString('base64'));
      pos += len;
    }
    return set;
  };
  const before = hashes(data);
  const after = hashes(edited);
  const changed = [...after].filter((h) => !before.has(h)).length;
  assert.ok(changed <= 2, `${changed} chunks changed for one insertion`);
});

test('streaming in any block size gives the same cut points', async () => {
  const data = randomBytesFrom('stream', 3 * 1024 * 1024 + 12345);
  const expected = chunkLengths(data);
  for (const block of [1000, 65536, 1 << 20, 5 << 20]) {
    const blocks: Buffer[] = [];
    for (let i = 0; i < data.length; i += block) blocks.push(data.subarray(i, i + block));
    const got: number[] = [];
    for await (const chunk of chunkStream(Readable.from(blocks))) got.push(chunk.length);
    assert.deepEqual(got, expected, `block size ${block}`);
  }
});

test('empty input has no chunks; invalid parameters are refused', () => {
  assert.deepEqual(chunkLengths(Buffer.alloc(0)), []);
  assert.throws(() => validateChunkerParams({ minSize: 10, avgSize: 1000, maxSize: 500 }), RangeError);
  validateChunkerParams(DEFAULT_CHUNKER);
});
