import { readFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import { type SendRequest, parseJsonFile, parseSendRequest, sendRequestSchema } from './srq.js';

/**
 * `<id>.SRS`: a send request the sender has taken, with its status. It is
 * the `.SRQ` renamed, then rewritten whole (temporary name and rename) at
 * each change of state and at most a few times a second while bytes flow, so
 * a reader always sees one complete status. Format: docs/formats/send-request.md.
 */
export const SEND_STATES = ['connecting', 'sending', 'completed', 'retrying', 'failed'] as const;
export type SendState = (typeof SEND_STATES)[number];

export const sendStatusSchema = z.strictObject({
  state: z.enum(SEND_STATES),
  /** Bytes of the file the target holds (or has been sent in this attempt). */
  bytesSent: z.number().int().nonnegative(),
  bytesTotal: z.number().int().nonnegative(),
  attempts: z.number().int().nonnegative(),
  nextRetry: z.iso.datetime().nullable(),
  lastError: z.string().max(2000).nullable(),
  updated: z.iso.datetime(),
});
export type SendStatus = z.infer<typeof sendStatusSchema>;

/** The `.SRS` body: the request and its status. */
export const sendRequestWithStatusSchema = sendRequestSchema.extend({ status: sendStatusSchema });
export type SendRequestWithStatus = z.infer<typeof sendRequestWithStatusSchema>;

export function initialStatus(req: SendRequest): SendStatus {
  return { state: 'connecting', bytesSent: 0, bytesTotal: req.bytes, attempts: 0, nextRetry: null, lastError: null, updated: new Date().toISOString() };
}

export async function writeSendStatus(path: string, req: SendRequest, status: SendStatus, durable = true): Promise<void> {
  const body: SendRequestWithStatus = { ...req, status: { ...status, lastError: status.lastError?.slice(0, 2000) ?? null } };
  await writeFileAtomic(path, `${JSON.stringify(body)}\n`, { durable });
}

/** Reads `<id>.SRQ` or `<id>.SRS`: the request, and its status when it has one. */
export async function readSendFile(path: string): Promise<{ request: SendRequest; status: SendStatus | undefined }> {
  let text: Buffer;
  try {
    text = await readFile(path);
  } catch (err) {
    throw ioError(`cannot read ${path}`, err);
  }
  const name = basename(path);
  const raw = parseJsonFile(name, text);
  if (typeof raw !== 'object' || raw === null) throw new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: not a JSON object`);
  const { status, ...rest } = raw as Record<string, unknown>;
  const request = parseSendRequest(name, rest);
  if (status === undefined) return { request, status: undefined };
  const parsed = sendStatusSchema.safeParse(status);
  // A status this build cannot read is not worth losing the request over: it starts again.
  return { request, status: parsed.success ? parsed.data : undefined };
}
