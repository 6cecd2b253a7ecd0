import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError } from '../errors.js';
import { dropFile } from '../inbox/drop.js';
import type { SitePaths } from '../site/layout.js';

/**
 * The send request: what the Scheduler hands a sender. The file
 * `schedule.box/outboxes/<sender>/<id>.SRQ` names a file already complete in
 * `schedule.box/tosend/`, the site it goes to, and its priority. The sender
 * renames it `<id>.SRS` when it takes it (see srs.ts) and deletes both when
 * the target holds the file. Format: docs/formats/send-request.md.
 */
export const SRQ_FORMAT = 1;
export const SRQ_SUFFIX = '.SRQ';
export const SRS_SUFFIX = '.SRS';

export const SENDER_KINDS = ['http', 'lan', 'courier'] as const;
export const senderKindSchema = z.enum(SENDER_KINDS);
export type SenderKind = z.infer<typeof senderKindSchema>;

/** A request id: also a file name here, in tosend/ and at the target, so a safe set. */
export const sendIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._-]{1,100}$/, 'an id is 1 to 100 of A-Z a-z 0-9 . _ -')
  .refine((s) => !s.startsWith('.') && !s.includes('..'), 'an id must not start with a dot or hold ".."');
/** A file name inside schedule.box/tosend/. */
export const toSendNameSchema = z
  .string()
  .regex(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/, 'a plain file name of A-Z a-z 0-9 . _ -')
  .refine((s) => !s.includes('..'), 'must not hold ".."');

export const sendRequestSchema = z.strictObject({
  format: z.literal(SRQ_FORMAT),
  id: sendIdSchema,
  to: z.string().regex(/^[A-Z0-9]{3}$/, 'a site code is 3 upper-case letters or digits'),
  priority: z.enum(['high', 'medium', 'low']),
  created: z.iso.datetime(),
  file: toSendNameSchema,
  bytes: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'a SHA-256 is 64 lower-case hex digits'),
  kind: z.enum(['package', 'status']),
  package: z
    .string()
    .regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/, 'a package id like CEN00003')
    .nullable(),
});
export type SendRequest = z.infer<typeof sendRequestSchema>;

/** What a writer gives: the request (format and created may be left out) and the sender whose outbox takes it. */
export type SendRequestInput = Omit<SendRequest, 'format' | 'created'> & {
  sender: SenderKind;
  format?: typeof SRQ_FORMAT;
  created?: string;
};

export function outboxDir(paths: SitePaths, sender: SenderKind): string {
  return join(paths.scheduleOutboxes, sender);
}

export function sendRequestName(id: string): string {
  return `${id}${SRQ_SUFFIX}`;
}

function bad(name: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: ${why}`, {
    hint: 'send requests are written by the Scheduler; do not edit them by hand',
  });
}

function describe(err: z.ZodError): string {
  return err.issues.map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`).join('; ');
}

/**
 * Writes `<id>.SRQ` into the sender's outbox (temporary name, flush, rename,
 * folder flush). The tosend file must be complete before this is called: a
 * sender may start on it the moment the name appears. Returns the path.
 */
export async function writeSendRequest(paths: SitePaths, input: SendRequestInput): Promise<string> {
  const { sender, ...rest } = input;
  const kind = senderKindSchema.safeParse(sender);
  if (!kind.success) throw new SitecastError('SITECAST_E_INVALID_VALUE', `send request: unknown sender ${JSON.stringify(sender)}`);
  const parsed = sendRequestSchema.safeParse({ ...rest, format: SRQ_FORMAT, created: rest.created ?? new Date().toISOString() });
  if (!parsed.success) {
    throw new SitecastError('SITECAST_E_INVALID_VALUE', `send request: ${describe(parsed.error)}`, { cause: parsed.error });
  }
  return dropFile(outboxDir(paths, kind.data), sendRequestName(parsed.data.id), `${JSON.stringify(parsed.data)}\n`);
}

/**
 * Checks a request's body, and that its file name (`<id>.SRQ` or `<id>.SRS`)
 * agrees with the id inside. Anything else is bad input.
 */
export function parseSendRequest(name: string, body: unknown): SendRequest {
  const result = sendRequestSchema.safeParse(body);
  if (!result.success) throw bad(name, `the send request does not parse: ${describe(result.error)}`);
  const id = result.data.id;
  if (name !== `${id}${SRQ_SUFFIX}` && name !== `${id}${SRS_SUFFIX}`) throw bad(name, `the body names request ${id}`);
  return result.data;
}

/** Parses JSON text, or throws the inbox's bad-file error. */
export function parseJsonFile(name: string, text: Buffer, maxBytes = 65_536): unknown {
  if (text.length > maxBytes) throw bad(name, `${text.length} bytes is too large`);
  try {
    return JSON.parse(text.toString('utf8')) as unknown;
  } catch {
    throw bad(name, 'the body is not JSON');
  }
}

/** Reads and checks `<id>.SRQ`. */
export async function readSendRequest(path: string): Promise<SendRequest> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    throw ioError(`cannot read ${path}`, err);
  }
  return parseSendRequest(basename(path), parseJsonFile(basename(path), text));
}

/** Size and SHA-256 of a file, streamed: what a writer puts into `bytes` and `sha256`. */
export async function fileDigest(path: string): Promise<{ bytes: number; sha256: string }> {
  const hash = createHash('sha256');
  let bytes = 0;
  try {
    for await (const chunk of createReadStream(path)) {
      const b = chunk as Buffer;
      bytes += b.length;
      hash.update(b);
    }
  } catch (err) {
    throw ioError(`cannot read ${path}`, err);
  }
  return { bytes, sha256: hash.digest('hex') };
}
