import { ackChangeIds, addStatusMessage, deleteStatusMessagesBefore, readChanges, type Change, type ChangeSubscription } from '../../db/index.js';
import { dropFiles } from '../../inbox/index.js';
import { PKN_NAME, pknName, serializePkn } from '../../formats/pkn.js';
import type { Component, SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';
import { redact } from '../../redact.js';

export interface DbMonitorOptions {
  /** Poll period of the change log (default 200 ms: one indexed query). */
  pollMs?: number;
  /** Change rows handled per round (default 500). */
  batch?: number;
  /** Wait before listening again after the notification connection was lost (default 5000 ms). */
  relistenMs?: number;
  /** Period of the site maintenance task (aged status messages), first run at start (default 1 hour). */
  maintenanceMs?: number;
}

/** Days a status message is kept when site.json does not say. */
export const DEFAULT_STATUS_MESSAGE_DAYS = 30;

/**
 * The database monitor (SMS's SQL Monitor). Triggers in the site database
 * record every change of a package definition in `change_log`, in the same
 * transaction as the change. This component turns those rows into
 * `<PKGID>.PKN` wake-up files in Distribution Manager's inbox and then
 * acknowledges (deletes) them. A crash between the two writes the same
 * wake-up files again, which is harmless; no change is ever lost.
 *
 * It polls, cheaply, and a writer in the same process calls nudge() after a
 * commit so the wake-up file follows at once. Where the database can notify
 * (PostgreSQL: the triggers NOTIFY sitecast_changes), it also listens, so a
 * write by another process is seen at once too; the poll stays as the
 * fallback while the notification connection is down.
 */
export class DatabaseMonitor implements Component {
  readonly name = 'dbmon' as const;
  private readonly log: ComponentLog;
  private readonly pollMs: number;
  private readonly batch: number;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private started = false;
  private closing: Promise<void> | undefined;
  private failing = false;
  /** When the current outage began and what it was, for the status message written once it ends. */
  private outage: { since: number; reason: string } | undefined;
  private readonly relistenMs: number;
  private subscription: ChangeSubscription | undefined;
  private listening: Promise<void> | undefined;
  private relisten: NodeJS.Timeout | undefined;
  private readonly maintenanceMs: number;
  private maintenanceTimer: NodeJS.Timeout | undefined;
  private maintaining: Promise<void> | undefined;

  constructor(
    private readonly ctx: SiteContext,
    options: DbMonitorOptions = {},
  ) {
    this.log = ctx.logger('smsdbmon');
    this.pollMs = options.pollMs ?? 200;
    this.batch = options.batch ?? 500;
    this.relistenMs = options.relistenMs ?? 5000;
    this.maintenanceMs = options.maintenanceMs ?? 3600_000;
  }

  start(): Promise<void> {
    if (this.started || this.closing !== undefined) return Promise.resolve();
    this.started = true;
    this.log.info(`started; polling the change log every ${this.pollMs} ms`);
    this.timer = setInterval(() => this.nudge(), this.pollMs);
    this.nudge();
    this.listen();
    this.maintenanceTimer = setInterval(() => this.maintain(), this.maintenanceMs);
    this.maintenanceTimer.unref();
    this.maintain();
    return Promise.resolve();
  }

  /**
   * The site maintenance task, as SMS's SQL Monitor ran them: status messages
   * older than `statusMessageDays` (site.json, default 30) are deleted. A run
   * that fails is logged and tried again at the next period.
   */
  private maintain(): void {
    if (this.closing !== undefined || this.maintaining !== undefined) return;
    const days = this.ctx.config.statusMessageDays ?? DEFAULT_STATUS_MESSAGE_DAYS;
    if (days === 0) return;
    const before = new Date(Date.now() - days * 86_400_000).toISOString();
    this.maintaining = deleteStatusMessagesBefore(this.ctx.db, before)
      .then(
        (n) => {
          if (n > 0) this.log.info(`maintenance: ${n} status messages older than ${days} days (before ${before}) deleted`);
        },
        (err: unknown) => this.log.error('maintenance: cannot delete aged status messages; will try again', err),
      )
      .finally(() => {
        this.maintaining = undefined;
      });
  }

  private listen(): void {
    const dialect = this.ctx.db.dialect;
    if (dialect.subscribeChanges === undefined || this.closing !== undefined) return;
    this.listening = dialect.subscribeChanges(() => this.nudge()).then(
      async (subscription) => {
        if (this.closing !== undefined) return subscription.close();
        this.subscription = subscription;
        subscription.onLost((err) => {
          this.log.error('lost the change notification connection; polling until it is back', err);
          this.subscription = undefined;
          this.relisten = setTimeout(() => this.listen(), this.relistenMs);
          this.listening = subscription.close();
        });
        this.log.info('listening for change notifications');
        // Changes committed before LISTEN took effect sent their notification to nobody.
        this.nudge();
      },
      (err: unknown) => {
        this.log.error('cannot listen for change notifications; polling only, will try again', err);
        if (this.closing === undefined) this.relisten = setTimeout(() => this.listen(), this.relistenMs);
      },
    );
  }

  /** Reads the change log now (coalesced with a round already running). */
  nudge(): void {
    if (!this.started || this.closing !== undefined) return;
    this.again = true;
    this.running ??= this.loop();
  }

  wake(): void {
    this.nudge();
  }

  /** Resolves when every change committed before the call has been turned into a wake-up file. */
  async drain(): Promise<void> {
    this.nudge();
    while (this.running !== undefined) await this.running;
  }

  close(): Promise<void> {
    this.closing ??= this.shutdown();
    return this.closing;
  }

  private async shutdown(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.relisten !== undefined) clearTimeout(this.relisten);
    if (this.maintenanceTimer !== undefined) clearInterval(this.maintenanceTimer);
    await this.maintaining;
    await this.listening;
    await this.subscription?.close();
    await this.running;
    this.log.info('stopped');
    await this.log.flush();
  }

  private async loop(): Promise<void> {
    try {
      while (this.again && this.closing === undefined) {
        this.again = false;
        try {
          // A full batch means more may be waiting: go round again at once.
          if ((await this.round()) === this.batch) this.again = true;
          if (this.failing) this.log.info('the change log is readable again');
          this.failing = false;
          if (this.outage !== undefined) await this.reportOutage(this.outage);
          this.outage = undefined;
        } catch (err) {
          // Database locked, disk full: the rows stay, the next poll tries again. Logged once per outage.
          if (!this.failing) this.log.error('cannot turn changes into wake-up files; will retry', err);
          this.failing = true;
          this.outage ??= { since: Date.now(), reason: err instanceof Error ? err.message : String(err) };
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  /** Said once the database answers again: while it is down there is nowhere to record it but the log. */
  private async reportOutage(outage: { since: number; reason: string }): Promise<void> {
    const seconds = Math.max(1, Math.round((Date.now() - outage.since) / 1000));
    await addStatusMessage(this.ctx.db, {
      severity: 'warning',
      component: 'dbmon',
      site: this.ctx.siteCode,
      text: `the change log could not be read for about ${seconds} s (${redact(outage.reason).slice(0, 200)}); resumed, no change was lost`,
    }).catch((err: unknown) => this.log.error('cannot write a status message', err));
  }

  private async round(): Promise<number> {
    // From the start of the log every time, and acknowledged row by row: on PostgreSQL a transaction that
    // commits late can add a row below ids already handled (ids are taken at insert, not at commit), and
    // a cursor would step over it. Handled rows are deleted, so the start of the log is what is left.
    const changes = await readChanges(this.ctx.db, 0, this.batch);
    if (changes.length === 0) return 0;
    const packages = new Map<string, Change[]>();
    for (const c of changes) packages.set(c.objectKey, [...(packages.get(c.objectKey) ?? []), c]);
    const wakeUps: { name: string; data: string; ops: string }[] = [];
    for (const [id, list] of packages) {
      const name = pknName(id);
      if (!PKN_NAME.test(name)) {
        // Triggers only write package ids; anything else is a bug to report, not to retry forever.
        this.log.warn(`change log rows ${list.map((c) => c.id).join(',')} name ${JSON.stringify(id)}, not a package id; skipped`);
        await addStatusMessage(this.ctx.db, {
          severity: 'warning',
          component: 'dbmon',
          site: this.ctx.siteCode,
          text: `change log names ${JSON.stringify(id).slice(0, 100)}, which is not a package id; skipped`,
        }).catch((err: unknown) => this.log.error('cannot write a status message', err));
        continue;
      }
      wakeUps.push({ name, data: serializePkn(id, 'change'), ops: [...new Set(list.map((c) => `${c.table} ${c.op}`))].join(', ') });
    }
    // A burst of changes (an administrator updating a thousand packages) is one round: its files are flushed together.
    await dropFiles(this.ctx.paths.distmgr, wakeUps);
    for (const w of wakeUps) this.log.info(`${w.name} written to distmgr.box (${w.ops})`);
    await ackChangeIds(this.ctx.db, changes.map((c) => c.id));
    this.ctx.wake('distmgr');
    return changes.length;
  }
}
