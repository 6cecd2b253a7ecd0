import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, readdir, writeFile } from 'node:fs/promises';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { addStatusMessage, createAdminToken } from '../../src/db/index.js';
import { dropFile } from '../../src/inbox/index.js';
import { startSite, type SiteHandle } from '../../src/site/server.js';
import { LiveHub } from '../../src/site/live/hub.js';
import { ticketSigner } from '../../src/site/live/ticket.js';
import { makeTree } from '../helpers/fixtures.js';
import { eventually, newSite, openContext } from '../helpers/site.js';

interface Frame {
  event: string;
  data: unknown;
}

/** Reads a server-sent event stream over real HTTP until `done` says so (or the time is up). */
async function listen(url: string, headers: Record<string, string>, done: (frames: Frame[]) => boolean, ms = 20_000): Promise<Frame[]> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), ms);
  const frames: Frame[] = [];
  try {
    const res = await fetch(url, { headers, signal: abort.signal });
    assert.equal(res.status, 200, await (res.status === 200 ? Promise.resolve('') : res.text()));
    assert.match(res.headers.get('content-type') ?? '', /^text\/event-stream/);
    const reader = res.body!.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    for (;;) {
      const { value, done: ended } = await reader.read();
      if (ended) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined && data !== undefined) frames.push({ event, data: JSON.parse(data) as unknown });
      }
      if (done(frames)) break;
    }
  } catch (err) {
    if (!abort.signal.aborted) throw err;
  } finally {
    clearTimeout(timer);
    abort.abort();
  }
  return frames;
}

async function started(t: { after: (fn: () => Promise<void>) => void }): Promise<{ h: SiteHandle; admin: string; reader: string; dir: string }> {
  const site = await newSite(t);
  const h = await startSite(site.root, { distmgr: { graceMs: 50 } });
  site.defer(() => h.close());
  const admin = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const reader = (await createAdminToken(h.ctx.db, { role: 'read-only', label: 'viewer' })).token;
  return { h, admin, reader, dir: site.dir };
}

