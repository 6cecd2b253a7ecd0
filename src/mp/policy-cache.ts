import { type KeyObject, createPublicKey } from 'node:crypto';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { listAdvertisements, type Advertisement } from '../db/advertisements.js';
import { policyVersion } from '../db/client-tables.js';
import { type Boundary, type Client, listBoundaries, listClients } from '../db/clients.js';
import { loadCompiledCollections } from '../db/collections.js';
import type { SiteDb } from '../db/index.js';
import type { PolicyAdvertisement } from '../formats/client-protocol.js';
import { type CompiledCollection, isMember } from '../formats/collection-rule.js';
import { checkInstructionFile, instructionName } from '../formats/instructions.js';
import { type IpRange, inRange, ipToBig, parseIpRange } from '../formats/ip-range.js';

export interface CachedClient {
  client: Client;
  key: KeyObject;
}

/** A registered client; its key is parsed from the PEM on its first request (null: the PEM does not parse). */
interface KnownClient {
  client: Client;
  key?: KeyObject | null;
}

interface Snapshot {
  version: number;
  pkginfoMtime: number;
  clients: Map<string, KnownClient>;
  collections: Map<string, CompiledCollection>;
  advertisements: Advertisement[];
  boundaries: { boundary: Boundary; range: IpRange }[];
  /** Per client: its advertisements, whatever the time (filtered per request). */
  perClient: Map<string, PolicyAdvertisement[]>;
  /** Per package: the JSON fragment `{"pkg":…,"nal":…,"ico":…}`, or null while its files are not at this MP. */
  packages: Map<string, string | null>;
}

/** How often the database and the instruction-file folder are checked for changes. */
const CHECK_MS = 250;

/**
 * What the management point needs to answer a policy request without touching
 * the database: every client and its key (parsed on first use), the collections, the advertisements and
 * the instruction files. One indexed read of the `client_policy` counter (and
 * a stat of `mp/pkginfo`) at most every 250 ms tells whether anything changed;
 * only then is the snapshot rebuilt. Per-client advertisement lists and
 * per-package fragments are filled lazily and live until the next change.
 */
export class PolicyCache {
  private snapshot: Snapshot | undefined;
  private checkedAt = 0;
  private pending: Promise<Snapshot> | undefined;

  constructor(
    private readonly db: SiteDb,
    private readonly pkginfoDir: string,
  ) {}

  /** Forces the next access to rebuild (after a registration through this MP). */
  invalidate(): void {
    this.checkedAt = 0;
    if (this.snapshot !== undefined) this.snapshot.version = -1;
  }

  async current(): Promise<Snapshot> {
    const now = Date.now();
    if (this.snapshot !== undefined && now - this.checkedAt < CHECK_MS) return this.snapshot;
    this.pending ??= this.check().finally(() => {
      this.pending = undefined;
    });
    return this.pending;
  }

  private async check(): Promise<Snapshot> {
    const [version, mtime] = await Promise.all([policyVersion(this.db), dirMtime(this.pkginfoDir)]);
    this.checkedAt = Date.now();
    const old = this.snapshot;
    if (old !== undefined && old.version === version) {
      if (old.pkginfoMtime !== mtime) {
        old.packages.clear();
        old.pkginfoMtime = mtime;
      }
      return old;
    }
    const [clients, collections, advertisements, boundaries] = await Promise.all([
      listClients(this.db),
      loadCompiledCollections(this.db),
      listAdvertisements(this.db),
      listBoundaries(this.db),
    ]);
    // Keys are parsed when a client first asks, not here: 100,000 of them would hold the event loop for about ten seconds.
    const keys = new Map<string, KnownClient>();
    for (const client of clients) {
      const known = old?.clients.get(client.id);
      keys.set(client.id, known?.key === undefined || known.client.publicKey !== client.publicKey ? { client } : { client, key: known.key });
    }
    const snapshot: Snapshot = {
      version,
      pkginfoMtime: mtime,
      clients: keys,
      collections,
      advertisements,
      boundaries: boundaries.flatMap((b) => {
        const range = parseIpRange(b.range);
        return range === undefined ? [] : [{ boundary: b, range }];
      }),
      perClient: new Map(),
      packages: old !== undefined && old.pkginfoMtime === mtime ? old.packages : new Map(),
    };
    this.snapshot = snapshot;
    return snapshot;
  }

