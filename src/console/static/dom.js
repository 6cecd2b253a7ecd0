/* global document, Node */
/**
 * The only way the console builds its page: elements and text nodes. Data
 * from the site (package names, status messages, paths) always becomes a
 * text node or an attribute value, never markup, so HTML or script in them
 * is shown as the characters it is.
 */

/** An element with attributes, event listeners (`onclick`…) and children (nodes or text). */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key === 'class') el.className = value;
    else if (key.startsWith('on') && typeof value === 'function') el.addEventListener(key.slice(2), value);
    else if (value === true) el.setAttribute(key, '');
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

export function append(el, children) {
  for (const c of children.flat(Infinity)) {
    if (c === undefined || c === null || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

/** Replaces every child of `el`. */
export function fill(el, ...children) {
  el.replaceChildren();
  return append(el, children);
}

const SVG = 'http://www.w3.org/2000/svg';
export function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, String(v));
  append(el, children);
  return el;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  const units = ['KB', 'MB', 'GB', 'TB'];
  let v = n;
  let i = -1;
  do {
    v /= 1024;
    i += 1;
  } while (v >= 1024 && i < units.length - 1);
  return `${v.toFixed(v < 10 ? 1 : 0)} ${units[i]}`;
}

export function formatRate(bytesPerSecond) {
  return `${formatBytes(Math.round(bytesPerSecond))}/s`;
}

export function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString(undefined, { hour12: false });
}

/** A labelled form control: the label's `for` points at the control's id. */
export function field(label, control, hint) {
  const hintEl = hint === undefined ? null : h('span', { class: 'hint', id: `${control.id}-hint` }, hint);
  if (hintEl !== null) control.setAttribute('aria-describedby', hintEl.id);
  return h('div', { class: 'field' }, h('label', { for: control.id }, label), control, hintEl);
}

/** Marks a field as not valid (or valid again) and says why, next to it. */
export function markInvalid(control, message) {
  const id = `${control.id}-error`;
  let note = document.getElementById(id);
  if (message === null) {
    control.removeAttribute('aria-invalid');
    control.classList.remove('invalid');
    note?.remove();
    return;
  }
  control.setAttribute('aria-invalid', 'true');
  control.classList.add('invalid');
  if (note === null) {
    note = h('span', { class: 'error-text', id, role: 'alert' });
    control.insertAdjacentElement('afterend', note);
  }
  note.textContent = message;
  control.setAttribute('aria-errormessage', id);
}