async function api(h: SiteHandle, token: string, method: string, path: string, body?: unknown): Promise<Response> {
  return fetch(`${h.url}/api/v1${path}`, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
}

test('events: a package distributed through the API streams its DP states and status messages as they happen', async (t) => {
  const { h, admin, reader, dir } = await started(t);
  const src = join(dir, 'src');
  await makeTree(src, 'live');
  assert.equal((await api(h, admin, 'POST', '/dps', { name: 'dp1', path: join(dir, 'dp1') })).status, 201);

  const watching = listen(`${h.url}/api/v1/events`, { authorization: `Bearer ${reader}` }, (f) =>
    f.some((x) => x.event === 'dp-status' && (x.data as { state: string }).state === 'installed'),
  );
  // The stream starts from a fresh read; give it one tick before changing anything.
  await new Promise((r) => setTimeout(r, 700));
  const created = await api(h, admin, 'POST', '/packages', { name: 'Live <b>one</b>', sourcePath: src });
  assert.equal(created.status, 201);
  const { id } = (await created.json()) as { id: string };
  assert.equal((await api(h, admin, 'POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] })).status, 200);

  const frames = await watching;
  assert.equal(frames[0]?.event, 'hello');
  assert.deepEqual(frames[0]?.data, { site: 'CEN', role: 'read-only' });
  const pkg = frames.find((f) => f.event === 'package');
  assert.equal((pkg?.data as { id: string; name: string }).name, 'Live <b>one</b>');
  const states = frames.filter((f) => f.event === 'dp-status').map((f) => (f.data as { packageId: string; state: string }));
  assert.ok(states.every((s) => s.packageId === id));
  assert.equal(states.at(-1)?.state, 'installed');
  assert.ok(frames.some((f) => f.event === 'status-message'), 'Distribution Manager reported as it worked');
});

test('events: a ticket from POST /events/ticket opens the stream; no token, a wrong token or a forged ticket is 401', async (t) => {
  const { h, reader } = await started(t);
  assert.equal((await fetch(`${h.url}/api/v1/events`)).status, 401);
  const wrong = await fetch(`${h.url}/api/v1/events`, { headers: { authorization: 'Bearer sct_nope' } });
  assert.equal(wrong.status, 401);
  assert.equal(((await wrong.json()) as { error: { code: string } }).error.code, 'SITECAST_E_UNAUTHORIZED');
  assert.equal((await fetch(`${h.url}/api/v1/events/ticket`, { method: 'POST' })).status, 401);

  const issued = await api(h, reader, 'POST', '/events/ticket');
  assert.equal(issued.status, 201);
  const { ticket, expiresAt } = (await issued.json()) as { ticket: string; expiresAt: string };
  assert.ok(Date.parse(expiresAt) > Date.now());
  assert.ok(!ticket.includes(reader), 'the ticket does not carry the token');
  const frames = await listen(`${h.url}/api/v1/events?ticket=${encodeURIComponent(ticket)}`, {}, (f) => f.length > 0);
  assert.equal(frames[0]?.event, 'hello');

  const forged = `${ticket.split('.')[0] ?? ''}.${Buffer.alloc(32).toString('base64url')}`;
  const refused = await fetch(`${h.url}/api/v1/events?ticket=${encodeURIComponent(forged)}`);
  assert.equal(refused.status, 401);
  assert.match(((await refused.json()) as { error: { message: string } }).error.message, /ticket is not valid or has expired/);
});

test('tickets: a ticket expires after a minute and is bound to its signing key', () => {
  const signer = ticketSigner();
  const { ticket } = signer.issue({ id: 'tok1', role: 'admin' }, 1_000);
  assert.deepEqual(signer.verify(ticket, 2_000), { id: 'tok1', role: 'admin' });
  assert.equal(signer.verify(ticket, 61_001), undefined);
  assert.equal(ticketSigner().verify(ticket, 2_000), undefined, 'another process cannot read it');
  assert.equal(signer.verify('garbage', 2_000), undefined);
  assert.equal(signer.verify(`${ticket}.x`, 2_000), undefined);
});

test('metrics: packages by state, addresses, inbox backlogs and request latencies in Prometheus text', async (t) => {
  const { h, admin, dir } = await started(t);
  const src = join(dir, 'src');
  await makeTree(src, 'metrics');
  await api(h, admin, 'POST', '/dps', { name: 'dp1', path: join(dir, 'dp1') });
  const { id } = (await (await api(h, admin, 'POST', '/packages', { name: 'M', sourcePath: src })).json()) as { id: string };
  await api(h, admin, 'POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] });
  assert.equal((await api(h, admin, 'PUT', '/addresses/PRI', { rates: ['64KB/s'] })).status, 200);
  await fetch(`${h.url}/mp/v1/pkginfo/CEN0FFFF.PKG`);
  let text = '';
  for (let i = 0; i < 100; i++) {
    const res = await fetch(`${h.url}/metrics`);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    text = await res.text();
    if (text.includes('sitecast_package_dp_state{site="CEN",state="installed"} 1')) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  assert.match(text, /^sitecast_package_dp_state\{site="CEN",state="installed"\} 1$/m);
  assert.match(text, /^sitecast_package_dp_state\{site="CEN",state="failed"\} 0$/m);
  assert.match(text, /^# TYPE sitecast_package_dp_state gauge$/m);
  assert.match(text, /^sitecast_address_bytes_sent_total\{site="CEN",to="PRI"\} 0$/m);
  assert.match(text, /^sitecast_inbox_backlog\{site="CEN",component="distmgr",inbox="distmgr.box"\} \d+$/m);
  assert.match(text, /^sitecast_http_request_duration_seconds_bucket\{method="POST",route="\/api\/v1\/packages",status="201",le="\+Inf"\} 1$/m);
  assert.match(text, /^sitecast_http_request_duration_seconds_count\{method="PUT",route="\/api\/v1\/addresses\/:to",status="200"\} 1$/m);
  assert.match(text, /^sitecast_http_request_duration_seconds_count\{method="GET",route="\/mp\/v1\/pkginfo\/[^"]+",status="404"\} 1$/m, 'the management point is timed too');
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    assert.match(line, /^sitecast_[a-z_]+(\{[^}]*\})? [0-9.e+-]+$/, line);
  }
});

test('metrics, health and snapshot count the files in bad/, not the reasons beside them or writes in flight', async (t) => {
  const { h, reader } = await started(t);
  const box = h.ctx.paths.distmgr;
  await dropFile(box, 'CEN00099.PKN', 'this is not json');
  await dropFile(box, 'notes.txt', 'hello');
  const bad = join(box, 'bad');
  await eventually('both in bad/ with their reasons', async () => ((await readdir(bad)).filter((n) => !n.startsWith('.')).length === 4 ? true : undefined));
  // A reason being written when the snapshot reads the folder.
  await writeFile(join(bad, '.notes.txt.reason.0123456789ab.tmp'), 'half');
  const line = /^sitecast_inbox_bad\{site="CEN",component="distmgr",inbox="distmgr.box"\} (\d+)$/m;
  assert.equal(line.exec(await (await fetch(`${h.url}/metrics`)).text())?.[1], '2');
  const health = (await (await api(h, reader, 'GET', '/health')).json()) as { components: { component: string; inboxes: { inbox: string; bad: number }[] }[] };
  assert.deepEqual(health.components.find((c) => c.component === 'distmgr')?.inboxes.find((b) => b.inbox === 'distmgr.box')?.bad, 2);
  const snap = (await (await api(h, reader, 'GET', '/live/snapshot')).json()) as { backlogs: { inbox: string; bad: number }[] };
  assert.equal(snap.backlogs.find((b) => b.inbox === 'distmgr.box')?.bad, 2);
});

test('health and snapshot: backlogs, last error and log tail per component; a read-only token reads them', async (t) => {
  const { h, admin, reader, dir } = await started(t);
  // A source Distribution Manager refuses whenever it gets to it (a fifo inside):
  // removing the folder after the create raced with its ingest.
  const src = join(dir, 'unusable');
  await makeTree(src, 'unusable');
  execFileSync('mkfifo', [join(src, 'a-fifo')]);
  assert.equal((await api(h, admin, 'POST', '/dps', { name: 'dp1', path: join(dir, 'dp1') })).status, 201);
  const created = await api(h, admin, 'POST', '/packages', { name: 'Unusable', sourcePath: src });
  assert.equal(created.status, 201);
  const { id } = (await created.json()) as { id: string };
  await api(h, admin, 'POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] });
  let health: { components: { component: string; inboxes: unknown[]; lastError: { text: string } | null; logTail: string[] }[] } | undefined;
  for (let i = 0; i < 100; i++) {
    const res = await api(h, reader, 'GET', '/health');
    assert.equal(res.status, 200);
    health = (await res.json()) as typeof health;
    if (health?.components.find((c) => c.component === 'distmgr')?.lastError !== null) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const distmgr = health?.components.find((c) => c.component === 'distmgr');
  assert.ok(distmgr?.lastError, 'the failed source is distmgr\'s last error');
  assert.ok(distmgr.logTail.length > 0);
  assert.ok(distmgr.logTail.every((l) => !l.includes(admin)));
  assert.ok(health?.components.some((c) => c.component === 'sender'));

  const snap = (await (await api(h, reader, 'GET', '/live/snapshot')).json()) as { site: string; role: string; packages: { id: string }[]; dps: { state: string }[] };
  assert.equal(snap.site, 'CEN');
  assert.equal(snap.role, 'read-only');
  assert.deepEqual(snap.packages.map((p) => p.id), [id]);
  assert.equal((await fetch(`${h.url}/api/v1/health`)).status, 401);
});

test('console: served from the site server with a strict content security policy; nothing outside its folder', async (t) => {
  const { h } = await started(t);
  const redirect = await fetch(`${h.url}/console`, { redirect: 'manual' });
  assert.equal(redirect.status, 302);
  const page = await fetch(`${h.url}/console/`);
  assert.equal(page.status, 200);
  assert.match(page.headers.get('content-type') ?? '', /^text\/html/);
  assert.match(page.headers.get('content-security-policy') ?? '', /script-src 'self'/);
  assert.match(await page.text(), /<title>Sitecast/);
  assert.equal((await fetch(`${h.url}/console/app.js`)).headers.get('content-type'), 'text/javascript; charset=utf-8');
  for (const bad of ['..%2Fsite.json', '..%2F..%2Fpackage.json', 'server.ts', 'INDEX.HTML']) {
    assert.equal((await fetch(`${h.url}/console/${bad}`)).status, 404, bad);
  }
});

test('events: listeners are bounded; past the limit the stream answers 503 and a freed place is reused', async (t) => {
  const site = await newSite(t);
  const ctx = await openContext(site);
  const hub = new LiveHub({ db: ctx.db, paths: ctx.paths, log: ctx.logger('provider') }, { intervalMs: 20, maxSubscribers: 2 });
  t.after(() => hub.close());
  const got: string[] = [];
  const a = hub.subscribe({ send: (e) => void got.push(...e.map((x) => x.type)) });
  assert.equal(hub.full, false);
  const b = hub.subscribe({ send: () => undefined });
  assert.equal(hub.full, true);
  b();
  assert.equal(hub.full, false);
  await new Promise((r) => setTimeout(r, 100));
  await addStatusMessage(ctx.db, { severity: 'info', component: 'distmgr', site: 'CEN', text: 'hello <script>' });
  for (let i = 0; i < 50 && !got.includes('status-message'); i++) await new Promise((r) => setTimeout(r, 20));
  assert.deepEqual(got, ['status-message'], 'only the change travels');
  a();
  assert.equal(hub.size, 0);
});

test('validate: a DP share is re-hashed against its manifest; a changed or extra file is reported, as the answer and a status message', async (t) => {
  const { h, admin, reader, dir } = await started(t);
  const src = join(dir, 'src');
  await makeTree(src, 'validate');
  await api(h, admin, 'POST', '/dps', { name: 'dp1', path: join(dir, 'dp1') });
  const { id } = (await (await api(h, admin, 'POST', '/packages', { name: 'V', sourcePath: src })).json()) as { id: string };
  await api(h, admin, 'POST', `/packages/${id}/distribute`, { dps: ['CEN/dp1'] });
  for (let i = 0; i < 200; i++) {
    const s = (await (await api(h, admin, 'GET', `/packages/${id}/status`)).json()) as { dps: { state: string }[] };
    if (s.dps[0]?.state === 'installed') break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const good = await api(h, admin, 'POST', `/packages/${id}/dps/dp1/validate`, {});
  assert.equal(good.status, 200);
  const ok = (await good.json()) as { ok: boolean; checked: number; sourceVersion: number; problems: string[] };
  assert.equal(ok.ok, true, ok.problems.join('\n'));
  assert.ok(ok.checked > 0);
  assert.equal(ok.sourceVersion, 1);

  const share = join(dir, 'dp1', 'SMSPKG', id);
  await writeFile(join(share, 'README.txt'), 'changed by hand\n');
  await writeFile(join(share, 'stray.bin'), 'x');
  const bad = (await (await api(h, admin, 'POST', `/packages/${id}/dps/dp1/validate`, {})).json()) as { ok: boolean; problems: string[] };
  assert.equal(bad.ok, false);
  assert.ok(bad.problems.some((p) => p.startsWith('README.txt:')), bad.problems.join('\n'));
  assert.ok(bad.problems.includes('stray.bin: not part of the package'));
  const messages = (await (await api(h, reader, 'GET', `/status-messages?package=${id}&severity=error`)).json()) as { messages: { text: string }[] };
  assert.match(messages.messages[0]?.text ?? '', /does not match source version 1: .*README\.txt/);

  assert.equal((await api(h, reader, 'POST', `/packages/${id}/dps/dp1/validate`, {})).status, 403);
  const unknown = await api(h, admin, 'POST', `/packages/${id}/dps/nope/validate`, {});
  assert.equal(unknown.status, 404);
  assert.equal((await api(h, admin, 'POST', `/packages/${id}/dps/..%2Fx/validate`, {})).status, 400);
});

test('openapi.json documents the live routes too: every route this plugin serves is listed', async (t) => {
  const { h } = await started(t);
  const doc = (await (await fetch(`${h.url}/openapi.json`)).json()) as { paths: Record<string, Record<string, unknown>> };
  const served: [string, string][] = [
    ['get', '/api/v1/events'],
    ['post', '/api/v1/events/ticket'],
    ['get', '/api/v1/live/snapshot'],
    ['get', '/api/v1/live/advertisements'],
    ['get', '/api/v1/health'],
    ['post', '/api/v1/packages/{id}/dps/{dp}/validate'],
    ['get', '/api/v1/sites/{code}/links'],
    ['get', '/metrics'],
  ];
  for (const [method, path] of served) assert.ok(doc.paths[path]?.[method], `${method.toUpperCase()} ${path} is in the document`);
  // And each of them is really served (not 404) by the running site.
  for (const [method, path] of served) {
    const url = `${h.url}${path.replace('{id}', 'CEN00001').replace('{dp}', 'dp1').replace('{code}', 'CEN')}`;
    const res = await fetch(url, { method: method.toUpperCase() });
    assert.notEqual(res.status, 404, `${method.toUpperCase()} ${path} is served`);
    await res.body?.cancel();
  }
});
