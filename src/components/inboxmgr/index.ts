import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic.js';
import { checkInstructionFile } from '../../formats/instructions.js';
import { Inbox, type InboxEntry } from '../../inbox/index.js';
import type { Component, SiteContext } from '../../site/context.js';
import { InboxLifecycle, inboxHooks } from '../inbox-component.js';
import type { ComponentLog } from '../../site/log.js';

export interface InboxManagerOptions {
  /** Rescan period of pkginfo.box (default 5000 ms; the watcher usually reacts first). */
  rescanMs?: number;
}

/**
 * Inbox Manager: copies the instruction files Distribution Manager drops
 * into pkginfo.box to the management point (`<root>/mp/pkginfo/`), where
 * clients fetch them. Each file is checked first (a bad one goes to bad/ with
 * a status message), written atomically and durably, and only then removed
 * from the inbox, so a crash repeats the copy and never loses it.
 */
export class InboxManager implements Component {
  readonly name = 'inboxmgr' as const;
  private readonly log: ComponentLog;
  private readonly inbox: Inbox;
  private readonly life: InboxLifecycle;

  constructor(
    private readonly ctx: SiteContext,
    options: InboxManagerOptions = {},
  ) {
    this.log = ctx.logger('inboxmgr');
    this.inbox = new Inbox({
      dir: ctx.paths.pkginfo,
      handler: (file) => this.copy(file),
      ...(options.rescanMs === undefined ? {} : { rescanMs: options.rescanMs }),
      ...inboxHooks(ctx, this.log, { component: 'inboxmgr', box: 'pkginfo.box' }),
    });
    this.life = new InboxLifecycle(this.log, [this.inbox], 'pkginfo.box');
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

  private async copy(file: InboxEntry): Promise<void> {
    const data = await readFile(file.path);
    const { packageId, kind } = checkInstructionFile(file.name, data);
    await writeFileAtomic(join(this.ctx.paths.mpPkginfo, file.name), data, { syncDir: true });
    this.log.info(`${file.name} (${kind} of ${packageId}, ${data.length} bytes) copied to the management point`);
  }
}
