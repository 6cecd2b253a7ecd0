import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { parseIpRange } from '../formats/ip-range.js';
import { type ClientTable, bumpPolicyVersion, clientDb } from './client-tables.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { nameSchema, parseInput, shortNameSchema, siteCodeSchema } from './values.js';

export interface Client {
  id: string;
  name: string;
  publicKey: string;
  site: string;
  boundary: string | null;
  ip: string | null;
  approved: boolean;
  registeredAt: string;
  lastSeenAt: string | null;
}

export interface Boundary {
  name: string;
  range: string;
  site: string;
  mpUrl: string | null;
}

export const clientIdSchema = z.string().regex(/^GUID:[0-9a-f-]{36}$/, 'a client id is GUID:<uuid>');
const publicKeySchema = z
  .string()
  .max(1024)
  .regex(/^-----BEGIN PUBLIC KEY-----\n[A-Za-z0-9+/=\n]+-----END PUBLIC KEY-----\n?$/, 'an SPKI PEM public key');

const newClientSchema = z.object({
  name: nameSchema,
  publicKey: publicKeySchema,
  site: siteCodeSchema,
  boundary: shortNameSchema.nullable().default(null),
  ip: z.string().max(64).nullable().default(null),
  approved: z.boolean(),
});
export type NewClient = z.input<typeof newClientSchema>;

const newBoundarySchema = z.object({
  name: shortNameSchema,
  range: z
    .string()
    .max(100)
    .refine((r) => parseIpRange(r) !== undefined, 'a CIDR (10.1.0.0/16) or a range (10.1.0.1-10.1.0.99)'),
  site: siteCodeSchema,
  mpUrl: z
    .url({ protocol: /^https?$/ })
    .max(2048)
    .nullable()
    .default(null),
});
export type NewBoundary = z.input<typeof newBoundarySchema>;

export function toClient(r: ClientTable): Client {
  return {
    id: r.id,
    name: r.name,
    publicKey: r.public_key,
    site: r.site_code,
    boundary: r.boundary,
    ip: r.ip,
    approved: Number(r.approved) === 1,
    registeredAt: r.registered_at,
    lastSeenAt: r.last_seen_at,
  };
}

/**
 * Registers a client by its public key. A key seen before keeps its id (a
 * client that registers again is the same machine); its name, site and
 * boundary are brought up to date and its approval is kept.
 */
export async function registerClient(site: SiteDb, input: NewClient): Promise<Client> {
  const v = parseInput(newClientSchema, input, 'client');
  const db = clientDb(site);
  return guard(site, `client ${JSON.stringify(v.name)}`, () =>
    db.transaction().execute(async (trx) => {
      const now = new Date().toISOString();
      const old = await trx.selectFrom('clients').selectAll().where('public_key', '=', v.publicKey).executeTakeFirst();
      if (old !== undefined) {
        const changes = { name: v.name, site_code: v.site, boundary: v.boundary, ip: v.ip, last_seen_at: now };
        await trx.updateTable('clients').set(changes).where('id', '=', old.id).execute();
        await bumpPolicyVersion(trx);
        return toClient({ ...old, ...changes });
      }
      const row: ClientTable = {
        id: `GUID:${randomUUID()}`,
        name: v.name,
        public_key: v.publicKey,
        site_code: v.site,
        boundary: v.boundary,
        ip: v.ip,
        approved: v.approved ? 1 : 0,
        registered_at: now,
        last_seen_at: now,
      };
      await trx.insertInto('clients').values(row).execute();
      await bumpPolicyVersion(trx);
      return toClient(row);
    }),
  );
}

export async function getClient(site: SiteDb, id: string): Promise<Client | undefined> {
  const parsed = clientIdSchema.safeParse(id);
  if (!parsed.success) return undefined;
  const row = await guard(site, `client ${id}`, () => clientDb(site).selectFrom('clients').selectAll().where('id', '=', parsed.data).executeTakeFirst());
  return row === undefined ? undefined : toClient(row);
}

export async function listClients(site: SiteDb): Promise<Client[]> {
  const rows = await guard(site, 'clients', () => clientDb(site).selectFrom('clients').selectAll().orderBy('name').orderBy('id').execute());
  return rows.map(toClient);
}

