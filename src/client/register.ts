import { SitecastError } from '../errors.js';
import { keyFingerprint } from '../formats/client-protocol.js';
import { register } from './mp-client.js';
import { ensureKeys, saveIdentity, type Identity } from './state.js';

export interface Registration {
  identity: Identity;
  approved: boolean;
}

const MAX_MOVES = 3;

/**
 * Refuses a site key whose fingerprint is not among `trusted` (the
 * administrator's `--site-key`); with none given, the key is trusted on first
 * use.
 */
export function checkSiteKey(answer: { site: string; siteKey: string }, url: string, trusted: readonly string[] | undefined): void {
  if (trusted === undefined) return;
  const seen = keyFingerprint(answer.siteKey);
  if (trusted.includes(seen)) return;
  throw new SitecastError('SITECAST_E_UNTRUSTED_KEY', `${url} answered for site ${answer.site} with key ${seen}, which is not a key this client was told to trust (${trusted.join(', ')})`, {
    hint: 'compare with keyFingerprint of GET /api/v1/site at that site; nothing was saved',
  });
}

/**
 * Registers the client whose state is in `dir` (creating its key pair on
 * first use) at the MP `mp`. When the MP says the client's address belongs to
 * another site's boundary, registration follows to that site's MP. The site
 * key in the answer pins every later policy: trusted on first use, or only
 * when its fingerprint is one of `trusted` (nothing is saved otherwise).
 */
export async function registerAgent(dir: string, mp: string, name: string, trusted?: readonly string[]): Promise<Registration> {
  const keys = await ensureKeys(dir);
  let url = mp.replace(/\/+$/, '');
  for (let hop = 0; hop <= MAX_MOVES; hop++) {
    const answer = await register(url, name, keys);
    if (answer.status === 'registered') {
      checkSiteKey(answer, url, trusted);
      const identity: Identity = {
        format: 1,
        clientId: answer.clientId,
        name,
        site: answer.site,
        mp: url,
        siteKey: answer.siteKey,
        pollSeconds: answer.pollSeconds,
        registeredAt: new Date().toISOString(),
        ...(trusted === undefined ? {} : { trustedSiteKeys: [...trusted] }),
      };
      await saveIdentity(dir, identity);
      return { identity, approved: answer.approved };
    }
    if (answer.mp === null) {
      throw new SitecastError('SITECAST_E_NOT_FOUND', `this client's address belongs to a boundary of site ${answer.site}, whose management point ${url} does not know`, {
        hint: `register with the MP of site ${answer.site}, or give its boundary an MP URL`,
      });
    }
    url = answer.mp.replace(/\/+$/, '');
  }
  throw new SitecastError('SITECAST_E_HTTP', `management points sent this client on more than ${MAX_MOVES} times`, { hint: 'check the boundaries of the sites' });
}
