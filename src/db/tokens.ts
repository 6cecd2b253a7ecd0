import { createHash, randomBytes } from 'node:crypto';
import { z } from 'zod';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { nameSchema, parseInput, roleSchema, type Role } from './values.js';

export interface AdminToken {
  id: string;
  role: Role;
  label: string | null;
  createdAt: string;
}

/** The secret is shown once; only its SHA-256 is kept. */
export interface IssuedToken extends AdminToken {
  token: string;
}

const TOKEN_PREFIX = 'sct_';
const tokenShape = /^sct_[A-Za-z0-9_-]{43}$/;
const newTokenSchema = z.object({ role: roleSchema, label: nameSchema.nullable().default(null) });
export type NewAdminToken = z.input<typeof newTokenSchema>;

function hashToken(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/**
 * Issues a bearer token: 256 random bits, recognisable by its `sct_` prefix
 * (so secret scanners and the log redactor can spot it).
 */
export async function createAdminToken(site: SiteDb, input: NewAdminToken): Promise<IssuedToken> {
  const v = parseInput(newTokenSchema, input, 'admin token');
  const token = TOKEN_PREFIX + randomBytes(32).toString('base64url');
  const row = {
    id: randomBytes(6).toString('hex'),
    token_sha256: hashToken(token),
    role: v.role,
    label: v.label,
    created_at: new Date().toISOString(),
  };
  await guard(site, 'admin token', () => site.db.insertInto('admin_tokens').values(row).execute());
  return { id: row.id, role: v.role, label: v.label, createdAt: row.created_at, token };
}

/**
 * The token's identity and role, or undefined for any token that is not
 * valid. Lookup is by hash, so the stored value never meets the secret.
 */
export async function verifyAdminToken(site: SiteDb, token: string): Promise<AdminToken | undefined> {
  if (typeof token !== 'string' || !tokenShape.test(token)) return undefined;
  const row = await guard(site, 'admin token', () =>
    site.db.selectFrom('admin_tokens').selectAll().where('token_sha256', '=', hashToken(token)).executeTakeFirst(),
  );
  if (row === undefined) return undefined;
  return { id: row.id, role: roleSchema.parse(row.role), label: row.label, createdAt: row.created_at };
}

export async function listAdminTokens(site: SiteDb): Promise<AdminToken[]> {
  const rows = await guard(site, 'admin tokens', () =>
    site.db.selectFrom('admin_tokens').select(['id', 'role', 'label', 'created_at']).orderBy('created_at').execute(),
  );
  return rows.map((r) => ({ id: r.id, role: roleSchema.parse(r.role), label: r.label, createdAt: r.created_at }));
}

/** Returns false when no token had that id. */
export async function revokeAdminToken(site: SiteDb, id: string): Promise<boolean> {
  const tokenId = parseInput(z.string().regex(/^[0-9a-f]{12}$/), id, 'token id');
  const result = await guard(site, `admin token ${tokenId}`, () =>
    site.db.deleteFrom('admin_tokens').where('id', '=', tokenId).executeTakeFirst(),
  );
  return Number(result.numDeletedRows) > 0;
}
