import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addStatusMessage, deleteDpStatus, setDpStatus, setSourceProblem } from '../../src/db/index.js';
import { listen, providerSite, type ProviderSite } from '../helpers/provider-site.js';
import { tempDir } from '../helpers/fixtures.js';
import { defaultIcon } from '../../src/formats/icon.js';
import { keyFingerprint } from '../../src/formats/client-protocol.js';
import { runCli } from '../helpers/cli.js';
import { freePort as deadPort } from '../../src/site/lab-chain.js';

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

const run = runCli;

function json<T>(r: Result): T {
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `--json prints exactly one line, got: ${r.stdout} (stderr: ${r.stderr})`);
  return JSON.parse(lines[0] as string) as T;
}

/** A running provider on loopback whose root says where it runs, as the real server does. */
async function runningSite(t: { after: (fn: () => Promise<void>) => void }): Promise<ProviderSite & { url: string }> {
  const site = await providerSite(t);
  const url = await listen(site);
  await writeFile(join(site.root, 'site.url'), `${url}\n`);
  return { ...site, url };
}

test('every admin command keeps its --json contract against a running site (--root)', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  const dpPath = join(site.dir, 'dp1');

  const dp = await run(['dp', 'add', ...root, '--name', 'dp1', '--path', dpPath, '--json']);
  assert.equal(dp.code, 0, dp.stderr);
  assert.deepEqual(json(dp), { site: 'ABC', name: 'dp1', path: dpPath });
  assert.deepEqual(json(await run(['dp', 'list', ...root, '--json'])), { dps: [{ site: 'ABC', name: 'dp1', path: dpPath }] });

  await writeFile(join(site.source, 'office.ico'), defaultIcon('office'));
  const outside = await run(['package', 'create', ...root, '--name', 'Office 2000', '--source', site.source, '--icon', '../office.ico', '--json']);
  assert.equal(outside.code, 2, 'an icon outside the source folder is a usage error');
  assert.match(outside.stderr, /--icon|icon: must be a plain path inside the source folder/);
  const created = await run([
    'package', 'create', ...root, '--name', 'Office 2000', '--source', site.source, '--version', '9.0', '--priority', 'high',
    '--program', 'Install=setup.exe /q KEY=1', '--program', 'Remove=setup.exe /x', '--max-run-time', 'Install=600', '--icon', 'office.ico', '--json',
  ]);
  assert.equal(created.code, 0, created.stderr);
  assert.deepEqual(json(created), { id: 'ABC00001' });
  const listed = json<{ packages: { id: string; version: string; priority: string; programs: unknown[]; icon?: string }[] }>(
    await run(['package', 'list', ...root, '--json']),
  );
  assert.equal(listed.packages[0]?.icon, 'office.ico');
  assert.equal(listed.packages[0]?.version, '9.0');
  assert.equal(listed.packages[0]?.priority, 'high');
  assert.deepEqual(listed.packages[0]?.programs, [
    { name: 'Install', commandLine: 'setup.exe /q KEY=1', maxRunTimeSeconds: 600 },
    { name: 'Remove', commandLine: 'setup.exe /x', maxRunTimeSeconds: 3600 },
  ]);

  const dist = await run(['package', 'distribute', ...root, 'ABC00001', '--dp', 'ABC/dp1', '--json']);
  assert.equal(dist.code, 0, dist.stderr);
  assert.deepEqual(json(dist), { id: 'ABC00001', targets: [{ site: 'ABC', dp: 'dp1' }] });

  await setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  const status = await run(['package', 'status', ...root, 'ABC00001', '--json']);
  assert.equal(status.stdout, '{"id":"ABC00001","sourceVersion":1,"dps":[{"site":"ABC","dp":"dp1","state":"installed","sourceVersion":1}]}\n');

  const update = await run(['package', 'update', ...root, 'ABC00001', '--json']);
  assert.equal(update.code, 0, update.stderr);
  assert.deepEqual(json(update), { id: 'ABC00001', sourceVersion: 2 });

  const off = await run(['package', 'undistribute', ...root, 'ABC00001', '--dp', 'ABC/dp1', '--json']);
  assert.equal(off.code, 0, off.stderr);
  assert.deepEqual(json(off), { id: 'ABC00001', targets: [] });
  const notThere = await run(['package', 'undistribute', ...root, 'ABC00001', '--dp', 'ABC/dp1']);
  assert.equal(notThere.code, 1);
  assert.match(notThere.stderr, /SITECAST_E_NOT_FOUND: package ABC00001 does not target ABC\/dp1/);

  await addStatusMessage(site.db, { severity: 'error', component: 'distmgr', site: 'ABC', packageId: 'ABC00001', text: 'cannot copy' });
  await addStatusMessage(site.db, { severity: 'info', component: 'sender', site: 'ABC', text: 'idle' });
  const messages = await run(['status', 'messages', ...root, '--component', 'distmgr', '--package', 'ABC00001', '--severity', 'warning', '--json']);
  assert.equal(messages.code, 0, messages.stderr);
  const m = json<{ messages: { text: string; severity: string; packageId: string }[] }>(messages);
  assert.deepEqual(
    m.messages.map((x) => [x.text, x.severity, x.packageId]),
    [['cannot copy', 'error', 'ABC00001']],
  );
  assert.equal(json<{ messages: unknown[] }>(await run(['status', 'messages', ...root, '--json'])).messages.length, 2);

  // The DP still holds the package until Distribution Manager clears it (its status row): it cannot be removed yet.
  const busy = await run(['dp', 'remove', ...root, '--name', 'dp1', '--json']);
  assert.equal(busy.code, 1);
  assert.match(busy.stderr, /SITECAST_E_CONFLICT: DP ABC\/dp1 is still being cleared: ABC00001 \(installed\) not taken off yet/);
  await deleteDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp1' });
  const removed = await run(['dp', 'remove', ...root, '--name', 'dp1', '--json']);
  assert.equal(removed.code, 0, removed.stderr);
  assert.deepEqual(json(removed), { site: 'ABC', name: 'dp1', path: dpPath, state: 'removed' });
  assert.deepEqual(json(await run(['dp', 'list', ...root, '--json'])), { dps: [] });
  const again = await run(['dp', 'remove', ...root, '--name', 'dp1']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /SITECAST_E_NOT_FOUND: no distribution point ABC\/dp1/);
  const badName = await run(['dp', 'remove', ...root, '--name', '../x']);
  assert.equal(badName.code, 2, badName.stderr);
  const badSite = await run(['dp', 'remove', ...root, '--name', 'dp1', '--site', 'abc']);
  assert.equal(badSite.code, 2, badSite.stderr);
  assert.match(badSite.stderr, /--site: site/);
});