/** Approves a client named by id or by name (a name must be unambiguous). */
export async function approveClient(site: SiteDb, idOrName: string): Promise<Client> {
  const db = clientDb(site);
  return guard(site, `client ${idOrName}`, () =>
    db.transaction().execute(async (trx) => {
      const rows = await trx
        .selectFrom('clients')
        .selectAll()
        .where((eb) => eb.or([eb('id', '=', idOrName), eb('name', '=', idOrName)]))
        .execute();
      if (rows.length === 0) throw new SitecastError('SITECAST_E_NOT_FOUND', `no client ${JSON.stringify(idOrName)}`);
      if (rows.length > 1) {
        throw new SitecastError('SITECAST_E_CONFLICT', `${rows.length} clients are named ${JSON.stringify(idOrName)}`, {
          hint: 'name the client by its id (GUID:…)',
        });
      }
      const row = rows[0] as ClientTable;
      await trx.updateTable('clients').set({ approved: 1 }).where('id', '=', row.id).execute();
      await bumpPolicyVersion(trx);
      return toClient({ ...row, approved: 1 });
    }),
  );
}

/** Rows per transaction when last-seen times are written. */
export const TOUCH_BATCH = 500;

/**
 * Records when clients were last seen, from where and in which boundary:
 * the management point batches these. `boundaryChanged` says that some
 * client was found in another boundary than recorded, which changes what
 * `boundary:` rules match, so the policy version moves (with the last batch).
 *
 * In transactions of TOUCH_BATCH rows, with a turn of the event loop between
 * them: SQLite's calls are synchronous, so one transaction over the clients
 * of a large site (100,000 polling once a minute) would stop the server's
 * answers for as long as it runs; a batch stops them for a few milliseconds.
 */
export async function touchClients(
  site: SiteDb,
  seen: ReadonlyMap<string, { time: string; ip: string; boundary: string | null }>,
  boundaryChanged = false,
): Promise<void> {
  if (seen.size === 0) return;
  const db = clientDb(site);
  const entries = [...seen];
  for (let at = 0; at < entries.length; at += TOUCH_BATCH) {
    if (at > 0) await new Promise<void>((resolve) => setImmediate(resolve));
    const batch = entries.slice(at, at + TOUCH_BATCH);
    const last = at + TOUCH_BATCH >= entries.length;
    await guard(site, 'clients last seen', () =>
      db.transaction().execute(async (trx) => {
        for (const [id, s] of batch) {
          await trx.updateTable('clients').set({ last_seen_at: s.time, ip: s.ip, boundary: s.boundary }).where('id', '=', id).execute();
        }
        if (last && boundaryChanged) await bumpPolicyVersion(trx);
      }),
    );
  }
}

export async function getRequireApproval(site: SiteDb): Promise<boolean> {
  const row = await guard(site, 'client settings', () =>
    clientDb(site).selectFrom('client_settings').select('value').where('name', '=', 'require_approval').executeTakeFirst(),
  );
  return row?.value === '1';
}

export async function setRequireApproval(site: SiteDb, value: boolean): Promise<void> {
  const db = clientDb(site);
  await guard(site, 'client settings', () =>
    db
      .insertInto('client_settings')
      .values({ name: 'require_approval', value: value ? '1' : '0' })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: value ? '1' : '0' }))
      .execute(),
  );
}

export async function addBoundary(site: SiteDb, input: NewBoundary): Promise<Boundary> {
  const v = parseInput(newBoundarySchema, input, 'boundary');
  const db = clientDb(site);
  await guard(site, `boundary ${v.name}`, () =>
    db.transaction().execute(async (trx) => {
      await trx
        .insertInto('boundaries')
        .values({ name: v.name, range_text: v.range.trim(), site_code: v.site, mp_url: v.mpUrl, created_at: new Date().toISOString() })
        .execute();
      await bumpPolicyVersion(trx);
    }),
  );
  return { name: v.name, range: v.range.trim(), site: v.site, mpUrl: v.mpUrl };
}

export async function listBoundaries(site: SiteDb): Promise<Boundary[]> {
  const rows = await guard(site, 'boundaries', () => clientDb(site).selectFrom('boundaries').selectAll().orderBy('name').execute());
  return rows.map((r) => ({ name: r.name, range: r.range_text, site: r.site_code, mpUrl: r.mp_url }));
}
