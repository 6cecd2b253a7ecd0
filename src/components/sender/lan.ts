import { mkdir, open, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { SitecastError, ioError } from '../../errors.js';
import { syncDirectory } from '../../fs/atomic.js';
import type { SendRequest } from '../../formats/srq.js';
import { PARTIAL_FOLDER, fileSha256 } from './partial.js';
import type { ProgressFn, Sender, SenderDeps } from './sender.js';
import { sliceSize } from './throttle.js';
import { writeFully } from '../../fs/write.js';

/**
 * Appends `file` to `dest` from where `dest` already stands (resume by
 * size), through the throttle, then flushes. Shared by the lan and courier
 * senders, which both write into a folder.
 */
export async function appendFrom(
  deps: SenderDeps,
  a: { file: string; from: number; dest: string; destOffset: number; total: number },
  progress: ProgressFn,
  signal: AbortSignal,
): Promise<void> {
  const src = await open(a.file, 'r');
  const out = await open(a.dest, 'a');
  try {
    const slice = sliceSize(deps.limit());
    const buf = Buffer.alloc(slice);
    let at = a.from;
    while (at < a.total) {
      signal.throwIfAborted();
      const n = Math.min(slice, a.total - at);
      const { bytesRead } = await src.read(buf, 0, n, at);
      if (bytesRead !== n) throw new SitecastError('SITECAST_E_SEND', `${a.file} is shorter than the ${a.total} bytes the request names`);
      await deps.throttle.take(n, signal);
      await writeFully(out, buf.subarray(0, n));
      at += n;
      progress({ sent: at, total: a.total, wireBytes: n });
    }
    await out.sync();
  } finally {
    await out.close();
    await src.close();
  }
}

/** Size of a file, or 0 when it does not exist. */
export async function sizeOf(path: string): Promise<number> {
  return stat(path).then(
    (s) => s.size,
    (err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') return 0;
      throw err;
    },
  );
}

/**
 * The lan sender: the address's path is the target's
 * `despoolr.box/receive/` (a share or a mount). The file is copied to
 * `.partial/<from>-<id>` there, resumed by size after an interruption,
 * read back and checked against its SHA-256, then renamed to `<id>.bundle`.
 */
export function createLanSender(deps: SenderDeps): Sender {
  return {
    kind: 'lan',
    async send(req: SendRequest, file, progress, signal) {
      const dir = deps.target.path;
      if (dir === null) throw new SitecastError('SITECAST_E_SEND', `the address of ${req.to} has no receive path`, { hint: 'sitecast address set --to <site> --sender lan --path <receive dir>' });
      const partialDir = join(dir, PARTIAL_FOLDER);
      const tmp = join(partialDir, `${deps.from}-${req.id}`);
      try {
        await mkdir(partialDir, { recursive: true });
        let have = await sizeOf(tmp);
        if (have > req.bytes) {
          await rm(tmp, { force: true });
          have = 0;
        }
        progress({ sent: have, total: req.bytes, wireBytes: 0 });
        await appendFrom(deps, { file, from: have, dest: tmp, destOffset: have, total: req.bytes }, progress, signal);
        const sha = await fileSha256(tmp);
        if (sha !== req.sha256) {
          await rm(tmp, { force: true });
          throw new SitecastError('SITECAST_E_SEND', `the copy of ${req.id} in ${dir} hashes to ${sha}, not ${req.sha256}; it was removed and starts again`);
        }
        await rename(tmp, join(dir, `${req.id}.bundle`));
        await syncDirectory(dir);
      } catch (err) {
        if (err instanceof SitecastError || signal.aborted) throw err;
        throw ioError(`cannot copy ${req.id} into ${dir}`, err);
      }
    },
  };
}