test('human output: readable tables and one-line confirmations', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  assert.match((await run(['dp', 'add', ...root, '--name', 'dp1', '--path', join(site.dir, 'dp1')])).stdout, /^DP ABC\/dp1 added at /);
  assert.equal((await run(['package', 'create', ...root, '--name', 'P', '--source', site.source])).stdout, 'package ABC00001 created\n');
  assert.match((await run(['package', 'status', ...root, 'ABC00001'])).stdout, /not distributed to any DP yet/);
  await run(['package', 'distribute', ...root, 'ABC00001', '--dp', 'ABC/dp1']);
  await setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp1', state: 'retrying', retryCount: 3, lastMessage: 'disk full' });
  const status = (await run(['package', 'status', ...root, 'ABC00001'])).stdout;
  assert.match(status, /^package ABC00001, source version 1\nDP +STATE +VERSION +RETRIES +LAST MESSAGE\nABC\/dp1 +retrying +0 +3 +disk full\n$/);
  assert.match((await run(['package', 'list', ...root])).stdout, /^ID +NAME +VERSION +PRIORITY/);
  assert.match((await run(['dp', 'list', ...root])).stdout, /^DP +PATH\nABC\/dp1 /);
  assert.equal((await run(['status', 'messages', ...root])).stdout, 'no status messages\n');
  assert.match((await run(['package', 'update', ...root, 'ABC00001'])).stdout, /source version 2/);
  await run(['dp', 'add', ...root, '--name', 'spare', '--path', join(site.dir, 'spare')]);
  assert.equal((await run(['dp', 'remove', ...root, '--name', 'spare'])).stdout, `DP ABC/spare removed; its folder ${join(site.dir, 'spare')} is left as it is\n`);
});

