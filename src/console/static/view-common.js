import { describe } from './api.js';
import { h } from './dom.js';
import { STATES, store } from './store.js';

export const isAdmin = () => store.role === 'admin';

/** A note that actions are off for a read-only token; shown above every action form. */
export function readOnlyNote() {
  return isAdmin() ? null : h('p', { class: 'readonly-note', role: 'note' }, 'Signed in with a read-only token: you can see everything, and every action is disabled.');
}

/** Disables every control of a form for a read-only token (the API refuses them anyway). */
export function guardForm(form) {
  if (isAdmin()) return form;
  for (const el of form.querySelectorAll('input, select, button, textarea')) {
    el.disabled = true;
    el.setAttribute('aria-disabled', 'true');
  }
  form.setAttribute('data-readonly', 'true');
  return form;
}

/** Where an action says how it went. */
export function resultLine(id) {
  return h('p', { class: 'result', id, role: 'status', 'aria-live': 'polite' });
}

export function showResult(el, ok, text) {
  el.className = `result ${ok ? 'ok' : 'error'}`;
  el.textContent = text;
}

export function showError(el, err) {
  showResult(el, false, describe(err));
}

/** Segments per state, widths by share; the label reads the counts out. */
export function stateBar(counts) {
  const total = STATES.reduce((n, s) => n + counts[s], 0);
  const label = total === 0 ? 'not targeted' : STATES.filter((s) => counts[s] > 0).map((s) => `${counts[s]} ${s}`).join(', ');
  const bar = h('div', { class: 'bar', role: 'img', 'aria-label': label, title: label });
  for (const s of STATES) {
    if (counts[s] === 0) continue;
    const seg = h('span', { class: s });
    seg.style.width = `${(100 * counts[s]) / total}%`;
    bar.append(seg);
  }
  return bar;
}

export function stateText(state) {
  return h('span', { class: `state ${state}` }, state);
}

export function severityText(severity) {
  return h('span', { class: `sev-${severity}` }, severity);
}
