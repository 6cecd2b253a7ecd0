import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { gcLibrary } from '../../content/gc.js';
import { hasManifest, openLibrary } from '../../content/library.js';
import type { Sha256Hex } from '../../content/types.js';
import { listPackages } from '../../db/index.js';
import { listHeldManifests } from '../../db/hierarchy.js';
import type { SiteContext } from '../../site/context.js';
import { collectingSiteLibrary } from '../../site/library.js';
import type { ComponentLog } from '../../site/log.js';
import { listStates } from './state.js';

export interface CollectResult {
  /** Versions (manifests) kept. */
  kept: number;
  /** Versions removed, and the chunks and bytes only they used. */
  manifests: number;
  chunks: number;
  bytes: number;
}

/**
 * The versions the site library must keep: every package's current version
 * (as the database and Distribution Manager's state name it: the state may
 * name a version the database does not yet, after a crash between the two)
 * and the one it replaced (a child may hold that one without having said so
 * yet, or a parent may still plan a delta against it), and every version a
 * child site holds, the base of the delta it is sent next. Packages are
 * never deleted, so older versions are all that goes.
 */
export async function manifestsInUse(ctx: SiteContext): Promise<Set<Sha256Hex>> {
  const inUse = new Set<Sha256Hex>();
  for (const p of await listPackages(ctx.db)) if (p.manifestSha256 !== null) inUse.add(p.manifestSha256);
  for (const s of await listStates(ctx.paths.distmgrState)) {
    inUse.add(s.manifest);
    if (typeof s.previous === 'string') inUse.add(s.previous);
  }
  for (const m of await listHeldManifests(ctx.db)) inUse.add(m);
  return inUse;
}

/**
 * Removes from the site library the versions no longer in use and the chunks
 * only they used. Runs alone on the library (see site/library.ts): every
 * ingest, import, install and bundle of this process has let go, and no
 * backup reads it ('backup-running' then, and nothing is removed). A version
 * in use whose manifest the library lacks is skipped: whoever needs it
 * ingests or asks for it again, and finds the chunks it still has.
 */
export function collectSiteLibrary(ctx: SiteContext): Promise<CollectResult | 'backup-running'> {
  return collectingSiteLibrary(ctx.paths, async () => {
    // A site that never ingested or received anything has no library yet.
    if (!existsSync(join(ctx.paths.library, 'library.json'))) return { kept: 0, manifests: 0, chunks: 0, bytes: 0 };
    const lib = await openLibrary(ctx.paths.library);
    const keep: Sha256Hex[] = [];
    for (const id of await manifestsInUse(ctx)) if (await hasManifest(lib, id)) keep.push(id);
    const r = await gcLibrary(ctx.paths.library, keep, { emptyKeepRemovesAll: true });
    return { kept: keep.length, manifests: r.removedManifests, chunks: r.removed, bytes: r.removedBytes };
  });
}

/**
 * Runs collections of the site library one at a time when asked: at start
 * (what an earlier run left) and each time a package's version replaced an
 * older one. A request made while one runs makes one more run after it; a
 * collection that steps back for a backup is tried again after `retryMs`.
 */
export class LibraryCollector {
  private running: Promise<void> | undefined;
  private again = false;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly ctx: SiteContext,
    private readonly log: ComponentLog,
    private readonly retryMs = 60_000,
  ) {}

  request(): void {
    if (this.closed) return;
    if (this.running !== undefined) {
      this.again = true;
      return;
    }
    this.running = this.run().finally(() => {
      this.running = undefined;
      if (this.again) {
        this.again = false;
        this.request();
      }
    });
  }

  /** Resolves when no collection runs (tests and close). */
  async settled(): Promise<void> {
    while (this.running !== undefined) await this.running;
  }

  async close(): Promise<void> {
    this.closed = true;
    this.again = false;
    if (this.timer !== undefined) clearTimeout(this.timer);
    await this.settled();
  }

  private async run(): Promise<void> {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    const started = Date.now();
    try {
      const r = await collectSiteLibrary(this.ctx);
      if (r === 'backup-running') {
        this.log.info(`site library: a backup is reading it; old versions are collected after it (next try in ${Math.round(this.retryMs / 1000)} s)`);
        if (!this.closed) {
          this.timer = setTimeout(() => this.request(), this.retryMs);
          this.timer.unref();
        }
      } else if (r.manifests > 0 || r.chunks > 0) {
        this.log.info(`site library: ${r.manifests} versions no longer in use removed (${r.chunks} chunks, ${r.bytes} bytes freed; ${r.kept} versions kept, ${Date.now() - started} ms)`);
      }
    } catch (err) {
      // Nothing is lost by not collecting: the next update tries again.
      this.log.warn(`site library: old versions could not be collected: ${err instanceof Error ? err.message : String(err)}`);
    }
  }
}
