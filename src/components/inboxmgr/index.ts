import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeFileAtomic } from '../../fs/atomic.js';
import { getPackage } from '../../db/index.js';
import { SitecastError } from '../../errors.js';
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
    const { packageId, kind, sourceVersion } = checkInstructionFile(file.name, data);
    const pkg = await getPackage(this.ctx.db, packageId);
    if (pkg === undefined) throw bad(file.name, `package ${packageId} does not exist at this site`);
    if (sourceVersion !== undefined && sourceVersion > pkg.sourceVersion) {
      throw bad(file.name, `it is for source version ${sourceVersion} of ${packageId}, which is at version ${pkg.sourceVersion}`);
    }
    const target = join(this.ctx.paths.mpPkginfo, file.name);
    const held = sourceVersion === undefined ? undefined : await heldVersion(target);
    if (held !== undefined && sourceVersion !== undefined && sourceVersion < held) {
      // A late file of an older version (a job resumed after a crash): the newer one stays.
      this.log.warn(`${file.name} is for source version ${sourceVersion}; the management point holds version ${held}, which stays`);
      return;
    }
    await writeFileAtomic(target, data, { syncDir: true });
    this.log.info(`${file.name} (${kind} of ${packageId}, ${data.length} bytes) copied to the management point`);
  }
}

function bad(name: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: ${why}`, {
    hint: 'instruction files are written by Distribution Manager for the packages of this site',
  });
}

/** The source version of the instruction file the management point holds, if any and readable. */
async function heldVersion(path: string): Promise<number | undefined> {
  try {
    const parsed = JSON.parse(await readFile(path, 'utf8')) as { sourceVersion?: unknown };
    return typeof parsed.sourceVersion === 'number' ? parsed.sourceVersion : undefined;
  } catch {
    return undefined;
  }
}
