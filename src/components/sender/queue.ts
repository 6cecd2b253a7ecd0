import type { Address } from '../../db/addresses.js';
import { ADDRESS_DEFAULTS } from '../../db/addresses.js';
import { OPEN_WEEK, UNLIMITED, isOpenFor, rateAt } from '../../formats/schedule.js';
import type { SendRequest, SenderKind } from '../../formats/srq.js';
import type { SendStatus } from '../../formats/srs.js';
import type { Limit } from './throttle.js';

/** A request waiting in an outbox (`.SRQ`) or taken and not finished (`.SRS`). */
export interface Pending {
  name: string;
  path: string;
  sender: SenderKind;
  request: SendRequest;
  status: SendStatus | undefined;
}

export interface Active {
  to: string;
  priority: SendRequest['priority'];
  /** The package the request is about (null or absent: a status report or site definitions). */
  package?: string | null;
}

const RANK = { high: 0, medium: 1, low: 2 } as const;

/** Priority first, then age (the request's creation time), then id: the order requests go in. */
export function byPriorityThenAge(a: Pending, b: Pending): number {
  const r = RANK[a.request.priority] - RANK[b.request.priority];
  if (r !== 0) return r;
  if (a.request.created !== b.request.created) return a.request.created < b.request.created ? -1 : 1;
  return a.request.id < b.request.id ? -1 : a.request.id > b.request.id ? 1 : 0;
}

/** Made before: by `created`, then id (priority left aside). */
function madeBefore(a: Pending, b: Pending): boolean {
  if (a.request.created !== b.request.created) return a.request.created < b.request.created;
  return a.request.id < b.request.id;
}

/** The address in force for a site that has no row yet: open all week, unlimited, defaults for the rest. */
export function defaultAddress(to: string, sender: SenderKind): Address {
  const now = new Date().toISOString();
  return {
    to,
    sender,
    path: null,
    schedule: OPEN_WEEK,
    rateLimit: UNLIMITED,
    pulse: null,
    maxConcurrent: ADDRESS_DEFAULTS.maxConcurrent,
    retries: ADDRESS_DEFAULTS.retries,
    retryDelaySeconds: ADDRESS_DEFAULTS.retryDelaySeconds,
    paused: false,
    bytesSent: 0,
    currentRate: 0,
    lastError: null,
    createdAt: now,
    updatedAt: now,
  };
}

/** The limit an address imposes at a moment: pulses, or a rate in bytes per second (null: none). */
export function limitOf(address: Address, at: Date): Limit {
  if (address.pulse !== null) return { mode: 'pulse', blockBytes: address.pulse.blockKB * 1024, delayMs: address.pulse.delaySeconds * 1000 };
  const kbps = rateAt(address.rateLimit, at);
  return { mode: 'rate', bytesPerSecond: kbps === null ? null : kbps * 1024 };
}

export interface PickInput {
  pending: readonly Pending[];
  active: ReadonlyMap<string, Active>;
  addresses: ReadonlyMap<string, Address>;
  /** Address → time (ms) before which it is not tried: the site was unreachable. */
  holds: ReadonlyMap<string, number>;
  now: Date;
}

export interface PickResult {
  start: Pending[];
  /** Earliest moment (ms) a request now held by a retry time becomes due, if any. */
  nextDue: number | undefined;
}

/**
 * Which requests to start now. Per address: not paused, not held after a
 * failure, the schedule open for the request's priority at this hour, fewer
 * sendings than its maximum; then by priority and age, and never a lower
 * priority while a higher one for the same address is sending or waiting to
 * start, so once a window opens every high request goes before any low one.
 * Addresses are independent: one that is closed, paused or down holds only
 * its own requests. Requests about one package to one site go one at a
 * time, in the order they were made: the site applies what arrives in the
 * order it arrives, and a small later one (a withdrawal, a definition) must
 * not overtake a larger earlier one still on its way, or waiting for a retry.
 */
export function pick(input: PickInput): PickResult {
  const now = input.now.getTime();
  let nextDue: number | undefined;
  const inFlight = new Map<string, { count: number; top: number }>();
  const sending = new Set<string>();
  for (const a of input.active.values()) {
    const cur = inFlight.get(a.to) ?? { count: 0, top: 3 };
    inFlight.set(a.to, { count: cur.count + 1, top: Math.min(cur.top, RANK[a.priority]) });
    if (a.package != null) sending.add(`${a.to}/${a.package}`);
  }
  const first = new Map<string, Pending>();
  for (const p of input.pending) {
    if (p.request.package === null || input.active.has(p.name)) continue;
    const key = `${p.request.to}/${p.request.package}`;
    const cur = first.get(key);
    if (cur === undefined || madeBefore(p, cur)) first.set(key, p);
  }
  const eligible: Pending[] = [];
  for (const p of input.pending) {
    if (input.active.has(p.name)) continue;
    if (p.request.package !== null) {
      const key = `${p.request.to}/${p.request.package}`;
      if (sending.has(key) || first.get(key) !== p) continue;
    }
    const due = p.status?.nextRetry == null ? 0 : Date.parse(p.status.nextRetry);
    if (due > now) {
      nextDue = Math.min(nextDue ?? due, due);
      continue;
    }
    const address = input.addresses.get(p.request.to) ?? defaultAddress(p.request.to, p.sender);
    if (address.paused) continue;
    const hold = input.holds.get(p.request.to) ?? 0;
    if (hold > now) {
      nextDue = Math.min(nextDue ?? hold, hold);
      continue;
    }
    if (!isOpenFor(address.schedule, p.request.priority, input.now)) continue;
    eligible.push(p);
  }
  eligible.sort(byPriorityThenAge);
  const start: Pending[] = [];
  const top = new Map<string, number>();
  for (const p of eligible) {
    const to = p.request.to;
    const address = input.addresses.get(to) ?? defaultAddress(to, p.sender);
    const f = inFlight.get(to) ?? { count: 0, top: 3 };
    const rank = RANK[p.request.priority];
    const best = Math.min(f.top, top.get(to) ?? 3);
    top.set(to, Math.min(best, rank));
    if (rank > best) continue;
    if (f.count >= address.maxConcurrent) continue;
    start.push(p);
    inFlight.set(to, { count: f.count + 1, top: Math.min(f.top, rank) });
  }
  return { start, nextDue };
}
