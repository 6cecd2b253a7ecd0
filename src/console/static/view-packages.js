import { post } from './api.js';
import { field, fill, h } from './dom.js';
import { countsOf, store } from './store.js';
import { guardForm, readOnlyNote, resultLine, showError, showResult, stateBar } from './view-common.js';

/** Every package with its counts across the hierarchy, a search, and (admin) a form to create one. */
export function packagesView() {
  const name = h('input', { id: 'new-name', name: 'name', required: true, maxlength: '200' });
  const source = h('input', { id: 'new-source', name: 'sourcePath', required: true, placeholder: '/srv/sources/app' });
  const version = h('input', { id: 'new-version', name: 'version', maxlength: '64' });
  const priority = h('select', { id: 'new-priority', name: 'priority' }, ['medium', 'high', 'low'].map((p) => h('option', { value: p }, p)));
  const result = resultLine('create-result');
  const form = h(
    'form',
    { class: 'inline', 'aria-labelledby': 'create-title', id: 'create-form' },
    field('Name', name),
    field('Source folder on the site server', source),
    field('Version (optional)', version),
    field('Priority', priority),
    h('button', { type: 'submit' }, 'Create package'),
  );
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    try {
      const body = { name: name.value.trim(), sourcePath: source.value.trim(), priority: priority.value };
      if (version.value.trim() !== '') body.version = version.value.trim();
      const { id } = await post('/packages', body);
      showResult(result, true, `Created ${id}. `);
      result.append(h('a', { href: `#/packages/${id}` }, `Open ${id} to distribute it`));
      form.reset();
    } catch (err) {
      showError(result, err);
    }
  });

  const search = h('input', { id: 'package-search', type: 'search', placeholder: 'id or name', autocomplete: 'off' });
  const body = h('tbody');
  const count = h('p', { class: 'note', 'aria-live': 'polite' });
  search.addEventListener('input', () => render());

  const render = () => {
    const q = search.value.trim().toLowerCase();
    const rows = [...store.packages.values()]
      .filter((p) => q === '' || p.id.toLowerCase().includes(q) || p.name.toLowerCase().includes(q))
      .sort((a, b) => (a.id < b.id ? -1 : 1));
    count.textContent = `${rows.length} of ${store.packages.size} packages`;
    fill(
      body,
      rows.map((p) => {
        const c = countsOf(p.id);
        return h(
          'tr',
          { 'data-package': p.id },
          h('td', {}, h('a', { href: `#/packages/${p.id}` }, p.id)),
          h('td', { class: 'pkg-name' }, p.name),
          h('td', {}, p.version),
          h('td', { class: 'num' }, p.sourceVersion),
          h('td', { class: 'num' }, c.targeted),
          h('td', { class: 'num' }, c.installed),
          h('td', { class: 'num' }, c.pending),
          h('td', { class: 'num' }, c.retrying),
          h('td', { class: 'num' }, c.failed),
          h('td', {}, stateBar(c)),
        );
      }),
    );
  };
  render();

  const element = h(
    'div',
    {},
    h('section', { class: 'panel' }, h('h2', { id: 'create-title' }, 'Create a package'), readOnlyNote(), guardForm(form), result),
    h(
      'section',
      { class: 'panel', 'aria-labelledby': 'packages-title' },
      h('h2', { id: 'packages-title' }, 'Packages'),
      h('div', { class: 'inline' }, field('Search packages', search)),
      count,
      h(
        'table',
        { id: 'packages-table' },
        h('caption', { class: 'visually-hidden' }, 'Packages with their state on every targeted DP'),
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            ['Package', 'Name', 'Version', 'Source version'].map((t) => h('th', { scope: 'col', class: t === 'Source version' ? 'num' : '' }, t)),
            ['Targeted', 'Installed', 'Pending', 'Retrying', 'Failed'].map((t) => h('th', { scope: 'col', class: 'num' }, t)),
            h('th', { scope: 'col' }, 'State across the hierarchy'),
          ),
        ),
        body,
      ),
    ),
  );
  return {
    title: 'Packages',
    element,
    update(kinds) {
      if (kinds.has('package') || kinds.has('dp-status') || kinds.has('snapshot') || kinds.has('package-removed')) render();
    },
  };
}
