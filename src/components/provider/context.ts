import type { SiteDb } from '../../db/index.js';
import type { SiteConfig } from '../../site/config.js';
import type { SitePaths } from '../../site/layout.js';
import type { ComponentLog } from '../../site/log.js';

/**
 * What the provider needs of the running site: the database, the
 * configuration, its log, a way to wake the database monitor, and the base
 * URL once the server listens. The executive's SiteContext satisfies it;
 * tests build one by hand.
 */
export interface ProviderContext {
  readonly db: SiteDb;
  readonly config: Readonly<SiteConfig>;
  /** The site root, kept apart from DP and source folders (absent in a provider run alone: not checked). */
  readonly root?: string;
  logger(component: string): ComponentLog;
  /** Waking is an optimisation: the monitor polls anyway. */
  wake(component: 'dbmon'): void;
  baseUrl(): string | undefined;
  /**
   * Where replication requests go (a DP added for a site below; absent, such requests are refused),
   * and the outboxes whose requests address status counts (absent: no queue is shown).
   */
  readonly paths?: Pick<SitePaths, 'replmgrOutbound'> & Partial<Pick<SitePaths, 'scheduleOutboxes'>>;
}
