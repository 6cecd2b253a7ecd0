/* global document, window, setInterval, clearInterval */
import { describe, get, onUnauthorized, session } from './api.js';
import { field, fill, h } from './dom.js';
import { connectLive } from './live.js';
import { cancelPending, loadSnapshot, sampleRates, store, subscribe } from './store.js';
import { hierarchyView } from './view-hierarchy.js';
import { packagesView } from './view-packages.js';
import { packageView } from './view-package.js';
import { messagesView } from './view-messages.js';
import { healthView } from './view-health.js';
import { advertsView } from './view-adverts.js';

/**
 * The console: sign-in, the frame (site, role, live state, navigation) and
 * a hash router over the views. Each view mounts once per visit and is told
 * what changed; it never reloads the page.
 */

const root = document.getElementById('app');
const NAV = [
  ['#/hierarchy', 'Hierarchy'],
  ['#/packages', 'Packages'],
  ['#/messages', 'Status messages'],
  ['#/advertisements', 'Advertisements'],
  ['#/health', 'Component health'],
];

const VIEWS = {
  '#/hierarchy': hierarchyView,
  '#/packages': packagesView,
  '#/messages': messagesView,
  '#/advertisements': advertsView,
  '#/health': healthView,
};

let stopLive = null;
let stopSampling = null;
let unsubscribe = null;
let current = null;

function signOut(message) {
  stopLive?.();
  stopLive = null;
  if (stopSampling !== null) clearInterval(stopSampling);
  stopSampling = null;
  unsubscribe?.();
  unsubscribe = null;
  current?.unmount?.();
  current = null;
  cancelPending();
  session.token = null;
  showSignIn(message);
}

onUnauthorized((err) => {
  if (session.token === null) return;
  signOut(`The site refused the token: ${err.message}. Sign in again.`);
});

function showSignIn(message) {
  const input = h('input', { id: 'token', name: 'token', type: 'password', autocomplete: 'off', required: true, spellcheck: 'false' });
  const msg = h('p', { class: 'message', role: 'alert', id: 'signin-message' }, message ?? '');
  const form = h(
    'form',
    { class: 'signin', 'aria-labelledby': 'signin-title' },
    h('h1', { id: 'signin-title' }, 'Sitecast console'),
    h('p', { class: 'note' }, 'Sign in with an admin or read-only token of this site (site init wrote the first one to <root>/admin.token).'),
    field('Token', input),
    msg,
    h('button', { type: 'submit' }, 'Sign in'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const token = input.value.trim();
    if (token === '') return;
    session.token = token;
    msg.textContent = '';
    try {
      await start();
    } catch (err) {
      if (session.token !== null) {
        session.token = null;
        msg.textContent = `Cannot sign in: ${describe(err)}`;
      }
    }
  });
  fill(root, form);
  input.focus();
}

function frame() {
  const live = h('span', { class: 'badge connecting', id: 'live-state', role: 'status', 'aria-live': 'polite' }, 'connecting');
  const nav = h('nav', { 'aria-label': 'Views' }, h('ul', {}, NAV.map(([href, label]) => h('li', {}, h('a', { href }, label)))));
  const header = h(
    'header',
    { class: 'top' },
    h('h1', {}, `Sitecast · ${store.site}`),
    nav,
    h('span', { class: 'spacer' }),
    h('span', { class: `badge role-${store.role === 'admin' ? 'admin' : 'readonly'}`, id: 'role' }, store.role === 'admin' ? 'admin' : 'read-only'),
    live,
    h('button', { type: 'button', class: 'secondary', onclick: () => signOut('Signed out.') }, 'Sign out'),
  );
  const main = h('main', { id: 'view', tabindex: '-1' });
  fill(root, header, main);
  return { live, nav, main };
}

function route(parts) {
  const hash = window.location.hash || '#/hierarchy';
  for (const a of parts.nav.querySelectorAll('a')) {
    const active = hash === a.getAttribute('href') || hash.startsWith(`${a.getAttribute('href')}/`);
    if (active) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  current?.unmount?.();
  const pkg = /^#\/packages\/([A-Z0-9]{3}[0-9A-F]{5})$/.exec(hash);
  const view = pkg !== null ? packageView(pkg[1]) : (VIEWS[hash] ?? hierarchyView)();
  current = view;
  fill(parts.main, view.element);
  document.title = `${view.title} · Sitecast ${store.site}`;
}

async function start() {
  await get('/site');
  await loadSnapshot();
  const parts = frame();
  unsubscribe = subscribe((kinds) => current?.update?.(kinds));
  stopLive = connectLive((state) => {
    parts.live.className = `badge ${state}`;
    parts.live.textContent = state;
  });
  stopSampling = setInterval(sampleRates, 2000);
  window.onhashchange = () => {
    route(parts);
    parts.main.focus();
  };
  route(parts);
}

if (session.token === null) showSignIn();
else
  start().catch((err) => {
    if (session.token !== null) signOut(`Cannot open the console: ${describe(err)}`);
  });
