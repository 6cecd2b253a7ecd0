import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isMember, parseRule } from '../../src/formats/collection-rule.js';
import { inRange, ipToBig, parseIpRange } from '../../src/formats/ip-range.js';

test('boundary ranges: CIDR and a-b, IPv4, IPv6 and IPv4-mapped addresses; bad ranges refused', () => {
  const v4 = parseIpRange('10.1.0.0/16');
  assert.ok(v4 !== undefined);
  assert.equal(inRange(v4, ipToBig('10.1.255.3') ?? 0n), true);
  assert.equal(inRange(v4, ipToBig('::ffff:10.1.2.3') ?? 0n), true);
  assert.equal(inRange(v4, ipToBig('10.2.0.1') ?? 0n), false);
  const span = parseIpRange('192.168.1.10-192.168.1.20');
  assert.ok(span !== undefined);
  assert.equal(inRange(span, ipToBig('192.168.1.15') ?? 0n), true);
  assert.equal(inRange(span, ipToBig('192.168.1.21') ?? 0n), false);
  const v6 = parseIpRange('fd00::/8');
  assert.ok(v6 !== undefined);
  assert.equal(inRange(v6, ipToBig('fd12:3456::1') ?? 0n), true);
  assert.equal(inRange(v6, ipToBig('::1') ?? 0n), false);
  for (const bad of ['10.0.0.0/33', '10.0.0.9-10.0.0.1', 'example.com', '1.2.3.4/x', '']) assert.equal(parseIpRange(bad), undefined, bad);
});

test('collection rules: name globs (case-insensitive), site, boundary, direct members by id or name', () => {
  const col = {
    name: 'c',
    members: new Set(['GUID:00000000-0000-4000-8000-000000000001', 'kiosk']),
    rules: ['name:PC-??', 'site:SEC', 'boundary:Lab'].map((r) => parseRule(r) ?? assert.fail(r)),
  };
  const c = (name: string, site = 'CEN', boundary: string | null = null, id = 'GUID:00000000-0000-4000-8000-00000000ffff') => ({ id, name, site, boundary });
  assert.equal(isMember(col, c('pc-12')), true);
  assert.equal(isMember(col, c('pc-123')), false);
  assert.equal(isMember(col, c('x', 'SEC')), true);
  assert.equal(isMember(col, c('x', 'CEN', 'Lab')), true);
  assert.equal(isMember(col, c('kiosk')), true);
  assert.equal(isMember(col, c('x', 'CEN', null, 'GUID:00000000-0000-4000-8000-000000000001')), true);
  assert.equal(isMember(col, c('a.b(c)')), false);
  for (const bad of ['colour:red', 'site:sec', 'name:', 'boundary:../x']) assert.equal(parseRule(bad), undefined, bad);
});
