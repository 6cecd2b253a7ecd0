import { type KeyObject, createHash, createPublicKey, sign, verify } from 'node:crypto';
import { z } from 'zod';
import { isOneLine } from '../db/values.js';
import { nalFileSchema, pkgFileSchema } from './instructions.js';

/**
 * The management point's client protocol, version 1 (docs/architecture/clients.md):
 *
 *   POST /mp/v1/register       {name, publicKey, time, proof}                → RegisterAnswer
 *   GET  /mp/v1/policy         signed request                                 → policy bytes, signed by the site
 *   GET  /mp/v1/manifests/<id> signed request                                 → manifest bytes (checked by hash)
 *   POST /mp/v1/status         signed request, StatusReport                  → {recorded}
 *
 * A signed request carries three headers; the signature is Ed25519 by the
 * client's key over `requestSigningText`. The policy answer is the policy's
 * JSON bytes with the site's Ed25519 signature over exactly those bytes in
 * `x-sitecast-signature`.
 */
export const HEADER_CLIENT = 'x-sitecast-client';
export const HEADER_TIME = 'x-sitecast-time';
export const HEADER_SIGNATURE = 'x-sitecast-signature';
/** How far a request's time may be from the MP's clock. */
export const MAX_SKEW_MS = 5 * 60_000;
export const PROTOCOL_FORMAT = 1;

const clientId = z.string().regex(/^GUID:[0-9a-f-]{36}$/);
const siteCode = z.string().regex(/^[A-Z0-9]{3}$/);
const id8 = z.string().regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/);
const isoTime = z.iso.datetime();
const base64 = z.string().regex(/^[A-Za-z0-9+/]+={0,2}$/).max(16 * 1024 * 1024);
const publicKeyPem = z.string().max(1024).regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);

export function sha256Hex(data: Uint8Array | string): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * How an administrator names a site key out of band: `sha256:` and the
 * SHA-256 of the key's SPKI (DER) bytes in hex. `sitecast site init` and
 * `GET /api/v1/site` show it; `client register --site-key` pins it.
 */
export function keyFingerprint(key: KeyObject | string): string {
  const object = typeof key === 'string' ? createPublicKey(key) : key;
  return `sha256:${sha256Hex(object.export({ type: 'spki', format: 'der' }))}`;
}

export const keyFingerprintSchema = z.string().regex(/^sha256:[0-9a-f]{64}$/, 'a site key fingerprint is sha256: and 64 hex digits (sitecast site init and GET /api/v1/site show it)');

export function requestSigningText(method: string, path: string, client: string, time: string, body: Uint8Array | string): string {
  return `sitecast-mp-v1\n${method.toUpperCase()}\n${path}\n${client}\n${time}\n${sha256Hex(body)}`;
}

export function registerSigningText(name: string, publicKey: string, time: string): string {
  return `sitecast-register-v1\n${name}\n${publicKey}\n${time}`;
}

export function signText(key: KeyObject, text: string | Uint8Array): string {
  return sign(null, typeof text === 'string' ? Buffer.from(text) : text, key).toString('base64');
}

export function verifyText(key: KeyObject, text: string | Uint8Array, signature: string): boolean {
  try {
    return verify(null, typeof text === 'string' ? Buffer.from(text) : text, key, Buffer.from(signature, 'base64'));
  } catch {
    return false;
  }
}

export const registerRequestSchema = z.strictObject({
  name: z
    .string()
    .trim()
    .min(1)
    .max(200)
    .refine(isOneLine, 'must be one line without control characters'),
  publicKey: publicKeyPem,
  time: isoTime,
  /** Proof that the caller holds the private key: a signature over registerSigningText. */
  proof: base64.max(200),
});
export type RegisterRequest = z.infer<typeof registerRequestSchema>;

export const registerAnswerSchema = z.discriminatedUnion('status', [
  z.strictObject({
    status: z.literal('registered'),
    clientId,
    site: siteCode,
    /** The site's Ed25519 public key: every policy is signed with it. */
    siteKey: publicKeyPem,
    approved: z.boolean(),
    pollSeconds: z.number().int().min(1).max(86_400),
  }),
  /** The client's address lies in a boundary of another site: register there. */
  z.strictObject({ status: z.literal('moved'), site: siteCode, mp: z.url({ protocol: /^https?$/ }).nullable() }),
]);
export type RegisterAnswer = z.infer<typeof registerAnswerSchema>;

export const policyAdvertisementSchema = z.strictObject({
  id: id8,
  packageId: id8,
  program: z.string().min(1).max(64),
  available: isoTime,
  mandatory: isoTime.nullable(),
  expires: isoTime.nullable(),
  rerun: z.number().int().min(0),
});
export type PolicyAdvertisement = z.infer<typeof policyAdvertisementSchema>;

export const policyPackageSchema = z.strictObject({ pkg: pkgFileSchema, nal: nalFileSchema, ico: base64.nullable() });
export type PolicyPackage = z.infer<typeof policyPackageSchema>;

export const policySchema = z.strictObject({
  format: z.literal(PROTOCOL_FORMAT),
  site: siteCode,
  client: clientId,
  /** The x-sitecast-time of the request this answers: a replayed older policy is recognised. */
  requestTime: isoTime,
  issued: isoTime,
  pollSeconds: z.number().int().min(1).max(86_400),
  /** Set when the client's address now lies in another site's boundary. */
  moved: z.strictObject({ site: siteCode, mp: z.url({ protocol: /^https?$/ }).nullable() }).nullable(),
  advertisements: z.array(policyAdvertisementSchema).max(10_000),
  /** Instruction files of every advertised package whose files are at this MP, by package id. */
  packages: z.record(id8, policyPackageSchema),
});
export type Policy = z.infer<typeof policySchema>;

export const statusReportSchema = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('advertisement'),
    advertisement: id8,
    packageId: id8,
    rerun: z.number().int().min(0),
    state: z.enum(['received', 'running', 'succeeded', 'failed']),
    exitCode: z.number().int().min(-(2 ** 31)).max(2 ** 32).nullable(),
    message: z.string().max(2000).nullable(),
  }),
  /** A DP that was down or served data that does not match its hash. */
  z.strictObject({
    type: z.literal('dp'),
    packageId: id8,
    site: siteCode,
    dp: z.string().min(1).max(64),
    problem: z.string().min(1).max(2000),
  }),
]);
export type StatusReport = z.infer<typeof statusReportSchema>;

export const statusAnswerSchema = z.strictObject({ recorded: z.boolean() });
