import { listStatusMessages, type SiteDb, type StatusMessage } from '../../db/index.js';
import type { SitePaths } from '../layout.js';
import type { ComponentLog } from '../log.js';
import { type AddressRow, type DpStateRow, type InboxBacklog, type PackageRow, readAddresses, readBacklogs, readDpStates, readPackages } from './snapshot.js';

/** One server-sent event: its type and a JSON payload. */
export interface LiveEvent {
  type: 'package' | 'package-removed' | 'dp-status' | 'status-message' | 'address' | 'backlog';
  data: unknown;
}

export interface Subscriber {
  send(events: readonly LiveEvent[]): void;
}

export interface HubOptions {
  /** How often the database and inboxes are read while someone listens (default 500 ms). */
  intervalMs?: number;
  /** At most this many listeners at once (default 32). */
  maxSubscribers?: number;
}

interface State {
  packages: Map<string, string>;
  dps: Map<string, string>;
  addresses: Map<string, string>;
  backlogs: Map<string, string>;
  lastMessageId: number;
}

const MESSAGES_PER_TICK = 200;

function keyed<T>(rows: readonly T[], key: (r: T) => string): Map<string, string> {
  return new Map(rows.map((r) => [key(r), JSON.stringify(r)]));
}

function changed(before: Map<string, string>, after: Map<string, string>): string[] {
  const out: string[] = [];
  for (const [k, v] of after) if (before.get(k) !== v) out.push(v);
  return out;
}

/**
 * Pushes what changes in the site to every listener of /api/v1/events. It
 * reads the database and the inboxes every half second, but only while
 * someone listens, and sends only the rows that differ from the last read,
 * so a quiet site costs a few small queries and nothing travels.
 */
export class LiveHub {
  readonly #db: SiteDb;
  readonly #paths: Pick<SitePaths, 'inboxes' | 'scheduleOutboxes'>;
  readonly #log: ComponentLog;
  readonly #intervalMs: number;
  readonly #max: number;
  readonly #subscribers = new Set<Subscriber>();
  #state: State | undefined;
  #timer: NodeJS.Timeout | undefined;
  #running: Promise<void> | undefined;
  #closed = false;

  constructor(input: { db: SiteDb; paths: Pick<SitePaths, 'inboxes' | 'scheduleOutboxes'>; log: ComponentLog }, options: HubOptions = {}) {
    this.#db = input.db;
    this.#paths = input.paths;
    this.#log = input.log;
    this.#intervalMs = options.intervalMs ?? 500;
    this.#max = options.maxSubscribers ?? 32;
  }

  get size(): number {
    return this.#subscribers.size;
  }

  get full(): boolean {
    return this.#subscribers.size >= this.#max;
  }

  /** Adds a listener; returns its removal. The caller checks `full` first. */
  subscribe(s: Subscriber): () => void {
    this.#subscribers.add(s);
    if (this.#timer === undefined && !this.#closed) this.#schedule();
    return () => {
      this.#subscribers.delete(s);
      if (this.#subscribers.size === 0) this.#stop();
    };
  }

  /** Read now instead of at the next tick (after a write through the API). */
  poke(): void {
    if (this.#subscribers.size === 0 || this.#closed) return;
    this.#stop();
    this.#schedule(0);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#stop();
    this.#subscribers.clear();
    await this.#running?.catch(() => undefined);
  }

  #stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    // The next listener starts from a fresh read: rows it will fetch itself are not replayed.
    if (this.#subscribers.size === 0) this.#state = undefined;
  }

  #schedule(delay = this.#intervalMs): void {
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#running = this.#tick().finally(() => {
        this.#running = undefined;
        if (!this.#closed && this.#subscribers.size > 0 && this.#timer === undefined) this.#schedule();
      });
    }, delay);
    this.#timer.unref();
  }

  async #tick(): Promise<void> {
    try {
      const [packages, dps, addresses, backlogs] = await Promise.all([
        readPackages(this.#db),
        readDpStates(this.#db),
        readAddresses(this.#db, this.#paths),
        readBacklogs(this.#paths),
      ]);
      const next: State = {
        packages: keyed<PackageRow>(packages, (p) => p.id),
        dps: keyed<DpStateRow>(dps, (d) => `${d.packageId}|${d.site}|${d.dp}`),
        addresses: keyed<AddressRow>(addresses, (a) => a.to),
        backlogs: keyed<InboxBacklog>(backlogs, (b) => b.inbox),
        lastMessageId: this.#state?.lastMessageId ?? 0,
      };
      let messages: StatusMessage[] = [];
      if (this.#state === undefined) {
        next.lastMessageId = (await listStatusMessages(this.#db, { limit: 1 }))[0]?.id ?? 0;
      } else {
        messages = await listStatusMessages(this.#db, { afterId: this.#state.lastMessageId, limit: MESSAGES_PER_TICK });
        next.lastMessageId = messages.at(-1)?.id ?? this.#state.lastMessageId;
      }
      const before = this.#state;
      this.#state = next;
      if (before === undefined) return;
      const events: LiveEvent[] = [
        ...changed(before.packages, next.packages).map((v) => ({ type: 'package' as const, data: JSON.parse(v) as unknown })),
        ...[...before.packages.keys()].filter((k) => !next.packages.has(k)).map((id) => ({ type: 'package-removed' as const, data: { id } })),
        ...changed(before.dps, next.dps).map((v) => ({ type: 'dp-status' as const, data: JSON.parse(v) as unknown })),
        ...messages.map((m) => ({ type: 'status-message' as const, data: m })),
        ...changed(before.addresses, next.addresses).map((v) => ({ type: 'address' as const, data: JSON.parse(v) as unknown })),
        ...changed(before.backlogs, next.backlogs).map((v) => ({ type: 'backlog' as const, data: JSON.parse(v) as unknown })),
      ];
      if (events.length === 0) return;
      for (const s of [...this.#subscribers]) s.send(events);
    } catch (err) {
      // A locked database now and then is normal: the next tick reads again.
      this.#log.warn(`live events: cannot read the site state: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
