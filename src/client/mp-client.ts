import { createPublicKey } from 'node:crypto';
import { SitecastError } from '../errors.js';
import {
  HEADER_CLIENT,
  HEADER_SIGNATURE,
  HEADER_TIME,
  type Policy,
  type RegisterAnswer,
  type StatusReport,
  policySchema,
  registerAnswerSchema,
  registerSigningText,
  requestSigningText,
  signText,
  statusAnswerSchema,
  verifyText,
} from '../formats/client-protocol.js';
import type { ClientKeys, ClientState } from './state.js';

const TIMEOUT_MS = 30_000;
const MAX_POLICY = 64 * 1024 * 1024;

function mpDown(url: string, err: unknown): SitecastError {
  return new SitecastError('SITECAST_E_SITE_DOWN', `no management point answers at ${url}`, {
    hint: 'check the MP URL and that the site server runs; the agent tries again at its next poll',
    cause: err,
  });
}

async function errorOf(res: Response, url: string): Promise<SitecastError> {
  let code: string | undefined;
  let message = `HTTP ${res.status}`;
  try {
    const body = (await res.json()) as { error?: { code?: unknown; message?: unknown } };
    if (typeof body.error?.code === 'string') code = body.error.code;
    if (typeof body.error?.message === 'string') message = body.error.message.slice(0, 500);
  } catch {
    // not a Sitecast answer
  }
  if (res.status === 401) {
    return new SitecastError(code === 'SITECAST_E_BAD_SIGNATURE' ? 'SITECAST_E_BAD_SIGNATURE' : 'SITECAST_E_UNAUTHORIZED', `the management point refused this client: ${message}`, {
      hint: 'register the client again: sitecast client register --mp <url> --state <dir>',
    });
  }
  if (res.status === 403) return new SitecastError('SITECAST_E_FORBIDDEN', message);
  if (res.status === 404) return new SitecastError('SITECAST_E_NOT_FOUND', message);
  return new SitecastError('SITECAST_E_HTTP', `${url} answered ${code ?? `HTTP ${res.status}`}: ${message}`);
}

/** Registers a key pair at an MP (proof of possession: the request is signed by the key it names). */
export async function register(mp: string, name: string, keys: ClientKeys): Promise<RegisterAnswer> {
  const time = new Date().toISOString();
  const body = { name, publicKey: keys.publicKeyPem, time, proof: signText(keys.privateKey, registerSigningText(name, keys.publicKeyPem, time)) };
  const url = `${mp}/mp/v1/register`;
  let res: Response;
  try {
    res = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
  } catch (err) {
    throw mpDown(mp, err);
  }
  if (!res.ok) throw await errorOf(res, url);
  const parsed = registerAnswerSchema.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new SitecastError('SITECAST_E_HTTP', `${url} answered in a shape this client does not know`);
  if (parsed.data.status === 'registered') {
    const key = createPublicKey(parsed.data.siteKey);
    if (key.asymmetricKeyType !== 'ed25519') throw new SitecastError('SITECAST_E_HTTP', `${url} sent a site key that is not Ed25519`);
  }
  return parsed.data;
}

/** A request signed with the client's key (headers of client-protocol.ts). */
async function signedFetch(state: ClientState, method: 'GET' | 'POST', path: string, body?: string): Promise<{ res: Response; time: string }> {
  const time = new Date().toISOString();
  const { clientId } = state.identity;
  const signature = signText(state.keys.privateKey, requestSigningText(method, path, clientId, time, body ?? ''));
  try {
    const res = await fetch(`${state.identity.mp}${path}`, {
      method,
      headers: {
        [HEADER_CLIENT]: clientId,
        [HEADER_TIME]: time,
        [HEADER_SIGNATURE]: signature,
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      },
      ...(body === undefined ? {} : { body }),
      signal: AbortSignal.timeout(TIMEOUT_MS),
    });
    return { res, time };
  } catch (err) {
    throw mpDown(state.identity.mp, err);
  }
}

/**
 * Fetches the policy and checks it before anything in it is used: the site's
 * signature over the exact bytes (with the key learned at registration), the
 * schema, that it names this client and this site, and that it answers this
 * very request (a replayed older policy is refused).
 */
export async function fetchPolicy(state: ClientState): Promise<Policy> {
  const { res, time } = await signedFetch(state, 'GET', '/mp/v1/policy');
  const url = `${state.identity.mp}/mp/v1/policy`;
  if (!res.ok) throw await errorOf(res, url);
  const bytes = Buffer.from(await res.arrayBuffer());
  if (bytes.length > MAX_POLICY) throw new SitecastError('SITECAST_E_HTTP', `the policy from ${url} is too large (${bytes.length} bytes)`);
  const signature = res.headers.get(HEADER_SIGNATURE);
  if (signature === null || !verifyText(state.siteKey, bytes, signature)) {
    throw new SitecastError('SITECAST_E_BAD_SIGNATURE', `the policy from ${url} is not signed by site ${state.identity.site}: refused`, {
      hint: 'something between the client and its MP changed the answer, or the site was re-created; nothing was applied',
    });
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString('utf8'));
  } catch {
    throw new SitecastError('SITECAST_E_HTTP', `the policy from ${url} is not JSON`);
  }
  const parsed = policySchema.safeParse(raw);
  if (!parsed.success) throw new SitecastError('SITECAST_E_HTTP', `the policy from ${url} does not parse: ${parsed.error.issues[0]?.message ?? ''}`);
  const p = parsed.data;
  if (p.client !== state.identity.clientId || p.site !== state.identity.site || p.requestTime !== time) {
    throw new SitecastError('SITECAST_E_BAD_SIGNATURE', `the policy from ${url} was issued for another client, site or request: refused`);
  }
  return p;
}

/** The manifest of a package version; the caller checks it against its id. */
export async function fetchManifest(state: ClientState, id: string): Promise<Buffer> {
  const path = `/mp/v1/manifests/${id}`;
  const { res } = await signedFetch(state, 'GET', path);
  if (!res.ok) throw await errorOf(res, `${state.identity.mp}${path}`);
  return Buffer.from(await res.arrayBuffer());
}

export async function sendReport(state: ClientState, report: StatusReport): Promise<boolean> {
  const path = '/mp/v1/status';
  const { res } = await signedFetch(state, 'POST', path, JSON.stringify(report));
  if (!res.ok) throw await errorOf(res, `${state.identity.mp}${path}`);
  const parsed = statusAnswerSchema.safeParse(await res.json().catch(() => undefined));
  return parsed.success && parsed.data.recorded;
}
