import { readFile } from 'node:fs/promises';
import { getPackage, type Priority } from '../../db/index.js';
import { MINIJOB_SUFFIX, REPLICATION_FORMAT, RPT_SUFFIX, type Minijob, type ReplicationRequest, parseReplicationRequest, serialize, stampedName } from '../../formats/replication.js';
import { Inbox, type InboxEntry, dropFile } from '../../inbox/index.js';
import { isSitecastError } from '../../errors.js';
import type { Component, SiteContext } from '../../site/context.js';
import { InboxLifecycle, inboxHooks } from '../inbox-component.js';
import type { ComponentLog } from '../../site/log.js';

export interface ReplicationManagerOptions {
  /** Rescan period of each outbound folder (default 5000 ms). */
  rescanMs?: number;
}

const PRIORITIES: readonly Priority[] = ['high', 'medium', 'low'];

/** The minijob id of a package for one site: one outstanding job per package and site, a newer request replaces it. */
export function packageJobId(packageId: string, to: string): string {
  return `P-${packageId}-${to}`;
}

/**
 * Replication Manager: turns each replication request `.RPT` in
 * `replmgr.box/outbound/<priority>/` into one minijob per target site in
 * `schedule.box` (`<id>.MJB`), then deletes the request. A package request
 * names the current version only; the Scheduler reads the definition when
 * it builds the bundle, so a request that arrives twice costs one check.
 */
export class ReplicationManager implements Component {
  readonly name = 'replmgr' as const;
  private readonly log: ComponentLog;
  private readonly inboxes: Inbox[];
  private readonly life: InboxLifecycle;

  constructor(
    private readonly ctx: SiteContext,
    options: ReplicationManagerOptions = {},
  ) {
    this.log = ctx.logger('replmgr');
    this.inboxes = PRIORITIES.map(
      (priority) =>
        new Inbox({
          dir: ctx.paths.replmgrOutbound[priority],
          accept: (name) => name.endsWith(RPT_SUFFIX),
          handler: (file) => this.handle(file, priority),
          ...(options.rescanMs === undefined ? {} : { rescanMs: options.rescanMs }),
          ...inboxHooks(ctx, this.log, { component: 'replmgr', box: `replmgr.box/outbound/${priority}` }),
        }),
    );
    this.life = new InboxLifecycle(this.log, this.inboxes, 'replmgr.box/outbound/{high,medium,low}');
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

  private async handle(file: InboxEntry, priority: Priority): Promise<void> {
    const request = parseReplicationRequest(file.name, await readFile(file.path));
    const jobs = await this.minijobs(request, priority);
    for (const job of jobs) await dropFile(this.ctx.paths.schedule, `${job.id}${MINIJOB_SUFFIX}`, serialize(job));
    if (jobs.length > 0) this.ctx.wake('scheduler');
    this.log.info(`${file.name}: ${jobs.length === 0 ? 'nothing to schedule' : `minijob(s) ${jobs.map((j) => j.id).join(', ')} written to schedule.box`}`);
  }

  private async minijobs(request: ReplicationRequest, priority: Priority): Promise<Minijob[]> {
    const created = new Date().toISOString();
    const base = { format: REPLICATION_FORMAT, created } as const;
    switch (request.kind) {
      case 'package': {
        const pkg = await getPackage(this.ctx.db, request.package).catch((err: unknown) => {
          if (isSitecastError(err, 'SITECAST_E_INVALID_VALUE')) return undefined;
          throw err;
        });
        if (pkg === undefined) {
          this.log.warn(`${request.package} does not exist (any more); nothing to replicate`);
          return [];
        }
        return request.sites.map((to) => ({ ...base, id: packageJobId(pkg.id, to), kind: 'package', to, priority: pkg.priority, package: pkg.id, sourceVersion: pkg.sourceVersion }));
      }
      case 'status':
        return [{ ...base, id: stampedName(`S-${request.to}`), kind: 'status', to: request.to, priority, status: request.status }];
      case 'site':
        return [{ ...base, id: stampedName(`D-${request.to}`), kind: 'site', to: request.to, priority, site: request.site }];
    }
  }
}
