import { test } from 'node:test';
import assert from 'node:assert/strict';
import { manifestId, parseManifest, resolveLink, serializeManifest } from '../../src/content/manifest.js';
import type { Manifest, ManifestEntry } from '../../src/content/types.js';

const H = 'a'.repeat(64);
const file = (path: string): ManifestEntry => ({ type: 'file', path, mode: 0o644, size: 3, hash: H, chunks: [{ hash: H, size: 3 }] });
const dir = (path: string): ManifestEntry => ({ type: 'dir', path, mode: 0o755 });
const link = (path: string, target: string): ManifestEntry => ({ type: 'symlink', path, target });
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
  // "s/../.." resolves through the link s as the kernel would (to "a", then up twice), not by text ("p").
  refused([dir('p'), dir('p/q'), link('p/q/l', 's/../..'), link('p/q/s', '../../a')], 'SITECAST_E_UNSAFE_PATH', /symlink "p\/q\/l" points out of the package/);
  refused([link('l', 'a\\b')], 'SITECAST_E_UNSAFE_PATH', /NUL or backslash/);
  // A chain that leaves the tree at its last link, a loop, a step out and back in.
  refused([link('a', 'b'), link('b', 'c'), link('c', '../x')], 'SITECAST_E_UNSAFE_PATH', /symlink "a" points out of the package through "c"/);
  refused([link('a', 'b'), link('b', '/etc')], 'SITECAST_E_UNSAFE_PATH', /symlink "a" resolves through "b", which points at absolute path/);
  refused([link('a', 'b'), link('b', 'a')], 'SITECAST_E_UNSAFE_PATH', /loop of links/);
  refused([dir('d'), link('d/l', '../../pkg/d')], 'SITECAST_E_UNSAFE_PATH', /points out of the package/);
});

test('links inside the tree are kept however they are written: chains, "./", a trailing "/", up and down', () => {
  const entries = [
    dir('d'),
    file('d/f'),
    link('d/here', '.'),
    link('d/sub', '../e/'),
    link('d/top', '..'),
    dir('e'),
    link('e/dangling', 'missing/../lib.so'),
    link('e/lib.so', 'lib.so.1'),
    link('e/lib.so.1', './lib.so.1.2.3'),
    file('e/lib.so.1.2.3'),
    link('e/via', '../d/top/e//lib.so'),
  ];
  const m: Manifest = { format: 1, entries };
  assert.deepEqual(parseManifest(serializeManifest(m)), m);
  const links = new Map(entries.flatMap((e) => (e.type === 'symlink' ? [[e.path, e.target] as const] : [])));
  assert.deepEqual(resolveLink('e/lib.so', links), { landing: 'e/lib.so.1.2.3' });
  assert.deepEqual(resolveLink('e/via', links), { landing: 'e/lib.so.1.2.3' });
  assert.deepEqual(resolveLink('d/top', links), { landing: '' });
  assert.deepEqual(resolveLink('d/sub', links), { landing: 'e' });
});

test('a file of one chunk must carry that chunk\'s hash, an empty file the SHA-256 of nothing', () => {
  const B = 'b'.repeat(64);
  refused([{ type: 'file', path: 'a', mode: 0o644, size: 3, hash: B, chunks: [{ hash: H, size: 3 }] }], 'SITECAST_E_BAD_MANIFEST', /file "a": its hash b+ is not the SHA-256 of its one chunk \(a+\)/);
  refused([{ type: 'file', path: 'e', mode: 0o644, size: 0, hash: B, chunks: [] }], 'SITECAST_E_BAD_MANIFEST', /not the SHA-256 of its empty content/);
  // Several chunks: the file hash is checked when the file is extracted (it needs every byte).
  const two: ManifestEntry = { type: 'file', path: 'm', mode: 0o644, size: 6, hash: B, chunks: [{ hash: H, size: 3 }, { hash: H, size: 3 }] };
  assert.doesNotThrow(() => parseManifest(bytesOf([two])));
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
