import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type Page } from 'playwright-core';
import { createAdminToken, getAddress } from '../../src/db/index.js';
import { startSite } from '../../src/site/server.js';
import { makeTree } from '../helpers/fixtures.js';
import { api, startLab } from '../helpers/hierarchy.js';
import { eventually, newSite } from '../helpers/site.js';

const CHROMIUM = '/usr/bin/chromium';
const SHOTS = fileURLToPath(new URL('../../../test-results/', import.meta.url));
const XSS = '<img src=x onerror=alert(1)>';

async function browser(t: { after: (fn: () => Promise<void>) => void }): Promise<BrowserContext> {
  const profile = await mkdtemp(join(tmpdir(), 'sitecast-chromium-'));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1280, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  t.after(async () => {
    await context.close().catch(() => undefined);
    await rm(profile, { recursive: true, force: true });
  });
  return context;
}

/** Fails the test on any script error or dialog: nothing a package name holds may run. */
function watch(page: Page): { errors: string[]; dialogs: string[] } {
  const seen = { errors: [] as string[], dialogs: [] as string[] };
  page.on('pageerror', (e) => seen.errors.push(e.message));
  page.on('console', (m) => {
    // The browser logs every refused request (401/403/400) itself; those are expected in this test.
    if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) seen.errors.push(m.text());
  });
  page.on('dialog', (d) => {
    seen.dialogs.push(d.message());
    void d.dismiss();
  });
  return seen;
}

async function signIn(page: Page, url: string, token: string): Promise<void> {
  await page.goto(`${url}/console/`);
  await page.getByLabel('Token').fill(token);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#live-state.live').waitFor({ timeout: 15_000 });
}

async function shot(page: Page, name: string): Promise<void> {
  await mkdir(SHOTS, { recursive: true });
  await page.screenshot({ path: join(SHOTS, `console-${name}.png`), fullPage: true });
}

