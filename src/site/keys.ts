import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { SitecastError } from '../errors.js';
import { writeFileAtomic } from '../fs/atomic.js';
import type { SitePaths } from './layout.js';

export interface SiteKeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

/** Creates the site's Ed25519 key pair; the private half is written mode 0600. */
export async function createSiteKeys(paths: SitePaths): Promise<SiteKeyPair> {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const publicKeyPem = publicKey.export({ type: 'spki', format: 'pem' }).toString();
  await writeFileAtomic(paths.privateKey, privatePem, { mode: 0o600 });
  await writeFileAtomic(paths.publicKey, publicKeyPem, { mode: 0o644 });
  return { privateKey, publicKey, publicKeyPem };
}

/** Loads the key pair of an existing site. Messages never include key material. */
export async function loadSiteKeys(paths: SitePaths): Promise<SiteKeyPair> {
  try {
    const privateKey = createPrivateKey(await readFile(paths.privateKey));
    const publicKeyPem = await readFile(paths.publicKey, 'utf8');
    const publicKey = createPublicKey(publicKeyPem);
    if (privateKey.asymmetricKeyType !== 'ed25519' || publicKey.asymmetricKeyType !== 'ed25519') {
      throw new Error('not an Ed25519 key');
    }
    const derived = createPublicKey(privateKey).export({ type: 'spki', format: 'pem' }).toString();
    if (derived !== publicKey.export({ type: 'spki', format: 'pem' }).toString()) {
      throw new Error('site.pub does not belong to site.key');
    }
    return { privateKey, publicKey, publicKeyPem };
  } catch (err) {
    const why = (err as NodeJS.ErrnoException).code ?? (err as Error).message;
    throw new SitecastError('SITECAST_E_SITE_CONFIG', `cannot load the site keys in ${paths.keys}: ${why}`, { cause: err });
  }
}
