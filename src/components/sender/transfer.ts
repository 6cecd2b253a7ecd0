import { rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Address } from '../../db/addresses.js';
import { SitecastError, isSitecastError } from '../../errors.js';
import { SRQ_SUFFIX, SRS_SUFFIX, type SendRequest } from '../../formats/srq.js';
import { type SendStatus, initialStatus, writeSendStatus } from '../../formats/srs.js';
import { SendError } from './http.js';
import type { Pending } from './queue.js';
import type { Sender, SendProgress } from './sender.js';

export interface TransferDeps {
  toSendDir: string;
  sender: Sender;
  address: Address;
  /** Progress of bytes on the link, for the address's counters. */
  onWire(bytes: number): void;
  /** How often the .SRS is rewritten while bytes flow (default 250 ms). */
  statusIntervalMs: number;
  /** Longest wait between retries (default 10 min); a failed request is tried again after it. */
  maxRetryDelayMs: number;
}

export type Outcome =
  | { kind: 'completed'; request: SendRequest }
  | { kind: 'retrying' | 'failed'; request: SendRequest; error: string; unreachable: boolean; nextRetry: number }
  | { kind: 'bad'; request: SendRequest; error: string }
  | { kind: 'aborted'; request: SendRequest };

/** Delay before attempt n+1: the address's retry delay, doubling, capped. */
export function retryDelayMs(address: Address, attempts: number, maxMs: number): number {
  return Math.min(maxMs, address.retryDelaySeconds * 1000 * 2 ** Math.min(Math.max(0, attempts - 1), 30));
}

/**
 * One attempt at one request: `.SRQ` → `.SRS` (the request is now the
 * sender's), status kept in the `.SRS`, the sender called, and on success the
 * status `completed` written, then the tosend file and the `.SRS` deleted.
 * On failure the `.SRS` stays with `retrying` (or `failed` once the
 * address's retries are spent) and the time of the next attempt.
 */
export async function runTransfer(p: Pending, deps: TransferDeps, signal: AbortSignal): Promise<Outcome> {
  const req = p.request;
  const srs = p.name.endsWith(SRQ_SUFFIX) ? join(p.path, '..', `${req.id}${SRS_SUFFIX}`) : p.path;
  const file = join(deps.toSendDir, req.file);
  let status: SendStatus = { ...(p.status ?? initialStatus(req)), state: 'connecting', nextRetry: null, updated: new Date().toISOString() };
  status.attempts += 1;
  if (p.path !== srs) {
    // Written beside the .SRQ first so the rename makes the status appear with the name.
    await writeSendStatus(p.path, req, status);
    await rename(p.path, srs);
  } else await writeSendStatus(srs, req, status);

  const missing = await stat(file).then(
    () => false,
    (err: NodeJS.ErrnoException) => err.code === 'ENOENT',
  );
  if (missing) return { kind: 'bad', request: req, error: missingFile(req).message };

  let lastWrite = 0;
  let writing: Promise<void> = Promise.resolve();
  const save = (s: SendStatus, durable: boolean): Promise<void> => {
    writing = writing.then(() => writeSendStatus(srs, req, s, durable)).catch(() => undefined);
    return writing;
  };
  const progress = (pr: SendProgress): void => {
    deps.onWire(pr.wireBytes);
    status = { ...status, state: 'sending', bytesSent: pr.sent, bytesTotal: pr.total };
    const t = Date.now();
    if (t - lastWrite >= deps.statusIntervalMs) {
      lastWrite = t;
      void save({ ...status, updated: new Date(t).toISOString() }, false);
    }
  };
  try {
    await deps.sender.send(req, file, progress, signal);
  } catch (err) {
    await writing;
    if (signal.aborted) return { kind: 'aborted', request: req };
    const error = err instanceof Error ? `${isSitecastError(err) ? `${err.code}: ` : ''}${err.message}` : String(err);
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || isSitecastError(err, 'SITECAST_E_BAD_INBOX_FILE')) return { kind: 'bad', request: req, error };
    const unreachable = err instanceof SendError && err.unreachable;
    const failed = status.attempts > deps.address.retries;
    const delay = failed ? deps.maxRetryDelayMs : retryDelayMs(deps.address, status.attempts, deps.maxRetryDelayMs);
    const nextRetry = Date.now() + delay;
    status = { ...status, state: failed ? 'failed' : 'retrying', lastError: error, nextRetry: new Date(nextRetry).toISOString(), updated: new Date().toISOString() };
    await save(status, true);
    return { kind: failed ? 'failed' : 'retrying', request: req, error, unreachable, nextRetry };
  }
  await writing;
  status = { ...status, state: 'completed', bytesSent: req.bytes, lastError: null, updated: new Date().toISOString() };
  await save(status, true);
  await rm(file, { force: true });
  await rm(srs, { force: true });
  return { kind: 'completed', request: req };
}

export function missingFile(req: SendRequest): SitecastError {
  return new SitecastError('SITECAST_E_SEND', `the file ${req.file} of request ${req.id} is not in schedule.box/tosend/`);
}
