import { type KeyObject, createPrivateKey, createPublicKey, generateKeyPairSync } from 'node:crypto';
import { chmod, mkdir, readFile, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { SitecastError, ioError } from '../errors.js';
import { type StatusReport, keyFingerprintSchema, statusReportSchema } from '../formats/client-protocol.js';
import { writeFileAtomic } from '../fs/atomic.js';

/**
 * A client's state folder (`--state`), mode 0700:
 *
 *   client.key     Ed25519 private key (PKCS#8 PEM, mode 0600)
 *   client.json    identity: id, name, site, MP URL, the site key learned at registration
 *   runs.json      what ran per advertisement, and reports not yet delivered
 *   cache/         content library: chunks and manifests downloaded so far
 *   work/<ad id>/  the package as the program sees it
 *   logs/          agent.log and one output file per program run
 */
export interface ClientPaths {
  dir: string;
  key: string;
  identity: string;
  runs: string;
  cache: string;
  work: string;
  logs: string;
}

export function clientPaths(dir: string): ClientPaths {
  const d = resolve(dir);
  return {
    dir: d,
    key: join(d, 'client.key'),
    identity: join(d, 'client.json'),
    runs: join(d, 'runs.json'),
    cache: join(d, 'cache'),
    work: join(d, 'work'),
    logs: join(d, 'logs'),
  };
}

const pem = z.string().max(1024).regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/);
export const identitySchema = z.strictObject({
  format: z.literal(1),
  clientId: z.string().regex(/^GUID:[0-9a-f-]{36}$/),
  name: z.string().min(1).max(200),
  site: z.string().regex(/^[A-Z0-9]{3}$/),
  mp: z.url({ protocol: /^https?$/ }),
  siteKey: pem,
  pollSeconds: z.number().int().min(1).max(86_400),
  registeredAt: z.iso.datetime(),
  /** Fingerprints given with `client register --site-key`: a site key outside them is refused, at registration and at a move. Absent: trust on first use. */
  trustedSiteKeys: z.array(keyFingerprintSchema).min(1).max(64).optional(),
});
export type Identity = z.infer<typeof identitySchema>;

const runSchema = z.strictObject({
  rerun: z.number().int().min(0),
  state: z.enum(['running', 'succeeded', 'failed']),
  exitCode: z.number().int().nullable(),
  time: z.iso.datetime(),
});
export type RunRecord = z.infer<typeof runSchema>;
const runsSchema = z.strictObject({
  format: z.literal(1),
  runs: z.record(z.string().regex(/^[A-Z0-9]{3}[0-9A-F]{5}$/), runSchema),
  pending: z.array(statusReportSchema).max(10_000),
});
export type Runs = z.infer<typeof runsSchema>;

export interface ClientKeys {
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicKeyPem: string;
}

export interface ClientState {
  paths: ClientPaths;
  keys: ClientKeys;
  identity: Identity;
  siteKey: KeyObject;
}

function stateError(paths: ClientPaths, why: string, cause?: unknown): SitecastError {
  return new SitecastError('SITECAST_E_CLIENT_STATE', `client state ${paths.dir}: ${why}`, {
    hint: `register with \`sitecast client register --mp <site url> --state ${paths.dir}\`; move a corrupt folder away first`,
    ...(cause === undefined ? {} : { cause }),
  });
}

function keysFrom(privatePem: string): ClientKeys {
  const privateKey = createPrivateKey(privatePem);
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new Error('not an Ed25519 key');
  const publicKey = createPublicKey(privateKey);
  return { privateKey, publicKey, publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString() };
}

/** The client's key pair: read, or created (mode 0600) in a new or empty-of-keys state folder. */
export async function ensureKeys(dir: string): Promise<ClientKeys> {
  const paths = clientPaths(dir);
  try {
    await mkdir(paths.dir, { recursive: true, mode: 0o700 });
  } catch (err) {
    throw ioError(`cannot create the client state folder ${paths.dir}`, err);
  }
  let text: string | undefined;
  try {
    text = await readFile(paths.key, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`cannot read ${paths.key}`, err);
  }
  if (text !== undefined) {
    try {
      return keysFrom(text);
    } catch (err) {
      throw stateError(paths, 'client.key is not an Ed25519 private key', err);
    }
  }
  const { privateKey } = generateKeyPairSync('ed25519');
  const privatePem = privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  await writeFileAtomic(paths.key, privatePem, { mode: 0o600 });
  await chmod(paths.key, 0o600).catch(() => undefined);
  return keysFrom(privatePem);
}

export async function saveIdentity(dir: string, identity: Identity): Promise<void> {
  await writeFileAtomic(clientPaths(dir).identity, `${JSON.stringify(identity, null, 2)}\n`, { mode: 0o600 });
}

/** Loads a registered client's state; anything missing or unreadable is SITECAST_E_CLIENT_STATE naming what. */
export async function loadState(dir: string): Promise<ClientState> {
  const paths = clientPaths(dir);
  try {
    if (!(await stat(paths.dir)).isDirectory()) throw stateError(paths, 'not a folder');
  } catch (err) {
    if (err instanceof SitecastError) throw err;
    throw stateError(paths, 'the folder does not exist', err);
  }
  const read = async (path: string, what: string): Promise<string> => {
    try {
      return await readFile(path, 'utf8');
    } catch (err) {
      throw stateError(paths, `${what} is missing or unreadable (${(err as NodeJS.ErrnoException).code ?? String(err)})`, err);
    }
  };
  const keyText = await read(paths.key, 'client.key');
  const idText = await read(paths.identity, 'client.json');
  let keys: ClientKeys;
  try {
    keys = keysFrom(keyText);
  } catch (err) {
    throw stateError(paths, 'client.key is not an Ed25519 private key', err);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(idText);
  } catch (err) {
    throw stateError(paths, 'client.json is not JSON', err);
  }
  const parsed = identitySchema.safeParse(raw);
  if (!parsed.success) throw stateError(paths, `client.json is invalid: ${parsed.error.issues.map((i) => `${i.path.join('.') || 'value'}: ${i.message}`).join('; ')}`);
  let siteKey: KeyObject;
  try {
    siteKey = createPublicKey(parsed.data.siteKey);
  } catch (err) {
    throw stateError(paths, 'client.json holds a site key that does not parse', err);
  }
  return { paths, keys, identity: parsed.data, siteKey };
}

export async function loadRuns(paths: ClientPaths): Promise<Runs> {
  let text: string;
  try {
    text = await readFile(paths.runs, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { format: 1, runs: {}, pending: [] };
    throw ioError(`cannot read ${paths.runs}`, err);
  }
  try {
    return runsSchema.parse(JSON.parse(text));
  } catch (err) {
    throw stateError(paths, 'runs.json is corrupt', err);
  }
}

export async function saveRuns(paths: ClientPaths, runs: Runs): Promise<void> {
  await writeFileAtomic(paths.runs, `${JSON.stringify(runs)}\n`, { mode: 0o600 });
}

export type { StatusReport };
