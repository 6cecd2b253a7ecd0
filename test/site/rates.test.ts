import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { recordAddressTraffic } from '../../src/db/index.js';
import { RateHistory } from '../../src/site/live/rates.js';
import { startSite } from '../../src/site/server.js';
import { eventually, newSite } from '../helpers/site.js';

test('RateHistory keeps each address an hour of samples, oldest first, and forgets an address gone for the whole window', () => {
  const h = new RateHistory(60_000);
  h.sample([{ to: 'PRI', rate: 100 }, { to: 'SEC', rate: 5 }], 0);
  h.sample([{ to: 'PRI', rate: 200 }], 30_000);
  h.sample([{ to: 'PRI', rate: 300 }], 70_000);
  assert.deepEqual(h.history(), { PRI: [{ t: 30_000, rate: 200 }, { t: 70_000, rate: 300 }] });
  // The answer is a copy: changing it changes nothing kept.
  const copy = h.history();
  copy['PRI']?.push({ t: 1, rate: 1 });
  assert.equal(h.history()['PRI']?.length, 2);
});

test('the snapshot carries the rate history the server sampled before anyone asked', async (t) => {
  const site = await newSite(t);
  const h = await startSite(site.root, { live: { rateSampleMs: 50 } });
  site.defer(() => h.close());
  const token = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const headers = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  assert.equal((await fetch(`${h.url}/api/v1/addresses/PRI`, { method: 'PUT', headers, body: JSON.stringify({ rates: ['64KB/s'] }) })).status, 200);
  await recordAddressTraffic(h.ctx.db, 'PRI', { bytes: 65_536, currentRate: 65_536 });
  await new Promise((r) => setTimeout(r, 200));
  await recordAddressTraffic(h.ctx.db, 'PRI', { bytes: 0, currentRate: 0 });
  const rates = await eventually('rate history', async () => {
    const s = (await (await fetch(`${h.url}/api/v1/live/snapshot`, { headers })).json()) as { rates: Record<string, { t: number; rate: number }[]> };
    const list = s.rates['PRI'] ?? [];
    return list.some((x) => x.rate === 65_536) && list.at(-1)?.rate === 0 ? list : undefined;
  });
  for (let i = 1; i < rates.length; i++) assert.ok((rates[i] as { t: number }).t >= (rates[i - 1] as { t: number }).t, 'oldest first');
  assert.equal((await fetch(`${h.url}/api/v1/live/snapshot`)).status, 401);
});
