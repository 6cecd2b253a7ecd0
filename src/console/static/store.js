/* global setTimeout, clearTimeout */
import { get } from './api.js';

/**
 * What the console knows of the site: a snapshot read once
 * (GET /api/v1/live/snapshot), then kept current by the event stream. Views
 * read from here and are told, at most ten times a second, that something
 * changed.
 */

const STATES = ['installed', 'pending', 'retrying', 'failed'];
const MAX_MESSAGES = 500;
/** Five minutes of rate samples per address for the transfer-rate chart. */
const RATE_WINDOW_MS = 60 * 60 * 1000;

export const store = {
  site: '',
  role: 'read-only',
  packages: new Map(),
  dps: new Map(),
  addresses: new Map(),
  backlogs: new Map(),
  /** Status messages that arrived live, newest last. */
  messages: [],
  /** to → [{t, rate}] */
  rates: new Map(),
};

const listeners = new Set();
let pending = null;
const touched = new Set();

/** `fn(kinds)` runs after changes; kinds names what changed (package, dp-status, status-message, address, backlog, snapshot). */
export function subscribe(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}

function changed(kind) {
  touched.add(kind);
  if (pending !== null) return;
  pending = setTimeout(() => {
    pending = null;
    const kinds = new Set(touched);
    touched.clear();
    for (const fn of [...listeners]) fn(kinds);
  }, 100);
}

export function cancelPending() {
  if (pending !== null) clearTimeout(pending);
  pending = null;
}

const dpKey = (d) => `${d.packageId}|${d.site}|${d.dp}`;

function sampleRate(a, t = Date.now()) {
  const list = store.rates.get(a.to) ?? [];
  list.push({ t, rate: a.rate });
  while (list.length > 0 && list[0].t < t - RATE_WINDOW_MS) list.shift();
  store.rates.set(a.to, list);
}

export async function loadSnapshot() {
  const s = await get('/live/snapshot');
  store.site = s.site;
  store.role = s.role;
  store.packages = new Map(s.packages.map((p) => [p.id, p]));
  store.dps = new Map(s.dps.map((d) => [dpKey(d), d]));
  store.addresses = new Map(s.addresses.map((a) => [a.to, a]));
  store.backlogs = new Map(s.backlogs.map((b) => [b.inbox, b]));
  // The server's hour of samples first (every 5 s), then this tab's own (every 2 s) from now on.
  for (const [to, samples] of Object.entries(s.rates ?? {})) {
    const mine = (store.rates.get(to) ?? []).filter((x) => x.t > (samples.at(-1)?.t ?? 0));
    store.rates.set(to, [...samples, ...mine]);
  }
  for (const a of s.addresses) sampleRate(a);
  changed('snapshot');
  return s;
}

/** The rate of an address stays on the chart while nothing changes. */
export function sampleRates() {
  const t = Date.now();
  for (const a of store.addresses.values()) sampleRate(a, t);
  if (store.addresses.size > 0) changed('rate');
}

export function apply(type, data) {
  switch (type) {
    case 'package':
      store.packages.set(data.id, data);
      break;
    case 'package-removed':
      store.packages.delete(data.id);
      break;
    case 'dp-status':
      store.dps.set(dpKey(data), data);
      break;
    case 'status-message':
      store.messages.push(data);
      if (store.messages.length > MAX_MESSAGES) store.messages.splice(0, store.messages.length - MAX_MESSAGES);
      break;
    case 'address':
      store.addresses.set(data.to, data);
      sampleRate(data);
      break;
    case 'backlog':
      store.backlogs.set(data.inbox, data);
      break;
    default:
      return;
  }
  changed(type);
}

/** Per package: how many DPs it targets and how many are in each state. */
export function countsOf(packageId) {
  const counts = { targeted: 0, installed: 0, pending: 0, retrying: 0, failed: 0 };
  for (const d of store.dps.values()) {
    if (d.packageId !== packageId) continue;
    counts.targeted += 1;
    counts[d.state] += 1;
  }
  return counts;
}

export function dpsOf(packageId) {
  return [...store.dps.values()].filter((d) => d.packageId === packageId);
}

export { STATES };
