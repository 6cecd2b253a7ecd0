import { type KeyObject, createHash, createPublicKey, randomBytes, sign, verify } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError, isSitecastError } from '../errors.js';
import { syncDirectory } from '../fs/atomic.js';
import { BUNDLE_FORMAT, type BundleHeader, bundleHeaderSchema } from './bundle-header.js';
import { writeFully } from '../fs/write.js';

export * from './bundle-header.js';

/**
 * A bundle: what one site sends another, signed by the sender's Ed25519 key.
 * Layout (integers little-endian), docs/formats/bundle.md:
 *
 *   magic "SCBUNDLE" (8), format u32, header length u32
 *   header: JSON (bundle-header.ts)
 *   content length u64, content: a Sitecast archive (full or delta), or nothing
 *   digest: SHA-256 of every byte above (32)
 *   signature: Ed25519 over "sitecast bundle 1\n" + digest (64)
 *
 * The lengths say exactly how long the file is, so a truncated bundle is
 * told from a whole one before anything else is read.
 */
export const BUNDLE_MAGIC = Buffer.from('SCBUNDLE', 'latin1');
const PREAMBLE = 16;
const TRAILER = 32 + 64;
export const MAX_BUNDLE_HEADER = 16 * 1024 * 1024;
const SIGNING_CONTEXT = Buffer.from('sitecast bundle 1\n', 'latin1');

export interface WriteBundleInput {
  header: BundleHeader;
  /** A content archive to carry, or none. */
  content?: string;
  privateKey: KeyObject;
}

export interface WrittenBundle {
  path: string;
  bytes: number;
  /** SHA-256 of the whole file, as a send request states it. */
  sha256: string;
  contentBytes: number;
}

function badBundle(path: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${basename(path)}: ${why}`, { hint: 'nothing from it was applied; the sending site sends it again' });
}

/**
 * Writes a bundle under a temporary name beside `out`, flushes it and
 * renames it into place, so a reader (a sender) sees all of it or nothing.
 */
export async function writeBundle(out: string, input: WriteBundleInput): Promise<WrittenBundle> {
  const header = bundleHeaderSchema.parse(input.header);
  const json = Buffer.from(JSON.stringify(header), 'utf8');
  if (json.length > MAX_BUNDLE_HEADER) throw new SitecastError('SITECAST_E_INVALID_VALUE', `bundle header of ${json.length} bytes is too large`);
  const contentBytes = input.content === undefined ? 0 : (await stat(input.content).catch((err: unknown) => Promise.reject(ioError(`cannot read ${input.content}`, err)))).size;
  const tmp = join(dirname(out), `.${basename(out)}.${randomBytes(6).toString('hex')}.tmp`);
  const body = createHash('sha256');
  const whole = createHash('sha256');
  let bytes = 0;
  try {
    const handle = await open(tmp, 'wx', 0o644);
    try {
      const put = async (b: Buffer): Promise<void> => {
        whole.update(b);
        bytes += b.length;
        await writeFully(handle, b);
      };
      const add = async (b: Buffer): Promise<void> => {
        body.update(b);
        await put(b);
      };
      const pre = Buffer.alloc(PREAMBLE);
      BUNDLE_MAGIC.copy(pre, 0);
      pre.writeUInt32LE(BUNDLE_FORMAT, 8);
      pre.writeUInt32LE(json.length, 12);
      await add(pre);
      await add(json);
      const len = Buffer.alloc(8);
      len.writeBigUInt64LE(BigInt(contentBytes));
      await add(len);
      if (input.content !== undefined) {
        let copied = 0;
        for await (const chunk of createReadStream(input.content, { highWaterMark: 1 << 20 })) {
          const b = chunk as Buffer;
          copied += b.length;
          await add(b);
        }
        if (copied !== contentBytes) throw new SitecastError('SITECAST_E_IO', `${input.content} changed while it was being bundled`);
      }
      const digest = body.digest();
      await put(digest);
      await put(sign(null, Buffer.concat([SIGNING_CONTEXT, digest]), input.privateKey));
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, out);
    await syncDirectory(dirname(out));
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined);
    if (isSitecastError(err)) throw err;
    throw ioError(`cannot write bundle ${out}`, err);
  }
  return { path: out, bytes, sha256: whole.digest('hex'), contentBytes };
}

export interface VerifiedBundle {
  path: string;
  header: BundleHeader;
  bytes: number;
  contentOffset: number;
  contentBytes: number;
}

export interface ReadBundleOptions {
  /** The public key (SPKI PEM) recorded for a site code, or undefined for a site not known here. */
  keyOf: (code: string) => Promise<string | null | undefined>;
  /** Refuse a bundle addressed to another site. */
  to?: string;
}

async function readExactly(handle: Awaited<ReturnType<typeof open>>, position: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length);
  let off = 0;
  while (off < length) {
    const { bytesRead } = await handle.read(buf, off, length - off, position + off);
    if (bytesRead === 0) break;
    off += bytesRead;
  }
  return buf.subarray(0, off);
}

function describeZod(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`)
    .join('; ');
}

/**
 * Reads and checks a bundle: magic, format, lengths (a truncated or padded
 * file is refused), the header, the signer (a site known here, with a key),
 * the SHA-256 of the whole body and the signature, in that order. Nothing in
 * it may be used unless this resolves. Content is checked further by the
 * content engine when it is imported.
 */
