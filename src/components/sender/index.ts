import { type FSWatcher, watch } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Address, addStatusMessage, listAddresses, recordAddressTraffic } from '../../db/index.js';
import { getSiteNode } from '../../db/hierarchy.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import { BAD_FOLDER, REASON_SUFFIX } from '../../inbox/name.js';
import { SENDER_KINDS, type SenderKind, outboxDir } from '../../formats/srq.js';
import type { Component, SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';
import { createCourierSender } from './courier.js';
import { createHttpSender } from './http.js';
import { createLanSender } from './lan.js';
import { RateMeter } from './meter.js';
import { type Active, type Pending, defaultAddress, limitOf, pick } from './queue.js';
import { scanOutbox } from './scan.js';
import type { SendTarget, SenderFactory } from './sender.js';
import { AddressThrottle } from './throttle.js';
import { type Outcome, runTransfer } from './transfer.js';

export { type Sender, type SenderDeps, type SenderFactory, type SendProgress, type SendTarget, type ProgressFn } from './sender.js';
export { receivePlugin, RECEIVE_PREFIX, type ReceiveContext } from './receive.js';
export { TokenBucket, PulseGate, AddressThrottle, type Throttle, type Limit, sliceSize } from './throttle.js';
export { createHttpSender, DEFAULT_PART_BYTES } from './http.js';
export { createLanSender } from './lan.js';
export { createCourierSender, importParcel } from './courier.js';
export { addressQueues, type AddressQueue } from './scan.js';
export { RateMeter, rateWindows, type RateSample } from './meter.js';
export { pick, limitOf, defaultAddress, byPriorityThenAge, type Pending } from './queue.js';
export { runTransfer, retryDelayMs } from './transfer.js';

export const SENDERS: Readonly<Record<SenderKind, SenderFactory>> = { http: createHttpSender, lan: createLanSender, courier: createCourierSender };

export interface SenderOptions {
  /** Full pass period: new requests, windows that opened, retries due (default 500 ms). */
  pollMs?: number;
  statusIntervalMs?: number;
  maxRetryDelayMs?: number;
  /** http part size (default 1 MiB). */
  partBytes?: number;
  /** Replaces a sender implementation (tests). */
  senders?: Partial<Record<SenderKind, SenderFactory>>;
  /** Where a site receives; default: its URL from the sites table, the path from its address. */
  resolveTarget?: (code: string, address: Address) => Promise<SendTarget>;
  /** The clock schedules are read with (default: now). */
  now?: () => Date;
}

interface AddressRuntime {
  throttle: AddressThrottle;
  meter: RateMeter;
  unflushed: number;
  lastError: string | null | undefined;
}

/**
 * The senders of a site (one component for every sender kind): watches
 * `schedule.box/outboxes/<sender>/`, picks requests by priority and age as
 * the addresses allow, and moves each to its target site. See
 * docs/architecture/senders.md.
 */
export class SenderComponent implements Component {
  readonly name = 'sender' as const;
  private readonly log: ComponentLog;
  private readonly controller = new AbortController();
  private readonly active = new Map<string, Active & { run: Promise<void> }>();
  private readonly holds = new Map<string, number>();
  private readonly runtime = new Map<string, AddressRuntime>();
  private addresses = new Map<string, Address>();
  private watchers: FSWatcher[] = [];
  private timer: NodeJS.Timeout | undefined;
  private flushTimer: NodeJS.Timeout | undefined;
  private passing: Promise<void> | undefined;
  private again = false;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly ctx: SiteContext,
    private readonly options: SenderOptions = {},
  ) {
    this.log = ctx.logger('sender');
  }

  async start(): Promise<void> {
    for (const kind of SENDER_KINDS) await mkdir(join(outboxDir(this.ctx.paths, kind), BAD_FOLDER), { recursive: true });
    await mkdir(this.ctx.paths.scheduleToSend, { recursive: true });
    for (const kind of SENDER_KINDS) {
      try {
        const w = watch(outboxDir(this.ctx.paths, kind), () => this.wake());
        w.on('error', () => w.close());
        this.watchers.push(w);
      } catch (err) {
        this.log.error(`cannot watch the ${kind} outbox; polling only`, err);
      }
    }
    this.timer = setInterval(() => this.wake(), this.options.pollMs ?? 500);
    this.flushTimer = setInterval(() => void this.flushCounters(), 1000);
    this.wake();
  }

  wake(): void {
    if (this.closing !== undefined) return;
    this.again = true;
    this.passing ??= this.passes();
  }

  /** Bytes per second each address is sending at now. */
  rates(): Map<string, number> {
    return new Map([...this.runtime].map(([to, r]) => [to, r.meter.rate()]));
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.controller.abort();
      if (this.timer !== undefined) clearInterval(this.timer);
      if (this.flushTimer !== undefined) clearInterval(this.flushTimer);
      for (const w of this.watchers) w.close();
      await this.passing?.catch(() => undefined);
      await Promise.allSettled([...this.active.values()].map((a) => a.run));
      await this.flushCounters();
    })();
    return this.closing;
  }

  private async passes(): Promise<void> {
    try {
      while (this.again && this.closing === undefined) {
        this.again = false;
        await this.pass().catch((err: unknown) => this.log.error('a pass over the outboxes failed', err));
      }
    } finally {
      this.passing = undefined;
    }
  }

  private async pass(): Promise<void> {
    this.addresses = new Map((await listAddresses(this.ctx.db)).map((a) => [a.to, a]));
    const pending: Pending[] = [];
    for (const kind of SENDER_KINDS) {
      const { requests, bad } = await scanOutbox(outboxDir(this.ctx.paths, kind), kind, (name) => this.active.has(name));
      pending.push(...requests);
      for (const b of bad) await this.moveToBad(b.path, b.name, b.reason);
    }
    const now = this.options.now?.() ?? new Date();
    const { start } = pick({ pending, active: this.active, addresses: this.addresses, holds: this.holds, now });
    for (const p of start) this.launch(p);
  }

  private runtimeOf(to: string): AddressRuntime {
    let r = this.runtime.get(to);
    if (r === undefined) {
      const limit = (): ReturnType<typeof limitOf> => limitOf(this.addresses.get(to) ?? defaultAddress(to, 'http'), this.options.now?.() ?? new Date());
      r = { throttle: new AddressThrottle(limit), meter: new RateMeter(), unflushed: 0, lastError: undefined };
      this.runtime.set(to, r);
    }
    return r;
  }

  private launch(p: Pending): void {
    const to = p.request.to;
    const address = this.addresses.get(to) ?? defaultAddress(to, p.sender);
    const rt = this.runtimeOf(to);
    const run = (async (): Promise<void> => {
      const target = await (this.options.resolveTarget ?? this.defaultTarget)(to, address);
      const factory = this.options.senders?.[p.sender] ?? SENDERS[p.sender];
      const limit = (): ReturnType<typeof limitOf> => limitOf(this.addresses.get(to) ?? address, this.options.now?.() ?? new Date());
      const sender = factory({
        from: this.ctx.siteCode,
        keys: this.ctx.keys,
        target,
        throttle: rt.throttle,
        limit,
        ...(this.options.partBytes === undefined ? {} : { partBytes: this.options.partBytes }),
      });
      const outcome = await runTransfer(
        p,
        {
          toSendDir: this.ctx.paths.scheduleToSend,
          sender,
          address,
          onWire: (n) => {
            rt.meter.add(n);
            rt.unflushed += n;
          },
          statusIntervalMs: this.options.statusIntervalMs ?? 250,
          maxRetryDelayMs: this.options.maxRetryDelayMs ?? 10 * 60_000,
        },
        this.controller.signal,
      );
      await this.settle(p, outcome, rt);
    })()
      .catch((err: unknown) => this.log.error(`request ${p.request.id} to ${to}`, err))
      .finally(() => {
        this.active.delete(p.name);
        this.wake();
      });
    this.active.set(p.name, { to, priority: p.request.priority, package: p.request.package, run });
  }

  private readonly defaultTarget = async (code: string, address: Address): Promise<SendTarget> => {
    const node = await getSiteNode(this.ctx.db, code);
    return { code, url: node?.url ?? null, path: address.path };
  };

  private async settle(p: Pending, o: Outcome, rt: AddressRuntime): Promise<void> {
    const req = o.request;
    const what = `${req.id} (${req.kind}${req.package === null ? '' : ` ${req.package}`}, ${req.priority}) to ${req.to} by ${p.sender}`;
    switch (o.kind) {
      case 'aborted':
        return;
      case 'completed':
        this.holds.delete(req.to);
        rt.lastError = null;
        this.log.info(`sent ${what}: ${req.bytes} bytes`);
        return;
      case 'bad':
        this.log.error(`${what} cannot be sent: ${o.error}`);
        await this.moveToBad(join(p.path, '..', `${req.id}.SRS`), `${req.id}.SRS`, o.error);
        return;
      case 'retrying':
      case 'failed': {
        rt.lastError = o.error;
        if (o.unreachable) this.holds.set(req.to, o.nextRetry);
        const when = new Date(o.nextRetry).toISOString();
        this.log.warn(`${what} ${o.kind === 'failed' ? 'failed, its retries spent' : 'will be retried'} at ${when}: ${o.error}`);
        if (o.kind === 'failed' || p.status === undefined || p.status.state !== 'retrying') {
          await addStatusMessage(this.ctx.db, {
            severity: o.kind === 'failed' ? 'error' : 'warning',
            component: 'sender',
            site: this.ctx.siteCode,
            packageId: req.package,
            text: `sending ${what}: ${o.error} (next attempt ${when})`,
          }).catch((err: unknown) => this.log.error('cannot write a status message', err));
        }
        return;
      }
    }
  }

  private async moveToBad(path: string, name: string, reason: string): Promise<void> {
    try {
      const dir = join(path, '..', BAD_FOLDER);
      const reasonFile = join(dir, name + REASON_SUFFIX);
      await writeFileAtomic(reasonFile, `${reason}\n`);
      try {
        await rename(path, join(dir, name));
      } catch (err) {
        // No reason without its file; a file already gone (removed by hand) is not reported as moved.
        await rm(reasonFile, { force: true }).catch(() => undefined);
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
          this.log.info(`${name} is gone from the outbox; not moved to bad/ (it would have been: ${reason})`);
          return;
        }
        throw err;
      }
      this.log.error(`${name} moved to bad/: ${reason}`);
      await addStatusMessage(this.ctx.db, { severity: 'error', component: 'sender', site: this.ctx.siteCode, text: `${name} moved to bad/: ${reason}`.slice(0, 8000) });
    } catch (err) {
      this.log.error(`cannot move ${name} to bad/`, err);
    }
  }

  private async flushCounters(): Promise<void> {
    for (const [to, rt] of this.runtime) {
      const bytes = rt.unflushed;
      const rate = rt.meter.rate();
      if (bytes === 0 && rt.lastError === undefined && rate === 0 && (this.addresses.get(to)?.currentRate ?? 0) === 0) continue;
      rt.unflushed = 0;
      const lastError = rt.lastError;
      rt.lastError = undefined;
      await recordAddressTraffic(this.ctx.db, to, { bytes, currentRate: rate, ...(lastError === undefined ? {} : { lastError }) }).catch((err: unknown) => {
        rt.unflushed += bytes;
        this.log.error(`cannot record the counters of address ${to}`, err);
      });
    }
  }
}
