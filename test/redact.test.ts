import { test } from 'node:test';
import assert from 'node:assert/strict';
import { redact } from '../src/redact.js';

test('tokens, bearer credentials and private keys are masked; prose about them is not', () => {
  assert.equal(redact('token sct_AbCdEf0123456789xyz leaked'), 'token sct_[redacted] leaked');
  assert.equal(redact('Authorization: Bearer abcdefghijklmnopqrstuvwxyz012345'), 'Authorization: Bearer [redacted]');
  assert.equal(redact('-----BEGIN PRIVATE KEY-----\nMC4CAQ\n-----END PRIVATE KEY-----'), '[private key redacted]');
  assert.equal(redact('the bearer token is missing'), 'the bearer token is missing');
});

test('the password of a PostgreSQL URL is masked; the rest of the URL stays', () => {
  assert.equal(redact('open postgres://site:hunter2@db:5432/cen failed'), 'open postgres://site:***@db:5432/cen failed');
  assert.equal(redact('postgresql://site@db/cen'), 'postgresql://site@db/cen');
});
