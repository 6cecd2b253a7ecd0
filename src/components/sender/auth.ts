import { createHash, createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { SitecastError } from '../../errors.js';

/**
 * Site-to-site request signatures. Every request to another site's receive
 * endpoint carries the sending site's code, a timestamp and an Ed25519
 * signature over the canonical string below; the receiver checks it with
 * the public key its sites table holds for that code. The body is covered by
 * its SHA-256, the target by its code, so a request cannot be altered,
 * replayed to another site, or replayed after the clock window.
 */
export const HEADER_SITE = 'x-sitecast-site';
export const HEADER_TO = 'x-sitecast-to';
export const HEADER_TIME = 'x-sitecast-time';
export const HEADER_SIGNATURE = 'x-sitecast-signature';
/** SHA-256 of the whole file, stated by every upload request. */
export const HEADER_FILE_SHA256 = 'x-sitecast-file-sha256';
export const CLOCK_SKEW_MS = 5 * 60_000;

export interface SignedParts {
  method: string;
  path: string;
  from: string;
  to: string;
  range: string;
  fileSha256: string;
  time: string;
  bodySha256: string;
}

export function canonical(p: SignedParts): string {
  return ['SITECAST-SITE-1', p.method.toUpperCase(), p.path, p.from, p.to, p.range, p.fileSha256, p.time, p.bodySha256].join('\n');
}

export function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Headers that authenticate one request. */
export function signRequest(privateKey: KeyObject, p: Omit<SignedParts, 'time'>, at = new Date()): Record<string, string> {
  const time = at.toISOString();
  const signature = sign(null, Buffer.from(canonical({ ...p, time })), privateKey).toString('base64');
  return { [HEADER_SITE]: p.from, [HEADER_TO]: p.to, [HEADER_TIME]: time, [HEADER_SIGNATURE]: signature, ...(p.fileSha256 === '' ? {} : { [HEADER_FILE_SHA256]: p.fileSha256 }) };
}

function unauthorized(message: string): SitecastError {
  return new SitecastError('SITECAST_E_UNAUTHORIZED', message, { hint: 'the sending site must be known here with its public key, and both clocks within 5 minutes' });
}

/** Checks the timestamp and the signature; throws SITECAST_E_UNAUTHORIZED naming what failed. */
export function verifyRequest(publicKeyPem: string, p: SignedParts, signature: string, now = Date.now()): void {
  const t = Date.parse(p.time);
  if (!Number.isFinite(t) || !/^\d{4}-\d\d-\d\dT/.test(p.time)) throw unauthorized(`site ${p.from}: the request has no valid ${HEADER_TIME}`);
  if (Math.abs(now - t) > CLOCK_SKEW_MS) throw unauthorized(`site ${p.from}: the request time ${p.time} is more than 5 minutes from this site's clock`);
  let ok: boolean;
  try {
    ok = verify(null, Buffer.from(canonical(p)), createPublicKey(publicKeyPem), Buffer.from(signature, 'base64'));
  } catch {
    ok = false;
  }
  if (!ok) throw unauthorized(`site ${p.from}: the signature does not verify`);
}
