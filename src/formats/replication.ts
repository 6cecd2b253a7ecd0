import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { SitecastError } from '../errors.js';
import { packageIdSchema, prioritySchema, siteCodeSchema, type Priority } from '../db/values.js';
import { sitePayloadSchema, statusPayloadSchema } from './bundle-header.js';
import { parseJsonFile, sendIdSchema } from './srq.js';

/**
 * The two files between Distribution Manager (and the status reporter) and
 * the Scheduler, as in the seed. Format: docs/architecture/hierarchy.md.
 *
 * A replication request `.RPT` in `replmgr.box/outbound/<priority>/` says
 * what must go to which neighbouring sites: `<PKGID>.RPT` for a package
 * (its current version, to the child sites listed), `<name>.RPT` of kind
 * status or site for reports up and definitions down.
 *
 * A minijob `<id>.MJB` in `schedule.box` is one request for one site: what
 * the Scheduler turns into a bundle and a send request.
 */
export const REPLICATION_FORMAT = 1;
export const RPT_SUFFIX = '.RPT';
export const MINIJOB_SUFFIX = '.MJB';

const created = z.iso.datetime();

export const replicationRequestSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    format: z.literal(REPLICATION_FORMAT),
    kind: z.literal('package'),
    package: packageIdSchema,
    sourceVersion: z.number().int().min(1),
    /** Child sites that hold a targeted DP or lead to one. */
    sites: z.array(siteCodeSchema).min(1).max(1000),
    created,
  }),
  z.strictObject({ format: z.literal(REPLICATION_FORMAT), kind: z.literal('status'), to: siteCodeSchema, status: statusPayloadSchema, created }),
  z.strictObject({ format: z.literal(REPLICATION_FORMAT), kind: z.literal('site'), to: siteCodeSchema, site: sitePayloadSchema, created }),
]);
export type ReplicationRequest = z.infer<typeof replicationRequestSchema>;

export const minijobSchema = z.discriminatedUnion('kind', [
  z.strictObject({
    format: z.literal(REPLICATION_FORMAT),
    id: sendIdSchema,
    kind: z.literal('package'),
    to: siteCodeSchema,
    priority: prioritySchema,
    package: packageIdSchema,
    sourceVersion: z.number().int().min(1),
    created,
  }),
  z.strictObject({ format: z.literal(REPLICATION_FORMAT), id: sendIdSchema, kind: z.literal('status'), to: siteCodeSchema, priority: prioritySchema, status: statusPayloadSchema, created }),
  z.strictObject({ format: z.literal(REPLICATION_FORMAT), id: sendIdSchema, kind: z.literal('site'), to: siteCodeSchema, priority: prioritySchema, site: sitePayloadSchema, created }),
]);
export type Minijob = z.infer<typeof minijobSchema>;

/** Replication requests and minijobs carry status batches: larger than a wake-up file, still bounded. */
const MAX_FILE = 32 * 1024 * 1024;

function bad(name: string, why: string): SitecastError {
  return new SitecastError('SITECAST_E_BAD_INBOX_FILE', `${name}: ${why}`, { hint: 'replication files are written by the site server; do not edit them by hand' });
}

function describe(err: z.ZodError): string {
  return err.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'value'}: ${i.message}`)
    .join('; ');
}

export function parseReplicationRequest(name: string, text: Buffer): ReplicationRequest {
  if (!name.endsWith(RPT_SUFFIX)) throw bad(name, 'not a .RPT file');
  const result = replicationRequestSchema.safeParse(parseJsonFile(name, text, MAX_FILE));
  if (!result.success) throw bad(name, `does not parse: ${describe(result.error)}`);
  if (result.data.kind === 'package') {
    // `<PKGID>.RPT`, or `<PKGID>-<SITE>.RPT` for one child alone (a version resent whole), so it never replaces the package's own request.
    const forOne = result.data.sites.length === 1 ? `${result.data.package}-${result.data.sites[0]}${RPT_SUFFIX}` : undefined;
    if (name !== `${result.data.package}${RPT_SUFFIX}` && name !== forOne) throw bad(name, `the body names package ${result.data.package}`);
  }
  return result.data;
}

export function parseMinijob(name: string, text: Buffer): Minijob {
  const result = minijobSchema.safeParse(parseJsonFile(name, text, MAX_FILE));
  if (!result.success) throw bad(name, `does not parse: ${describe(result.error)}`);
  if (name !== `${result.data.id}${MINIJOB_SUFFIX}`) throw bad(name, `the body names minijob ${result.data.id}`);
  return result.data;
}

/** A name unique on this site: time first, so names sort by age. */
export function stampedName(prefix: string): string {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

export function serialize(value: ReplicationRequest | Minijob): string {
  return `${JSON.stringify(value)}\n`;
}

export type { Priority };
