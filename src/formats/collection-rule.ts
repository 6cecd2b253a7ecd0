import { z } from 'zod';

/**
 * Membership rules of a collection, one per string:
 *
 *   name:<glob>      the client's name matches the glob (`*` any run, `?` one character; case-insensitive)
 *   site:<ABC>       the client is assigned to that site
 *   boundary:<name>  the client was last seen in that boundary
 *
 * A client is a member when it is a direct member (by id or name) or any rule matches.
 */
export type CollectionRule = { kind: 'name'; glob: string; pattern: RegExp } | { kind: 'site'; site: string } | { kind: 'boundary'; boundary: string };

export interface RuleSubject {
  id: string;
  name: string;
  site: string;
  boundary: string | null;
}

function globToRegExp(glob: string): RegExp {
  const body = [...glob].map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('');
  return new RegExp(`^${body}$`, 'iu');
}

export function parseRule(text: string): CollectionRule | undefined {
  const m = /^(name|site|boundary):(.+)$/.exec(text);
  if (m === null) return undefined;
  const value = m[2] as string;
  if (m[1] === 'name') return value.length <= 200 ? { kind: 'name', glob: value, pattern: globToRegExp(value) } : undefined;
  if (m[1] === 'site') return /^[A-Z0-9]{3}$/.test(value) ? { kind: 'site', site: value } : undefined;
  return /^[A-Za-z0-9][A-Za-z0-9._ -]{0,63}$/.test(value) ? { kind: 'boundary', boundary: value } : undefined;
}

export const ruleSchema = z
  .string()
  .max(210)
  .refine((r) => parseRule(r) !== undefined, 'a rule is name:<glob>, site:<ABC> or boundary:<name>');

export function ruleMatches(rule: CollectionRule, c: RuleSubject): boolean {
  switch (rule.kind) {
    case 'name':
      return rule.pattern.test(c.name);
    case 'site':
      return c.site === rule.site;
    case 'boundary':
      return c.boundary === rule.boundary;
  }
}

/** A collection ready to test clients against. */
export interface CompiledCollection {
  name: string;
  members: ReadonlySet<string>;
  rules: readonly CollectionRule[];
}

export function isMember(col: CompiledCollection, c: RuleSubject): boolean {
  if (col.members.has(c.id) || col.members.has(c.name)) return true;
  return col.rules.some((r) => ruleMatches(r, c));
}
