import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError } from '../../errors.js';
import { syncDirectory, writeFileAtomic } from '../../fs/atomic.js';
import { writeFully } from '../../fs/write.js';

/**
 * Uploads in progress at a receiving site: `receive/.partial/<from>-<id>`
 * holds the bytes acknowledged so far, `<from>-<id>.json` the file's total
 * size, SHA-256 and the acknowledged length (written after the bytes are
 * flushed, so a crash never acknowledges what is not on disk). When the last
 * byte is in and the SHA-256 matches, the file is renamed to
 * `receive/<id>.bundle` and a `.done` marker remembers it for a week, so a
 * sender that lost the last answer learns the file arrived instead of
 * sending it again.
 */
export const PARTIAL_FOLDER = '.partial';
const DONE_KEEP_MS = 7 * 24 * 3600_000;

const metaSchema = z.strictObject({
  from: z.string(),
  id: z.string(),
  total: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
  received: z.number().int().nonnegative(),
});
type Meta = z.infer<typeof metaSchema>;

export interface UploadState {
  received: number;
  total: number | null;
  complete: boolean;
}

export class HashMismatchError extends SitecastError {}

export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

export class PartialStore {
  private readonly dir: string;
  private readonly locks = new Map<string, Promise<unknown>>();

  constructor(private readonly receiveDir: string) {
    this.dir = join(receiveDir, PARTIAL_FOLDER);
  }

  private paths(from: string, id: string): { data: string; meta: string; done: string; final: string } {
    const base = join(this.dir, `${from}-${id}`);
    return { data: base, meta: `${base}.json`, done: `${base}.done`, final: join(this.receiveDir, `${id}.bundle`) };
  }

  /** One operation at a time per upload: parts of the same file never interleave. */
  private serial<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.locks.get(key) ?? Promise.resolve();
    const run = prev.then(fn, fn);
    const settled = run.catch(() => undefined);
    this.locks.set(key, settled);
    void settled.then(() => {
      if (this.locks.get(key) === settled) this.locks.delete(key);
    });
    return run;
  }

  private async readMeta(path: string): Promise<Meta | undefined> {
    try {
      const parsed = metaSchema.safeParse(JSON.parse(await readFile(path, 'utf8')));
      return parsed.success ? parsed.data : undefined;
    } catch {
      return undefined;
    }
  }

  private async doneSha(path: string): Promise<string | undefined> {
    try {
      return (await readFile(path, 'utf8')).trim();
    } catch {
      return undefined;
    }
  }

  async state(from: string, id: string, sha256?: string): Promise<UploadState> {
    return this.serial(`${from}-${id}`, async () => {
      const p = this.paths(from, id);
      const done = await this.doneSha(p.done);
      if (done !== undefined && (sha256 === undefined || done === sha256)) {
        const size = await stat(p.final).then((s) => s.size, () => null);
        return { received: size ?? 0, total: size, complete: true };
      }
      const meta = await this.readMeta(p.meta);
      if (meta === undefined || (sha256 !== undefined && meta.sha256 !== sha256)) return { received: 0, total: null, complete: false };
      // Renamed into place, then stopped before the marker was written.
      if (meta.received === meta.total && (await stat(p.final).then(() => true, () => false))) return { received: meta.total, total: meta.total, complete: true };
      return { received: meta.received, total: meta.total, complete: false };
    });
  }

  /**
   * Adds one part at `start`. It must continue exactly where the upload
   * stands (a part that starts elsewhere is answered with where it stands);
   * a part starting at 0 for a different file restarts the upload.
   */
  async append(u: { from: string; id: string; start: number; total: number; sha256: string; body: Buffer }): Promise<UploadState> {
    return this.serial(`${u.from}-${u.id}`, async () => {
      const p = this.paths(u.from, u.id);
      try {
        await mkdir(this.dir, { recursive: true });
        const done = await this.doneSha(p.done);
        if (done === u.sha256) return { received: u.total, total: u.total, complete: true };
        let meta = await this.readMeta(p.meta);
        if (meta !== undefined && (meta.sha256 !== u.sha256 || meta.total !== u.total)) {
          if (u.start !== 0) return { received: 0, total: null, complete: false };
          meta = undefined;
        }
        if (meta === undefined) {
          if (u.start !== 0) return { received: 0, total: null, complete: false };
          meta = { from: u.from, id: u.id, total: u.total, sha256: u.sha256, received: 0 };
          await rm(p.done, { force: true });
        }
        if (u.start !== meta.received) return { received: meta.received, total: meta.total, complete: false };
        if (u.start + u.body.length > u.total) throw new SitecastError('SITECAST_E_INVALID_VALUE', `part ends after the file's ${u.total} bytes`);
        const handle = await open(p.data, 'a+');
        try {
          // Bytes past the acknowledged length are leftovers of a part cut short: drop them.
          await handle.truncate(meta.received);
          await writeFully(handle, u.body, meta.received);
          await handle.sync();
        } finally {
          await handle.close();
        }
        meta = { ...meta, received: meta.received + u.body.length };
        await writeFileAtomic(p.meta, JSON.stringify(meta));
        if (meta.received < meta.total) return { received: meta.received, total: meta.total, complete: false };
        return await this.finish(p, meta);
      } catch (err) {
        if (err instanceof SitecastError) throw err;
        throw ioError(`cannot store part of ${u.id} from ${u.from}`, err);
      }
    });
  }

  private async finish(p: ReturnType<PartialStore['paths']>, meta: Meta): Promise<UploadState> {
    if (meta.total === 0) await writeFileAtomic(p.data, new Uint8Array());
    const sha = await fileSha256(p.data);
    if (sha !== meta.sha256) {
      await rm(p.data, { force: true });
      await rm(p.meta, { force: true });
      throw new HashMismatchError('SITECAST_E_CORRUPT_CHUNK', `${meta.id} from ${meta.from}: the received file hashes to ${sha}, not ${meta.sha256}; it was discarded`, {
        hint: 'the sender starts the file again',
      });
    }
    await rename(p.data, p.final);
    await syncDirectory(this.receiveDir);
    await writeFileAtomic(p.done, `${meta.sha256}\n`);
    await rm(p.meta, { force: true });
    return { received: meta.total, total: meta.total, complete: true };
  }

  /** Forgets `.done` markers older than a week. */
  async sweep(now = Date.now()): Promise<void> {
    const names = await readdir(this.dir).catch(() => [] as string[]);
    for (const name of names) {
      if (!name.endsWith('.done')) continue;
      const path = join(this.dir, name);
      const s = await stat(path).catch(() => undefined);
      if (s !== undefined && now - s.mtimeMs > DONE_KEEP_MS) await rm(path, { force: true });
    }
  }
}


