import type { SiteDb } from '../db/index.js';
import type { SiteConfig } from './config.js';
import type { SiteKeyPair } from './keys.js';
import type { SitePaths } from './layout.js';
import type { ComponentLog } from './log.js';

/** Names of the components the site executive runs; `wake` addresses them. */
export type ComponentName = 'dbmon' | 'distmgr' | 'inboxmgr' | 'sender' | 'replmgr' | 'scheduler' | 'despooler' | 'statmgr';

/**
 * What every part of a running site server shares: the configuration, the
 * layout of the site root, the open database, the keys, one log per component
 * and a way to nudge a component. Components receive this and nothing else;
 * they never hold references to each other.
 */
export interface SiteContext {
  readonly root: string;
  readonly config: Readonly<SiteConfig>;
  /** The local site code (same as config.code). */
  readonly siteCode: string;
  readonly paths: SitePaths;
  readonly db: SiteDb;
  readonly keys: SiteKeyPair;
  /** The component's log, `logs/<component>.log` (one instance per name). */
  logger(component: string): ComponentLog;
  /**
   * Asks a component to look for work now instead of at its next poll. A
   * writer of the site database calls `wake('dbmon')` after a commit, so the
   * wake-up file follows within milliseconds. Unknown or stopped components
   * are ignored: waking is only ever an optimisation.
   */
  wake(component: ComponentName): void;
  /** The HTTP base URL (`http://host:port`) once the server listens, else undefined. */
  baseUrl(): string | undefined;
}

/** A long-running part of the site server. close() is idempotent and never throws. */
export interface Component {
  readonly name: ComponentName;
  start(): Promise<void>;
  /** Look for work now (optional: components that only react to inbox files may rely on the watcher). */
  wake(): void;
  close(): Promise<void>;
}
