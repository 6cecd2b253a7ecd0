/* global setTimeout */
import { get, put } from './api.js';
import { fill, formatBytes, formatRate, h } from './dom.js';
import { STATES, store } from './store.js';
import { rateChart, scheduleEditor, rateLimitForm } from './view-addresses.js';
import { isAdmin, resultLine, showError, showResult, stateBar } from './view-common.js';

/**
 * The hierarchy as this site knows it: sites as a tree, each with its DPs
 * (and how the packages on them stand), and this site's addresses: queue,
 * what is sending, the current rate, the last error, with their limits and
 * schedules. Sites below this one show their own addresses and inbox
 * backlogs too, asked of them through this site (`/sites/<code>/links`).
 */
export function hierarchyView() {
  let sites = [];
  let dps = [];
  let full = new Map();
  let editorsFor = null;
  /** code → { links } or { error }, for the sites below this one. */
  const remote = new Map();
  let remoteAt = 0;
  const tree = h('ul', { class: 'tree', id: 'site-tree', 'aria-label': 'Sites' });
  const addrBody = h('tbody');
  const charts = h('div', { class: 'charts', id: 'rate-charts' });
  const editors = h('div');
  const status = h('p', { class: 'note', role: 'status' });

  const dpCounts = (site, dp) => {
    const c = { pending: 0, installed: 0, retrying: 0, failed: 0 };
    for (const d of store.dps.values()) if (d.site === site && d.dp === dp) c[d.state] += 1;
    return c;
  };

  const addressLine = (a) =>
    h('li', { 'data-address': a.to }, `→ address to ${a.to} (${a.sender}${a.paused ? ', paused' : ''}): ${a.queued} queued, ${a.sending} sending, ${formatRate(a.rate)}`, a.lastError ? h('span', { class: 'sev-error' }, ` · last error: ${a.lastError}`) : null);

  const remoteLines = (code) => {
    const r = remote.get(code);
    if (r === undefined) return null;
    if (r.error !== undefined) return h('li', { class: 'muted', 'data-links': code }, `links not available: ${r.error}`);
    const waiting = r.links.backlogs.filter((b) => b.files > 0 || b.bad > 0);
    return [
      r.links.addresses.map(addressLine),
      h(
        'li',
        { class: 'muted', 'data-links': code },
        waiting.length === 0
          ? `inboxes: nothing waiting (as of ${new Date(r.links.time).toLocaleTimeString()})`
          : `inboxes: ${waiting.map((b) => `${b.inbox} ${b.files} waiting${b.bad > 0 ? `, ${b.bad} in bad/` : ''}`).join(' · ')} (as of ${new Date(r.links.time).toLocaleTimeString()})`,
      ),
    ];
  };

  /** The sites below this one, asked for their links; at most every 5 s. */
  const loadRemote = async () => {
    const local = sites.find((x) => x.isLocal);
    if (local === undefined || Date.now() - remoteAt < 5000) return;
    remoteAt = Date.now();
    const below = [];
    const walk = (code) => {
      for (const c of sites.filter((x) => x.parentCode === code && !x.isLocal)) {
        below.push(c.code);
        walk(c.code);
      }
    };
    walk(local.code);
    await Promise.all(
      below.map(async (code) => {
        try {
          remote.set(code, { links: await get(`/sites/${code}/links`) });
        } catch (err) {
          remote.set(code, { error: err.message });
        }
      }),
    );
    renderTree();
  };

  const renderTree = () => {
    const byParent = new Map();
    for (const s of sites) {
      const list = byParent.get(s.parentCode ?? '') ?? [];
      list.push(s);
      byParent.set(s.parentCode ?? '', list);
    }
    const codes = new Set(sites.map((s) => s.code));
    const roots = sites.filter((s) => s.parentCode === null || !codes.has(s.parentCode));
    const node = (s) => {
      const mine = dps.filter((d) => d.site === s.code);
      const children = (byParent.get(s.code) ?? []).filter((c) => c !== s);
      return h(
        'li',
        { 'data-site': s.code },
        h('span', { class: 'site-name' }, `${s.code} — ${s.name}`),
        s.isLocal ? h('span', { class: 'badge' }, 'this site') : null,
        s.url === null ? null : h('span', { class: 'muted' }, ` ${s.url}`),
        h(
          'ul',
          {},
          mine.length === 0 ? h('li', { class: 'muted' }, 'no distribution points') : null,
          mine.map((d) => {
            const c = dpCounts(d.site, d.name);
            const n = STATES.reduce((k, st) => k + c[st], 0);
            return h(
              'li',
              { class: 'dp-line', 'data-dp': `${d.site}/${d.name}` },
              `DP ${d.name} `,
              h('span', { class: 'muted' }, d.path),
              ` · ${n} package${n === 1 ? '' : 's'} `,
              n === 0 ? null : stateBar(c),
            );
          }),
          s.isLocal ? [...store.addresses.values()].map(addressLine) : remoteLines(s.code),
          children.map(node),
        ),
      );
    };
    fill(tree, roots.length === 0 ? h('li', { class: 'muted' }, 'no sites known') : roots.map(node));
  };

  const renderAddresses = () => {
    const hour = new Date().getHours();
    const rows = [...store.addresses.values()];
    fill(
      addrBody,
      rows.length === 0 ? h('tr', {}, h('td', { colspan: '9', class: 'note' }, 'No addresses: this site sends to no other site yet.')) : null,
      rows.map((a) => {
        const f = full.get(a.to);
        const limit = f === undefined ? '?' : f.pulse !== null ? `pulse ${f.pulse.blockKB} KB / ${f.pulse.delaySeconds} s` : f.rateLimit[hour] === null || f.rateLimit[hour] === undefined ? 'unlimited' : `${f.rateLimit[hour]} KB/s`;
        return h(
          'tr',
          { 'data-address': a.to },
          h('th', { scope: 'row' }, a.to),
          h('td', {}, `${a.sender}${a.paused ? ' (paused)' : ''}`),
          h('td', { class: 'num' }, a.queued),
          h('td', { class: 'num' }, a.sending),
          h('td', { class: 'num' }, formatRate(a.rate)),
          h('td', { class: 'num' }, formatBytes(a.bytesSent)),
          h('td', { class: 'rate-limit' }, limit),
          h('td', {}, a.lastError === null ? h('span', { class: 'muted' }, 'none') : h('span', { class: 'sev-error' }, a.lastError)),
          h(
            'td',
            {},
            h('button', { type: 'button', class: 'secondary', disabled: !isAdmin(), 'aria-disabled': isAdmin() ? null : 'true', onclick: () => void pause(a.to, !a.paused) }, `${a.paused ? 'Resume' : 'Pause'} sending to ${a.to}`),
          ),
        );
      }),
    );
    fill(charts, rows.map((a) => rateChart(a.to, store.rates.get(a.to) ?? [])));
  };

  const pauseResult = resultLine('pause-result');
  const pause = async (to, paused) => {
    try {
      await put(`/addresses/${to}`, { paused });
      showResult(pauseResult, true, `Sending to ${to} ${paused ? 'paused' : 'resumed'}.`);
      await loadFull();
    } catch (err) {
      showError(pauseResult, err);
    }
  };

  const loadFull = async () => {
    try {
      full = new Map((await get('/addresses')).addresses.map((a) => [a.to, a]));
      renderAddresses();
      // Forms are rebuilt only when the set of addresses changes: a live update must not wipe what is being typed.
      const names = [...full.keys()].join(',');
      if (names !== editorsFor) {
        editorsFor = names;
        fill(editors, rateLimitForm([...full.values()], loadFull), scheduleEditor([...full.values()], loadFull, () => [...full.values()]));
      }
    } catch (err) {
      status.textContent = `Cannot read addresses: ${err.message}`;
    }
  };

  const load = async () => {
    try {
      const [s, d] = await Promise.all([get('/sites'), get('/dps')]);
      sites = s.sites;
      dps = d.dps;
      renderTree();
      void loadRemote();
    } catch (err) {
      status.textContent = `Cannot read the hierarchy: ${err.message}`;
    }
  };
  void load();
  void loadFull();
  renderAddresses();

  const element = h(
    'div',
    {},
    h('section', { class: 'panel', 'aria-labelledby': 'tree-title' }, h('h2', { id: 'tree-title' }, 'Hierarchy'), status, tree),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'addr-title' },
      h('h2', { id: 'addr-title' }, 'Addresses of this site'),
      h(
        'table',
        { id: 'address-table' },
        h('thead', {}, h('tr', {}, ['To site', 'Sender', 'Queued', 'Sending', 'Current rate', 'Bytes sent', 'Rate limit now', 'Last error', 'Action'].map((t) => h('th', { scope: 'col' }, t)))),
        addrBody,
      ),
      pauseResult,
      h('h3', {}, 'Transfer rate, last hour'),
      charts,
    ),
    editors,
  );
  let addressTimer = null;
  return {
    title: 'Hierarchy',
    element,
    update(kinds) {
      if (kinds.has('dp-status') || kinds.has('snapshot') || kinds.has('address')) renderTree();
      if (kinds.has('address') || kinds.has('backlog') || kinds.has('snapshot')) void loadRemote();
      if (kinds.has('address') || kinds.has('rate') || kinds.has('snapshot')) renderAddresses();
      if (kinds.has('address') && addressTimer === null) {
        addressTimer = setTimeout(() => {
          addressTimer = null;
          void loadFull();
        }, 1000);
      }
    },
  };
}