test('package wait: 0 when every DP holds the current version, 1 when one failed, 2 on timeout', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  await run(['dp', 'add', ...root, '--name', 'dp1', '--path', join(site.dir, 'dp1')]);
  await run(['dp', 'add', ...root, '--name', 'dp2', '--path', join(site.dir, 'dp2')]);
  await run(['package', 'create', ...root, '--name', 'P', '--source', site.source]);
  assert.equal((await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '1'])).code, 0, 'nothing targeted: nothing to wait for');
  await run(['package', 'distribute', ...root, 'ABC00001', '--dp', 'ABC/dp1', '--dp', 'ABC/dp2']);

  const timedOut = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '0.3', '--interval', '0.1']);
  assert.equal(timedOut.code, 2);
  assert.match(timedOut.stderr, /timed out after 0\.3 s: 0 of 2 DPs/);

  await setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp1', state: 'installed', sourceVersion: 1 });
  const later = setTimeout(() => {
    void setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp2', state: 'installed', sourceVersion: 1 });
  }, 300);
  t.after(() => clearTimeout(later));
  const done = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '10', '--interval', '0.1', '--json']);
  assert.equal(done.code, 0, done.stderr);
  assert.deepEqual(json<{ dps: { state: string }[] }>(done).dps.map((d) => d.state), ['installed', 'installed']);

  await run(['package', 'update', ...root, 'ABC00001']);
  const stale = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '0.2', '--interval', '0.1']);
  assert.equal(stale.code, 2, 'DPs holding the old version are not done');

  await setDpStatus(site.db, { packageId: 'ABC00001', site: 'ABC', dp: 'dp2', state: 'failed', lastMessage: 'disk full' });
  const failed = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '10']);
  assert.equal(failed.code, 1);
  assert.match(failed.stderr, /failed on ABC\/dp2/);
});

test('package wait: a source that could not be used is failed (1) even with no DP targeted; errors exit 3, never 1 or 2', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  await run(['package', 'create', ...root, '--name', 'P', '--source', site.source]);
  const nothing = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '1']);
  assert.equal(nothing.code, 0);
  assert.match(nothing.stderr, /nothing to wait for: package ABC00001 is not distributed to any DP/);
  await setSourceProblem(site.db, 'ABC00001', 1, 'source folder /gone does not exist');
  const failed = await run(['package', 'wait', ...root, 'ABC00001', '--timeout', '1', '--json']);
  assert.equal(failed.code, 1);
  assert.equal(json<{ sourceProblem?: string }>(failed).sourceProblem, 'source folder /gone does not exist');
  assert.match(failed.stderr, /package ABC00001 failed: its source folder could not be used \(source folder \/gone does not exist\)/);
  assert.match((await run(['package', 'status', ...root, 'ABC00001'])).stdout, /source version 1 FAILED: source folder \/gone does not exist/);
  // The problem belongs to source version 1: an update asks for a new try.
  await run(['package', 'update', ...root, 'ABC00001']);
  assert.equal(json<{ sourceProblem?: string }>(await run(['package', 'status', ...root, 'ABC00001', '--json'])).sourceProblem, undefined);

  const errors: [string, string[], RegExp][] = [
    ['unknown package', ['package', 'wait', ...root, 'ABC00099'], /SITECAST_E_NOT_FOUND/],
    ['bad --timeout', ['package', 'wait', ...root, 'ABC00001', '--timeout', 'abc'], /--timeout "abc" is not a number of seconds/],
    ['unknown option', ['package', 'wait', ...root, 'ABC00001', '--bogus'], /unknown option/],
    ['site down', ['package', 'wait', '--url', `http://127.0.0.1:${await deadPort()}`, '--token', `sct_${'A'.repeat(43)}`, 'ABC00001'], /SITECAST_E_SITE_DOWN/],
  ];
  for (const [what, args, message] of errors) {
    const r = await run(args);
    assert.equal(r.code, 3, `${what}: ${r.stderr}`);
    assert.match(r.stderr, message, what);
  }
});

test('which site: --url/--token beat SITECAST_URL/SITECAST_TOKEN, which beat --root', async (t) => {
  const site = await runningSite(t);
  const dead = `http://127.0.0.1:${await deadPort()}`;
  const wrong = `sct_${'C'.repeat(43)}`;
  const ok = (r: Result): void => assert.equal(r.code, 0, r.stderr);
  const list = ['package', 'list', '--json'];

  // Root alone: site.url and admin.token.
  ok(await run([...list, '--root', site.root]));
  // Env beats root: a dead env URL is used even though the root's site.url is alive.
  const envDead = await run([...list, '--root', site.root], { SITECAST_URL: dead });
  assert.equal(envDead.code, 1);
  assert.match(envDead.stderr, new RegExp(`SITECAST_E_SITE_DOWN: no site answers at ${dead}`));
  ok(await run(list, { SITECAST_URL: site.url, SITECAST_TOKEN: site.adminToken }));
  const envWrongToken = await run([...list, '--root', site.root], { SITECAST_TOKEN: wrong });
  assert.equal(envWrongToken.code, 1);
  assert.match(envWrongToken.stderr, /SITECAST_E_UNAUTHORIZED/);
  // Flags beat env.
  ok(await run([...list, '--url', site.url, '--token', site.adminToken], { SITECAST_URL: dead, SITECAST_TOKEN: wrong }));
  ok(await run([...list, '--root', site.root, '--token', site.adminToken], { SITECAST_TOKEN: wrong }));
  // Mixed: URL from the environment, token from the root.
  ok(await run([...list, '--root', site.root], { SITECAST_URL: site.url }));
  // Without site.url the root's site.json gives the address.
  const { rm } = await import('node:fs/promises');
  await rm(join(site.root, 'site.url'));
  const fromConfig = await run([...list, '--root', site.root]);
  assert.equal(fromConfig.code, 1);
  assert.match(fromConfig.stderr, /no site answers at http:\/\/127\.0\.0\.1:0/);

  const nowhere = await run(list);
  assert.equal(nowhere.code, 2);
  assert.match(nowhere.stderr, /SITECAST_E_USAGE: which site\?/);
  const noToken = await run([...list, '--url', site.url]);
  assert.equal(noToken.code, 2);
});

