import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { type CompiledCollection, parseRule, ruleSchema } from '../formats/collection-rule.js';
import { bumpPolicyVersion, clientDb } from './client-tables.js';
import { guard } from './guard.js';
import type { SiteDb } from './open.js';
import { nameSchema, parseInput, shortNameSchema } from './values.js';

export interface Collection {
  name: string;
  /** Direct members: client ids or names. */
  members: string[];
  rules: string[];
  createdAt: string;
}

export const collectionNameSchema = shortNameSchema;

const newCollectionSchema = z.object({
  name: collectionNameSchema,
  members: z.array(nameSchema).max(100_000).default([]),
  rules: z.array(ruleSchema).max(1000).default([]),
});
export type NewCollection = z.input<typeof newCollectionSchema>;

export async function createCollection(site: SiteDb, input: NewCollection): Promise<Collection> {
  const v = parseInput(newCollectionSchema, input, 'collection');
  const members = [...new Set(v.members)];
  const createdAt = new Date().toISOString();
  const db = clientDb(site);
  await guard(site, `collection ${v.name}`, () =>
    db.transaction().execute(async (trx) => {
      await trx.insertInto('collections').values({ name: v.name, created_at: createdAt }).execute();
      for (const member of members) await trx.insertInto('collection_members').values({ collection: v.name, member }).execute();
      for (const [position, rule] of v.rules.entries()) await trx.insertInto('collection_rules').values({ collection: v.name, position, rule }).execute();
      await bumpPolicyVersion(trx);
    }),
  );
  return { name: v.name, members, rules: v.rules, createdAt };
}

export async function getCollection(site: SiteDb, name: string): Promise<Collection | undefined> {
  const n = parseInput(collectionNameSchema, name, 'collection name');
  const db = clientDb(site);
  return guard(site, `collection ${n}`, async () => {
    const row = await db.selectFrom('collections').selectAll().where('name', '=', n).executeTakeFirst();
    if (row === undefined) return undefined;
    const members = await db.selectFrom('collection_members').select('member').where('collection', '=', n).orderBy('member').execute();
    const rules = await db.selectFrom('collection_rules').select('rule').where('collection', '=', n).orderBy('position').execute();
    return { name: n, members: members.map((m) => m.member), rules: rules.map((r) => r.rule), createdAt: row.created_at };
  });
}

/** Every collection with its members and rules parsed, for testing clients against (three queries, whatever the size). */
export async function loadCompiledCollections(site: SiteDb): Promise<Map<string, CompiledCollection>> {
  const db = clientDb(site);
  const [names, members, rules] = await guard(site, 'collections', () =>
    Promise.all([
      db.selectFrom('collections').select('name').execute(),
      db.selectFrom('collection_members').selectAll().execute(),
      db.selectFrom('collection_rules').selectAll().orderBy('collection').orderBy('position').execute(),
    ]),
  );
  const out = new Map<string, { name: string; members: Set<string>; rules: NonNullable<ReturnType<typeof parseRule>>[] }>();
  for (const n of names) out.set(n.name, { name: n.name, members: new Set(), rules: [] });
  for (const m of members) out.get(m.collection)?.members.add(m.member);
  for (const r of rules) {
    const parsed = parseRule(r.rule);
    if (parsed === undefined) throw new SitecastError('SITECAST_E_DB', `collection ${r.collection} holds a rule that does not parse: ${r.rule}`);
    out.get(r.collection)?.rules.push(parsed);
  }
  return out;
}
