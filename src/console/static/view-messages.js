/* global URLSearchParams */
import { get } from './api.js';
import { field, fill, formatTime, h } from './dom.js';
import { store } from './store.js';
import { severityText } from './view-common.js';

const COMPONENTS = ['distmgr', 'inboxmgr', 'dbmon', 'replmgr', 'scheduler', 'sender', 'despooler', 'statmgr', 'provider', 'client'];
const RANK = { info: 0, warning: 1, error: 2 };

/** Status messages, newest first, filtered by site, component, severity and time; new ones appear as they arrive. */
export function messagesView() {
  const site = h('select', { id: 'filter-site' }, h('option', { value: '' }, 'every site'));
  const component = h('select', { id: 'filter-component' }, h('option', { value: '' }, 'every component'), COMPONENTS.map((c) => h('option', { value: c }, c)));
  const severity = h('select', { id: 'filter-severity' }, [['info', 'info and worse'], ['warning', 'warning and worse'], ['error', 'errors only']].map(([v, t]) => h('option', { value: v }, t)));
  const since = h('input', { id: 'filter-since', type: 'datetime-local' });
  const status = h('p', { class: 'note', role: 'status', 'aria-live': 'polite' });
  const body = h('tbody');
  let shown = new Map();
  let seq = 0;

  const matches = (m) =>
    (site.value === '' || m.site === site.value) &&
    (component.value === '' || m.component === component.value) &&
    RANK[m.severity] >= RANK[severity.value] &&
    (since.value === '' || Date.parse(m.time) >= Date.parse(since.value));

  const render = () => {
    const rows = [...shown.values()].sort((a, b) => b.id - a.id).slice(0, 500);
    fill(
      body,
      rows.map((m) =>
        h(
          'tr',
          {},
          h('td', {}, h('time', { datetime: m.time }, formatTime(m.time))),
          h('td', {}, severityText(m.severity)),
          h('td', {}, m.site),
          h('td', {}, m.component),
          h('td', {}, m.packageId === null ? '' : h('a', { href: `#/packages/${m.packageId}` }, m.packageId)),
          h('td', { class: 'msg-text' }, m.text),
        ),
      ),
    );
    status.textContent = `${rows.length} messages`;
  };

  const load = async () => {
    const q = new URLSearchParams({ limit: '300', severity: severity.value });
    if (site.value !== '') q.set('site', site.value);
    if (component.value !== '') q.set('component', component.value);
    if (since.value !== '') {
      const t = new Date(since.value);
      if (!Number.isNaN(t.getTime())) q.set('since', t.toISOString());
    }
    const mine = ++seq;
    try {
      const r = await get(`/status-messages?${q}`);
      if (mine !== seq) return;
      shown = new Map(r.messages.map((m) => [m.id, m]));
      render();
    } catch (err) {
      status.textContent = `Cannot read status messages: ${err.message}`;
    }
  };
  // A changed filter applies at once to what is shown; the server's answer then fills in the rest.
  const refilter = () => {
    shown = new Map([...shown].filter(([, m]) => matches(m)));
    render();
    void load();
  };
  for (const c of [site, component, severity, since]) c.addEventListener('change', refilter);

  void get('/sites')
    .then((r) => {
      for (const s of r.sites) site.append(h('option', { value: s.code }, `${s.code} — ${s.name}`));
    })
    .catch(() => undefined);
  void load();

  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'messages-title' },
    h('h2', { id: 'messages-title' }, 'Status messages'),
    h('form', { class: 'inline', role: 'search', 'aria-label': 'Filter status messages', onsubmit: (e) => e.preventDefault() }, field('Site', site), field('Component', component), field('Severity', severity), field('Since', since)),
    status,
    h(
      'table',
      { id: 'messages-table' },
      h('thead', {}, h('tr', {}, ['Time', 'Severity', 'Site', 'Component', 'Package', 'Message'].map((t) => h('th', { scope: 'col' }, t)))),
      body,
    ),
  );
  return {
    title: 'Status messages',
    element,
    update(kinds) {
      if (!kinds.has('status-message')) return;
      let added = false;
      for (const m of store.messages) {
        if (!shown.has(m.id) && matches(m)) {
          shown.set(m.id, m);
          added = true;
        }
      }
      if (added) render();
    },
  };
}
