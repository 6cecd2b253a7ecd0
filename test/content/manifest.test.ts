import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestId, parseManifest, serializeManifest } from '../../src/content/manifest.js';
import type { Manifest, ManifestEntry } from '../../src/content/types.js';

const H = 'a'.repeat(64);
const file = (path: string): ManifestEntry => ({ type: 'file', path, mode: 0o644, size: 3, hash: H, chunks: [{ hash: H, size: 3 }] });
const bytesOf = (entries: ManifestEntry[]): Buffer => serializeManifest({ format: 1, entries });

function refused(entries: ManifestEntry[], code: string, pattern: RegExp): void {
  assert.throws(() => parseManifest(bytesOf(entries)), (err: Error & { code?: string }) => {
    assert.equal(err.code, code);
    assert.match(err.message, pattern);
    return true;
  });
}

test('a valid manifest round-trips and its id is the SHA-256 of its canonical bytes', () => {
  const m: Manifest = { format: 1, entries: [{ type: 'dir', path: 'a', mode: 0o755 }, file('a/b'), { type: 'symlink', path: 'c', target: 'a/b' }] };
  const bytes = serializeManifest(m);
  assert.deepEqual(parseManifest(bytes, manifestId(bytes)), m);
  assert.throws(() => parseManifest(bytes, 'b'.repeat(64)), /does not match its id/);
});

test('unsafe paths are refused with SITECAST_E_UNSAFE_PATH', () => {
  refused([file('../etc/passwd')], 'SITECAST_E_UNSAFE_PATH', /"\.\.\/etc\/passwd" climbs out/);
  refused([file('a/../../x')], 'SITECAST_E_UNSAFE_PATH', /climbs out/);
  refused([file('/etc/passwd')], 'SITECAST_E_UNSAFE_PATH', /absolute path/);
  refused([file('a//b')], 'SITECAST_E_UNSAFE_PATH', /not normalized/);
  refused([file('a/./b')], 'SITECAST_E_UNSAFE_PATH', /not normalized/);
  refused([file('a'), file('a')], 'SITECAST_E_UNSAFE_PATH', /duplicate path "a"/);
  refused([file('a'), file('a/b')], 'SITECAST_E_UNSAFE_PATH', /goes through the file "a"/);
  refused([{ type: 'symlink', path: 'l', target: 'x' }, file('l/b')], 'SITECAST_E_UNSAFE_PATH', /goes through the symlink "l"/);
  refused([{ type: 'symlink', path: 'l', target: '../../etc' }], 'SITECAST_E_UNSAFE_PATH', /points out of the package/);
  refused([{ type: 'symlink', path: 'l', target: '/etc/passwd' }], 'SITECAST_E_UNSAFE_PATH', /absolute path/);
  refused([{ type: 'dir', path: 'd', mode: 0o755 }, { type: 'symlink', path: 'd/l', target: '../..' }], 'SITECAST_E_UNSAFE_PATH', /points out/);
  // "s/../.." resolves through the link s on disk, not by text: refused whatever s points at.
  const dir = (path: string): ManifestEntry => ({ type: 'dir', path, mode: 0o755 });
  refused([dir('p'), dir('p/q'), { type: 'symlink', path: 'p/q/l', target: 's/../..' }, { type: 'symlink', path: 'p/q/s', target: '../../a' }], 'SITECAST_E_UNSAFE_PATH', /not normalized/);
  refused([{ type: 'symlink', path: 'l', target: 'a\\b' }], 'SITECAST_E_UNSAFE_PATH', /NUL or backslash/);
});

test('malformed manifests are refused with SITECAST_E_BAD_MANIFEST or UNSUPPORTED_FORMAT', () => {
  assert.throws(() => parseManifest(Buffer.from('{not json')), { code: 'SITECAST_E_BAD_MANIFEST' });
  assert.throws(() => parseManifest(Buffer.from('{"format":1,"entries":[{"type":"file","path":"a"}]}')), { code: 'SITECAST_E_BAD_MANIFEST' });
  assert.throws(() => parseManifest(Buffer.from('{"format":2,"entries":[]}')), { code: 'SITECAST_E_UNSUPPORTED_FORMAT' });
  refused([file('b'), file('a')], 'SITECAST_E_BAD_MANIFEST', /not sorted/);
  refused([file('x/y')], 'SITECAST_E_BAD_MANIFEST', /inside "x", which the manifest does not list as a folder/);
  const setuid = { ...file('a'), mode: 0o4755 } as ManifestEntry;
  assert.throws(() => parseManifest(bytesOf([setuid])), { code: 'SITECAST_E_BAD_MANIFEST' });
  const wrongSize = { ...file('a'), size: 4 } as ManifestEntry;
  refused([wrongSize], 'SITECAST_E_BAD_MANIFEST', /add up to 3, not 4/);
});
