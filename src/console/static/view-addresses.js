import { put } from './api.js';
import { field, h, markInvalid, svg } from './dom.js';
import { guardForm, readOnlyNote, resultLine, showError, showResult } from './view-common.js';

const DAYS = ['mon', 'tue', 'wed', 'thu', 'fri', 'sat', 'sun'];
const DAY_NAMES = ['Monday', 'Tuesday', 'Wednesday', 'Thursday', 'Friday', 'Saturday', 'Sunday'];
const LEVEL_OF = { a: 'all', m: 'medium', h: 'high', c: 'closed' };
const CHAR_OF = { all: 'a', medium: 'm', high: 'h', closed: 'c' };
/** What the provider accepts (src/formats/schedule.ts parseRate); checked here first so a typo saves nothing. */
const RATE = /^(?:(\d{2})-(\d{2})\s+)?(unlimited|(\d{1,8})KB\/s)$/i;

export function rateProblem(text) {
  const m = RATE.exec(text.trim());
  if (m === null) return 'write a rate as 64KB/s, unlimited, or 08-18 64KB/s';
  if (m[1] !== undefined) {
    const from = Number(m[1]);
    const to = Number(m[2]);
    if (from > 23 || to > 24 || from === to) return `hours ${m[1]}-${m[2]} are not a range within 00-24`;
  }
  if (m[4] !== undefined && (Number(m[4]) < 1 || Number(m[4]) > 10_000_000)) return 'the rate must be at least 1 KB/s';
  return null;
}

function addressSelect(id, addresses) {
  return h('select', { id }, addresses.map((a) => h('option', { value: a.to }, a.to)));
}

/** Sets the rate limit of an address; a rate that does not parse marks the field and nothing is sent. */
export function rateLimitForm(addresses, reload) {
  const to = addressSelect('rate-address', addresses);
  const rate = h('input', { id: 'rate-value', name: 'rate', placeholder: '64KB/s', autocomplete: 'off' });
  const result = resultLine('rate-result');
  const form = h(
    'form',
    { class: 'inline', id: 'rate-form', 'aria-labelledby': 'rate-title', novalidate: true },
    field('Address', to),
    field('Rate limit', rate, '64KB/s, unlimited, or HH-HH 64KB/s for some hours'),
    h('button', { type: 'submit' }, 'Save rate limit'),
  );
  rate.addEventListener('input', () => markInvalid(rate, null));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const problem = rateProblem(rate.value);
    if (problem !== null) {
      markInvalid(rate, problem);
      showResult(result, false, 'Nothing saved: the rate does not parse.');
      rate.focus();
      return;
    }
    try {
      await put(`/addresses/${to.value}`, { rates: [rate.value.trim()] });
      markInvalid(rate, null);
      showResult(result, true, `Rate limit of ${to.value} saved.`);
      await reload();
    } catch (err) {
      if (err.status === 400) markInvalid(rate, err.message);
      showError(result, err);
    }
  });
  return h(
    'section',
    { class: 'panel' },
    h('h2', { id: 'rate-title' }, 'Set a rate limit'),
    readOnlyNote(),
    addresses.length === 0 ? h('p', { class: 'note' }, 'No address to set.') : guardForm(form),
    result,
  );
}

/** The weekly schedule of an address as a grid of hours by day (like the SMS schedule dialog); cells take the chosen priority. */
/** `latest` gives the addresses as last read, so switching address after a save shows what was saved. */
export function scheduleEditor(addresses, reload, latest = () => addresses) {
  if (addresses.length === 0) return null;
  const to = addressSelect('schedule-address', addresses);
  const paint = h('select', { id: 'schedule-paint' }, Object.keys(CHAR_OF).map((l) => h('option', { value: l }, l === 'all' ? 'all priorities' : l === 'closed' ? 'closed' : l === 'medium' ? 'medium and high' : 'high only')));
  const result = resultLine('schedule-result');
  const grid = h('table', { class: 'grid', id: 'schedule-grid' });
  let cells = [];

  const draw = () => {
    const all = latest();
    const a = all.find((x) => x.to === to.value) ?? all[0];
    cells = a.schedule.map((d) => d.split(''));
    grid.replaceChildren(
      h('caption', { class: 'visually-hidden' }, `Weekly schedule of the address to ${a.to}`),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, ''), Array.from({ length: 24 }, (_, i) => h('th', { scope: 'col' }, String(i).padStart(2, '0'))))),
      h(
        'tbody',
        {},
        cells.map((day, d) =>
          h(
            'tr',
            {},
            h('th', { scope: 'row' }, DAY_NAMES[d].slice(0, 3)),
            day.map((c, hr) => {
              const td = h('td', { class: c });
              const b = h('button', { type: 'button', 'aria-label': `${DAY_NAMES[d]} ${String(hr).padStart(2, '0')}:00: ${LEVEL_OF[c]}` }, c);
              b.addEventListener('click', () => {
                const v = CHAR_OF[paint.value];
                cells[d][hr] = v;
                td.className = v;
                b.textContent = v;
                b.setAttribute('aria-label', `${DAY_NAMES[d]} ${String(hr).padStart(2, '0')}:00: ${LEVEL_OF[v]}`);
              });
              td.append(b);
              return td;
            }),
          ),
        ),
      ),
    );
    guardForm(form);
  };

  const save = h('button', { type: 'submit' }, 'Save schedule');
  const legend = h('p', { class: 'hint' }, 'a: all priorities may send · m: medium and high · h: high only · c: closed');
  const form = h('form', { id: 'schedule-form', 'aria-labelledby': 'schedule-title' }, h('div', { class: 'inline' }, field('Address', to), field('Set clicked hours to', paint)), legend, grid, save);
  to.addEventListener('change', draw);
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    // One window per run of equal hours: at most 168, within what the API takes.
    const windows = [];
    cells.forEach((day, d) => {
      let start = 0;
      for (let hr = 1; hr <= 24; hr++) {
        if (hr === 24 || day[hr] !== day[start]) {
          windows.push(`${DAYS[d]} ${String(start).padStart(2, '0')}-${String(hr).padStart(2, '0')} ${LEVEL_OF[day[start]]}`);
          start = hr;
        }
      }
    });
    try {
      await put(`/addresses/${to.value}`, { windows });
      showResult(result, true, `Schedule of ${to.value} saved.`);
      await reload();
    } catch (err) {
      showError(result, err);
    }
  });
  draw();
  return h('section', { class: 'panel' }, h('h2', { id: 'schedule-title' }, 'Weekly schedule'), readOnlyNote(), form, result);
}

/** Rate over the last hour as a line; the label says the latest value and the peak for those who do not see it. */
export function rateChart(to, samples) {
  const W = 320;
  const H = 80;
  const now = Date.now();
  const span = 60 * 60 * 1000;
  const max = Math.max(1024, ...samples.map((s) => s.rate));
  const points = samples.map((s) => `${Math.round(W - ((now - s.t) / span) * W)},${Math.round(H - 4 - (s.rate / max) * (H - 8))}`).join(' ');
  const last = samples.at(-1)?.rate ?? 0;
  return h(
    'figure',
    { class: 'rate-chart' },
    svg('svg', { width: W, height: H, class: 'chart', role: 'img', 'aria-label': `Transfer rate to ${to}: now ${Math.round(last / 1024)} KB/s, peak ${Math.round(max / 1024)} KB/s` }, svg('polyline', { points })),
    h('figcaption', {}, `to ${to}: ${Math.round(last / 1024)} KB/s now, scale ${Math.round(max / 1024)} KB/s; the last hour, now at the right`),
  );
}