export async function readBundle(path: string, options: ReadBundleOptions): Promise<VerifiedBundle> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (err) {
    throw ioError(`cannot open bundle ${path}`, err);
  }
  try {
    const size = (await handle.stat()).size;
    const pre = await readExactly(handle, 0, PREAMBLE);
    if (pre.length < PREAMBLE) throw badBundle(path, `truncated: ${size} bytes is shorter than a bundle preamble`);
    if (!pre.subarray(0, 8).equals(BUNDLE_MAGIC)) throw badBundle(path, 'not a bundle (wrong magic)');
    const format = pre.readUInt32LE(8);
    if (format !== BUNDLE_FORMAT) {
      throw new SitecastError('SITECAST_E_UNSUPPORTED_FORMAT', `bundle ${basename(path)} has format ${format}; this build reads format ${BUNDLE_FORMAT}`);
    }
    const headerBytes = pre.readUInt32LE(12);
    if (headerBytes > MAX_BUNDLE_HEADER) throw badBundle(path, `header length ${headerBytes} is over the limit`);
    if (size < PREAMBLE + headerBytes + 8 + TRAILER) throw badBundle(path, `truncated: ${size} bytes cannot hold its ${headerBytes}-byte header and trailer`);
    const rawHeader = await readExactly(handle, PREAMBLE, headerBytes);
    const contentBytes = (await readExactly(handle, PREAMBLE + headerBytes, 8)).readBigUInt64LE();
    const expected = BigInt(PREAMBLE + headerBytes + 8 + TRAILER) + contentBytes;
    if (expected !== BigInt(size)) {
      throw badBundle(path, size < expected ? `truncated: ${size} of ${expected} bytes` : `${size} bytes, but its lengths add up to ${expected}`);
    }
    let header: BundleHeader;
    try {
      const parsed = bundleHeaderSchema.safeParse(JSON.parse(rawHeader.toString('utf8')));
      if (!parsed.success) throw badBundle(path, `header does not parse: ${describeZod(parsed.error)}`);
      header = parsed.data;
    } catch (err) {
      if (isSitecastError(err)) throw err;
      throw badBundle(path, 'header is not JSON');
    }
    if (options.to !== undefined && header.to !== options.to) throw badBundle(path, `addressed to site ${header.to}, not ${options.to}`);
    const pem = await options.keyOf(header.from);
    if (pem === undefined || pem === null) {
      throw new SitecastError('SITECAST_E_UNKNOWN_SITE', `bundle ${basename(path)} is signed by site ${header.from}, which this site does not know`, {
        hint: 'only sites that joined the hierarchy can send; nothing was applied',
      });
    }
    const bodyEnd = size - TRAILER;
    const hash = createHash('sha256');
    for await (const chunk of createReadStream('', { fd: handle.fd, start: 0, end: bodyEnd - 1, autoClose: false, highWaterMark: 1 << 20 })) {
      hash.update(chunk as Buffer);
    }
    const trailer = await readExactly(handle, bodyEnd, TRAILER);
    const digest = hash.digest();
    if (!digest.equals(trailer.subarray(0, 32))) throw badSignature(path, header.from, 'its bytes do not match its SHA-256 (altered or damaged)');
    let ok = false;
    try {
      ok = verify(null, Buffer.concat([SIGNING_CONTEXT, digest]), createPublicKey(pem), trailer.subarray(32));
    } catch {
      ok = false;
    }
    if (!ok) throw badSignature(path, header.from, `the signature does not match the key recorded for site ${header.from}`);
    return { path, header, bytes: size, contentOffset: PREAMBLE + headerBytes + 8, contentBytes: Number(contentBytes) };
  } finally {
    await handle.close();
  }
}

function badSignature(path: string, from: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_SIGNATURE', `bundle ${basename(path)} from ${from}: ${why}`, {
    hint: 'nothing from it was applied; the sending site sends it again',
  });
}

/** Copies the verified content of a bundle to its own file, for the content engine to import. */
export async function extractBundleContent(bundle: VerifiedBundle, out: string): Promise<void> {
  if (bundle.contentBytes === 0) throw new SitecastError('SITECAST_E_NOT_FOUND', `bundle ${basename(bundle.path)} carries no content`);
  const src = await open(bundle.path, 'r');
  try {
    const dst = await open(out, 'w', 0o600);
    try {
      const buf = Buffer.alloc(1 << 20);
      let done = 0;
      while (done < bundle.contentBytes) {
        const want = Math.min(buf.length, bundle.contentBytes - done);
        const { bytesRead } = await src.read(buf, 0, want, bundle.contentOffset + done);
        if (bytesRead === 0) throw new SitecastError('SITECAST_E_BAD_BUNDLE', `bundle ${basename(bundle.path)} changed while it was read`);
        await writeFully(dst, buf.subarray(0, bytesRead));
        done += bytesRead;
      }
    } finally {
      await dst.close();
    }
  } catch (err) {
    if (isSitecastError(err)) throw err;
    throw ioError(`cannot copy the content of ${bundle.path}`, err);
  } finally {
    await src.close();
  }
}
