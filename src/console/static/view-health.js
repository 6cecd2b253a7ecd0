/* global setTimeout, clearTimeout */
import { get } from './api.js';
import { fill, formatTime, h } from './dom.js';

/** Every component: files waiting in its inboxes, files refused into bad/, its last error and the tail of its log. */
export function healthView() {
  const body = h('tbody');
  const status = h('p', { class: 'note', role: 'status', 'aria-live': 'polite' });
  let timer = null;

  const load = async () => {
    try {
      const { components } = await get('/health');
      fill(
        body,
        components.map((c) => {
          const files = c.inboxes.reduce((n, b) => n + b.files, 0);
          const bad = c.inboxes.reduce((n, b) => n + b.bad, 0);
          return h(
            'tr',
            { 'data-component': c.component },
            h('th', { scope: 'row' }, c.component),
            h('td', { class: 'num' }, c.inboxes.length === 0 ? '—' : files),
            h('td', { class: 'num' }, c.inboxes.length === 0 ? '—' : bad),
            h('td', {}, c.inboxes.map((b) => h('div', {}, `${b.inbox}: ${b.files}${b.bad > 0 ? ` (+${b.bad} bad)` : ''}`))),
            h('td', {}, c.lastError === null ? h('span', { class: 'muted' }, 'none') : [h('time', { datetime: c.lastError.time, class: 'muted' }, formatTime(c.lastError.time)), ' ', h('span', { class: 'sev-error' }, c.lastError.text)]),
            h('td', {}, c.logTail.length === 0 ? h('span', { class: 'muted' }, 'empty') : h('details', {}, h('summary', {}, `last ${c.logTail.length} lines`), h('pre', { class: 'log' }, c.logTail.join('\n')))),
          );
        }),
      );
      status.textContent = `Read at ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
    } catch (err) {
      status.textContent = `Cannot read component health: ${err.message}`;
    }
  };
  void load();

  const element = h(
    'section',
    { class: 'panel', 'aria-labelledby': 'health-title' },
    h('h2', { id: 'health-title' }, 'Component health'),
    status,
    h(
      'table',
      { id: 'health-table' },
      h('thead', {}, h('tr', {}, ['Component', 'Backlog', 'Bad', 'Inboxes', 'Last error', 'Log'].map((t) => h('th', { scope: 'col' }, t)))),
      body,
    ),
  );
  return {
    title: 'Component health',
    element,
    update(kinds) {
      if (!kinds.has('backlog') && !kinds.has('status-message')) return;
      // Logs and last errors change with the backlog; read them at most once a second.
      if (timer !== null) return;
      timer = setTimeout(() => {
        timer = null;
        void load();
      }, 1000);
    },
    unmount() {
      if (timer !== null) clearTimeout(timer);
    },
  };
}
