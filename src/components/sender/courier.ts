import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { appendFile, mkdir, open, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SitecastError, ioError } from '../../errors.js';
import { syncDirectory } from '../../fs/atomic.js';
import { parcelHead, parcelName, parcelTrailer, readParcel } from '../../formats/parcel.js';
import type { SitePaths } from '../../site/layout.js';
import { appendFrom, sizeOf } from './lan.js';
import { PARTIAL_FOLDER } from './partial.js';
import type { Sender, SenderDeps } from './sender.js';
import { writeFully } from '../../fs/write.js';

/**
 * The courier sender: writes a parcel (request and bundle in one file, with
 * a checksum) into the address's path, under `.partial/` until it is whole,
 * then renames it to `<to>.<id>.parcel`. Someone carries it to the target,
 * where `sitecast courier import` checks it and drops the bundle into
 * receive/. "Delivered" here means the parcel is written.
 */
export function createCourierSender(deps: SenderDeps): Sender {
  return {
    kind: 'courier',
    async send(req, file, progress, signal) {
      const dir = deps.target.path;
      if (dir === null) throw new SitecastError('SITECAST_E_SEND', `the address of ${req.to} has no courier path`, { hint: 'sitecast address set --to <site> --sender courier --path <dir>' });
      const name = parcelName(req);
      const tmp = join(dir, PARTIAL_FOLDER, name);
      const head = parcelHead(deps.from, req);
      try {
        await mkdir(join(dir, PARTIAL_FOLDER), { recursive: true });
        let have = await sizeOf(tmp);
        if (have < head.length || have > head.length + req.bytes) {
          await writeFile(tmp, head);
          have = head.length;
          progress({ sent: 0, total: req.bytes, wireBytes: head.length });
        }
        const from = have - head.length;
        progress({ sent: from, total: req.bytes, wireBytes: 0 });
        await appendFrom(deps, { file, from, dest: tmp, destOffset: have, total: req.bytes }, (p) => progress(p), signal);
        const whole = createHash('sha256');
        for await (const c of createReadStream(tmp)) whole.update(c as Buffer);
        const trailer = parcelTrailer(whole.digest('hex'));
        await appendFile(tmp, trailer);
        progress({ sent: req.bytes, total: req.bytes, wireBytes: trailer.length });
        const h = await open(tmp, 'r');
        await h.sync().finally(() => h.close());
        // Read back before it counts as delivered: a bad copy starts again.
        await readParcel(tmp, async () => undefined).catch(async (err: unknown) => {
          await rm(tmp, { force: true });
          throw err;
        });
        await rename(tmp, join(dir, name));
        await syncDirectory(dir);
      } catch (err) {
        if (err instanceof SitecastError || signal.aborted) throw err;
        throw ioError(`cannot write parcel ${name} into ${dir}`, err);
      }
    },
  };
}

/**
 * Imports a parcel at the target site: checks framing, checksums and that
 * it is addressed here, copies the bundle to `receive/.partial/` and renames
 * it to `receive/<id>.bundle`. Nothing reaches receive/ unless every check
 * passed. Returns the request the parcel carried.
 */
export async function importParcel(paths: SitePaths, siteCode: string, file: string): Promise<{ id: string; from: string; bytes: number; bundle: string }> {
  const partialDir = join(paths.despoolrReceive, PARTIAL_FOLDER);
  await mkdir(partialDir, { recursive: true });
  const tmp = join(partialDir, `courier-${process.pid}-${Date.now()}`);
  const out = await open(tmp, 'w');
  let header;
  try {
    header = await readParcel(file, (chunk) => writeFully(out, chunk));
    await out.sync();
  } catch (err) {
    await out.close().catch(() => undefined);
    await rm(tmp, { force: true });
    throw err;
  }
  await out.close();
  const req = header.request;
  if (req.to !== siteCode) {
    await rm(tmp, { force: true });
    throw new SitecastError('SITECAST_E_BAD_PARCEL', `${file}: the parcel is addressed to site ${req.to}, this is ${siteCode}`, { hint: `import it at site ${req.to}` });
  }
  const bundle = join(paths.despoolrReceive, `${req.id}.bundle`);
  await rename(tmp, bundle);
  await syncDirectory(paths.despoolrReceive);
  return { id: req.id, from: header.from, bytes: req.bytes, bundle };
}
