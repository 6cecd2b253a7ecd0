import { Despooler, type DespoolerOptions } from '../components/despooler/index.js';
import { ReplicationManager, type ReplicationManagerOptions } from '../components/replmgr/index.js';
import { Scheduler, type SchedulerOptions } from '../components/scheduler/index.js';
import { StatusReporter, type StatusReporterOptions } from '../components/statmgr/index.js';
import type { Component, SiteContext } from './context.js';

export interface HierarchyOptions {
  replmgr?: ReplicationManagerOptions;
  scheduler?: SchedulerOptions;
  despooler?: DespoolerOptions;
  statmgr?: StatusReporterOptions;
}

/**
 * The components of the flow between sites (steps 6–10), in start order:
 * what receives first, then what reports and sends. The senders are started
 * by the executive beside them.
 */
export function hierarchyComponents(ctx: SiteContext, options: HierarchyOptions = {}): Component[] {
  return [
    new Despooler(ctx, options.despooler),
    new ReplicationManager(ctx, options.replmgr),
    new Scheduler(ctx, options.scheduler),
    new StatusReporter(ctx, options.statmgr),
  ];
}
