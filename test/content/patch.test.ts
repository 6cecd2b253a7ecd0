import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { applyPatch, bufferByteSource, createPatch, fileByteSource, type ByteSource } from '../../src/content/patch.js';
import { isSitecastError, type ErrorCode } from '../../src/errors.js';

/** Deterministic bytes: xorshift32 from a seed, so failures reproduce. */
function noise(seed: number, length: number): Buffer {
  const out = Buffer.alloc(length);
  let s = seed | 1;
  for (let i = 0; i < length; i += 4) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    out.writeInt32LE(s, i - (i + 4 > length ? i + 4 - length : 0));
  }
  return out;
}

/** Text-like bytes that compress, unlike noise. */
function text(seed: number, lines: number): Buffer {
  const rows: string[] = [];
  for (let i = 0; i < lines; i++) rows.push(`line ${i} value ${(i * 2654435761 + seed) % 1000003} ${'x'.repeat(i % 40)}`);
  return Buffer.from(rows.join('\n'));
}

async function collect(pieces: AsyncIterable<Buffer>): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const piece of pieces) parts.push(piece);
  return Buffer.concat(parts);
}

async function roundTrip(oldBuf: Buffer, newBuf: Buffer): Promise<Buffer> {
  const patch = await createPatch(bufferByteSource(oldBuf), bufferByteSource(newBuf));
  assert.ok(patch !== null);
  const rebuilt = await collect(applyPatch(bufferByteSource(oldBuf), patch));
  assert.ok(rebuilt.equals(newBuf), 'the patch rebuilds the new file');
  return patch;
}

