import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import type { SimClient } from '../clients/setup.js';

/**
 * The generated clients, the same on every run: client i has a fixed id,
 * name and Ed25519 key whose seed is derived from i, so the bench can sign
 * as any of them later without keeping 100,000 private keys around.
 */

const SPKI_ED25519 = Buffer.from('302a300506032b6570032100', 'hex');

export function clientId(i: number): string {
  return `GUID:00000000-0000-4000-8000-${i.toString(16).padStart(12, '0')}`;
}

/** Every generated client's name starts with it, so one collection rule (name:scale-*) holds them all. */
export const CLIENT_PREFIX = 'scale-';

export function clientName(i: number): string {
  return `${CLIENT_PREFIX}${String(i).padStart(6, '0')}`;
}

function seed(i: number): Buffer {
  return createHash('sha256').update(`sitecast-scale-client-${i}`).digest();
}

function privateKey(i: number): ReturnType<typeof createPrivateKey> {
  // A JWK import derives the public half from the seed; it is about ten times faster than a PKCS#8 import.
  return createPrivateKey({ key: { kty: 'OKP', crv: 'Ed25519', d: seed(i).toString('base64url'), x: '' }, format: 'jwk' });
}

function pem(der: Buffer): string {
  return `-----BEGIN PUBLIC KEY-----\n${der.toString('base64')}\n-----END PUBLIC KEY-----\n`;
}

/** SPKI PEM public keys of clients 1…count, as Node writes them. */
export function publicKeys(count: number): string[] {
  const out: string[] = [];
  for (let i = 1; i <= count; i++) {
    const x = privateKey(i).export({ format: 'jwk' }).x ?? '';
    out.push(pem(Buffer.concat([SPKI_ED25519, Buffer.from(x, 'base64url')])));
  }
  return out;
}

/** Client i as the load generator signs for it. */
export function simClient(i: number): SimClient {
  const key = privateKey(i);
  const publicKey = createPublicKey(key);
  return { id: clientId(i), keys: { privateKey: key, publicKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() } };
}

/** A small deterministic generator (mulberry32), so every run draws the same packages and clients. */
export function prng(seedValue: number): () => number {
  let a = seedValue >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** `count` distinct integers from 1…max, drawn with `random`. */
export function draw(count: number, max: number, random: () => number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < Math.min(count, max)) chosen.add(1 + Math.floor(random() * max));
  return [...chosen];
}