test('a site that is not running: a clear SITECAST_E_SITE_DOWN naming the URL and how to start it', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'site');
  const port = await deadPort();
  assert.equal((await run(['site', 'init', root, '--code', 'DWN', '--listen', `127.0.0.1:${port}`])).code, 0);
  const r = await run(['package', 'status', '--root', root, 'DWN00001', '--json']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, new RegExp(`error SITECAST_E_SITE_DOWN: no site answers at http://127\\.0\\.0\\.1:${port}; is \`sitecast site start ${root.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\` running\\?`));
  assert.equal(json<{ error: { code: string } }>(r).error.code, 'SITECAST_E_SITE_DOWN');
});

test('a wrong token: exit 1 with the code shown, and the token printed nowhere', async (t) => {
  const site = await runningSite(t);
  const wrong = `sct_${'D'.repeat(43)}`;
  const r = await run(['dp', 'add', '--url', site.url, '--token', wrong, '--name', 'dp1', '--path', site.dir, '--json']);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /error SITECAST_E_UNAUTHORIZED: the token sent with POST \/api\/v1\/dps is not valid\nhint: send the header Authorization with `Bearer` and the token/);
  assert.equal(json<{ error: { code: string } }>(r).error.code, 'SITECAST_E_UNAUTHORIZED');
  assert.ok(!r.stdout.includes(wrong) && !r.stderr.includes(wrong));
  assert.ok(!r.stdout.includes('DDDDDDDD') && !r.stderr.includes('DDDDDDDD'));

  const readOnly = await run(['package', 'create', '--url', site.url, '--token', site.readToken, '--name', 'P', '--source', site.source]);
  assert.equal(readOnly.code, 1);
  assert.match(readOnly.stderr, /error SITECAST_E_FORBIDDEN: token [0-9a-f]{12} is read-only/);
  assert.ok(!readOnly.stderr.includes(site.readToken));
  assert.equal((await run(['package', 'list', '--url', site.url, '--token', site.readToken])).code, 0, 'read-only may read');
});

test('provider errors are shown with their code and message; nothing is changed', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  await run(['package', 'create', ...root, '--name', 'P', '--source', site.source]);
  const noDp = await run(['package', 'distribute', ...root, 'ABC00001', '--dp', 'ABC/nope', '--json']);
  assert.equal(noDp.code, 1);
  assert.match(noDp.stderr, /error SITECAST_E_NOT_FOUND: no distribution point ABC\/nope\nhint: /);
  assert.deepEqual(json<{ error: { code: string; hint: string } }>(noDp).error.code, 'SITECAST_E_NOT_FOUND');
  const noPkg = await run(['package', 'status', ...root, 'ABC000FF']);
  assert.match(noPkg.stderr, /SITECAST_E_NOT_FOUND: package ABC000FF does not exist/);
  const noSource = await run(['package', 'create', ...root, '--name', 'Q', '--source', join(site.dir, 'missing')]);
  assert.equal(noSource.code, 1);
  assert.match(noSource.stderr, /SITECAST_E_INVALID_VALUE: sourcePath: .*missing is not a folder on the site server/);
  await run(['dp', 'add', ...root, '--name', 'dp1', '--path', join(site.dir, 'dp1')]);
  const dup = await run(['dp', 'add', ...root, '--name', 'dp1', '--path', join(site.dir, 'dp1')]);
  assert.match(dup.stderr, /SITECAST_E_CONFLICT/);
});

