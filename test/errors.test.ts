import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ERROR_CODES, SitecastError, ioError } from '../src/errors.js';

test('every error code is documented in docs/errors.md', () => {
  const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of Object.keys(ERROR_CODES)) {
    assert.ok(doc.includes(code), `${code} is missing from docs/errors.md`);
  }
});

test('ioError names the operation and the system code, with a hint for ENOSPC', () => {
  const cause = Object.assign(new Error('no space left on device'), { code: 'ENOSPC' });
  const err = ioError('cannot write chunk x', cause);
  assert.ok(err instanceof SitecastError);
  assert.equal(err.code, 'SITECAST_E_IO');
  assert.match(err.message, /cannot write chunk x \(ENOSPC\)/);
  assert.match(err.hint ?? '', /free space/);
  assert.equal(err.cause, cause);
});
