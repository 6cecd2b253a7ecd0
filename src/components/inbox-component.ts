import { addStatusMessage, type NewStatusMessage } from '../db/index.js';
import type { Inbox, InboxOptions } from '../inbox/index.js';
import type { ComponentName, SiteContext } from '../site/context.js';
import type { ComponentLog } from '../site/log.js';

/**
 * What every inbox-driven component does the same way: a file refused as bad
 * is logged and becomes an error status message (written before the file
 * moves to bad/, so the message is never lost); a transient failure is
 * logged and retried by the inbox.
 */
export function inboxHooks(
  ctx: SiteContext,
  log: ComponentLog,
  where: { component: ComponentName; box: string; message?: (name: string, reason: string) => Partial<NewStatusMessage>; afterBad?: () => void },
): Required<Pick<InboxOptions, 'onBad' | 'onError'>> {
  return {
    onBad: async (name, reason) => {
      log.warn(`${where.box}/${name} moved to bad/: ${reason}`);
      await addStatusMessage(ctx.db, {
        severity: 'error',
        component: where.component,
        site: ctx.siteCode,
        text: `${where.box}/${name} moved to bad/: ${reason}`.slice(0, 8000),
        ...where.message?.(name, reason),
      });
      where.afterBad?.();
    },
    onError: (err, name) => log.warn(`will retry ${name ?? `the scan of ${where.box}`}: ${err instanceof Error ? err.message : String(err)}`),
  };
}

/**
 * Start, wake and close for a component's inboxes. close() is idempotent,
 * closes every inbox even when one fails, and flushes the log last.
 */
export class InboxLifecycle {
  private closing: Promise<void> | undefined;

  constructor(
    private readonly log: ComponentLog,
    private readonly inboxes: readonly Inbox[],
    private readonly watching: string,
  ) {}

  async start(): Promise<void> {
    for (const inbox of this.inboxes) await inbox.start();
    this.log.info(`started; watching ${this.watching}`);
  }

  wake(): void {
    for (const inbox of this.inboxes) inbox.wake();
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled(this.inboxes.map((i) => i.close()));
      this.log.info('stopped');
      await this.log.flush();
    })();
    return this.closing;
  }
}
