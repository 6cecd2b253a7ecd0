import { getLocalSite } from '../../db/index.js';
import { getSiteNode, listSiteNodes } from '../../db/hierarchy.js';
import { type ErrorCode, SitecastError } from '../../errors.js';
import { readBundle } from '../../formats/bundle.js';
import { Inbox, type InboxEntry } from '../../inbox/index.js';
import type { Component, SiteContext } from '../../site/context.js';
import { InboxLifecycle, inboxHooks } from '../inbox-component.js';
import type { ComponentLog } from '../../site/log.js';
import { applyPackage } from './package.js';
import { applySite, applyStatus } from './reports.js';

export interface DespoolerOptions {
  rescanMs?: number;
  retry?: { initialMs?: number; maxMs?: number };
}

export const BUNDLE_SUFFIX = '.bundle';

/** Refusals that are a property of the bundle: it moves to bad/, nothing applied. */
const BAD_CODES: readonly ErrorCode[] = [
  'SITECAST_E_BAD_BUNDLE',
  'SITECAST_E_BAD_SIGNATURE',
  'SITECAST_E_UNKNOWN_SITE',
  'SITECAST_E_UNSUPPORTED_FORMAT',
  'SITECAST_E_BAD_ARCHIVE',
  'SITECAST_E_BAD_MANIFEST',
  'SITECAST_E_CORRUPT_CHUNK',
  'SITECAST_E_UNSAFE_PATH',
  'SITECAST_E_MISSING_BASE',
  'SITECAST_E_ROLLBACK',
];

/** The package a bundle's name says it carries (`P-<PKGID>-…`), for the status message of a refusal; never trusted otherwise. */
function packageOf(name: string): string | null {
  return /^P-([A-Z0-9]{3}[0-9A-F]{5})-/.exec(name)?.[1] ?? null;
}

/**
 * Despooler: takes each bundle a sender delivered into
 * `despoolr.box/receive/` (`<id>.bundle`), checks it (format, lengths,
 * signer, SHA-256 and signature, then the content's every hash) and applies
 * it: a package (content into the library, definition into the database,
 * which wakes Distribution Manager), a status report from a child, or site
 * definitions. A refused bundle moves to `receive/bad/` with a status
 * message naming why; nothing from it is applied.
 */
export class Despooler implements Component {
  readonly name = 'despooler' as const;
  private readonly log: ComponentLog;
  private readonly inbox: Inbox;
  private readonly life: InboxLifecycle;

  constructor(
    private readonly ctx: SiteContext,
    options: DespoolerOptions = {},
  ) {
    this.log = ctx.logger('despool');
    this.inbox = new Inbox({
      dir: ctx.paths.despoolrReceive,
      accept: (name) => name.endsWith(BUNDLE_SUFFIX),
      badCodes: BAD_CODES,
      handler: (file) => this.handle(file),
      retry: { initialMs: options.retry?.initialMs ?? 2000, maxMs: options.retry?.maxMs ?? 5 * 60_000 },
      ...(options.rescanMs === undefined ? {} : { rescanMs: options.rescanMs }),
      ...inboxHooks(ctx, this.log, {
        component: 'despooler',
        box: 'despoolr.box/receive',
        message: (name, reason) => ({ packageId: packageOf(name), text: `bundle ${name} refused: ${reason}`.slice(0, 8000) }),
        afterBad: () => ctx.wake('statmgr'),
      }),
    });
    this.life = new InboxLifecycle(this.log, [this.inbox], 'despoolr.box/receive');
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

  private async handle(file: InboxEntry): Promise<void> {
    const bundle = await readBundle(file.path, {
      to: this.ctx.siteCode,
      keyOf: async (code) => (code === this.ctx.siteCode ? undefined : (await getSiteNode(this.ctx.db, code))?.publicKey),
    });
    const header = bundle.header;
    const parent = (await getLocalSite(this.ctx.db))?.parentCode ?? null;
    const fromChild = (await listSiteNodes(this.ctx.db)).some((s) => s.code === header.from && s.parentCode === this.ctx.siteCode && !s.isLocal);
    switch (header.kind) {
      case 'package':
        if (header.from !== parent) throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id}: packages come from the parent site (${parent ?? 'none'}), not ${header.from}`);
        await applyPackage(this.ctx, this.log, bundle, header);
        return;
      case 'status':
        if (!fromChild) throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id}: status comes from child sites; ${header.from} is not one`);
        await applyStatus(this.ctx, this.log, header);
        return;
      case 'site':
        if (header.from !== parent && !fromChild) throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${header.id}: site ${header.from} is neither the parent nor a child`);
        await applySite(this.ctx, this.log, header, parent);
        return;
    }
  }
}
