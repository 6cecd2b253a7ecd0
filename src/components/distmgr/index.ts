import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSitecastError } from '../../errors.js';
import { parsePkn, pknName, serializePkn } from '../../formats/pkn.js';
import { Inbox, type InboxEntry, dropFile } from '../../inbox/index.js';
import type { Component, SiteContext } from '../../site/context.js';
import { prunesSettled } from '../../dp/install.js';
import { retirementsSettled } from '../../dp/share.js';
import { InboxLifecycle, inboxHooks } from '../inbox-component.js';
import type { ComponentLog } from '../../site/log.js';
import { Semaphore } from './limit.js';
import { LibraryCollector } from './collect.js';
import { usingSiteLibrary } from '../../site/library.js';
import { type DistributionSettings, type PackageJob, distributePackage, retryError } from './package.js';

export interface DistributionManagerOptions {
  /** Packages handled at once (default 2). */
  concurrency?: number;
  /** DPs of one package installed at once (default 4). */
  dpConcurrency?: number;
  /** Back-off for DPs that cannot be written: doubles from initialMs up to maxMs (default 2 s … 5 min). */
  retry?: { initialMs?: number; maxMs?: number };
  /** How long a replaced share version stays readable after the switch (default 1000 ms). */
  graceMs?: number;
  /** Rescan period of distmgr.box (default 5000 ms). */
  rescanMs?: number;
  /** How long a collection of the site library that stepped back for a backup waits before it tries again (default 60 s). */
  collectRetryMs?: number;
}

/**
 * Distribution Manager: wakes on `<PKGID>.PKN` in distmgr.box and
 * distributes the package within this site (see package.ts). The wake-up
 * file is deleted only when every targeted DP is installed or failed, so a
 * DP that cannot be written keeps it, and the inbox hands it back after a
 * back-off; a restart finds it again. Anything else dropped into the inbox
 * is parked in bad/ with a status message.
 */
export class DistributionManager implements Component {
  readonly name = 'distmgr' as const;
  private readonly log: ComponentLog;
  private readonly inbox: Inbox;
  private readonly settings: DistributionSettings;
  private readonly ingestLimit = new Semaphore(1);
  private readonly life: InboxLifecycle;
  private readonly collector: LibraryCollector;

  constructor(
    private readonly ctx: SiteContext,
    options: DistributionManagerOptions = {},
  ) {
    this.log = ctx.logger('distmgr');
    this.settings = {
      dpConcurrency: options.dpConcurrency ?? 4,
      retryInitialMs: options.retry?.initialMs ?? 2000,
      retryMaxMs: options.retry?.maxMs ?? 5 * 60_000,
      graceMs: options.graceMs ?? 1000,
    };
    this.inbox = new Inbox({
      dir: ctx.paths.distmgr,
      concurrency: options.concurrency ?? 2,
      handler: (file, signal) => this.handle(file, signal),
      retry: { initialMs: this.settings.retryInitialMs, maxMs: this.settings.retryMaxMs },
      ...(options.rescanMs === undefined ? {} : { rescanMs: options.rescanMs }),
      onBad: inboxHooks(ctx, this.log, { component: 'distmgr', box: 'distmgr.box' }).onBad,
      onError: (err, name) => {
        if (isSitecastError(err) && err.message.endsWith('will retry')) this.log.info(err.message);
        else this.log.error(`will retry ${name ?? 'the scan of distmgr.box'}`, err);
      },
    });
    this.life = new InboxLifecycle(this.log, [this.inbox], 'distmgr.box');
    this.collector = new LibraryCollector(ctx, this.log, options.collectRetryMs);
  }

  async start(): Promise<void> {
    await this.resumeUnfinished();
    await this.life.start();
    // What an earlier run left (a crash between an update and its collection).
    this.collector.request();
  }

  wake(): void {
    this.life.wake();
  }

  async close(): Promise<void> {
    await this.life.close();
    await this.collector.close();
    await retirementsSettled();
    await prunesSettled();
  }

  private async handle(file: InboxEntry, signal: AbortSignal): Promise<void> {
    const pkn = parsePkn(file.name, await readFile(file.path));
    let replaced = false;
    const job: PackageJob = {
      ctx: this.ctx,
      log: this.log,
      settings: this.settings,
      ingestLimit: this.ingestLimit,
      signal,
      onVersionReplaced: () => {
        replaced = true;
      },
    };
    // The whole job uses the site library: the version it ingests or installs is not collected under it.
    const outcome = await usingSiteLibrary(this.ctx.paths, () => distributePackage(job, pkn.packageId)).finally(() => {
      if (replaced) this.collector.request();
    });
    if (outcome === 'retry') {
      const waiting = await this.waitingDps(pkn.packageId);
      throw retryError(pkn.packageId, waiting);
    }
  }

  private async waitingDps(packageId: string): Promise<string[]> {
    const rows = await this.ctx.db.db
      .selectFrom('package_dp_status')
      .select('dp_name')
      .where('package_id', '=', packageId)
      .where('site_code', '=', this.ctx.siteCode)
      .where('state', 'in', ['pending', 'retrying'])
      .orderBy('dp_name')
      .execute();
    return rows.map((r) => r.dp_name);
  }

  /**
   * DPs of this site left pending or retrying by an earlier run get their
   * wake-up file back, in case it was lost (it normally is still in the inbox).
   */
  private async resumeUnfinished(): Promise<void> {
    const rows = await this.ctx.db.db
      .selectFrom('package_dp_status')
      .select('package_id')
      .distinct()
      .where('site_code', '=', this.ctx.siteCode)
      .where('state', 'in', ['pending', 'retrying'])
      .orderBy('package_id')
      .execute();
    for (const { package_id: id } of rows) {
      const name = pknName(id);
      const present = await readFile(join(this.ctx.paths.distmgr, name)).then(
        () => true,
        () => false,
      );
      if (present) continue;
      await dropFile(this.ctx.paths.distmgr, name, serializePkn(id, 'resume'));
      this.log.info(`${name} written again to resume unfinished distribution`);
    }
  }
}
