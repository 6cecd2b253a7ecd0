import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { setLocalSite } from '../../db/hierarchy.js';
import { writeFileAtomic } from '../../fs/atomic.js';
import { REPLICATION_FORMAT, RPT_SUFFIX, serialize, stampedName } from '../../formats/replication.js';
import { dropFile } from '../../inbox/index.js';
import type { Component, SiteContext } from '../../site/context.js';
import type { ComponentLog } from '../../site/log.js';
import { EMPTY_STATE, type HoldingsCache, type ReportState, collectReport } from './collect.js';

export interface StatusReporterOptions {
  /** Period of the check for changes (default 2000 ms). */
  pollMs?: number;
  /** After a wake, changes are gathered this long into one report (default 300 ms). */
  batchMs?: number;
}

const stateSchema = z.strictObject({
  format: z.literal(1),
  dps: z.record(z.string(), z.string()),
  dpCursor: z.string().optional(),
  holdings: z.string(),
  wants: z.string().optional(),
  sites: z.string(),
  reportedDps: z.array(z.string()).max(100_000).optional(),
  messageId: z.number().int().min(0),
  messageGaps: z.record(z.string().regex(/^[1-9][0-9]*$/), z.string()).optional(),
});

/**
 * Status flows up: this component reports to the parent site what changed
 * since its last report (DP states of packages received from above, here
 * and below; what the library holds; status messages about those packages;
 * site and DP definitions of this subtree), as replication requests in
 * `replmgr.box/outbound/high/`, batched. It records what it reported only
 * after the request is written, so a crash reports again, never less.
 */
export class StatusReporter implements Component {
  readonly name = 'statmgr' as const;
  private readonly log: ComponentLog;
  private readonly pollMs: number;
  private readonly batchMs: number;
  private readonly statePath: string;
  private state: ReportState = EMPTY_STATE;
  private readonly holdings: HoldingsCache = {};
  private timer: NodeJS.Timeout | undefined;
  private soon: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private again = false;
  private closing: Promise<void> | undefined;
  private failing = false;

  constructor(
    private readonly ctx: SiteContext,
    options: StatusReporterOptions = {},
  ) {
    this.log = ctx.logger('statmgr');
    this.pollMs = options.pollMs ?? 2000;
    this.batchMs = options.batchMs ?? 300;
    this.statePath = join(ctx.root, 'state', 'statmgr.json');
  }

  async start(): Promise<void> {
    const url = this.ctx.baseUrl();
    if (url !== undefined) await setLocalSite(this.ctx.db, { url });
    this.state = await this.load();
    this.timer = setInterval(() => this.run(), this.pollMs);
    this.run();
    this.log.info(`started; checking for status to report every ${this.pollMs} ms`);
  }

  wake(): void {
    if (this.closing !== undefined || this.soon !== undefined) return;
    this.soon = setTimeout(() => {
      this.soon = undefined;
      this.run();
    }, this.batchMs);
  }

  /** Reports whatever changed, now; resolves when done (tests). */
  async flush(): Promise<void> {
    this.run();
    while (this.running !== undefined) await this.running;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      if (this.timer !== undefined) clearInterval(this.timer);
      if (this.soon !== undefined) clearTimeout(this.soon);
      await this.running;
      this.log.info('stopped');
      await this.log.flush();
    })();
    return this.closing;
  }

  private run(): void {
    if (this.closing !== undefined) return;
    this.again = true;
    this.running ??= this.loop();
  }

  private async loop(): Promise<void> {
    try {
      while (this.again && this.closing === undefined) {
        this.again = false;
        try {
          await this.round();
          this.failing = false;
        } catch (err) {
          if (!this.failing) this.log.error('cannot report status; will retry', err);
          this.failing = true;
        }
      }
    } finally {
      this.running = undefined;
    }
  }

  private async round(): Promise<void> {
    const { parent, status, site, next } = await collectReport(this.ctx, this.state, this.holdings);
    if (parent === null) return;
    const created = new Date().toISOString();
    const outbox = this.ctx.paths.replmgrOutbound.high;
    // Definitions first: a parent places the sites before the states that name them.
    if (site !== undefined) {
      await dropFile(outbox, `${stampedName(`SI-${parent}`)}${RPT_SUFFIX}`, serialize({ format: REPLICATION_FORMAT, kind: 'site', to: parent, site, created }));
      this.log.info(`site definitions for ${parent}: ${site.sites.length} site(s), ${site.dps.length} DP(s)${site.removed === undefined ? '' : `; removed: ${site.removed.map((d) => `${d.site}/${d.name}`).join(', ')}`}`);
    }
    if (status !== undefined) {
      await dropFile(outbox, `${stampedName('ST')}${RPT_SUFFIX}`, serialize({ format: REPLICATION_FORMAT, kind: 'status', to: parent, status, created }));
      this.log.info(`status for ${parent}: ${status.dps.length} DP state(s), ${status.holdings.length} holding(s), ${status.messages.length} message(s)`);
    }
    const moved =
      next.messageId !== this.state.messageId ||
      next.dpCursor !== this.state.dpCursor ||
      JSON.stringify(next.messageGaps ?? {}) !== JSON.stringify(this.state.messageGaps ?? {});
    if (site !== undefined || status !== undefined || moved) {
      await writeFileAtomic(this.statePath, `${JSON.stringify(next)}\n`);
      this.state = next;
      if (site !== undefined || status !== undefined) this.ctx.wake('replmgr');
    }
  }

  private async load(): Promise<ReportState> {
    try {
      return stateSchema.parse(JSON.parse(await readFile(this.statePath, 'utf8')));
    } catch {
      // Missing or unreadable: report everything again, which the parent takes idempotently.
      return EMPTY_STATE;
    }
  }
}
