import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { getAddress } from '../../db/addresses.js';
import { forgetSent, recordSent } from '../../db/hierarchy.js';
import { type BundleHeader, writeBundle } from '../../formats/bundle.js';
import { MINIJOB_SUFFIX, type Minijob, parseMinijob } from '../../formats/replication.js';
import { type SenderKind, writeSendRequest } from '../../formats/srq.js';
import { Inbox, type InboxEntry } from '../../inbox/index.js';
import type { Component, SiteContext } from '../../site/context.js';
import { InboxLifecycle, inboxHooks } from '../inbox-component.js';
import type { ComponentLog } from '../../site/log.js';
import { buildPackageBundle, forgetUntargetedBelow, planPackage } from './package-bundle.js';
import { usingSiteLibrary } from '../../site/library.js';

export interface SchedulerOptions {
  /** Minijobs built at once (default 2: building a delta already uses both cores). */
  concurrency?: number;
  rescanMs?: number;
  retry?: { initialMs?: number; maxMs?: number };
}

/**
 * Scheduler: turns each minijob `<id>.MJB` in `schedule.box` into what must
 * travel, a signed bundle in `schedule.box/tosend/`, and then a send request
 * `.SRQ` in the outbox of the address's sender (http when the target has no
 * address). The bundle is complete before the request names it; the minijob
 * is deleted only after both are written, so a crash builds it again.
 */
export class Scheduler implements Component {
  readonly name = 'scheduler' as const;
  private readonly log: ComponentLog;
  private readonly inbox: Inbox;
  private readonly life: InboxLifecycle;

  constructor(
    private readonly ctx: SiteContext,
    options: SchedulerOptions = {},
  ) {
    this.log = ctx.logger('sched');
    this.inbox = new Inbox({
      dir: ctx.paths.schedule,
      accept: (name) => name.endsWith(MINIJOB_SUFFIX),
      concurrency: options.concurrency ?? 2,
      handler: (file, signal) => this.handle(file, signal),
      // Status and small jobs are named S-/D-, packages P-: status first, then by age.
      sort: (a, b) => rank(a.name) - rank(b.name) || a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : 1),
      retry: { initialMs: options.retry?.initialMs ?? 2000, maxMs: options.retry?.maxMs ?? 5 * 60_000 },
      ...(options.rescanMs === undefined ? {} : { rescanMs: options.rescanMs }),
      ...inboxHooks(ctx, this.log, { component: 'scheduler', box: 'schedule.box' }),
    });
    this.life = new InboxLifecycle(this.log, [this.inbox], 'schedule.box');
  }

  start(): Promise<void> {
    return this.life.start();
  }

  wake(): void {
    this.life.wake();
  }

  close(): Promise<void> {
    return this.life.close();
  }

  private async senderFor(to: string): Promise<SenderKind> {
    return (await getAddress(this.ctx.db, to))?.sender ?? 'http';
  }

  private async handle(file: InboxEntry, signal: AbortSignal): Promise<void> {
    const job = parseMinijob(file.name, await readFile(file.path));
    if (job.kind === 'package') await this.sendPackage(job, signal);
    else await this.sendReport(job);
  }

  private async sendPackage(job: Extract<Minijob, { kind: 'package' }>, signal: AbortSignal): Promise<void> {
    const started = Date.now();
    // The plan names versions in the site library (the new one, the base of a delta): none is collected before the bundle holds them.
    const built = await usingSiteLibrary(this.ctx.paths, async () => {
      const plan = await planPackage(this.ctx, job);
      if ('skip' in plan) {
        this.log.info(`${job.id}: nothing to send: ${plan.skip}`);
        return undefined;
      }
      return buildPackageBundle(this.ctx, job, plan, signal);
    });
    if (built === undefined) return;
    const sender = await this.senderFor(job.to);
    await writeSendRequest(this.ctx.paths, {
      sender,
      id: built.id,
      to: job.to,
      priority: job.priority,
      file: built.file,
      bytes: built.bytes,
      sha256: built.sha256,
      kind: 'package',
      package: job.package,
    });
    await forgetUntargetedBelow(this.ctx, this.log, job.package, job.to);
    // A withdrawal is the last word to that site about the package: it is not asked about it again.
    if (built.withdrawal) await forgetSent(this.ctx.db, job.to, job.package);
    else {
      await recordSent(this.ctx.db, {
        site: job.to,
        packageId: job.package,
        sourceVersion: built.sourceVersion,
        definition: built.definition,
        sendId: built.id,
        bytes: built.bytes,
        sentAt: new Date().toISOString(),
      });
    }
    this.ctx.wake('sender');
    const what = built.withdrawal ? `withdrawal: no target at or below ${job.to} any more` : built.content === 'none' ? 'definition only' : `${built.content} content ${built.contentBytes} bytes`;
    this.log.info(`${job.package} source version ${built.sourceVersion} for ${job.to}: tosend/${built.file} (${built.bytes} bytes, ${what}, ${Date.now() - started} ms), ${built.id}.SRQ in outboxes/${sender}`);
  }

  private async sendReport(job: Exclude<Minijob, { kind: 'package' }>): Promise<void> {
    const common = { format: 1, id: job.id, from: this.ctx.siteCode, to: job.to, created: new Date().toISOString() } as const;
    const header: BundleHeader = job.kind === 'status' ? { ...common, kind: 'status', status: job.status } : { ...common, kind: 'site', site: job.site };
    const file = `${job.id}.bundle`;
    const written = await writeBundle(join(this.ctx.paths.scheduleToSend, file), { header, privateKey: this.ctx.keys.privateKey });
    const sender = await this.senderFor(job.to);
    // A send request knows packages and status; site definitions travel as status traffic.
    await writeSendRequest(this.ctx.paths, { sender, id: job.id, to: job.to, priority: job.priority, file, bytes: written.bytes, sha256: written.sha256, kind: 'status', package: null });
    this.ctx.wake('sender');
    this.log.info(`${job.kind} for ${job.to}: tosend/${file} (${written.bytes} bytes), ${job.id}.SRQ in outboxes/${sender}`);
  }
}

function rank(name: string): number {
  return name.startsWith('P-') ? 1 : 0;
}