test('usage errors exit 2 before any request (package wait: 3, its 2 means timed out; tested with wait)', async (t) => {
  const site = await runningSite(t);
  const root = ['--root', site.root];
  const cases: [string[], RegExp][] = [
    [['package', 'create', ...root, '--source', site.source], /--name/],
    [['package', 'create', ...root, '--name', 'P', '--source', site.source, '--priority', 'urgent'], /priority/],
    [['package', 'create', ...root, '--name', 'P', '--source', site.source, '--program', 'no-equals'], /--program "no-equals" is not <name>=<value>/],
    [['package', 'create', ...root, '--name', 'P', '--source', site.source, '--program', 'a=b', '--max-run-time', 'z=5'], /no --program defines/],
    [['package', 'create', ...root, '--name', 'P', '--source', site.source, '--program', 'a=b', '--max-run-time', 'a=soon'], /whole number/],
    [['package', 'status', ...root, 'abc1'], /package id/],
    [['package', 'distribute', ...root, 'ABC00001'], /--dp/],
    [['package', 'distribute', ...root, 'ABC00001', '--dp', 'dp1'], /SITE\/dp/],
    [['status', 'messages', ...root, '--severity', 'loud'], /severity/],
    [['dp', 'add', ...root, '--name', 'dp1'], /--path/],
    [['dp', 'add', '--url', 'ftp://x', '--token', 't', '--name', 'dp1', '--path', '/x'], /--url: "ftp:\/\/x" is not an http\(s\) URL/],
    [['site', 'init', '--code', 'ABC'], /missing required argument 'root'/],
    [['site', 'init', join(site.dir, 'never'), '--code', 'abc'], /--code "abc" is not a site code/],
    [['package', 'frobnicate'], /unknown command/],
  ];
  for (const [args, pattern] of cases) {
    const r = await run(args);
    assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern, args.join(' '));
  }
  assert.equal((await run(['package', 'list', ...root, '--json'])).stdout, '{"packages":[]}\n', 'nothing was created');
});

test('site init prints the token once and keeps it in admin.token (0600); a used folder is refused', async (t) => {
  const dir = await tempDir(t);
  const root = join(dir, 'cen');
  const r = await run(['site', 'init', root, '--code', 'CEN', '--name', 'Central', '--listen', '127.0.0.1:9999', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const out = json<{ site: string; url: string; token: string }>(r);
  assert.deepEqual(Object.keys(out), ['site', 'url', 'token', 'keyFingerprint']);
  assert.equal(out.site, 'CEN');
  assert.equal(out.url, 'http://127.0.0.1:9999');
  assert.match(out.token, /^sct_/);
  assert.equal((await readFile(join(root, 'admin.token'), 'utf8')).trim(), out.token);
  assert.equal((await stat(join(root, 'admin.token'))).mode & 0o777, 0o600);

  // Port 0: a port chosen at each start, so no URL yet; where `site start` will write it instead.
  const anyPort = await run(['site', 'init', join(dir, 'any'), '--code', 'ANY', '--listen', '127.0.0.1:0', '--json']);
  assert.equal(anyPort.code, 0, anyPort.stderr);
  // The site key's fingerprint, for clients to pin (client register --site-key).
  const keyPrint = keyFingerprint(await readFile(join(dir, 'any', 'keys', 'site.pub'), 'utf8'));
  assert.deepEqual(json<{ url: unknown; urlFile: unknown }>(anyPort), { site: 'ANY', url: null, urlFile: join(dir, 'any', 'site.url'), token: json<{ token: string }>(anyPort).token, keyFingerprint: keyPrint });
  assert.match(keyPrint, /^sha256:[0-9a-f]{64}$/);

  const human = await run(['site', 'init', join(dir, 'other'), '--code', 'OTH']);
  assert.match(human.stdout, /site OTH \(Site OTH\) created in .*\nurl: +http:\/\/127\.0\.0\.1:8430\ntoken: sct_/);
  const again = await run(['site', 'init', root, '--code', 'CEN', '--json']);
  assert.equal(again.code, 1);
  assert.equal(json<{ error: { code: string } }>(again).error.code, 'SITECAST_E_SITE_EXISTS');
  const badCode = await run(['site', 'init', join(dir, 'x'), '--code', 'toolong']);
  assert.equal(badCode.code, 2, 'a malformed --code is a usage error');
  assert.match(badCode.stderr, /SITECAST_E_USAGE: --code "toolong" is not a site code/);
  await assert.rejects(stat(join(dir, 'x')), { code: 'ENOENT' });
});
