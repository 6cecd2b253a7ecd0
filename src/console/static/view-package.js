import { get, post } from './api.js';
import { fill, formatTime, h } from './dom.js';
import { countsOf, dpsOf, store } from './store.js';
import { guardForm, isAdmin, readOnlyNote, resultLine, severityText, showError, showResult, stateBar, stateText } from './view-common.js';

/**
 * One package: where it stands on every DP (state, version held, last status
 * message), actions (distribute, update), and its timeline: every status
 * message about it, in order, one column per site.
 */
export function packageView(id) {
  const heading = h('h2', { id: 'package-title' }, id);
  const facts = h('p', { class: 'note' });
  const bar = h('div');
  const dpBody = h('tbody');
  const timeline = h('div', { class: 'timeline', id: 'timeline' });
  const messages = new Map();
  let dpChoices = [];

  const result = resultLine('package-result');
  const choices = h('fieldset', { id: 'distribute-dps' }, h('legend', {}, 'Distribution points to add'));
  const distribute = h('form', { id: 'distribute-form', 'aria-labelledby': 'actions-title' }, choices, h('button', { type: 'submit' }, 'Distribute'));
  const update = h('button', { type: 'button', class: 'secondary', id: 'update-button' }, 'Update (re-read the source)');
  const updateForm = h('form', { class: 'inline' }, update);

  distribute.addEventListener('submit', async (e) => {
    e.preventDefault();
    const dps = [...choices.querySelectorAll('input:checked')].map((c) => c.value);
    if (dps.length === 0) return showResult(result, false, 'Choose at least one distribution point.');
    try {
      const r = await post(`/packages/${id}/distribute`, { dps });
      showResult(result, true, `Distributing to ${dps.join(', ')}; ${r.targets.length} DP${r.targets.length === 1 ? '' : 's'} targeted in all.`);
      renderChoices();
    } catch (err) {
      showError(result, err);
    }
  });
  update.addEventListener('click', async () => {
    try {
      const r = await post(`/packages/${id}/update`);
      showResult(result, true, `Source version ${r.sourceVersion} requested on every DP.`);
    } catch (err) {
      showError(result, err);
    }
  });

  const validate = async (dp) => {
    showResult(result, true, `Validating the content of ${dp}…`);
    try {
      const r = await post(`/packages/${id}/dps/${encodeURIComponent(dp)}/validate`);
      if (r.ok) showResult(result, true, `Content on ${dp} matches source version ${r.sourceVersion} (${r.checked} entries).`);
      else showResult(result, false, `Content on ${dp} does not match: ${r.problems.slice(0, 5).join('; ')}${r.problems.length > 5 ? ` and ${r.problems.length - 5} more` : ''}`);
    } catch (err) {
      showError(result, err);
    }
  };

  const redistribute = async (dp) => {
    try {
      await post(`/packages/${id}/dps/${encodeURIComponent(dp)}/redistribute`);
      showResult(result, true, `Redistribution to ${dp} requested: its chunks are re-checked and its share rebuilt; the state below follows it.`);
    } catch (err) {
      showError(result, err);
    }
  };

  const renderChoices = () => {
    const targeted = new Set(dpsOf(id).map((d) => `${d.site}/${d.dp}`));
    const free = dpChoices.filter((ref) => !targeted.has(ref));
    const checked = new Set([...choices.querySelectorAll('input:checked')].map((c) => c.value));
    fill(
      choices,
      h('legend', {}, 'Distribution points to add'),
      free.length === 0 ? h('p', { class: 'note' }, 'Every known DP is targeted.') : null,
      free.map((ref, i) =>
        h('label', { class: 'check' }, h('input', { type: 'checkbox', value: ref, id: `dp-choice-${i}`, name: 'dps', checked: checked.has(ref) }), ` ${ref} `),
      ),
    );
    guardForm(distribute);
  };

  const render = () => {
    const p = store.packages.get(id);
    heading.textContent = p === undefined ? `${id} (unknown here)` : `${p.name}`;
    facts.textContent = p === undefined ? '' : `${p.id} · version ${p.version === '' ? '—' : p.version} · source version ${p.sourceVersion}`;
    fill(bar, stateBar(countsOf(id)));
    const rows = dpsOf(id).sort((a, b) => (`${a.site}/${a.dp}` < `${b.site}/${b.dp}` ? -1 : 1));
    fill(
      dpBody,
      rows.length === 0 ? h('tr', {}, h('td', { colspan: '7', class: 'note' }, 'Not distributed to any DP yet.')) : null,
      rows.map((d) =>
        h(
          'tr',
          { 'data-dp': `${d.site}/${d.dp}` },
          h('td', {}, d.site),
          h('td', {}, d.dp),
          h('td', { class: 'dp-state' }, stateText(d.state)),
          h('td', { class: 'num' }, `${d.sourceVersion} of ${p?.sourceVersion ?? '?'}`),
          h('td', { class: 'num' }, d.retryCount),
          h('td', { class: 'dp-message' }, d.lastMessage ?? ''),
          h(
            'td',
            {},
            d.site === store.site
              ? [
                  h('button', { type: 'button', class: 'secondary', disabled: !isAdmin(), 'aria-disabled': isAdmin() ? null : 'true', onclick: () => void validate(d.dp) }, `Validate ${d.site}/${d.dp}`),
                  ' ',
                  h('button', { type: 'button', class: 'secondary', disabled: !isAdmin(), 'aria-disabled': isAdmin() ? null : 'true', onclick: () => void redistribute(d.dp) }, `Redistribute ${d.site}/${d.dp}`),
                ]
              : h('span', { class: 'muted' }, 'validated and redistributed at its site'),
          ),
        ),
      ),
    );
  };

  const renderTimeline = () => {
    const bySite = new Map();
    for (const m of [...messages.values()].sort((a, b) => a.id - b.id)) {
      const list = bySite.get(m.site) ?? [];
      list.push(m);
      bySite.set(m.site, list);
    }
    fill(
      timeline,
      bySite.size === 0 ? h('p', { class: 'note' }, 'No status messages about this package yet.') : null,
      [...bySite].map(([site, list]) =>
        h(
          'section',
          { 'aria-label': `Timeline at site ${site}` },
          h('h3', {}, `Site ${site}`),
          h(
            'ol',
            {},
            list.map((m) => h('li', {}, h('time', { datetime: m.time }, `${formatTime(m.time)} · ${m.component} · `, severityText(m.severity)), m.text)),
          ),
        ),
      ),
    );
  };

  const loadMessages = async () => {
    try {
      const r = await get(`/status-messages?package=${encodeURIComponent(id)}&limit=1000`);
      for (const m of r.messages) messages.set(m.id, m);
      renderTimeline();
    } catch {
      // Shown as empty; the live stream still adds what arrives.
    }
  };

  render();
  renderTimeline();
  void loadMessages();
  void get('/dps')
    .then((r) => {
      dpChoices = r.dps.map((d) => `${d.site}/${d.name}`);
      renderChoices();
    })
    .catch(() => undefined);
  renderChoices();
  guardForm(updateForm);

  const element = h(
    'div',
    {},
    h('p', {}, h('a', { href: '#/packages' }, '← All packages')),
    h('section', { class: 'panel', 'aria-labelledby': 'package-title' }, heading, facts, bar),
    h('section', { class: 'panel' }, h('h3', { id: 'actions-title' }, 'Actions'), readOnlyNote(), distribute, updateForm, result),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'dps-title' },
      h('h3', { id: 'dps-title' }, 'Distribution points'),
      h(
        'table',
        { id: 'package-dps' },
        h('thead', {}, h('tr', {}, ['Site', 'DP', 'State', 'Version held', 'Retries', 'Last status message', 'Content'].map((t) => h('th', { scope: 'col' }, t)))),
        dpBody,
      ),
    ),
    h('section', { class: 'panel', 'aria-labelledby': 'timeline-title' }, h('h3', { id: 'timeline-title' }, 'Timeline'), timeline),
  );
  return {
    title: `Package ${id}`,
    element,
    update(kinds) {
      if (kinds.has('package') || kinds.has('dp-status') || kinds.has('snapshot')) {
        render();
        renderChoices();
      }
      if (kinds.has('status-message')) {
        let added = false;
        for (const m of store.messages) {
          if (m.packageId === id && !messages.has(m.id)) {
            messages.set(m.id, m);
            added = true;
          }
        }
        if (added) renderTimeline();
      }
    },
  };
}