  async client(id: string): Promise<CachedClient | undefined> {
    const known = (await this.current()).clients.get(id);
    if (known === undefined) return undefined;
    if (known.key === undefined) {
      // Keys were checked at registration; a PEM Node cannot read again would be a damaged row, so that client is not known.
      try {
        known.key = publicKeyOf(known.client.publicKey);
      } catch {
        known.key = null;
      }
    }
    return known.key === null ? undefined : { client: known.client, key: known.key };
  }

  /** The first boundary (by name) holding this address. */
  async boundaryOf(ip: string): Promise<Boundary | undefined> {
    const value = ipToBig(ip);
    if (value === undefined) return undefined;
    return (await this.current()).boundaries.find((b) => inRange(b.range, value))?.boundary;
  }

  /** The client's advertisements (every time window), computed once per change of the site's policy. */
  async advertisementsOf(client: Client): Promise<PolicyAdvertisement[]> {
    const s = await this.current();
    let list = s.perClient.get(client.id);
    if (list === undefined) {
      const subject = { id: client.id, name: client.name, site: client.site, boundary: client.boundary };
      const member = new Map<string, boolean>();
      list = [];
      for (const ad of s.advertisements) {
        let yes = member.get(ad.collection);
        if (yes === undefined) {
          const col = s.collections.get(ad.collection);
          yes = col !== undefined && isMember(col, subject);
          member.set(ad.collection, yes);
        }
        if (!yes) continue;
        list.push({
          id: ad.id,
          packageId: ad.packageId,
          program: ad.program,
          available: ad.availableAt,
          mandatory: ad.mandatoryAt,
          expires: ad.expiresAt,
          rerun: ad.rerun,
        });
      }
      s.perClient.set(client.id, list);
    }
    return list;
  }

  /** The JSON fragment of a package's instruction files, or null when they are not (all) at this MP yet. */
  async packageFragment(packageId: string): Promise<string | null> {
    const s = await this.current();
    const known = s.packages.get(packageId);
    if (known !== undefined) return known;
    const fragment = await readFragment(this.pkginfoDir, packageId);
    s.packages.set(packageId, fragment);
    return fragment;
  }
}

const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * The key of a client's SPKI PEM. An Ed25519 key (every client's) is imported
 * from its 32 raw bytes as a JWK, about ten times faster than OpenSSL's PEM
 * decoder, which matters when thousands of clients first poll after a restart.
 */
function publicKeyOf(pem: string): KeyObject {
  const der = Buffer.from(pem.replace(/-----(BEGIN|END) PUBLIC KEY-----|\s/g, ''), 'base64');
  if (der.length === ED25519_SPKI_PREFIX.length + 32 && der.subarray(0, ED25519_SPKI_PREFIX.length).equals(ED25519_SPKI_PREFIX)) {
    return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: der.subarray(ED25519_SPKI_PREFIX.length).toString('base64url') }, format: 'jwk' });
  }
  return createPublicKey(pem);
}

async function dirMtime(dir: string): Promise<number> {
  try {
    return (await stat(dir)).mtimeMs;
  } catch {
    return 0;
  }
}

async function readFragment(dir: string, packageId: string): Promise<string | null> {
  const read = async (kind: 'PKG' | 'NAL' | 'ICO'): Promise<Buffer | undefined> => {
    const name = instructionName(packageId, kind);
    try {
      const data = await readFile(join(dir, name));
      // Inbox Manager checked it before copying; checked again, since the policy vouches for it with the site's signature.
      checkInstructionFile(name, data);
      return data;
    } catch {
      return undefined;
    }
  };
  const [pkg, nal, ico] = await Promise.all([read('PKG'), read('NAL'), read('ICO')]);
  if (pkg === undefined || nal === undefined) return null;
  return `{"pkg":${JSON.stringify(JSON.parse(pkg.toString('utf8')))},"nal":${JSON.stringify(JSON.parse(nal.toString('utf8')))},"ico":${ico === undefined ? 'null' : JSON.stringify(ico.toString('base64'))}}`;
}
