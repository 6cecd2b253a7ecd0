import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSitecastError } from '../../src/errors.js';
import { type BundleHeader, extractBundleContent, readBundle, writeBundle } from '../../src/formats/bundle.js';
import { tempDir } from '../helpers/fixtures.js';

const keys = generateKeyPairSync('ed25519');
const pem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const keyOf = async (code: string): Promise<string | undefined> => (code === 'CEN' ? pem : undefined);

const header: BundleHeader = {
  format: 1,
  id: 'S-PRI-test',
  from: 'CEN',
  to: 'PRI',
  created: new Date().toISOString(),
  kind: 'site',
  site: { sites: [], dps: [{ site: 'PRI', name: 'dp1', path: '/srv/dp1' }] },
};

test('a bundle round-trips: header, content and signature; the content is copied out whole', async (t) => {
  const dir = await tempDir(t, 'sitecast-bundle');
  const content = join(dir, 'content');
  await writeFile(content, Buffer.alloc(300_000, 7));
  const out = join(dir, 'b.bundle');
  const written = await writeBundle(out, { header, content, privateKey: keys.privateKey });
  const read = await readBundle(out, { keyOf, to: 'PRI' });
  assert.deepEqual(read.header, header);
  assert.equal(read.bytes, written.bytes);
  assert.equal(read.contentBytes, 300_000);
  await extractBundleContent(read, join(dir, 'copy'));
  assert.deepEqual(await readFile(join(dir, 'copy')), await readFile(content));
});

test('reading refuses wrong magic, an unknown format, padding, another addressee, and a header that breaks its schema', async (t) => {
  const dir = await tempDir(t, 'sitecast-bundle');
  const out = join(dir, 'b.bundle');
  await writeBundle(out, { header, privateKey: keys.privateKey });
  const good = await readFile(out);
  const expect = async (bytes: Buffer, code: string, pattern: RegExp, to = 'PRI'): Promise<void> => {
    const path = join(dir, 'x.bundle');
    await writeFile(path, bytes);
    await assert.rejects(readBundle(path, { keyOf, to }), (err: unknown) => isSitecastError(err) && err.code === code && pattern.test(err.message));
  };
  const magic = Buffer.from(good);
  magic.write('NOTABUND', 0, 'latin1');
  await expect(magic, 'SITECAST_E_BAD_BUNDLE', /wrong magic/);
  const format = Buffer.from(good);
  format.writeUInt32LE(9, 8);
  await expect(format, 'SITECAST_E_UNSUPPORTED_FORMAT', /format 9/);
  await expect(Buffer.concat([good, Buffer.from('x')]), 'SITECAST_E_BAD_BUNDLE', /lengths add up/);
  await expect(good.subarray(0, 10), 'SITECAST_E_BAD_BUNDLE', /truncated/);
  await expect(good, 'SITECAST_E_BAD_BUNDLE', /addressed to site PRI, not SEC/, 'SEC');
  await assert.rejects(
    writeBundle(join(dir, 'y.bundle'), { header: { ...header, site: { sites: [], dps: [{ site: 'PRI', name: '../x', path: 'relative' }] } }, privateKey: keys.privateKey }),
    /name|path/,
  );
});
