import assert from 'node:assert/strict';
import { TOUCH_BATCH, listClients, touchClients } from '../../src/db/clients.js';
import { clientDb } from '../../src/db/client-tables.js';
import { eachBackend, fixture } from './backends.js';

const KEY = '-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA\n-----END PUBLIC KEY-----\n';

async function policyVersion(db: ReturnType<typeof clientDb>): Promise<number> {
  const row = await db.selectFrom('counters').select('value').where('name', '=', 'client_policy').executeTakeFirst();
  return Number(row?.value ?? 0);
}

eachBackend('touchClients writes every last-seen time in batches, letting the event loop turn between them; the policy version moves once', async (t, backend) => {
  const { site } = await fixture(t, backend);
  const db = clientDb(site);
  const count = TOUCH_BATCH * 2 + 200;
  const ids = Array.from({ length: count }, (_, i) => `GUID:00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`);
  const registeredAt = new Date(0).toISOString();
  for (let at = 0; at < count; at += 400) {
    await db
      .insertInto('clients')
      .values(ids.slice(at, at + 400).map((id, i) => ({ id, name: `pc-${at + i}`, public_key: `${KEY}${at + i}`, site_code: 'CEN', boundary: null, ip: null, approved: 1, registered_at: registeredAt, last_seen_at: null })))
      .execute();
  }
  const before = await policyVersion(db);
  const time = '2026-12-08T03:00:00.000Z';
  const seen = new Map(ids.map((id, i) => [id, { time, ip: `10.0.${i >> 8}.${i & 255}`, boundary: null }]));

  // Turns of the event loop while the write runs: one transaction over every client would allow none on SQLite.
  let turns = 0;
  let done = false;
  const turn = (): void => {
    if (done) return;
    turns++;
    setImmediate(turn);
  };
  setImmediate(turn);
  await touchClients(site, seen, true);
  done = true;
  assert.ok(turns >= 2, `the event loop turned between batches (${turns} turns)`);

  const clients = await listClients(site);
  assert.equal(clients.length, count);
  assert.ok(clients.every((c) => c.lastSeenAt === time), 'every client written');
  assert.equal(await policyVersion(db), before + 1, 'the policy version moved once');
});