test('console in real Chromium: sign in, create and distribute, watch it install live, see a failure, read-only cannot act, names are text', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`, timeout: 180_000 }, async (t) => {
  const site = await newSite(t);
  const h = await startSite(site.root, { distmgr: { graceMs: 50, retry: { initialMs: 200, maxMs: 1000 } } });
  site.defer(() => h.close());
  const admin = (await readFile(join(site.root, 'admin.token'), 'utf8')).trim();
  const reader = (await createAdminToken(h.ctx.db, { role: 'read-only', label: 'viewer' })).token;
  const good = join(site.dir, 'office');
  const doomed = join(site.dir, 'doomed');
  await makeTree(good, 'office');
  await makeTree(doomed, 'doomed');
  const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
  assert.equal((await fetch(`${h.url}/api/v1/dps`, { method: 'POST', headers, body: JSON.stringify({ name: 'dp1', path: join(site.dir, 'dp1') }) })).status, 201);
  // dp2 lives under a plain file: it can never be written, whatever the user.
  await writeFile(join(site.dir, 'blocker'), 'not a folder\n');
  assert.equal((await fetch(`${h.url}/api/v1/dps`, { method: 'POST', headers, body: JSON.stringify({ name: 'dp2', path: join(site.dir, 'blocker', 'dp2') }) })).status, 201);
  assert.equal((await fetch(`${h.url}/api/v1/addresses/PRI`, { method: 'PUT', headers, body: JSON.stringify({ rates: ['128KB/s'] }) })).status, 200);

  const agent = await fetch(`${h.url}/api/v1/packages`, { method: 'POST', headers, body: JSON.stringify({ name: 'Agent', sourcePath: good, programs: [{ name: 'install', commandLine: 'install.cmd /quiet' }] }) });
  const agentId = ((await agent.json()) as { id: string }).id;
  assert.equal((await fetch(`${h.url}/api/v1/collections`, { method: 'POST', headers, body: JSON.stringify({ name: 'desktops', members: ['pc1'] }) })).status, 201);
  const advert = await fetch(`${h.url}/api/v1/advertisements`, { method: 'POST', headers, body: JSON.stringify({ packageId: agentId, program: 'install', collection: 'desktops' }) });
  assert.equal(advert.status, 201, await advert.clone().text());
  const advertId = ((await advert.json()) as { id: string }).id;

  const context = await browser(t);
  const page = await context.newPage();
  const seen = watch(page);

  // A wrong token goes nowhere, and says so.
  await page.goto(`${h.url}/console/`);
  await page.getByLabel('Token').fill('sct_not_a_token');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#signin-message', { hasText: /not valid/ }).waitFor();
  await shot(page, 'sign-in');

  await signIn(page, h.url, admin);
  await page.locator('#site-tree [data-dp="CEN/dp1"]').waitFor();
  await page.locator('#address-table [data-address="PRI"] .rate-limit', { hasText: '128 KB/s' }).waitFor();

  // A rate that does not parse marks the field and saves nothing.
  await page.getByLabel('Rate limit', { exact: true }).fill('fast please');
  await page.getByRole('button', { name: 'Save rate limit' }).click();
  assert.equal(await page.getByLabel('Rate limit', { exact: true }).getAttribute('aria-invalid'), 'true');
  await page.locator('#rate-value-error', { hasText: /64KB\/s/ }).waitFor();
  assert.deepEqual((await getAddress(h.ctx.db, 'PRI'))?.rateLimit[3], 128, 'nothing saved');
  await page.getByLabel('Rate limit', { exact: true }).fill('256KB/s');
  await page.getByRole('button', { name: 'Save rate limit' }).click();
  await page.locator('#rate-result', { hasText: /saved/ }).waitFor({ timeout: 5000 }).catch(async () => assert.fail(`rate not saved: ${(await page.locator('#rate-result').textContent()) ?? ''}`));
  assert.equal((await getAddress(h.ctx.db, 'PRI'))?.rateLimit[3], 256);
  await page.getByRole('button', { name: 'Pause sending to PRI' }).click();
  await page.getByRole('button', { name: 'Resume sending to PRI' }).waitFor();
  assert.equal((await getAddress(h.ctx.db, 'PRI'))?.paused, true);
  await page.getByRole('button', { name: 'Resume sending to PRI' }).click();
  await page.getByRole('button', { name: 'Pause sending to PRI' }).waitFor();
  assert.equal((await getAddress(h.ctx.db, 'PRI'))?.paused, false);

  // The weekly schedule grid: close Monday 00:00-01:00 for every priority.
  await page.getByLabel('Set clicked hours to').selectOption('closed');
  await page.getByRole('button', { name: 'Monday 00:00: all' }).click();
  await page.getByRole('button', { name: 'Save schedule' }).click();
  await page.locator('#schedule-result.ok').waitFor();
  assert.equal((await getAddress(h.ctx.db, 'PRI'))?.schedule[0], `c${'a'.repeat(23)}`);
  await shot(page, 'hierarchy');

  // Keyboard alone: the skip link first, then the views.
  // (A reload also shows the session survives it: the token stays in the tab's sessionStorage.)
  await page.reload();
  await page.locator('#live-state.live').waitFor();
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate('document.activeElement.textContent'), 'Skip to content');
  await page.keyboard.press('Tab');
  await page.keyboard.press('Tab');
  assert.equal(await page.evaluate('document.activeElement.textContent'), 'Packages');
  await page.keyboard.press('Enter');
  await page.locator('#packages-table').waitFor();

  // Create and distribute from the console; the state turns installed without a reload.
  await page.getByLabel('Name', { exact: true }).fill('Office suite');
  await page.getByLabel('Source folder on the site server').fill(good);
  await page.getByRole('button', { name: 'Create package' }).click();
  await page.locator('#create-result.ok').waitFor();
  await page.locator('#create-result a').click();
  await page.evaluate(() => Object.assign(globalThis, { notReloaded: true }));
  await page.getByLabel('CEN/dp1').check();
  await page.getByRole('button', { name: 'Distribute', exact: true }).click();
  await page.locator('#package-dps [data-dp="CEN/dp1"] .dp-state', { hasText: 'installed' }).waitFor({ timeout: 30_000 });
  assert.equal(await page.evaluate(() => (globalThis as { notReloaded?: boolean }).notReloaded), true, 'the page was not reloaded');
  await page.getByRole('button', { name: 'Validate CEN/dp1' }).click();
  await page.locator('#package-result.ok', { hasText: /matches source version 1/ }).waitFor();
  await page.getByRole('button', { name: 'Redistribute CEN/dp1' }).click();
  await page.locator('#package-result.ok', { hasText: /Redistribution to dp1 requested/ }).waitFor();
  await page.locator('#package-dps [data-dp="CEN/dp1"] .dp-message', { hasText: 'source version 1 redistributed' }).waitFor({ timeout: 30_000 });
  await page.locator('#timeline li').first().waitFor();
  await shot(page, 'package');

  // A DP that cannot be written fails (or retries), with the reason; the package name is shown as text.
  await page.getByRole('link', { name: 'Packages', exact: true }).click();
  await page.getByLabel('Name', { exact: true }).fill(XSS);
  await page.getByLabel('Source folder on the site server').fill(doomed);
  await page.getByRole('button', { name: 'Create package' }).click();
  await page.locator('#create-result.ok').waitFor();
  await page.locator('#create-result a').click();
  await page.getByLabel('CEN/dp2').check();
  await page.getByRole('button', { name: 'Distribute', exact: true }).click();
  const failing = page.locator('#package-dps [data-dp="CEN/dp2"]');
  await failing.locator('.dp-state', { hasText: /failed|retrying/ }).waitFor({ timeout: 30_000 }).catch(async (err: unknown) => assert.fail(`DP row: ${(await page.locator('#package-dps').textContent()) ?? ''}; ${String(err)}`));
  await failing.locator('.dp-message', { hasText: /.+/ }).waitFor();
  assert.match((await failing.locator('.dp-message').textContent()) ?? '', /ENOTDIR|not a directory|blocker/i);
  assert.equal(await page.locator('#package-title').textContent(), XSS);
  await shot(page, 'package-failed');

  await page.getByRole('link', { name: 'Packages', exact: true }).click();
  await page.getByLabel('Search packages').fill('img');
  const row = page.locator('#packages-table tbody tr');
  await row.first().waitFor();
  assert.equal(await row.count(), 1, 'the search keeps only the matching package');
  assert.equal(await row.locator('.pkg-name').textContent(), XSS);
  assert.equal(await page.locator('#packages-table img').count(), 0, 'no element came from the name');
  await page.getByLabel('Search packages').fill('');
  await shot(page, 'packages');

  await page.getByRole('link', { name: 'Status messages' }).click();
  await page.locator('#messages-table tbody tr').first().waitFor();
  // The filter applies at once to what is shown, and the server's filtered answer then replaces the table.
  const answered = page.waitForResponse((r) => r.url().includes('/api/v1/status-messages?') && r.url().includes('severity=warning'));
  await page.getByLabel('Severity').selectOption('warning');
  await answered;
  await page.locator('#messages-table tbody tr :is(.sev-warning, .sev-error)').first().waitFor();
  assert.equal(await page.locator('#messages-table tbody tr .sev-info').count(), 0, 'the filter keeps warnings and worse');
  await shot(page, 'messages');

  await page.getByRole('link', { name: 'Advertisements' }).click();
  await page.getByRole('button', { name: `Client results of ${advertId}` }).click();
  await page.locator('#advert-clients').waitFor();
  await shot(page, 'advertisements');

  await page.getByRole('link', { name: 'Component health' }).click();
  await page.locator('#health-table [data-component="distmgr"]').waitFor();
  await shot(page, 'health');
  assert.deepEqual(seen.dialogs, [], 'no script from a package name ran');
  assert.deepEqual(seen.errors, []);

  // Read-only: sees everything, every action disabled, and the API refuses what is forced.
  const ro = await context.newPage();
  const roSeen = watch(ro);
  await signIn(ro, h.url, reader);
  assert.equal(await ro.locator('#role').textContent(), 'read-only');
  assert.equal(await ro.getByLabel('Rate limit', { exact: true }).isDisabled(), true);
  assert.equal(await ro.getByRole('button', { name: 'Pause sending to PRI' }).isDisabled(), true);
  assert.equal(await ro.getByRole('button', { name: 'Save schedule' }).isDisabled(), true);
  await ro.getByRole('link', { name: 'Packages', exact: true }).click();
  assert.equal(await ro.getByRole('button', { name: 'Create package' }).isDisabled(), true);
  assert.equal(await ro.locator('#packages-table tbody tr').count(), 3, 'a reader sees every package');
  await ro.getByRole('link', { name: 'CEN00002' }).click();
  await ro.locator('#package-dps [data-dp="CEN/dp1"] .dp-state', { hasText: 'installed' }).waitFor();
  assert.equal(await ro.getByRole('button', { name: 'Distribute', exact: true }).isDisabled(), true);
  assert.equal(await ro.getByRole('button', { name: /Update/ }).isDisabled(), true);
  assert.equal(await ro.getByRole('button', { name: 'Validate CEN/dp1' }).isDisabled(), true);
  assert.equal(await ro.getByRole('button', { name: 'Redistribute CEN/dp1' }).isDisabled(), true);
  // Run in the page (a string: the test is compiled without the DOM library).
  const forced = await ro.evaluate(`(async () => {
    const token = sessionStorage.getItem('sitecast.token') ?? '';
    const res = await fetch('/api/v1/packages', { method: 'POST', headers: { authorization: 'Bearer ' + token, 'content-type': 'application/json' }, body: JSON.stringify({ name: 'x', sourcePath: '/tmp' }) });
    return res.status;
  })()`);
  assert.equal(forced, 403);
  await shot(ro, 'read-only');

  // A token that stops working mid-session sends the console back to sign-in, with the reason.
  await ro.evaluate(`sessionStorage.setItem('sitecast.token', 'sct_expired_or_revoked')`);
  await ro.getByRole('link', { name: 'Status messages' }).click();
  await ro.locator('#signin-message', { hasText: /refused the token/ }).waitFor();
  assert.deepEqual(roSeen.errors, []);
});

test('console in real Chromium, at the top of a three-site lab: the hierarchy shows the addresses and inboxes of the sites below, and says so when one is down', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing (apt-get install chromium)`, timeout: 120_000 }, async (t) => {
  const lab = await startLab(t);
  const cen = lab.site('CEN');
  // SEC's definition reaches the centre through PRI's reports; its links are asked of SEC itself.
  await eventually('SEC known at CEN', async () => ((await api(cen, 'GET', '/api/v1/sites/SEC/links')).status === 200 ? true : undefined));
  assert.equal((await api(lab.site('PRI'), 'PUT', '/api/v1/addresses/SEC', { rates: ['64KB/s'] })).status, 200);
  const context = await browser(t);
  const page = await context.newPage();
  const seen = watch(page);
  await signIn(page, cen.handle.url, cen.token);
  await page.locator('#site-tree [data-site="PRI"] [data-address="SEC"]', { hasText: /address to SEC \(http/ }).waitFor({ timeout: 15_000 }).catch(async (err: unknown) => {
    await shot(page, 'hierarchy-lab-failed');
    assert.fail(`${String(err)}\n${(await page.locator('#site-tree').innerText()).slice(0, 2000)}`);
  });
  await page.locator('#site-tree [data-links="SEC"]', { hasText: /^inboxes: / }).waitFor({ timeout: 15_000 });
  await page.locator('#site-tree [data-links="PRI"]', { hasText: /^inboxes: / }).waitFor();
  await shot(page, 'hierarchy-lab');
  await lab.stop('SEC');
  await page.reload();
  await page.locator('#live-state.live').waitFor();
  await page.locator('#site-tree [data-links="SEC"]', { hasText: /links not available: site SEC at .* did not answer/ }).waitFor({ timeout: 15_000 });
  assert.deepEqual(seen.errors, []);
  assert.deepEqual(seen.dialogs, []);
});
