import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign, verify } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { registerClient } from '../../src/db/clients.js';
import { addSite, openSiteDb } from '../../src/db/index.js';
import { PolicyCache } from '../../src/mp/policy-cache.js';

function pem(): string {
  return generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

test('policy cache: keys parsed on first use and kept across rebuilds; a damaged key makes its client unknown, not the others', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sitecast-policy-cache-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const db = await openSiteDb({ kind: 'sqlite', path: join(dir, 'site.db') });
  t.after(() => db.close());
  await addSite(db, { code: 'CEN', name: 'Central', isLocal: true, publicKey: 'PUBKEY' });
  const keys = generateKeyPairSync('ed25519');
  const good = await registerClient(db, { name: 'good', publicKey: keys.publicKey.export({ type: 'spki', format: 'pem' }).toString(), site: 'CEN', approved: true });
  const damaged = await registerClient(db, { name: 'damaged', publicKey: pem(), site: 'CEN', approved: true });
  await sql`UPDATE clients SET public_key = ${'-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n'} WHERE id = ${damaged.id}`.execute(db.db);

  const cache = new PolicyCache(db, join(dir, 'pkginfo'));
  const first = await cache.client(good.id);
  assert.equal(first?.client.name, 'good');
  assert.equal(first?.key.asymmetricKeyType, 'ed25519');
  const text = Buffer.from('GET /mp/v1/policy');
  assert.ok(first !== undefined && verify(null, text, first.key, sign(null, text, keys.privateKey)), 'the cached key is the registered one');
  assert.equal(await cache.client(damaged.id), undefined);
  assert.equal(await cache.client('GUID:00000000-0000-4000-8000-000000000000'), undefined);

  // A new registration rebuilds the snapshot; the key already parsed is reused.
  await registerClient(db, { name: 'third', publicKey: pem(), site: 'CEN', approved: true });
  cache.invalidate();
  assert.equal((await cache.client(good.id))?.key, first?.key);
  assert.equal(await cache.client(damaged.id), undefined);
});