async function withTempDir(fn: (dir: string) => Promise<void>): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-patch-'));
  try {
    await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function rejectsWith(code: ErrorCode, oldFile: ByteSource, patch: Buffer): Promise<void> {
  await assert.rejects(collect(applyPatch(oldFile, patch)), (err: unknown) => {
    assert.ok(isSitecastError(err, code), `expected ${code}, got ${String(err)}`);
    return true;
  });
}

test('a small edit round-trips and the patch is much smaller than the file', async () => {
  const oldBuf = text(1, 3000);
  const newBuf = Buffer.concat([oldBuf.subarray(0, 5000), Buffer.from('an inserted sentence\n'), oldBuf.subarray(5200)]);
  const patch = await roundTrip(oldBuf, newBuf);
  assert.ok(patch.length < 200, `patch of ${patch.length} bytes`);
});

test('empty old, empty new and both empty round-trip', async () => {
  await roundTrip(Buffer.alloc(0), text(2, 100));
  await roundTrip(text(3, 100), Buffer.alloc(0));
  await roundTrip(Buffer.alloc(0), Buffer.alloc(0));
  await roundTrip(Buffer.from('abc'), Buffer.from('abcd'));
});

test('insertions, deletions and moves in a multi-MB file use several segments and stay small', async () => {
  await withTempDir(async (dir) => {
    const MiB = 1 << 20;
    const oldBuf = noise(7, 13 * MiB);
    // Move the first MiB to the end, delete 300 KB in the middle, insert new bytes in two places.
    const newBuf = Buffer.concat([
      oldBuf.subarray(MiB, 5 * MiB),
      noise(8, 100_000),
      oldBuf.subarray(5 * MiB, 8 * MiB),
      oldBuf.subarray(8 * MiB + 300_000, 13 * MiB),
      Buffer.from('tail insertion'),
      oldBuf.subarray(0, MiB),
    ]);
    await writeFile(join(dir, 'old'), oldBuf);
    await writeFile(join(dir, 'new'), newBuf);
    const oldFile = await fileByteSource(join(dir, 'old'));
    const newFile = await fileByteSource(join(dir, 'new'));
    try {
      const patch = await createPatch(oldFile, newFile);
      assert.ok(patch !== null);
      assert.ok(patch.readUInt32LE(22) >= 3, 'several segments');
      assert.ok(patch.length < 150_000, `patch of ${patch.length} bytes for ${newBuf.length} bytes of noise`);
      const rebuilt = await collect(applyPatch(oldFile, patch));
      assert.ok(rebuilt.equals(newBuf));
    } finally {
      await oldFile.close();
      await newFile.close();
    }
  });
});

test('unrelated files give null under a limit', async () => {
  const oldBuf = noise(11, 300_000);
  const newBuf = noise(12, 300_000);
  assert.equal(await createPatch(bufferByteSource(oldBuf), bufferByteSource(newBuf), { limit: 200_000 }), null);
});

test('an aborted signal stops patch creation', async () => {
  const controller = new AbortController();
  controller.abort();
  await assert.rejects(createPatch(bufferByteSource(text(1, 10)), bufferByteSource(text(2, 10)), { signal: controller.signal }));
});

test('a real pair from the bench data round-trips', async (t) => {
  const oldPath = '/work/data/typescript-5.8.3/package/lib/typescript.js';
  const newPath = '/work/data/typescript-5.9.3/package/lib/typescript.js';
  if (!existsSync(oldPath) || !existsSync(newPath)) {
    t.skip('bench data is not present');
    return;
  }
  const oldFile = await fileByteSource(oldPath);
  const newFile = await fileByteSource(newPath);
  try {
    const patch = await createPatch(oldFile, newFile);
    assert.ok(patch !== null);
    assert.ok(patch.length < newFile.size / 50, `patch of ${patch.length} bytes`);
    const rebuilt = await collect(applyPatch(oldFile, patch));
    assert.ok(rebuilt.equals(await newFile.read(0, newFile.size)));
  } finally {
    await oldFile.close();
    await newFile.close();
  }
});

test('damaged patches are refused with a named error', async () => {
  const oldBuf = text(4, 2000);
  const oldFile = bufferByteSource(oldBuf);
  const patch = await roundTrip(oldBuf, Buffer.concat([oldBuf, Buffer.from('more')]));
  // Layout: 26-byte header, then segment 0: length, frame length, range count, one range (offset, length), frame.
  assert.equal(patch.readUInt16LE(26 + 8), 1);
  const frameAt = 26 + 10 + 12;

  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, patch.subarray(0, 10));
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, patch.subarray(0, patch.length - 1));
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, Buffer.concat([patch, Buffer.from([0])]));

  const wrongMagic = Buffer.from(patch);
  wrongMagic.write('ZZ', 0, 'latin1');
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, wrongMagic);

  const futureVersion = Buffer.from(patch);
  futureVersion.writeUInt8(99, 4);
  await rejectsWith('SITECAST_E_UNSUPPORTED_FORMAT', oldFile, futureVersion);

  const outOfRange = Buffer.from(patch);
  outOfRange.writeBigUInt64LE(BigInt(oldBuf.length), 26 + 10);
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, outOfRange);

  const hugeOffset = Buffer.from(patch);
  hugeOffset.writeBigUInt64LE(0xffff_ffff_ffff_ffffn, 26 + 10);
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, hugeOffset);

  const hugeSegment = Buffer.from(patch);
  hugeSegment.writeUInt32LE(0xffff_ffff, 26);
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, hugeSegment);

  const corruptFrame = Buffer.from(patch);
  corruptFrame.writeUInt32LE(0xdeadbeef, frameAt);
  await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, corruptFrame);

  await rejectsWith('SITECAST_E_MISSING_BASE', bufferByteSource(oldBuf.subarray(1)), patch);
});

test('every truncation and random byte flips fail with a SitecastError or decode, never crash', async () => {
  const oldBuf = text(5, 400);
  const oldFile = bufferByteSource(oldBuf);
  const patch = await roundTrip(oldBuf, Buffer.concat([Buffer.from('head\n'), oldBuf.subarray(100)]));
  for (let len = 0; len < patch.length; len++) await rejectsWith('SITECAST_E_BAD_ARCHIVE', oldFile, patch.subarray(0, len));
  const flips = noise(9, 800);
  for (let i = 0; i < 200; i++) {
    const damaged = Buffer.from(patch);
    const at = flips.readUInt32LE(i * 4) % patch.length;
    damaged[at] = (damaged[at] ?? 0) ^ (1 << (i % 8));
    try {
      await collect(applyPatch(oldFile, damaged));
    } catch (err) {
      assert.ok(isSitecastError(err), `flip at ${at} threw ${String(err)}`);
    }
  }
});
