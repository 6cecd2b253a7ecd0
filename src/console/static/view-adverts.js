/* global setTimeout, clearTimeout */
import { get } from './api.js';
import { fill, formatTime, h } from './dom.js';

const STATES = ['targeted', 'received', 'running', 'succeeded', 'failed'];

/** Advertisements, and for the one opened, every targeted client's result (state, exit code, when). */
export function advertsView() {
  const body = h('tbody');
  const detail = h('div', { id: 'advert-detail' });
  const status = h('p', { class: 'note', role: 'status', 'aria-live': 'polite' });
  let open = null;
  let timer = null;

  const showClients = async (id) => {
    open = id;
    try {
      const r = await get(`/advertisements/${encodeURIComponent(id)}/status`);
      if (open !== id) return;
      fill(
        detail,
        h('h3', { id: 'advert-title' }, `Client results of ${id}`),
        h('p', {}, STATES.map((s) => `${r[s]} ${s}`).join(' · ')),
        h(
          'table',
          { id: 'advert-clients', 'aria-labelledby': 'advert-title' },
          h('thead', {}, h('tr', {}, ['Client', 'Name', 'State', 'Exit code', 'Updated'].map((t) => h('th', { scope: 'col' }, t)))),
          h(
            'tbody',
            {},
            r.clients.length === 0 ? h('tr', {}, h('td', { colspan: '5', class: 'note' }, 'No client is targeted yet.')) : null,
            r.clients.map((c) =>
              h(
                'tr',
                {},
                h('td', {}, c.client),
                h('td', {}, c.name),
                h('td', { class: `state ${c.state === 'succeeded' ? 'installed' : c.state === 'failed' ? 'failed' : 'pending'}` }, c.state),
                h('td', { class: 'num' }, c.exitCode === null ? '' : c.exitCode),
                h('td', {}, c.updated === null ? '' : formatTime(c.updated)),
              ),
            ),
          ),
        ),
      );
    } catch (err) {
      fill(detail, h('p', { class: 'result error' }, `Cannot read the results of ${id}: ${err.message}`));
    }
  };

  const load = async () => {
    try {
      const { advertisements } = await get('/live/advertisements');
      fill(
        body,
        advertisements.length === 0 ? h('tr', {}, h('td', { colspan: '6', class: 'note' }, 'No advertisements.')) : null,
        advertisements.map((a) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, a.id),
            h('td', {}, h('a', { href: `#/packages/${a.packageId}` }, a.packageId)),
            h('td', {}, a.program),
            h('td', {}, a.collection),
            h('td', {}, formatTime(a.availableAt), a.mandatoryAt === null ? '' : ` (mandatory ${formatTime(a.mandatoryAt)})`),
            h('td', {}, h('button', { type: 'button', class: 'secondary', onclick: () => void showClients(a.id) }, `Client results of ${a.id}`)),
          ),
        ),
      );
      status.textContent = `${advertisements.length} advertisements`;
    } catch (err) {
      status.textContent = `Cannot read advertisements: ${err.message}`;
    }
  };
  void load();

  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'adverts-title' },
    h('h2', { id: 'adverts-title' }, 'Advertisements'),
    status,
    h('table', { id: 'adverts-table' }, h('thead', {}, h('tr', {}, ['Advertisement', 'Package', 'Program', 'Collection', 'Available', ''].map((t) => h('th', { scope: 'col' }, t)))), body),
    detail,
  );
  return {
    title: 'Advertisements',
    element,
    update(kinds) {
      // Clients report through status messages; re-read at most once a second.
      if (!kinds.has('status-message') && !kinds.has('package')) return;
      if (timer !== null) return;
      timer = setTimeout(() => {
        timer = null;
        void load();
        if (open !== null) void showClients(open);
      }, 1000);
    },
    unmount() {
      if (timer !== null) clearTimeout(timer);
    },
  };
}
