import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex, signRequest } from '../../src/components/sender/auth.js';
import { createAdminToken } from '../../src/db/index.js';
import { LINKS_PATH } from '../../src/site/live/links.js';
import { api, startLab } from '../helpers/hierarchy.js';
import { eventually } from '../helpers/site.js';

interface Links {
  site: string;
  addresses: { to: string; sender: string; queued: number; sending: number; rate: number; lastError: string | null }[];
  backlogs: { component: string; inbox: string; files: number }[];
}

interface ErrorBody {
  error: { code: string; message: string };
}

test('links: the centre sees the addresses and inbox backlogs of every site below it, asked of that site with a signed request; nobody else does', async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  const pri = lab.site('PRI');
  const sec = lab.site('SEC');

  // PRI's address to SEC (given a rate limit at PRI), and SEC's inboxes two levels down.
  assert.equal((await api(pri, 'PUT', '/api/v1/addresses/SEC', { rates: ['64KB/s'] })).status, 200);
  const priLinks = await api(cen, 'GET', '/api/v1/sites/PRI/links');
  assert.equal(priLinks.status, 200, JSON.stringify(priLinks.json));
  const p = priLinks.json as Links;
  assert.equal(p.site, 'PRI');
  assert.ok(p.addresses.some((a) => a.to === 'SEC' && a.sender === 'http' && a.lastError === null), JSON.stringify(p.addresses));
  // SEC's definition and address reach the centre through PRI's status reports.
  const secLinks = await eventually('SEC known at CEN', async () => {
    const r = await api(cen, 'GET', '/api/v1/sites/SEC/links');
    return r.status === 200 ? (r.json as Links) : undefined;
  });
  assert.equal(secLinks.site, 'SEC');
  assert.ok(secLinks.backlogs.some((b) => b.inbox === 'distmgr.box' && b.component === 'distmgr'), JSON.stringify(secLinks.backlogs));
  // Its own links, and a read-only token may look.
  const reader = (await createAdminToken(cen.handle.ctx.db, { role: 'read-only', label: 'viewer' })).token;
  const own = await api({ handle: cen.handle, token: reader }, 'GET', '/api/v1/sites/CEN/links');
  assert.equal(own.status, 200);
  assert.equal((own.json as Links).site, 'CEN');
  assert.ok((own.json as Links).backlogs.length > 0);

  // A site does not see the links of a site above it, nor of one it does not know; a bad code is 400.
  const up = await api(sec, 'GET', '/api/v1/sites/CEN/links');
  assert.equal(up.status, 404);
  assert.match((up.json as ErrorBody).error.message, /CEN is not at or below SEC/);
  assert.equal((await api(cen, 'GET', '/api/v1/sites/ZZZ/links')).status, 404);
  assert.equal((await api(cen, 'GET', '/api/v1/sites/x/links')).status, 400);
  const noToken = await fetch(`${cen.handle.url}/api/v1/sites/PRI/links`);
  assert.equal(noToken.status, 401);

  // The site-to-site route: unsigned, signed by a child, signed for another site: 401.
  const unsigned = await fetch(`${pri.handle.url}${LINKS_PATH}`);
  assert.equal(unsigned.status, 401);
  const signed = (from: { handle: typeof sec.handle }, code: string, to: string): Record<string, string> =>
    signRequest(from.handle.ctx.keys.privateKey, { method: 'GET', path: LINKS_PATH, from: code, to, range: '', fileSha256: '', bodySha256: sha256Hex(Buffer.alloc(0)) });
  const byChild = await fetch(`${pri.handle.url}${LINKS_PATH}`, { headers: signed(sec, 'SEC', 'PRI') });
  assert.equal(byChild.status, 401);
  assert.match(((await byChild.json()) as ErrorBody).error.message, /SEC is not above PRI/);
  const elsewhere = await fetch(`${pri.handle.url}${LINKS_PATH}`, { headers: signed(cen, 'CEN', 'SEC') });
  assert.equal(elsewhere.status, 401);
  const byParent = await fetch(`${pri.handle.url}${LINKS_PATH}`, { headers: signed(cen, 'CEN', 'PRI') });
  assert.equal(byParent.status, 200);

  // A site below that is down: a clear 502 naming it, and the centre goes on answering.
  await lab.stop('SEC');
  const down = await api(cen, 'GET', '/api/v1/sites/SEC/links');
  assert.equal(down.status, 502);
  assert.equal((down.json as ErrorBody).error.code, 'SITECAST_E_SITE_DOWN');
  assert.match((down.json as ErrorBody).error.message, /site SEC at http:\/\/127\.0\.0\.1:\d+\/? did not answer/);
  assert.equal((await api(cen, 'GET', '/api/v1/sites/PRI/links')).status, 200);
});
