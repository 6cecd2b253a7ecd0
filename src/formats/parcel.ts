import { createHash } from 'node:crypto';
import { open } from 'node:fs/promises';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { type SendRequest, sendRequestSchema } from './srq.js';

/**
 * A courier parcel: one file that carries a send request and its bundle to a
 * site no link reaches (a disk, a USB stick). Layout:
 *
 *   SITECAST-PARCEL 1\n
 *   {"format":1,"from":"CEN","request":{…the .SRQ…}}\n
 *   <request.bytes bytes of the bundle>
 *   \nSITECAST-PARCEL-END <sha256 of everything before this line>\n
 *
 * The bundle is also checked against request.sha256. Format:
 * docs/architecture/senders.md.
 */
export const PARCEL_MAGIC = 'SITECAST-PARCEL 1\n';
export const PARCEL_END = '\nSITECAST-PARCEL-END ';
export const PARCEL_SUFFIX = '.parcel';
const MAX_HEADER = 65_536;

const headerSchema = z.strictObject({ format: z.literal(1), from: z.string().regex(/^[A-Z0-9]{3}$/), request: sendRequestSchema });
export type ParcelHeader = z.infer<typeof headerSchema>;

export function parcelName(req: SendRequest): string {
  return `${req.to}.${req.id}${PARCEL_SUFFIX}`;
}

/** The bytes before the bundle; the same for the same request, so a parcel cut short resumes by size. */
export function parcelHead(from: string, request: SendRequest): Buffer {
  const header: ParcelHeader = { format: 1, from, request };
  return Buffer.from(`${PARCEL_MAGIC}${JSON.stringify(header)}\n`);
}

export function parcelTrailer(sha256: string): Buffer {
  return Buffer.from(`${PARCEL_END}${sha256}\n`);
}

export const TRAILER_BYTES = parcelTrailer('0'.repeat(64)).length;

function bad(file: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_PARCEL', `${file}: ${why}`, { hint: 'copy the parcel again from the sending site' });
}

/**
 * Reads a parcel's head and checks its framing, sizes and both checksums,
 * streaming the bundle through `onBundle` (which may copy it). Throws
 * SITECAST_E_BAD_PARCEL naming what is wrong.
 */
export async function readParcel(file: string, onBundle: (chunk: Buffer) => Promise<void>): Promise<ParcelHeader> {
  const handle = await open(file, 'r').catch((err: NodeJS.ErrnoException) => {
    throw bad(file, `cannot open it (${err.code ?? err.message})`);
  });
  try {
    const size = (await handle.stat()).size;
    const headBuf = Buffer.alloc(Math.min(size, MAX_HEADER + PARCEL_MAGIC.length));
    await handle.read(headBuf, 0, headBuf.length, 0);
    if (!headBuf.subarray(0, PARCEL_MAGIC.length).equals(Buffer.from(PARCEL_MAGIC))) throw bad(file, 'not a Sitecast parcel');
    const nl = headBuf.indexOf(0x0a, PARCEL_MAGIC.length);
    if (nl < 0) throw bad(file, 'the header is cut short or too large');
    let header: ParcelHeader;
    try {
      const parsed = headerSchema.safeParse(JSON.parse(headBuf.subarray(PARCEL_MAGIC.length, nl).toString('utf8')));
      if (!parsed.success) throw bad(file, `the header does not parse: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
      header = parsed.data;
    } catch (err) {
      if (err instanceof SitecastError) throw err;
      throw bad(file, 'the header is not JSON');
    }
    const start = nl + 1;
    const bytes = header.request.bytes;
    if (size !== start + bytes + TRAILER_BYTES) throw bad(file, `it holds ${size} bytes; its header promises ${start + bytes + TRAILER_BYTES} (cut short or padded)`);
    const whole = createHash('sha256').update(headBuf.subarray(0, start));
    const bundle = createHash('sha256');
    const buf = Buffer.alloc(1024 * 1024);
    for (let at = 0; at < bytes; ) {
      const n = Math.min(buf.length, bytes - at);
      await handle.read(buf, 0, n, start + at);
      const chunk = buf.subarray(0, n);
      whole.update(chunk);
      bundle.update(chunk);
      await onBundle(Buffer.from(chunk));
      at += n;
    }
    const trailer = Buffer.alloc(TRAILER_BYTES);
    await handle.read(trailer, 0, TRAILER_BYTES, start + bytes);
    const m = /^\nSITECAST-PARCEL-END ([0-9a-f]{64})\n$/.exec(trailer.toString('latin1'));
    if (m === null) throw bad(file, 'the end marker is missing');
    if (m[1] !== whole.digest('hex')) throw bad(file, 'the parcel checksum does not match: it was damaged');
    if (bundle.digest('hex') !== header.request.sha256) throw bad(file, 'the bundle does not match the SHA-256 its request names');
    return header;
  } finally {
    await handle.close();
  }
}
