import { test } from 'node:test';
import assert from 'node:assert/strict';
import { AddressThrottle, createHttpSender, rateWindows, type Limit } from '../../../src/components/sender/index.js';
import { meteringProxy } from '../../helpers/metering-proxy.js';
import { makeRequest, sitePair } from './fixtures.js';

test('rate limit: an http transfer at 256 KB/s, measured on the link, holds the mean within 3% and every second under 110%', async (t) => {
  const p = await sitePair(t);
  const rate = 256 * 1024;
  const { req, file } = await makeRequest(p.cen, Math.round(rate * 4.5));
  const px = await meteringProxy(new URL(p.priUrl));
  t.after(() => px.close());
  const limit = (): Limit => ({ mode: 'rate', bytesPerSecond: rate });
  const sender = createHttpSender({ from: 'CEN', keys: p.cen.keys, target: { code: 'PRI', url: px.url, path: null }, throttle: new AddressThrottle(limit), limit, partBytes: 256 * 1024 });
  await sender.send(req, file, () => undefined, new AbortController().signal);
  const r = rateWindows(px.samples);
  assert.ok(r.seconds > 4, `${r.seconds} s`);
  assert.ok(Math.abs(r.mean / rate - 1) <= 0.03, `mean ${(r.mean / 1024).toFixed(1)} KB/s`);
  assert.ok(r.maxWindow <= rate * 1.1, `busiest second ${(r.maxWindow / 1024).toFixed(1)} KB/s`);
});

test('pulse mode: a block at full speed, then the delay, block after block', async () => {
  const limit = (): Limit => ({ mode: 'pulse', blockBytes: 64 * 1024, delayMs: 300 });
  const throttle = new AddressThrottle(limit);
  const times: number[] = [];
  const start = performance.now();
  for (let i = 0; i < 16; i++) {
    await throttle.take(16 * 1024);
    times.push(performance.now() - start);
  }
  // 4 blocks of 4 slices: within a block no wait, between blocks the delay.
  for (let b = 0; b < 4; b++) {
    const block = times.slice(b * 4, b * 4 + 4);
    assert.ok((block.at(-1) ?? 0) - (block[0] ?? 0) < 50, `block ${b} went at once: ${block.map((x) => x.toFixed(0)).join(',')}`);
    if (b > 0) assert.ok((block[0] ?? 0) - (times[b * 4 - 1] ?? 0) >= 290, `rest before block ${b}`);
  }
});

test('an address with a rate that changes by the hour follows it at once', async () => {
  let bps: number | null = 1024 * 1024;
  const throttle = new AddressThrottle(() => ({ mode: 'rate', bytesPerSecond: bps }));
  const t0 = performance.now();
  for (let i = 0; i < 10; i++) await throttle.take(51_200);
  const fast = performance.now() - t0;
  bps = null;
  const t1 = performance.now();
  for (let i = 0; i < 100; i++) await throttle.take(1024 * 1024);
  assert.ok(performance.now() - t1 < 50, 'unlimited does not wait');
  assert.ok(fast >= 400 && fast < 700, `500 KB at 1 MB/s took ${fast.toFixed(0)} ms`);
});
